"""The schema: jobs (the queue), runs (one per attempt) with their environments, and per-sample results.

The ORM classes are the single description of the tables; ``migrations/versions`` creates them
(a test compares the two so they cannot drift). Queries use these classes' columns through Core
``Connection``s, so every transaction boundary is explicit.

Environments live in their own table (one row per run) rather than as columns of ``runs``: the
queue touches ``runs`` on every claim and finish, and the environment is written once, later,
by the worker that knows it.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class JobStatus(enum.StrEnum):
    """A job's place in the queue: queued -> running (leased) -> succeeded / failed / cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunStatus(enum.StrEnum):
    """How one attempt ended; ``lost`` = its lease expired (worker died or stalled)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"


def utcnow() -> datetime:
    """Aware UTC now: lease times come from the workers' clocks, which must be NTP-synced."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends.

    SQLite has no time zone type: values are stored as naive UTC text in a fixed-width format,
    so comparisons in SQL (lease expiry) stay correct; they come back aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSONB on PostgreSQL so the dashboard can index and query inside configs and extras;
# none_as_null: a Python None is SQL NULL (IS NULL works), not the JSON value null
JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
# 64-bit ids on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER
BigId = BigInteger().with_variant(Integer(), "sqlite")

_JOB_STATUSES = ", ".join(f"'{s.value}'" for s in JobStatus)
_RUN_STATUSES = ", ".join(f"'{s.value}'" for s in RunStatus)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, Any: JSONType}


class Job(Base):
    """One model x method x budget x benchmark evaluation; its id is the config fingerprint."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"status IN ({_JOB_STATUSES})", name="ck_jobs_status"),
        Index("ix_jobs_spec_name", "spec_name"),
    )

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    spec_name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]]
    model: Mapped[str] = mapped_column(String(500))
    method: Mapped[str] = mapped_column(String(100))
    budget: Mapped[int] = mapped_column(Integer)
    benchmark: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    priority: Mapped[int] = mapped_column(Integer, default=0)  # higher is claimed first
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    total_samples: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


# claim reads WHERE status = 'queued' ORDER BY priority DESC, created_at: the mixed order needs a DESC column
Index("ix_jobs_claim", Job.status, Job.priority.desc(), Job.created_at)


class Run(Base):
    """One attempt at a job, opened by ``claim`` and closed by complete / fail / cancel / lease expiry."""

    __tablename__ = "runs"
    __table_args__ = (CheckConstraint(f"status IN ({_RUN_STATUSES})", name="ck_runs_status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class Environment(Base):
    """What a run ran on: library versions, commit, device; anything else goes in ``extra``."""

    __tablename__ = "environments"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    python: Mapped[str | None] = mapped_column(String(100))
    torch: Mapped[str | None] = mapped_column(String(100))
    transformers: Mapped[str | None] = mapped_column(String(100))
    ray: Mapped[str | None] = mapped_column(String(100))
    git_commit: Mapped[str | None] = mapped_column(String(100))
    device: Mapped[str | None] = mapped_column(String(200))
    host: Mapped[str | None] = mapped_column(String(200))
    extra: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]


class Result(Base):
    """One sample of one job. The raw prediction is kept so the job can be re-scored without the model.

    An errored sample is a row with ``error`` set and ``score`` null.
    """

    __tablename__ = "results"
    __table_args__ = (UniqueConstraint("job_id", "sample_id", name="uq_results_job_sample"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    sample_id: Mapped[str] = mapped_column(String(200))
    prediction: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[Any | None]
    score: Mapped[float | None] = mapped_column(Float)
    parser: Mapped[str | None] = mapped_column(String(100))
    parser_version: Mapped[str | None] = mapped_column(String(50))
    kept_tokens: Mapped[int | None] = mapped_column(Integer)  # visual tokens at the LLM input
    tokens_llm_input: Mapped[int | None] = mapped_column(Integer)  # all tokens at the LLM input
    tokens_layer_avg: Mapped[float | None] = mapped_column(Float)  # tokens averaged over LLM layers
    vision_ms: Mapped[float | None] = mapped_column(Float)
    prefill_ms: Mapped[float | None] = mapped_column(Float)
    decode_ms: Mapped[float | None] = mapped_column(Float)
    total_ms: Mapped[float | None] = mapped_column(Float)
    flops: Mapped[float | None] = mapped_column(Float)
    kv_bytes: Mapped[int | None] = mapped_column(BigInteger)
    peak_memory: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any] | None]  # kept indices, per-layer schedule, category, ...
    created_at: Mapped[datetime]  # when these values were written (a re-run overwrites it)
