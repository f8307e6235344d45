"""Model registry: models, their numbered versions, and aliases on versions.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from schema.py, as in 0001: a migration must keep
# producing the same schema when schema.py moves on.

_NAME = 63
_RUN_ID = 32
_DIGEST = 100


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("name", sa.String(_NAME), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_models")),
    )
    op.create_table(
        "model_versions",
        sa.Column("model", sa.String(_NAME), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("run_id", sa.String(_RUN_ID), nullable=False),
        sa.Column("package", sa.String(_DIGEST), nullable=False),
        sa.Column("flavor", sa.Text(), nullable=False),
        sa.Column("inference_contract", sa.Text(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("model", "version", name=op.f("pk_model_versions")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_model_versions_version_positive")),
        sa.ForeignKeyConstraint(
            ["model"],
            ["models.name"],
            name=op.f("fk_model_versions_model_models"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_model_versions_run_id_runs"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["package"],
            ["artifacts.digest"],
            name=op.f("fk_model_versions_package_artifacts"),
            ondelete="RESTRICT",
        ),
    )
    op.create_index(op.f("ix_model_versions_run_id"), "model_versions", ["run_id"])
    op.create_table(
        "model_aliases",
        sa.Column("model", sa.String(_NAME), nullable=False),
        sa.Column("alias", sa.String(_NAME), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("model", "alias", name=op.f("pk_model_aliases")),
        sa.ForeignKeyConstraint(
            ["model", "version"],
            ["model_versions.model", "model_versions.version"],
            name=op.f("fk_model_aliases_model_model_versions"),
            ondelete="RESTRICT",
        ),
    )


def downgrade() -> None:
    op.drop_table("model_aliases")
    op.drop_index(op.f("ix_model_versions_run_id"), table_name="model_versions")
    op.drop_table("model_versions")
    op.drop_table("models")
