"""Read-only queries for dashboards and reports: result rows joined with their jobs, and the queue at a glance.

Each is one query in one read transaction (a consistent snapshot, no write lock on SQLite) returning a
pandas DataFrame with stable columns, so an empty store gives an empty frame, never an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Engine, case, func, select

from ._engine import in_ids, read_tx
from .models import Job, JobStatus, Result

# the job coordinates joined onto every result row
JOB_KEYS = ("model", "method", "budget", "benchmark")
# result columns for aggregates and sample tables; ``extra`` (kept indices per crop: large) only on request
FRAME_RESULT_COLUMNS = (
    "job_id", "sample_id", "prediction", "reference", "score", "error", "parser", "parser_version", "kept_tokens",
    "tokens_llm_input", "tokens_layer_avg", "vision_ms", "prefill_ms", "decode_ms", "total_ms", "flops", "kv_bytes",
    "peak_memory",
)  # fmt: skip
JOB_FRAME_COLUMNS = (
    "id", "spec_name", *JOB_KEYS, "status", "priority", "attempts", "max_attempts", "lease_owner", "heartbeat_at",
    "last_error", "total_samples", "created_at", "started_at", "finished_at",
)  # fmt: skip


class ReadOps:
    """Read methods of ``Store`` (mixed in; ``_engine`` is set by ``Store.__init__``)."""

    _engine: Engine

    def results_frame(self, job_ids: Sequence[str] | None = None, with_extra: bool = False) -> pd.DataFrame:
        """Result rows with their job's model, method, budget, benchmark and status.

        Args:
            job_ids: only these jobs (None: all).
            with_extra: add the ``extra`` JSON column (kept patch indices, schedule, meta, options).

        Returns:
            Columns ``FRAME_RESULT_COLUMNS`` + ``JOB_KEYS`` + ``status`` (+ ``extra``), ordered by job and sample.
        """
        cols: list[Any] = [Result.__table__.c[k] for k in FRAME_RESULT_COLUMNS] + [Job.__table__.c[k] for k in JOB_KEYS]
        cols += [Job.status] + ([Result.extra] if with_extra else [])
        q = select(*cols).join(Job, Job.id == Result.job_id).order_by(Result.job_id, Result.sample_id)
        if job_ids is not None and not job_ids:
            return pd.DataFrame(columns=[c.key for c in cols])
        with read_tx(self._engine) as conn:
            if job_ids is not None:
                q = q.where(in_ids(conn, Result.job_id, list(job_ids)))
            res = conn.execute(q)
            return pd.DataFrame(res.fetchall(), columns=list(res.keys()))

    def jobs_frame(self) -> pd.DataFrame:
        """Every job with its progress: ``done`` (result rows) and ``errors`` (errored rows), in claim order.

        Returns:
            Columns ``JOB_FRAME_COLUMNS`` + ``done`` + ``errors`` (0 for a job with no rows yet).
        """
        counts = (
            select(
                Result.job_id.label("job_id"),
                func.count().label("done"),
                func.sum(case((Result.error.is_not(None), 1), else_=0)).label("errors"),
            )
            .group_by(Result.job_id)
            .subquery()
        )
        q = (
            select(
                *[Job.__table__.c[k] for k in JOB_FRAME_COLUMNS],
                func.coalesce(counts.c.done, 0).label("done"),
                func.coalesce(counts.c.errors, 0).label("errors"),
            )
            .outerjoin(counts, counts.c.job_id == Job.id)
            .order_by(Job.priority.desc(), Job.created_at, Job.id)
        )
        with read_tx(self._engine) as conn:
            res = conn.execute(q)
            return pd.DataFrame(res.fetchall(), columns=list(res.keys()))

    def status_counts(self) -> dict[str, int]:
        """Jobs per status, every status present (0 where none)."""
        with read_tx(self._engine) as conn:
            found = {status: n for status, n in conn.execute(select(Job.status, func.count()).group_by(Job.status))}
        return {s.value: int(found.get(s.value, 0)) for s in JobStatus}
