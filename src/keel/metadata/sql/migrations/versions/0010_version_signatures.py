"""Model versions carry the signature of the project's key over their name, number, package
and flavor (`keel.models.signing`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Nullable: versions registered before this revision are unsigned, and loading them is
    # refused until `keel models sign` signs them (or release.unsigned_packages says warn).
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("signature", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("signature")
