"""Releases: the hash-chained audit log, alias history, gate evaluations, release requests
and approvals, users and API tokens, webhooks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from schema.py, as in 0001.
_NAME = 63
_DIGEST = 100
_ID = 32
#: The hash the first audit event chains from (keel.domain.audit.GENESIS).
_GENESIS = "blake3:" + "0" * 64


def _ts(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _version_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["model", "version"],
        ["model_versions.model", "model_versions.version"],
        name=op.f(f"fk_{table}_model_model_versions"),
        ondelete="RESTRICT",
    )


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        _ts("at"),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("model", sa.String(_NAME), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("alias", sa.String(_NAME), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(_DIGEST), nullable=False),
        sa.Column("hash", sa.String(_DIGEST), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_events_hash")),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_audit_events_seq_positive")),
    )
    op.create_index(op.f("ix_audit_events_model_seq"), "audit_events", ["model", "seq"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(_DIGEST), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_single_row")),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": _GENESIS}])
    op.create_table(
        "alias_history",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("model", sa.String(_NAME), nullable=False),
        sa.Column("alias", sa.String(_NAME), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        _ts("at"),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_alias_history")),
        sa.ForeignKeyConstraint(
            ["seq"], ["audit_events.seq"], name=op.f("fk_alias_history_seq_audit_events")
        ),
        _version_fk("alias_history"),
        sa.CheckConstraint(
            "kind IN ('move', 'rollback')", name=op.f("ck_alias_history_kind_known")
        ),
    )
    op.create_index(
        op.f("ix_alias_history_model_alias_seq"), "alias_history", ["model", "alias", "seq"]
    )
    op.create_table(
        "gate_evaluations",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("model", sa.String(_NAME), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(_NAME), nullable=False),
        sa.Column("holder", sa.Integer(), nullable=True),
        _ts("at"),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("results", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_evaluations")),
        _version_fk("gate_evaluations"),
    )
    op.create_index(
        op.f("ix_gate_evaluations_model_version"), "gate_evaluations", ["model", "version"]
    )
    op.create_table(
        "release_requests",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("model", sa.String(_NAME), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(_NAME), nullable=False),
        sa.Column("holder", sa.Integer(), nullable=True),
        sa.Column("evaluation", sa.String(_ID), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        _ts("requested_at"),
        _ts("expires_at"),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("required", sa.Integer(), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("closed_at", nullable=True),
        sa.Column("closed_by", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_release_requests")),
        sa.ForeignKeyConstraint(
            ["evaluation"],
            ["gate_evaluations.id"],
            name=op.f("fk_release_requests_evaluation_gate_evaluations"),
            ondelete="RESTRICT",
        ),
        _version_fk("release_requests"),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'expired', 'superseded', 'refused')",
            name=op.f("ck_release_requests_status_known"),
        ),
        sa.CheckConstraint("required >= 1", name=op.f("ck_release_requests_required_positive")),
    )
    op.create_index(
        op.f("ix_release_requests_status_requested_at"),
        "release_requests",
        ["status", "requested_at"],
    )
    op.create_index(
        op.f("ix_release_requests_model_alias_status"),
        "release_requests",
        ["model", "alias", "status"],
    )
    op.create_table(
        "approvals",
        sa.Column("request_id", sa.String(_ID), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("roles", sa.Text(), nullable=False),
        _ts("at"),
        sa.PrimaryKeyConstraint("request_id", "actor", name=op.f("pk_approvals")),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["release_requests.id"],
            name=op.f("fk_approvals_request_id_release_requests"),
            ondelete="RESTRICT",
        ),
        sa.CheckConstraint(
            "decision IN ('approve', 'reject')", name=op.f("ck_approvals_decision_known")
        ),
    )
    op.create_table(
        "users",
        sa.Column("name", sa.String(_NAME), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.Column("created_by", sa.Text(), nullable=False),
        _ts("disabled_at", nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_users")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("user", sa.String(_NAME), nullable=False),
        sa.Column("secret_hash", sa.String(_DIGEST), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        _ts("created_at"),
        sa.Column("created_by", sa.Text(), nullable=False),
        _ts("expires_at", nullable=True),
        _ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.ForeignKeyConstraint(
            ["user"], ["users.name"], name=op.f("fk_api_tokens_user_users"), ondelete="RESTRICT"
        ),
    )
    op.create_index(op.f("ix_api_tokens_user"), "api_tokens", ["user"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.Column("created_by", sa.Text(), nullable=False),
        _ts("disabled_at", nullable=True),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )


def downgrade() -> None:
    op.drop_table("webhooks")
    op.drop_index(op.f("ix_api_tokens_user"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_table("approvals")
    op.drop_index(op.f("ix_release_requests_model_alias_status"), table_name="release_requests")
    op.drop_index(op.f("ix_release_requests_status_requested_at"), table_name="release_requests")
    op.drop_table("release_requests")
    op.drop_index(op.f("ix_gate_evaluations_model_version"), table_name="gate_evaluations")
    op.drop_table("gate_evaluations")
    op.drop_index(op.f("ix_alias_history_model_alias_seq"), table_name="alias_history")
    op.drop_table("alias_history")
    op.drop_table("audit_head")
    op.drop_index(op.f("ix_audit_events_model_seq"), table_name="audit_events")
    op.drop_table("audit_events")
