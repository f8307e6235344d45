"""Labels replaced by a later one are kept: `label_history`, one row per superseded label.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from schema.py, as in 0001.
_NAME = 63
_ID = 32


def upgrade() -> None:
    # Only a new table: the labels already in `feedback` stay as they are, each the current
    # (first known) label of its prediction.
    op.create_table(
        "label_history",
        sa.Column("prediction_id", sa.String(_ID), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("model", sa.String(_NAME), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_by", sa.Text(), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("prediction_id", "revision", name=op.f("pk_label_history")),
        sa.CheckConstraint("revision >= 1", name=op.f("ck_label_history_revision_positive")),
    )


def downgrade() -> None:
    op.drop_table("label_history")
