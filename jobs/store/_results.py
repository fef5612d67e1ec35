"""Per-sample results: validated, idempotent batch upserts, resume sets, progress and re-scoring."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, func, select, update

from flowcut.errors import FlowcutError

from ._engine import insert_for, read_tx, write_tx
from .models import Job, Result, utcnow

# what every scored row carries; values may be None (e.g. peak_memory where it cannot be measured)
RESULT_MEASURED = (
    "prediction", "reference", "score", "parser", "parser_version", "kept_tokens", "tokens_llm_input",
    "tokens_layer_avg", "vision_ms", "prefill_ms", "decode_ms", "total_ms", "flops", "kv_bytes", "peak_memory",
)  # fmt: skip
RESULT_OPTIONAL = ("error", "extra")
RESULT_FIELDS = ("sample_id", *RESULT_MEASURED, *RESULT_OPTIONAL)
_OVERWRITTEN = (*RESULT_MEASURED, *RESULT_OPTIONAL, "created_at")  # everything but the key


def _plain(v: Any) -> Any:
    """A value the drivers and JSON accept.

    Rows often come from pandas / Ray batches: numpy scalars and arrays become Python values, and
    NaN (pandas' missing value, which PostgreSQL's JSON also rejects) becomes None.
    """
    if v is None or isinstance(v, str | bool | int):
        return v
    if isinstance(v, float):
        return None if math.isnan(v) else float(v)
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if hasattr(v, "tolist"):  # numpy arrays and scalars, without importing numpy
        return _plain(v.tolist())
    return v


def _result_values(i: int, row: dict[str, Any], job_id: str, now: datetime) -> dict[str, Any]:
    """Validate one row and complete it to every column (one executemany needs identical keys)."""
    row = {k: _plain(v) for k, v in row.items()}
    errored = row.get("error") is not None
    # an errored sample may have no measurements; it needs only its id and the error
    required = ("sample_id", "error") if errored else ("sample_id", *RESULT_MEASURED)
    for k in required:
        if k not in row:
            raise FlowcutError(f"results[{i}].{k}", "missing", allowed=", ".join(RESULT_FIELDS))
    unknown = sorted(set(row) - set(RESULT_FIELDS))
    if unknown:
        raise FlowcutError(f"results[{i}].{unknown[0]}", "unknown field", allowed=", ".join(RESULT_FIELDS))
    if not isinstance(row["sample_id"], str) or not row["sample_id"]:
        raise FlowcutError(f"results[{i}].sample_id", f"must be a non-empty string, got {row['sample_id']!r}")
    if errored and row.get("score") is not None:
        raise FlowcutError(f"results[{i}].score", "must be null when error is set")
    out = dict.fromkeys(RESULT_FIELDS)
    out.update(row, job_id=job_id, created_at=now)
    return out


class ResultOps:
    """Result methods of ``Store`` (mixed in; ``_engine`` is set by ``Store.__init__``)."""

    _engine: Engine

    def write_results(self, job_id: str, rows: Iterable[dict[str, Any]]) -> int:
        """Upsert a batch of sample rows in one transaction; a re-run of a sample overwrites it.

        Every row is validated before anything is written, so a bad batch writes nothing.

        Args:
            job_id: the job the samples belong to.
            rows: dicts with ``sample_id`` and every field of ``RESULT_MEASURED`` (values may be None),
                optionally ``extra`` (JSON) and ``error``; an errored sample needs only ``sample_id``
                and ``error`` (its score stays null).

        Returns:
            The number of distinct samples written (a sample repeated in ``rows`` counts once, last wins).

        Raises:
            FlowcutError: naming the first missing or unknown field, or an unknown job.
        """
        now = utcnow()
        by_id: dict[str, dict[str, Any]] = {}
        for i, row in enumerate(rows):
            v = _result_values(i, row, job_id, now)
            # one INSERT ... ON CONFLICT may not touch the same row twice (PostgreSQL refuses)
            by_id[v["sample_id"]] = v
        if not by_id:
            return 0
        with write_tx(self._engine) as conn:
            if conn.scalar(select(Job.id).where(Job.id == job_id)) is None:
                raise FlowcutError("job_id", f"no such job: {job_id}")
            stmt = insert_for(conn, Result)
            stmt = stmt.on_conflict_do_update(
                index_elements=["job_id", "sample_id"], set_={k: stmt.excluded[k] for k in _OVERWRITTEN}
            )
            conn.execute(stmt, [by_id[k] for k in sorted(by_id)])  # key order: overlapping writers cannot deadlock
        return len(by_id)

    def done_sample_ids(self, job_id: str, include_errors: bool = True) -> set[str]:
        """Samples that already have a row (to skip on resume); without errored ones to retry them."""
        q = select(Result.sample_id).where(Result.job_id == job_id)
        if not include_errors:
            q = q.where(Result.error.is_(None))
        with read_tx(self._engine) as conn:
            return set(conn.scalars(q))

    def results(self, job_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Result rows as dicts of every column, in the order written; all jobs when ``job_id`` is None."""
        q = select(*Result.__table__.c).order_by(Result.id).limit(limit)
        if job_id is not None:
            q = q.where(Result.job_id == job_id)
        with read_tx(self._engine) as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def progress(self, job_id: str) -> tuple[int, int | None]:
        """(samples written, total samples or None before ``set_total``)."""
        with read_tx(self._engine) as conn:
            total = conn.execute(select(Job.total_samples).where(Job.id == job_id)).one_or_none()
            if total is None:
                raise FlowcutError("job_id", f"no such job: {job_id}")
            done = conn.scalar(select(func.count()).select_from(Result).where(Result.job_id == job_id))
        return int(done or 0), total[0]

    def update_scores(self, job_id: str, updates: Iterable[tuple[str, float | None, str, str]]) -> int:
        """Re-score stored predictions: (sample_id, score, parser, parser_version) per sample.

        Returns:
            How many rows were updated (samples without a row are ignored).
        """
        params = [{"b_job": job_id, "b_sid": s, "b_score": sc, "b_parser": p, "b_pv": pv} for s, sc, p, pv in updates]
        if not params:
            return 0
        stmt = (
            update(Result)
            .where(Result.job_id == bindparam("b_job"), Result.sample_id == bindparam("b_sid"))
            .values(score=bindparam("b_score"), parser=bindparam("b_parser"), parser_version=bindparam("b_pv"))
        )
        with write_tx(self._engine) as conn:
            return conn.execute(stmt, params).rowcount
