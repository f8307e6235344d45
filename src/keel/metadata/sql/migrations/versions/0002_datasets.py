"""Dataset versions: one row per snapshot, its columns and its source files.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from schema.py, as in 0001: a migration must keep
# producing the same schema when schema.py moves on.


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("timestamp_column", sa.Text(), nullable=True),
        sa.Column("time_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("time_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parquet", sa.String(100), nullable=False),
        sa.Column("profile", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.CheckConstraint("row_count >= 0", name=op.f("ck_datasets_row_count_not_negative")),
        sa.ForeignKeyConstraint(
            ["parquet"],
            ["artifacts.digest"],
            name=op.f("fk_datasets_parquet_artifacts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["profile"],
            ["artifacts.digest"],
            name=op.f("fk_datasets_profile_artifacts"),
            ondelete="RESTRICT",
        ),
    )
    op.create_index(op.f("ix_datasets_created_at"), "datasets", ["created_at"])
    op.create_table(
        "dataset_columns",
        sa.Column("dataset_id", sa.String(100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "position", name=op.f("pk_dataset_columns")),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_columns_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "dataset_files",
        sa.Column("dataset_id", sa.String(100), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "path", name=op.f("pk_dataset_files")),
        sa.CheckConstraint("size >= 0", name=op.f("ck_dataset_files_size_not_negative")),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_files_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("dataset_files")
    op.drop_table("dataset_columns")
    op.drop_index(op.f("ix_datasets_created_at"), table_name="datasets")
    op.drop_table("datasets")
