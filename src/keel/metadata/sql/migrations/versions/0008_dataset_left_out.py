"""Dataset versions record the source columns left out of the data (row indexes).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Nullable: versions recorded before this revision left nothing out.
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("left_out", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("left_out")
