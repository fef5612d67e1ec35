"""The store's read methods for the dashboard (``jobs/store/_reads.py``) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from jobs.store import Store
from jobs.store._reads import FRAME_RESULT_COLUMNS, JOB_FRAME_COLUMNS, JOB_KEYS
from tests.jobs.conftest import pg_db_url, pg_url, sqlite_url, store_url  # noqa: F401 - the backend fixtures

from .conftest import SAMPLES, seed_store


def test_empty_store_gives_empty_frames(store_url: str) -> None:  # noqa: F811
    with Store(store_url) as store:
        assert list(store.results_frame().columns) == [*FRAME_RESULT_COLUMNS, *JOB_KEYS, "status"]
        assert store.results_frame().empty and store.jobs_frame().empty
        assert list(store.jobs_frame().columns) == [*JOB_FRAME_COLUMNS, "done", "errors"]
        assert store.status_counts() == {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0}
        assert store.results_frame(job_ids=[]).empty


def test_seeded_frames(store_url: str) -> None:  # noqa: F811
    seed_store(store_url)
    with Store(store_url) as store:
        assert store.status_counts() == {"queued": 1, "running": 1, "succeeded": 6, "failed": 1, "cancelled": 1}
        res = store.results_frame()
        assert len(res) == 6 * 4 + 1 + 3  # six finished jobs, one errored row, three rows of the running job
        assert "extra" not in res
        one = store.results_frame(job_ids=["flowcut-64-suite_pope"], with_extra=True)
        assert one["sample_id"].tolist() == SAMPLES and one["score"].tolist() == [1, 1, 0, 0]
        assert (one["method"] == "flowcut").all() and one["extra"].iloc[0]["grids"] == [[24, 24]]
        jobs = store.jobs_frame().set_index("id")
        assert jobs.loc["fastv-64-suite_pope", ["status", "done", "errors", "total_samples"]].tolist() == [
            "running", 3, 0, 10,
        ]  # fmt: skip
        assert jobs.loc["random-64-suite_pope", ["done", "errors"]].tolist() == [5, 1]
        assert jobs.loc["pdrop-64-suite_pope", ["status", "attempts", "last_error"]].tolist() == [
            "failed", 1, "boom: out of memory",
        ]  # fmt: skip
        assert jobs.loc["visionzip-64-suite_pope", "done"] == 0


@pytest.mark.parametrize("n", [0, 1])
def test_results_frame_job_filter(sqlite_url: str, n: int) -> None:  # noqa: F811
    seed_store(sqlite_url)
    with Store(sqlite_url) as store:
        ids = ["none-0-suite_count", "none-0-suite_pope"][: n + 1]
        assert set(store.results_frame(job_ids=ids)["job_id"]) == set(ids)
