"""The prediction log: recent predictions, and the index of compacted Parquet segments.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from schema.py, as in 0001.
_NAME = 63
_DIGEST = 100
_ID = 32


def _ts(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(_ID), nullable=False),
        _ts("at"),
        sa.Column("model", sa.String(_NAME), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("slot", sa.String(16), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=True),
        sa.Column("shadow_of", sa.String(_ID), nullable=True),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("outputs", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
    )
    op.create_index(op.f("ix_predictions_model_at"), "predictions", ["model", "at"])
    op.create_table(
        "prediction_segments",
        sa.Column("digest", sa.String(_DIGEST), nullable=False),
        sa.Column("model", sa.String(_NAME), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("first_at"),
        _ts("last_at"),
        sa.Column("min_id", sa.String(_ID), nullable=False),
        sa.Column("max_id", sa.String(_ID), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_prediction_segments")),
        sa.ForeignKeyConstraint(
            ["digest"],
            ["artifacts.digest"],
            name=op.f("fk_prediction_segments_digest_artifacts"),
            ondelete="RESTRICT",
        ),
        sa.CheckConstraint("row_count > 0", name=op.f("ck_prediction_segments_row_count_positive")),
        sa.CheckConstraint("min_id <= max_id", name=op.f("ck_prediction_segments_id_range")),
    )
    op.create_index(
        op.f("ix_prediction_segments_model_first_at"),
        "prediction_segments",
        ["model", "first_at"],
    )
    op.create_index(op.f("ix_prediction_segments_min_id"), "prediction_segments", ["min_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_prediction_segments_min_id"), table_name="prediction_segments")
    op.drop_index(op.f("ix_prediction_segments_model_first_at"), table_name="prediction_segments")
    op.drop_table("prediction_segments")
    op.drop_index(op.f("ix_predictions_model_at"), table_name="predictions")
    op.drop_table("predictions")
