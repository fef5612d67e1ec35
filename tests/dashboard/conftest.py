"""A store seeded with known scores through the Store API, and AppTest runs of the dashboard against it.

The seeded numbers (model ``fake``, 4 samples per benchmark, scores 1 / 0):

| job                 | suite_pope         | suite_count        | total_ms | flops |
|---------------------|--------------------|--------------------|----------|-------|
| none @ 0            | 1 1 1 0  -> 75 %   | 1 1 0 0  -> 50 %   | 100      | 1e12  |
| flowcut @ 64        | 1 1 0 0  -> 50 %   | 1 0 0 0  -> 25 %   | 40       | 2e11  |
| random @ 64         | 1 0 0 0 + 1 errored -> 25 % | 0 0 0 0 -> 0 % | 50 | 2e11  |

plus, outside the leaderboard: fastv @ 64 running (3 of 10 samples written, all right), a failed job
("boom: out of memory"), a queued one and a cancelled one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as _app_test

from jobs.store import Store

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
TIMEOUT_S = 60  # the first run imports pandas, altair and the store on a loaded 2-core machine
SAMPLES = [str(10_000_000 + i) for i in range(4)]  # suite test ids: the Samples page re-renders their scenes
REFS = {"suite_pope": ["yes", "no", "yes", "no"], "suite_count": ["1", "2", "3", "1"]}
SCORES = {
    ("none", 0): {"suite_pope": [1, 1, 1, 0], "suite_count": [1, 1, 0, 0]},
    ("flowcut", 64): {"suite_pope": [1, 1, 0, 0], "suite_count": [1, 0, 0, 0]},
    ("random", 64): {"suite_pope": [1, 0, 0, 0], "suite_count": [0, 0, 0, 0]},
}
COSTS = {"none": (100.0, 1e12), "flowcut": (40.0, 2e11), "random": (50.0, 2e11), "fastv": (45.0, 2e11)}


def job(method: str, budget: int, benchmark: str, **kw: Any) -> dict[str, Any]:
    jid = f"{method}-{budget}-{benchmark}"
    return {"id": jid, "spec_name": "test", "config": {}, "model": "fake", "method": method, "budget": budget,
            "benchmark": benchmark, **kw}  # fmt: skip


def row(sample_id: str, benchmark: str, method: str, budget: int, score: float, i: int) -> dict[str, Any]:
    """A result row; the prediction is the reference when right, something else when wrong."""
    ms, flops = COSTS[method]
    kept = budget or 576
    ref = REFS[benchmark][i]
    return {
        "sample_id": sample_id, "prediction": ref if score else f"not {ref}", "reference": ref, "score": float(score),
        "parser": "lmms-eval", "parser_version": "v1", "kept_tokens": kept, "tokens_llm_input": kept,
        "tokens_layer_avg": float(kept), "vision_ms": 5.0, "prefill_ms": ms / 2, "decode_ms": ms / 2 - 5,
        "total_ms": ms, "flops": flops, "kv_bytes": 1024 * kept, "peak_memory": 2**20,
        "extra": {"parsed": ref, "kept": [list(range(kept))], "grids": [[24, 24]], "meta": {}, "options": {}},
    }  # fmt: skip


def seed_store(url: str) -> None:
    """Write the table of the module docstring into the store at ``url`` through the Store API."""
    with Store(url) as store:
        for (method, budget), by_bench in SCORES.items():
            for bench, scores in by_bench.items():
                j = job(method, budget, bench)
                store.submit_jobs([j])
                store.claim("w", lease_s=600, job_ids=[j["id"]])
                store.set_total(j["id"], len(SAMPLES))
                rows = [row(s, bench, method, budget, sc, i) for i, (s, sc) in enumerate(zip(SAMPLES, scores))]
                if method == "random" and bench == "suite_pope":
                    rows.append({"sample_id": "10000099", "error": "image: missing"})
                store.write_results(j["id"], rows)
                assert store.complete(j["id"], "w")
        running = job("fastv", 64, "suite_pope")
        store.submit_jobs([running])
        store.claim("w", lease_s=600, job_ids=[running["id"]])
        store.set_total(running["id"], 10)
        store.write_results(running["id"], [row(s, "suite_pope", "fastv", 64, 1, i) for i, s in enumerate(SAMPLES[:3])])
        failed = job("pdrop", 64, "suite_pope", max_attempts=1)
        cancelled, queued = job("vispruner", 64, "suite_pope"), job("visionzip", 64, "suite_pope")
        store.submit_jobs([failed, cancelled, queued])
        store.claim("w", lease_s=600, job_ids=[failed["id"]])
        assert store.fail(failed["id"], "w", "boom: out of memory")
        assert store.cancel(cancelled["id"])


@pytest.fixture(scope="session")
def seeded_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'seeded.db'}"
    seed_store(url)
    return url


@pytest.fixture(scope="session", autouse=True)
def _appt_tmp_dir() -> Iterator[None]:
    # AppTest makes a module-level TemporaryDirectory and leaves it to the interpreter's exit, where
    # its implicit cleanup warns (ResourceWarning); clean it up explicitly once the tests are done
    yield
    _app_test.TMP_DIR.cleanup()


def open_page(url: str, page: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The app on ``url`` after switching to ``views/<page>.py``; fails on any exception the page raised."""
    monkeypatch.setenv("FLOWCUT_STORE", url)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    if page != "leaderboard":
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at
