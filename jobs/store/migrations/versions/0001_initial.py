"""Initial schema: jobs, runs, environments, results.

Revision ID: 0001
Revises:
Create Date: 2026-05-20

Types are spelled out here rather than imported from ``models`` so that later model edits
cannot change what this revision creates.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite auto-increments only INTEGER


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("spec_name", sa.String(200), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("model", sa.String(500), nullable=False),
        sa.Column("method", sa.String(100), nullable=False),
        sa.Column("budget", sa.Integer, nullable=False),
        sa.Column("benchmark", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(200)),
        _ts("lease_expires_at"),
        _ts("heartbeat_at"),
        sa.Column("last_error", sa.Text),
        sa.Column("total_samples", sa.Integer),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        _ts("started_at"),
        _ts("finished_at"),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="ck_jobs_status"
        ),
    )
    op.create_index("ix_jobs_claim", "jobs", ["status", sa.text("priority DESC"), "created_at"])
    op.create_index("ix_jobs_spec_name", "jobs", ["spec_name"])

    op.create_table(
        "runs",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(128), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        _ts("started_at", nullable=False),
        _ts("finished_at"),
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed', 'cancelled', 'lost')", name="ck_runs_status"),
    )
    op.create_index("ix_runs_job_id", "runs", ["job_id"])

    op.create_table(
        "environments",
        sa.Column("run_id", BIG_ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("python", sa.String(100)),
        sa.Column("torch", sa.String(100)),
        sa.Column("transformers", sa.String(100)),
        sa.Column("ray", sa.String(100)),
        sa.Column("git_commit", sa.String(100)),
        sa.Column("device", sa.String(200)),
        sa.Column("host", sa.String(200)),
        sa.Column("extra", JSON),
        _ts("created_at", nullable=False),
    )

    op.create_table(
        "results",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(128), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sample_id", sa.String(200), nullable=False),
        sa.Column("prediction", sa.Text),
        sa.Column("reference", JSON),
        sa.Column("score", sa.Float),
        sa.Column("parser", sa.String(100)),
        sa.Column("parser_version", sa.String(50)),
        sa.Column("kept_tokens", sa.Integer),
        sa.Column("tokens_llm_input", sa.Integer),
        sa.Column("tokens_layer_avg", sa.Float),
        sa.Column("vision_ms", sa.Float),
        sa.Column("prefill_ms", sa.Float),
        sa.Column("decode_ms", sa.Float),
        sa.Column("total_ms", sa.Float),
        sa.Column("flops", sa.Float),
        sa.Column("kv_bytes", sa.BigInteger),
        sa.Column("peak_memory", sa.BigInteger),
        sa.Column("error", sa.Text),
        sa.Column("extra", JSON),
        _ts("created_at", nullable=False),
        sa.UniqueConstraint("job_id", "sample_id", name="uq_results_job_sample"),
    )


def downgrade() -> None:
    op.drop_table("results")
    op.drop_table("environments")
    op.drop_index("ix_runs_job_id", table_name="runs")
    op.drop_table("runs")
    op.drop_index("ix_jobs_spec_name", table_name="jobs")
    op.drop_index("ix_jobs_claim", table_name="jobs")
    op.drop_table("jobs")
