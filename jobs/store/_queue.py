"""The job queue: submit, claim under a lease, heartbeat, finish, and recover jobs whose worker vanished.

A claim is one transaction. On PostgreSQL it picks the next queued job with ``SELECT ... FOR
UPDATE SKIP LOCKED`` (concurrent claimers skip each other's row instead of waiting on it); on
SQLite the transaction is ``BEGIN IMMEDIATE``, which already excludes every other writer. The
same transaction first returns expired leases to the queue, so a dead worker's job is picked up
by the next claim without a separate janitor.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, select, update

from flowcut.errors import FlowcutError

from ._engine import in_ids, insert_for, is_postgres, read_tx, write_tx
from .models import Job, JobStatus, Run, RunStatus, utcnow

JOB_REQUIRED = ("id", "spec_name", "config", "model", "method", "budget", "benchmark")
JOB_OPTIONAL = {"max_attempts": 3}
_CHUNK = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's bound-parameter limits
LEASE_EXPIRED = "lease expired"


@dataclasses.dataclass(frozen=True)
class JobInfo:
    """A job row as seen at one moment; ``run_id`` is set only on the value ``claim`` returns."""

    id: str
    spec_name: str
    config: dict[str, Any]
    model: str
    method: str
    budget: int
    benchmark: str
    status: str
    priority: int
    attempts: int
    max_attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    heartbeat_at: datetime | None
    last_error: str | None
    total_samples: int | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    run_id: int | None = None

    @classmethod
    def from_row(cls, row: Row[Any], run_id: int | None = None) -> JobInfo:
        return cls(**row._mapping, run_id=run_id)


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def _check_lease(lease_s: float) -> timedelta:
    if not (isinstance(lease_s, int | float) and math.isfinite(lease_s) and lease_s > 0):
        raise FlowcutError("lease_s", f"must be a positive number of seconds, got {lease_s!r}")
    return timedelta(seconds=lease_s)


def _job_values(i: int, row: dict[str, Any]) -> dict[str, Any]:
    missing = [k for k in JOB_REQUIRED if k not in row]
    if missing:
        raise FlowcutError(f"jobs[{i}].{missing[0]}", "missing", allowed=", ".join(JOB_REQUIRED))
    unknown = sorted(set(row) - set(JOB_REQUIRED) - set(JOB_OPTIONAL))
    if unknown:
        raise FlowcutError(
            f"jobs[{i}].{unknown[0]}", "unknown field", allowed=", ".join([*JOB_REQUIRED, *JOB_OPTIONAL])
        )
    if not isinstance(row["id"], str) or not row["id"]:
        raise FlowcutError(f"jobs[{i}].id", f"must be a non-empty string, got {row['id']!r}")
    out = {**JOB_OPTIONAL, **row}
    if not isinstance(out["max_attempts"], int) or out["max_attempts"] < 1:
        raise FlowcutError(f"jobs[{i}].max_attempts", f"must be an integer >= 1, got {out['max_attempts']!r}")
    return out


def _requeue_expired(conn: Connection, now: datetime) -> int:
    """Return expired leases to the queue, or fail them when their attempts are used up."""
    q = select(Job.id).where(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now).order_by(Job.id)
    if is_postgres(conn):
        q = q.with_for_update(skip_locked=True)  # another claimer is already recovering those
    ids = list(conn.scalars(q))
    if not ids:
        return 0
    cleared = {"lease_owner": None, "lease_expires_at": None, "last_error": LEASE_EXPIRED, "updated_at": now}
    exhausted = Job.attempts >= Job.max_attempts
    for chunk in _chunks(ids):
        conn.execute(
            update(Job).where(Job.id.in_(chunk), exhausted).values(status=JobStatus.FAILED, finished_at=now, **cleared)
        )
        conn.execute(update(Job).where(Job.id.in_(chunk), ~exhausted).values(status=JobStatus.QUEUED, **cleared))
        conn.execute(
            update(Run)
            .where(Run.job_id.in_(chunk), Run.status == RunStatus.RUNNING)
            .values(status=RunStatus.LOST, error=LEASE_EXPIRED, finished_at=now)
        )
    return len(ids)


def _close_run(conn: Connection, job_id: str, owner: str, status: RunStatus, error: str | None, now: datetime) -> None:
    conn.execute(
        update(Run)
        .where(Run.job_id == job_id, Run.owner == owner, Run.status == RunStatus.RUNNING)
        .values(status=status, error=error, finished_at=now)
    )


class QueueOps:
    """Queue methods of ``Store`` (mixed in; ``_engine`` is set by ``Store.__init__``)."""

    _engine: Engine

    def submit_jobs(self, rows: Iterable[dict[str, Any]], priority: int = 0) -> list[str]:
        """Insert the jobs that are not in the store yet; return all their ids, in order.

        Idempotent and safe under concurrent submitters (``INSERT ... ON CONFLICT DO NOTHING``).
        An existing job keeps its state when it is queued, running or succeeded (its results are
        reused); a failed or cancelled one is queued again with its attempts reset and this
        ``priority``.

        Args:
            rows: dicts with keys id (the config fingerprint), spec_name, config, model, method,
                budget, benchmark and optionally max_attempts (default 3).
            priority: higher is claimed first.

        Raises:
            FlowcutError: on the first row with a missing or unknown key (nothing is written).
        """
        values = [_job_values(i, r) for i, r in enumerate(rows)]
        ids = [v["id"] for v in values]
        now = utcnow()
        for i, v in enumerate(values):
            # a microsecond apart so that jobs of one submission are claimed in the order given
            stamp = now + timedelta(microseconds=i)
            v.update(status=JobStatus.QUEUED, priority=priority, attempts=0, created_at=stamp, updated_at=stamp)
        with write_tx(self._engine) as conn:
            if values:
                # in key order: concurrent submitters of overlapping sets then wait for each other, never deadlock
                ordered = sorted(values, key=lambda v: v["id"])
                conn.execute(insert_for(conn, Job).on_conflict_do_nothing(index_elements=["id"]), ordered)
            for chunk in _chunks(sorted(set(ids))):
                conn.execute(
                    update(Job)
                    .where(Job.id.in_(chunk), Job.status.in_((JobStatus.FAILED, JobStatus.CANCELLED)))
                    .values(
                        status=JobStatus.QUEUED, attempts=0, priority=priority, last_error=None, lease_owner=None,
                        lease_expires_at=None, started_at=None, finished_at=None, updated_at=now,
                    )
                )  # fmt: skip
        return ids

    def claim(self, owner: str, lease_s: float, job_ids: Sequence[str] | None = None) -> JobInfo | None:
        """Atomically take the next queued job (priority desc, then oldest) under a lease.

        Sets it running with ``attempts + 1`` and opens its ``runs`` row (``JobInfo.run_id``).
        Expired leases are recovered first (see ``requeue_expired``).

        Args:
            owner: who holds the lease (e.g. ``host:pid``); heartbeat / complete / fail must pass it.
            lease_s: seconds until the job returns to the queue unless heartbeat renews it.
            job_ids: claim only among these jobs (None: any).

        Returns:
            The claimed job, or None when nothing is queued.
        """
        lease = _check_lease(lease_s)
        if job_ids is not None and not job_ids:
            return None
        now = utcnow()
        with write_tx(self._engine) as conn:
            _requeue_expired(conn, now)
            q = select(Job.id).where(Job.status == JobStatus.QUEUED)
            if job_ids is not None:
                q = q.where(in_ids(conn, Job.id, list(job_ids)))
            q = q.order_by(Job.priority.desc(), Job.created_at, Job.id).limit(1)
            if is_postgres(conn):
                q = q.with_for_update(skip_locked=True)
            job_id = conn.scalar(q)
            if job_id is None:
                return None
            row = conn.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(
                    status=JobStatus.RUNNING, lease_owner=owner, lease_expires_at=now + lease, heartbeat_at=now,
                    attempts=Job.attempts + 1, started_at=now, finished_at=None, updated_at=now,
                )
                .returning(*Job.__table__.c)
            ).one()  # fmt: skip
            run_id = conn.scalar(
                insert_for(conn, Run)
                .values(job_id=job_id, attempt=row.attempts, owner=owner, status=RunStatus.RUNNING, started_at=now)
                .returning(Run.id)
            )
        return JobInfo.from_row(row, run_id)

    def heartbeat(self, job_id: str, owner: str, lease_s: float) -> bool:
        """Renew the lease for ``lease_s`` more seconds.

        Returns:
            False when the lease is lost (expired, cancelled, or taken over): the runner must stop.
        """
        return job_id in self.heartbeats([job_id], owner, lease_s)

    def heartbeats(self, job_ids: Sequence[str], owner: str, lease_s: float) -> set[str]:
        """Renew the leases of ``job_ids`` in one transaction; returns those still held.

        A round holds up to 64 jobs: one statement a beat instead of one write transaction per
        job keeps the beat short beside the result writes competing for the same lock (on SQLite,
        the whole database), so a beat does not arrive after the lease it renews.
        """
        lease = _check_lease(lease_s)
        now, held = utcnow(), set()
        if not job_ids:  # every job of the round lost: no write lock to take
            return held
        with write_tx(self._engine) as conn:
            for chunk in _chunks(list(job_ids)):
                res = conn.execute(
                    update(Job)
                    .where(in_ids(conn, Job.id, list(chunk)), Job.lease_owner == owner, Job.status == JobStatus.RUNNING)
                    .where(Job.lease_expires_at >= now)
                    .values(lease_expires_at=now + lease, heartbeat_at=now, updated_at=now)
                    .returning(Job.id)
                )
                held.update(res.scalars())
        return held

    def complete(self, job_id: str, owner: str) -> bool:
        """Mark the job succeeded. Returns False if ``owner`` no longer holds it."""
        now = utcnow()
        with write_tx(self._engine) as conn:
            res = conn.execute(
                update(Job)
                .where(Job.id == job_id, Job.lease_owner == owner, Job.status == JobStatus.RUNNING)
                .values(
                    status=JobStatus.SUCCEEDED, finished_at=now, updated_at=now, last_error=None, lease_owner=None,
                    lease_expires_at=None,
                )
            )  # fmt: skip
            if res.rowcount != 1:
                return False
            _close_run(conn, job_id, owner, RunStatus.SUCCEEDED, None, now)
            return True

    def fail(self, job_id: str, owner: str, error: str) -> bool:
        """Record a failed attempt: back to the queue while attempts < max_attempts, else failed.

        The error is kept in ``jobs.last_error`` and on the attempt's ``runs`` row.
        Returns False if ``owner`` no longer holds the job.
        """
        now = utcnow()
        with write_tx(self._engine) as conn:
            mine = (Job.id == job_id, Job.lease_owner == owner, Job.status == JobStatus.RUNNING)
            row = conn.execute(select(Job.attempts, Job.max_attempts).where(*mine).with_for_update()).one_or_none()
            if row is None:
                return False
            final = row.attempts >= row.max_attempts
            conn.execute(
                update(Job)
                .where(*mine)
                .values(
                    status=JobStatus.FAILED if final else JobStatus.QUEUED, finished_at=now if final else None,
                    last_error=error, lease_owner=None, lease_expires_at=None, updated_at=now,
                )
            )  # fmt: skip
            _close_run(conn, job_id, owner, RunStatus.FAILED, error, now)
            return True

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job (a running one loses its lease; its heartbeat returns False).

        Returns:
            False when the job does not exist or has already finished.
        """
        now = utcnow()
        with write_tx(self._engine) as conn:
            res = conn.execute(
                update(Job)
                .where(Job.id == job_id, Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)))
                .values(status=JobStatus.CANCELLED, finished_at=now, updated_at=now, lease_owner=None,
                        lease_expires_at=None)
            )  # fmt: skip
            if res.rowcount != 1:
                return False
            conn.execute(
                update(Run)
                .where(Run.job_id == job_id, Run.status == RunStatus.RUNNING)
                .values(status=RunStatus.CANCELLED, finished_at=now)
            )
            return True

    def set_priority(self, job_id: str, priority: int) -> bool:
        """Change a job's priority (higher is claimed first). Returns False if there is no such job."""
        with write_tx(self._engine) as conn:
            res = conn.execute(update(Job).where(Job.id == job_id).values(priority=priority, updated_at=utcnow()))
            return res.rowcount == 1

    def requeue_expired(self) -> int:
        """Recover jobs whose lease expired: queued again, or failed ("lease expired") once
        attempts >= max_attempts. ``claim`` does this itself; returns how many were recovered."""
        with write_tx(self._engine) as conn:
            return _requeue_expired(conn, utcnow())

    def set_total(self, job_id: str, n: int) -> None:
        """Record how many samples the job has (for ``progress``)."""
        if not isinstance(n, int) or n < 0:
            raise FlowcutError("total_samples", f"must be an integer >= 0, got {n!r}")
        with write_tx(self._engine) as conn:
            if conn.execute(update(Job).where(Job.id == job_id).values(total_samples=n)).rowcount != 1:
                raise FlowcutError("job_id", f"no such job: {job_id}")

    def get_job(self, job_id: str) -> JobInfo | None:
        """The job, or None."""
        with read_tx(self._engine) as conn:
            row = conn.execute(select(*Job.__table__.c).where(Job.id == job_id)).one_or_none()
        return None if row is None else JobInfo.from_row(row)

    def list_jobs(self, status: str | None = None, spec_name: str | None = None) -> list[JobInfo]:
        """Jobs in claim order (priority desc, then oldest), optionally filtered."""
        q = select(*Job.__table__.c).order_by(Job.priority.desc(), Job.created_at, Job.id)
        if status is not None:
            if status not in set(JobStatus):
                raise FlowcutError("status", f"unknown status {status!r}", allowed=", ".join(JobStatus))
            q = q.where(Job.status == status)
        if spec_name is not None:
            q = q.where(Job.spec_name == spec_name)
        with read_tx(self._engine) as conn:
            return [JobInfo.from_row(r) for r in conn.execute(q)]
