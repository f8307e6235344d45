"""Dataset versions may store a manifest of a lake table's files instead of a Parquet copy.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Nullable: versions recorded before this revision are copies. The `parquet` column stays
    # NOT NULL and holds the manifest's digest for a manifest version: relaxing it would make
    # SQLite rebuild a table that runs and files reference.
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("storage", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("storage")
