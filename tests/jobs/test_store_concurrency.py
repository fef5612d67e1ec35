"""Concurrent consumers claim every job exactly once: 8 processes on PostgreSQL, 4 threads on SQLite.

Each consumer opens its own ``Store`` (its own engine and connections) and claims until the
queue is empty; a barrier releases them together so their claims really overlap.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from jobs.store import JobStatus, Store
from tests.jobs.test_store import job_rows

N_JOBS = 200


def consume(url: str, owner: str, barrier: Any, out: Any = None, work_s: float = 0.0) -> list[tuple[str, str]]:
    """Claim and complete jobs until none is left; return (job_id, owner) per claim.

    ``work_s`` stands for the job's work between claims; without it, on SQLite, the thread that
    holds the database lock takes it again before the others' busy handlers wake up.
    """
    claims: list[tuple[str, str]] = []
    with Store(url) as store:
        barrier.wait(timeout=60)
        while (job := store.claim(owner, lease_s=60)) is not None:
            claims.append((job.id, owner))
            assert store.complete(job.id, owner)
            time.sleep(work_s)
    if out is not None:  # in a child process: hand the claims back through the queue
        out.put(claims)
    return claims


def check_each_claimed_once(store: Store, claims: list[tuple[str, str]]) -> None:
    counts = Counter(job_id for job_id, _ in claims)
    assert len(claims) == N_JOBS and len(counts) == N_JOBS, counts.most_common(3)
    assert all(j.status == JobStatus.SUCCEEDED and j.attempts == 1 for j in store.list_jobs())
    assert len({owner for _, owner in claims}) > 1  # the claims really were shared


@pytest.mark.integration
def test_eight_processes_claim_each_postgres_job_exactly_once(pg_db_url: str) -> None:
    with Store(pg_db_url) as store:
        store.submit_jobs(job_rows(N_JOBS))
        ctx = mp.get_context("spawn")  # no fork: the parent holds pooled connections and threads
        barrier, out = ctx.Barrier(8), ctx.Queue()
        procs = [ctx.Process(target=consume, args=(pg_db_url, f"p{i}", barrier, out)) for i in range(8)]
        for p in procs:
            p.start()
        claims = [c for _ in procs for c in out.get(timeout=120)]
        for p in procs:
            p.join(timeout=30)
            assert p.exitcode == 0
        check_each_claimed_once(store, claims)


@pytest.mark.integration
def test_four_threads_claim_each_sqlite_job_exactly_once(sqlite_url: str) -> None:
    with Store(sqlite_url) as store:
        store.submit_jobs(job_rows(N_JOBS))
        barrier = threading.Barrier(4)
        results: dict[int, list[tuple[str, str]]] = {}
        errors: list[BaseException] = []

        def run(i: int) -> None:
            try:
                results[i] = consume(sqlite_url, f"t{i}-{os.getpid()}", barrier, work_s=0.002)
            except BaseException as e:  # surface a thread's failure in the test
                errors.append(e)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        check_each_claimed_once(store, [c for r in results.values() for c in r])


def run_threads(n: int, target: Callable[[int], Any]) -> list[Any]:
    """Run ``target(i)`` in ``n`` threads at once; re-raise the first failure."""
    out: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            out[i] = target(i)
        except BaseException as e:  # noqa: BLE001 - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    if errors:
        raise errors[0]
    return out


@pytest.mark.integration
def test_concurrent_openers_and_submitters_do_not_race(store_url: str) -> None:
    """Four stores open one empty database at once (one migrates, the others wait), then all
    submit the same jobs in different orders: no error, one row per job."""
    barrier = threading.Barrier(4)
    rows = job_rows(100)

    def open_and_submit(i: int) -> list[str]:
        barrier.wait(timeout=30)
        with Store(store_url) as store:
            mine = random.Random(i).sample(rows, len(rows))
            return store.submit_jobs(mine)

    submitted = run_threads(4, open_and_submit)
    assert all(sorted(ids) == sorted(r["id"] for r in rows) for ids in submitted)
    with Store(store_url) as store:
        assert len(store.list_jobs(status="queued")) == 100
