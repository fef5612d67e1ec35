"""The SQL store on both backends: schema, queue semantics, leases, results, and bad URLs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

import jobs.store as store_pkg
import jobs.store._queue as store_queue
import jobs.store.models as store_models
from flowcut.errors import FlowcutError
from jobs.store import RESULT_MEASURED, JobInfo, JobStatus, Store
from jobs.store.models import Base, Environment, Run


def job_rows(n: int, prefix: str = "job", max_attempts: int = 3) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}{i:04d}", "spec_name": "demo", "config": {"i": i, "nested": {"a": [1, 2]}},
            "model": "fake", "method": "flowcut", "budget": 64, "benchmark": "pope", "max_attempts": max_attempts,
        }
        for i in range(n)
    ]  # fmt: skip


def result_row(sample_id: str, prediction: str = "yes", **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(RESULT_MEASURED)
    row.update(sample_id=sample_id, prediction=prediction, reference={"answer": "yes"}, score=1.0, parser="yesno",
               parser_version="1", kept_tokens=64, tokens_llm_input=120, tokens_layer_avg=80.5, total_ms=12.0,
               kv_bytes=2**33, extra={"kept": [1, 5, 9], "category": "adversarial"})  # fmt: skip
    row.update(kw)
    return row


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url)
    yield s
    s.close()


def test_exports_are_complete() -> None:
    assert set(store_pkg.__all__) == {n for n in dir(store_pkg) if not n.startswith("_") and n.isidentifier()} - {
        "models"
    }


def test_migrations_create_the_tables_the_models_describe(store: Store) -> None:
    with store._engine.connect() as conn:
        assert {"jobs", "runs", "environments", "results", "alembic_version"} <= set(inspect(conn).get_table_names())
        assert MigrationContext.configure(conn).get_current_revision() == "0001"
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    Store(store.url).close()  # reopening an up-to-date database is a no-op


def test_submit_is_idempotent_and_requeues_only_failed_or_cancelled(store: Store) -> None:
    rows = job_rows(3)
    assert store.submit_jobs(rows) == [r["id"] for r in rows]
    assert store.submit_jobs(rows + rows[:1]) == [r["id"] for r in rows + rows[:1]]
    jobs = store.list_jobs()
    assert [j.id for j in jobs] == [r["id"] for r in rows]  # one row each, claimed in submission order
    assert all(j.status == JobStatus.QUEUED and j.attempts == 0 for j in jobs)
    assert jobs[0].config == rows[0]["config"]

    done = store.claim("w", 60)
    assert done is not None and store.complete(done.id, "w")
    failed = store.claim("w", 60)
    assert failed is not None and store.fail(failed.id, "w", "boom")
    store.fail(store.claim("w", 60, job_ids=[failed.id]).id, "w", "boom")  # type: ignore[union-attr]
    store.fail(store.claim("w", 60, job_ids=[failed.id]).id, "w", "boom")  # type: ignore[union-attr]
    assert store.get_job(failed.id).status == JobStatus.FAILED  # type: ignore[union-attr]
    assert store.cancel(rows[2]["id"])

    store.submit_jobs(rows, priority=7)
    by_id = {j.id: j for j in store.list_jobs()}
    assert by_id[done.id].status == JobStatus.SUCCEEDED  # reused, not re-run
    assert by_id[failed.id].status == JobStatus.QUEUED and by_id[failed.id].attempts == 0
    assert by_id[failed.id].priority == 7 and by_id[failed.id].last_error is None
    assert by_id[rows[2]["id"]].status == JobStatus.QUEUED


def test_submit_validates_before_writing(store: Store) -> None:
    rows = job_rows(2)
    del rows[1]["benchmark"]
    with pytest.raises(FlowcutError, match=r"jobs\[1\]\.benchmark: missing") as e:
        store.submit_jobs(rows)
    assert e.value.field == "jobs[1].benchmark"
    assert store.list_jobs() == []


def test_claim_order_is_priority_then_age(store: Store) -> None:
    a, b, c, d = (r["id"] for r in job_rows(4))
    store.submit_jobs(job_rows(3))
    store.submit_jobs(job_rows(4)[3:], priority=5)
    assert store.set_priority(b, 10)
    assert not store.set_priority("nope", 1)
    assert store.claim("w", 60, job_ids=[a, c]).id == a  # type: ignore[union-attr]
    assert store.claim("w", 60, job_ids=[]) is None
    order = [store.claim("w", 60) for _ in range(3)]
    assert [j.id for j in order if j] == [b, d, c]
    assert store.claim("w", 60) is None
    claimed = order[0]
    assert isinstance(claimed, JobInfo) and claimed.run_id is not None
    assert claimed.status == JobStatus.RUNNING and claimed.attempts == 1 and claimed.lease_owner == "w"
    assert claimed.lease_expires_at is not None and claimed.lease_expires_at > claimed.started_at  # type: ignore[operator]


def test_expired_lease_requeues_then_fails_after_max_attempts(store: Store) -> None:
    (job_id,) = store.submit_jobs(job_rows(1, max_attempts=2))
    first = store.claim("w1", 0.05)
    assert first is not None
    time.sleep(0.1)
    assert not store.heartbeat(job_id, "w1", 60)  # lost: the runner must stop
    second = store.claim("w2", 0.05)  # the claim itself recovers the expired lease
    assert second is not None and second.id == job_id and second.attempts == 2
    assert second.last_error == "lease expired"
    assert not store.complete(job_id, "w1")  # the first worker no longer owns it
    time.sleep(0.1)
    assert store.requeue_expired() == 1
    job = store.get_job(job_id)
    assert job is not None and job.status == JobStatus.FAILED and job.last_error == "lease expired"
    assert job.finished_at is not None and job.lease_owner is None
    assert store.claim("w3", 60) is None
    with store._engine.connect() as conn:
        runs = conn.execute(select(Run.owner, Run.status, Run.error).order_by(Run.id)).all()
    assert [tuple(r) for r in runs] == [("w1", "lost", "lease expired"), ("w2", "lost", "lease expired")]


def test_heartbeat_renews_the_lease(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # A clock the test moves: with real sleeps a slow CI machine could take longer than the
    # lease between claim and heartbeat (it did once, with 0.6 s of a 1.0 s lease).
    clock = [store_models.utcnow()]
    monkeypatch.setattr(store_queue, "utcnow", lambda: clock[0])
    (job_id,) = store.submit_jobs(job_rows(1))
    job = store.claim("w1", 1.0)
    assert job is not None
    clock[0] += timedelta(seconds=0.6)
    assert store.heartbeat(job_id, "w1", 1.0)
    assert not store.heartbeat(job_id, "someone-else", 1.0)
    clock[0] += timedelta(seconds=0.6)  # past the first lease, within the renewed one
    assert store.requeue_expired() == 0
    assert store.get_job(job_id).status == JobStatus.RUNNING  # type: ignore[union-attr]
    clock[0] += timedelta(seconds=0.5)  # past the renewed lease too
    assert not store.heartbeat(job_id, "w1", 1.0)
    assert store.requeue_expired() == 1


def test_complete_ends_the_lease(store: Store) -> None:
    (job_id,) = store.submit_jobs(job_rows(1))
    assert store.claim("w1", 60) is not None
    assert store.complete(job_id, "w1")
    assert not store.heartbeat(job_id, "w1", 60)
    with pytest.raises(FlowcutError, match="lease_s"):
        store.claim("w1", 0)


def test_fail_retries_then_fails_and_records_the_error(store: Store) -> None:
    (job_id,) = store.submit_jobs(job_rows(1, max_attempts=2))
    store.claim("w", 60)
    assert store.fail(job_id, "w", "CUDA out of memory")
    job = store.get_job(job_id)
    assert job is not None and job.status == JobStatus.QUEUED and job.last_error == "CUDA out of memory"
    store.claim("w", 60)
    assert store.fail(job_id, "w", "again")
    assert store.get_job(job_id).status == JobStatus.FAILED  # type: ignore[union-attr]
    assert not store.fail(job_id, "w", "not mine any more")
    with store._engine.connect() as conn:
        errors = conn.scalars(select(Run.error).order_by(Run.id)).all()
    assert errors == ["CUDA out of memory", "again"]


def test_one_beat_renews_a_rounds_leases_and_names_the_lost(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [store_models.utcnow()]
    monkeypatch.setattr(store_queue, "utcnow", lambda: clock[0])
    ids = store.submit_jobs(job_rows(5))
    mine = [store.claim("w1", 1.0, job_ids=[i]) for i in ids[:4]]
    assert all(j is not None for j in mine)
    assert store.claim("w2", 1.0, job_ids=[ids[4]]) is not None  # someone else's
    assert store.cancel(ids[1])  # cancelled under us
    assert store.complete(ids[2], "w1")  # finished: nothing left to renew
    clock[0] += timedelta(seconds=0.6)
    assert store.heartbeats(ids, "w1", 1.0) == {ids[0], ids[3]}
    clock[0] += timedelta(seconds=0.6)  # past the first lease: w2's job goes back, ours were renewed
    assert store.requeue_expired() == 1
    assert [store.get_job(i).status for i in ids] == [JobStatus.RUNNING, JobStatus.CANCELLED,  # type: ignore[union-attr]
                                                      JobStatus.SUCCEEDED, JobStatus.RUNNING, JobStatus.QUEUED]  # fmt: skip
    assert store.heartbeats([ids[0], "no-such-job"], "w1", 1.0) == {ids[0]}
    clock[0] += timedelta(seconds=1.1)  # ids[3] missed a beat; ids[0]'s renewed lease has run out too
    assert store.heartbeats(ids, "w1", 1.0) == set()
    assert store.heartbeats([], "w1", 1.0) == set()
    with pytest.raises(FlowcutError, match="lease_s"):
        store.heartbeats(ids, "w1", -1)


def test_cancel(store: Store) -> None:
    a, b = store.submit_jobs(job_rows(2))
    assert store.cancel(a)
    running = store.claim("w", 60)
    assert running is not None and running.id == b
    assert store.cancel(b)
    assert not store.heartbeat(b, "w", 60)  # the runner sees the cancellation at its next heartbeat
    assert not store.cancel(b) and not store.cancel("nope")
    assert {j.status for j in store.list_jobs()} == {JobStatus.CANCELLED}
    assert store.list_jobs(status="cancelled", spec_name="demo") == store.list_jobs()
    with pytest.raises(FlowcutError, match="status"):
        store.list_jobs(status="done")


def test_write_results_is_an_idempotent_upsert(store: Store) -> None:
    (job_id,) = store.submit_jobs(job_rows(1))
    rows = [result_row(f"s{i}") for i in range(5)] + [{"sample_id": "bad", "error": "image unreadable"}]
    assert store.write_results(job_id, rows) == 6
    assert store.write_results(job_id, rows) == 6
    assert len(store.results(job_id)) == 6
    store.write_results(job_id, [result_row("s0", prediction="no", score=0.0)])
    got = {r["sample_id"]: r for r in store.results(job_id)}
    assert len(got) == 6 and got["s0"]["prediction"] == "no" and got["s0"]["score"] == 0.0
    assert got["s1"]["extra"] == {"kept": [1, 5, 9], "category": "adversarial"} and got["s1"]["kv_bytes"] == 2**33
    assert got["bad"]["error"] == "image unreadable" and got["bad"]["score"] is None
    assert store.done_sample_ids(job_id) == set(got)
    assert store.done_sample_ids(job_id, include_errors=False) == set(got) - {"bad"}
    assert store.progress(job_id) == (6, None)
    store.set_total(job_id, 10)
    assert store.progress(job_id) == (6, 10)
    assert store.update_scores(job_id, [("s1", 0.5, "exact", "2"), ("missing", 1.0, "exact", "2")]) == 1
    s1 = next(r for r in store.results(job_id) if r["sample_id"] == "s1")
    assert (s1["score"], s1["parser"], s1["parser_version"], s1["prediction"]) == (0.5, "exact", "2", "yes")


def test_write_results_takes_pandas_style_values(store: Store) -> None:
    np = pytest.importorskip("numpy")
    (job_id,) = store.submit_jobs(job_rows(1))
    row = result_row(
        "s0", kept_tokens=np.int64(64), score=float("nan"), extra={"kept": np.arange(3), "w": np.float32(0.5)}
    )
    errored = {"sample_id": "s1", "error": "decode failed", "score": np.float64("nan")}
    assert store.write_results(job_id, [row, errored]) == 2
    got = {r["sample_id"]: r for r in store.results(job_id)}
    assert got["s0"]["kept_tokens"] == 64 and got["s0"]["score"] is None
    assert got["s0"]["extra"] == {"kept": [0, 1, 2], "w": 0.5} and got["s1"]["score"] is None


def test_a_missing_field_writes_nothing(store: Store) -> None:
    (job_id,) = store.submit_jobs(job_rows(1))
    bad = result_row("s1")
    del bad["prediction"]
    with pytest.raises(FlowcutError, match="prediction") as e:
        store.write_results(job_id, [result_row("s0"), bad])
    assert e.value.field == "results[1].prediction"
    with pytest.raises(FlowcutError, match="unknown field"):
        store.write_results(job_id, [result_row("s0", predicton="typo")])
    with pytest.raises(FlowcutError, match="score"):
        store.write_results(job_id, [{"sample_id": "s0", "error": "x", "score": 1.0}])
    with pytest.raises(FlowcutError, match="job_id"):
        store.write_results("no-such-job", [result_row("s0")])
    assert store.results() == [] and store.progress(job_id) == (0, None)


def test_record_environment(store: Store) -> None:
    (job_id,) = store.submit_jobs(job_rows(1))
    job = store.claim("w", 60)
    assert job is not None and job.run_id is not None
    env = {"torch": "2.13.0", "transformers": "5.24.0", "git_commit": "abc123", "device": "cpu", "cuda": None}
    store.record_run_environment(job.run_id, env)
    assert store.record_environment(job_id, "w", {**env, "device": "cuda:0"}) == job.run_id
    with store._engine.connect() as conn:
        rows = conn.execute(select(Environment)).all()
    assert len(rows) == 1
    row = rows[0]._mapping
    assert row["device"] == "cuda:0" and row["torch"] == "2.13.0" and row["python"] and row["extra"] == {"cuda": None}
    with pytest.raises(FlowcutError, match="job_id"):
        store.record_environment(job_id, "never-claimed-it", env)
    with pytest.raises(FlowcutError, match="run_id"):
        store.record_run_environment(12345, env)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://x@127.0.0.1:1/db",
        "postgresql://x@127.0.0.1:1/db",
        "sqlite:////nonexistent/dir/x.db",
        "mysql://u@localhost/db",
        "not a url",
    ],
)
def test_a_bad_url_fails_fast_with_a_one_line_error(url: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(FlowcutError) as e:
        Store(url)
    assert time.monotonic() - t0 < 5
    assert e.value.field == "store_url"
    assert "\n" not in str(e.value) and str(e.value).startswith("store_url: ")
