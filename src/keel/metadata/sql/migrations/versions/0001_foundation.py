"""Foundation: recorded artifacts and the holders that keep them alive.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Migrations spell out their tables instead of importing schema.py, so that they keep
# producing the same schema when schema.py moves on. op.f() marks each name as final,
# so the naming convention of schema.py does not rewrite it.


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("digest", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_artifacts")),
        sa.CheckConstraint("size >= 0", name=op.f("ck_artifacts_size_not_negative")),
    )
    op.create_index(op.f("ix_artifacts_created_at"), "artifacts", ["created_at"])
    op.create_table(
        "artifact_holders",
        sa.Column("digest", sa.String(100), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", "holder", name=op.f("pk_artifact_holders")),
        sa.ForeignKeyConstraint(
            ["digest"],
            ["artifacts.digest"],
            name=op.f("fk_artifact_holders_digest_artifacts"),
            ondelete="RESTRICT",
        ),
    )


def downgrade() -> None:
    op.drop_table("artifact_holders")
    op.drop_index(op.f("ix_artifacts_created_at"), table_name="artifacts")
    op.drop_table("artifacts")
