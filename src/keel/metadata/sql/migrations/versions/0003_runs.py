"""Runs: lineage and status, params, metric series, tags, artifacts, steps, step cache.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from schema.py, as in 0001: a migration must keep
# producing the same schema when schema.py moves on.

_RUN_ID = 32
_DIGEST = 100


def _run_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id"], ["runs.id"], name=op.f(f"fk_{table}_run_id_runs"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(_RUN_ID), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.String(_DIGEST), nullable=True),
        sa.Column("git_commit", sa.Text(), nullable=True),
        sa.Column("git_dirty", sa.Boolean(), nullable=True),
        sa.Column("git_diff_hash", sa.Text(), nullable=True),
        sa.Column("feature_code_hash", sa.Text(), nullable=True),
        sa.Column("training_code_hash", sa.Text(), nullable=True),
        sa.Column("environment", sa.Text(), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'failed')", name=op.f("ck_runs_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_runs_dataset_id_datasets"),
            ondelete="RESTRICT",
        ),
    )
    op.create_index(op.f("ix_runs_started_at"), "runs", ["started_at"])
    op.create_index(op.f("ix_runs_status"), "runs", ["status"])
    op.create_table(
        "run_params",
        sa.Column("run_id", sa.String(_RUN_ID), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_run_params")),
        _run_fk("run_params"),
    )
    op.create_table(
        "run_metrics",
        sa.Column("run_id", sa.String(_RUN_ID), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        _run_fk("run_metrics"),
    )
    op.create_index(
        op.f("ix_run_metrics_run_id_key_step"), "run_metrics", ["run_id", "key", "step"]
    )
    op.create_table(
        "run_tags",
        sa.Column("run_id", sa.String(_RUN_ID), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_run_tags")),
        _run_fk("run_tags"),
    )
    op.create_table(
        "run_artifacts",
        sa.Column("run_id", sa.String(_RUN_ID), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(_DIGEST), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "name", name=op.f("pk_run_artifacts")),
        sa.CheckConstraint("size >= 0", name=op.f("ck_run_artifacts_size_not_negative")),
        _run_fk("run_artifacts"),
        sa.ForeignKeyConstraint(
            ["digest"],
            ["artifacts.digest"],
            name=op.f("fk_run_artifacts_digest_artifacts"),
            ondelete="RESTRICT",
        ),
    )
    op.create_table(
        "run_steps",
        sa.Column("run_id", sa.String(_RUN_ID), nullable=False),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("cache_key", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("output", sa.String(_DIGEST), nullable=True),
        sa.Column("seconds", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "step", name=op.f("pk_run_steps")),
        sa.CheckConstraint(
            "outcome IN ('ran', 'cache_hit')", name=op.f("ck_run_steps_outcome_known")
        ),
        _run_fk("run_steps"),
        sa.ForeignKeyConstraint(
            ["output"],
            ["artifacts.digest"],
            name=op.f("fk_run_steps_output_artifacts"),
            ondelete="RESTRICT",
        ),
    )
    op.create_table(
        "step_cache",
        sa.Column("cache_key", sa.Text(), nullable=False),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column("output", sa.String(_DIGEST), nullable=False),
        sa.Column("run_id", sa.String(_RUN_ID), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cache_key", name=op.f("pk_step_cache")),
        sa.ForeignKeyConstraint(
            ["output"],
            ["artifacts.digest"],
            name=op.f("fk_step_cache_output_artifacts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_step_cache_run_id_runs"),
            ondelete="RESTRICT",
        ),
    )


def downgrade() -> None:
    op.drop_table("step_cache")
    op.drop_table("run_steps")
    op.drop_table("run_artifacts")
    op.drop_table("run_tags")
    op.drop_index(op.f("ix_run_metrics_run_id_key_step"), table_name="run_metrics")
    op.drop_table("run_metrics")
    op.drop_table("run_params")
    op.drop_index(op.f("ix_runs_status"), table_name="runs")
    op.drop_index(op.f("ix_runs_started_at"), table_name="runs")
    op.drop_table("runs")
