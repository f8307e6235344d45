"""Monitoring: reference profiles, delayed feedback, monitor metrics and alerts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
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
        "reference_profiles",
        sa.Column("model", sa.String(_NAME), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("profile", sa.String(_DIGEST), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("model", "version", name=op.f("pk_reference_profiles")),
        sa.ForeignKeyConstraint(
            ["profile"],
            ["artifacts.digest"],
            name=op.f("fk_reference_profiles_profile_artifacts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["model", "version"],
            ["model_versions.model", "model_versions.version"],
            name=op.f("fk_reference_profiles_model_model_versions"),
            ondelete="RESTRICT",
        ),
        sa.CheckConstraint(
            "row_count >= 0", name=op.f("ck_reference_profiles_row_count_not_negative")
        ),
    )
    op.create_table(
        "feedback",
        sa.Column("prediction_id", sa.String(_ID), nullable=False),
        sa.Column("model", sa.String(_NAME), nullable=False),
        _ts("at"),
        sa.Column("label", sa.Text(), nullable=False),
        _ts("received_at"),
        sa.Column("received_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("prediction_id", name=op.f("pk_feedback")),
    )
    op.create_index(op.f("ix_feedback_model_at"), "feedback", ["model", "at"])
    op.create_index(op.f("ix_feedback_model_received_at"), "feedback", ["model", "received_at"])
    op.create_table(
        "monitor_metrics",
        sa.Column("model", sa.String(_NAME), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        _ts("window_start"),
        _ts("window_end"),
        sa.Column("signal", sa.String(_NAME), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        _ts("recorded_at"),
        sa.PrimaryKeyConstraint(
            "model",
            "version",
            "window_start",
            "window_end",
            "signal",
            "subject",
            name=op.f("pk_monitor_metrics"),
        ),
    )
    op.create_index(
        op.f("ix_monitor_metrics_model_signal_window_end"),
        "monitor_metrics",
        ["model", "signal", "window_end"],
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(_ID), nullable=False),
        sa.Column("model", sa.String(_NAME), nullable=False),
        sa.Column("rule", sa.String(_NAME), nullable=False),
        sa.Column("signal", sa.String(_NAME), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("open_key", sa.String(400), nullable=True),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("threshold", sa.Double(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        _ts("opened_at"),
        _ts("last_seen_at"),
        _ts("resolved_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("open_key", name=op.f("uq_alerts_open_key")),
        sa.CheckConstraint("state IN ('open', 'resolved')", name=op.f("ck_alerts_state_known")),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'critical')", name=op.f("ck_alerts_severity_known")
        ),
        sa.CheckConstraint(
            "(state = 'open') = (open_key IS NOT NULL)",
            name=op.f("ck_alerts_open_key_while_open"),
        ),
    )
    op.create_index(op.f("ix_alerts_model_state"), "alerts", ["model", "state"])
    op.create_index(op.f("ix_alerts_opened_at"), "alerts", ["opened_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_alerts_opened_at"), table_name="alerts")
    op.drop_index(op.f("ix_alerts_model_state"), table_name="alerts")
    op.drop_table("alerts")
    op.drop_index(op.f("ix_monitor_metrics_model_signal_window_end"), table_name="monitor_metrics")
    op.drop_table("monitor_metrics")
    op.drop_index(op.f("ix_feedback_model_received_at"), table_name="feedback")
    op.drop_index(op.f("ix_feedback_model_at"), table_name="feedback")
    op.drop_table("feedback")
    op.drop_table("reference_profiles")
