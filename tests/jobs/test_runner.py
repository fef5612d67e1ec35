"""The runner end to end with FakeVLM: queue -> Ray Data actor pool -> store, exactly once, resumable.

These start a local Ray (in this process, or in a ``python -m jobs run`` subprocess), so
they are integration tests: about a minute in all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from jobs.runner import BLOCK_BATCHES, num_blocks, run_spec
from jobs.spec import parse_spec
from jobs.store import Store

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "data"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    import ray

    from jobs import raycompat

    raycompat.init()
    yield
    ray.shutdown()


def spec_dict(tmp_path: Path, model: str, **over) -> dict:
    return {"name": "t", "models": [model], "methods": ["none", "flowcut"], "budgets": [64],
            "benchmarks": ["suite_pope", "suite_count"], "limit": 10, "store": f"sqlite:///{tmp_path}/s.db",
            "resources": {"actors": 2, "cpus_per_actor": 0.5, "batch_size": 3}} | over  # fmt: skip


def rows_per_sample(store: Store) -> Counter:
    return Counter((r["job_id"], r["sample_id"]) for r in store.results())


def test_sweep_stores_one_row_per_sample_and_a_rerun_reuses_everything(tmp_path: Path) -> None:
    log = tmp_path / "answered.txt"
    spec = parse_spec(spec_dict(tmp_path, f"fake:log={log}"))
    ids = run_spec(spec)
    store = Store(spec.store)
    jobs = [store.get_job(i) for i in ids]
    assert len(ids) == 4 and all(j is not None and j.status == "succeeded" for j in jobs)
    counts = rows_per_sample(store)
    assert len(counts) == 4 * 10 and set(counts.values()) == {1}
    assert all(store.progress(i) == (10, 10) for i in ids)
    answered = log.read_text().split()
    run_spec(spec)  # the same spec again: every job is found finished, no sample is recomputed
    assert log.read_text().split() == answered
    assert rows_per_sample(store) == counts


def test_a_crashing_batch_becomes_errored_rows_and_the_job_goes_on(tmp_path: Path) -> None:
    spec = parse_spec(spec_dict(tmp_path, "fake:crash=10000003,mode=raise", methods=["none"],
                                benchmarks=["suite_count"]))  # fmt: skip
    [job_id] = run_spec(spec)
    store = Store(spec.store)
    rows = store.results(job_id)
    errored = [r for r in rows if r["error"]]
    assert len(rows) == 10 and 1 <= len(errored) <= 3  # the crashing sample's batch
    assert any("FakeVLM crash on sample 10000003" in r["error"] for r in errored)
    assert all(r["score"] is None for r in errored)
    assert store.get_job(job_id).status == "succeeded"


def test_sigkill_of_an_actor_still_ends_with_exactly_one_row_per_sample(tmp_path: Path) -> None:
    marker = tmp_path / "killed-once"
    spec = parse_spec(spec_dict(tmp_path, f"fake:crash=10000004,mode=kill,marker={marker}", methods=["none"],
                                benchmarks=["suite_count"]))  # fmt: skip
    [job_id] = run_spec(spec)
    assert marker.exists(), "the actor really was killed"
    store = Store(spec.store)
    counts = rows_per_sample(store)
    assert len(counts) == 10 and set(counts.values()) == {1}
    assert not [r for r in store.results(job_id) if r["error"]]


def test_a_corrupt_image_in_a_dataset_is_an_errored_row(tmp_path: Path) -> None:
    spec = parse_spec(spec_dict(tmp_path, "fake", methods=["none"], benchmarks=["textvqa_val"], limit=None,
                                data={"textvqa_val": str(FIXTURES / "textvqa_val.parquet")}))  # fmt: skip
    [job_id] = run_spec(spec)
    rows = Store(spec.store).results(job_id)
    bad = [r for r in rows if r["error"]]
    assert bad and all(r["error"].startswith("image") for r in bad)
    assert len(rows) > len(bad)


def test_an_image_that_passes_the_drivers_check_but_not_decoding_is_an_errored_row(tmp_path: Path) -> None:
    # the driver only checks the container (a truncated JPEG passes); the actor's decode fails it
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    table = pq.read_table(FIXTURES / "textvqa_val.parquet")
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(jpeg, format="JPEG")
    images = table.column("image").to_pylist()
    images[1] = {"bytes": jpeg.getvalue()[: len(jpeg.getvalue()) // 2], "path": None}
    table = table.set_column(
        table.schema.get_field_index("image"), "image", pa.array(images, table.schema.field("image").type)
    )
    pq.write_table(table, tmp_path / "tv.parquet")
    spec = parse_spec(spec_dict(tmp_path, "fake", methods=["none"], benchmarks=["textvqa_val"], limit=None,
                                data={"textvqa_val": str(tmp_path / "tv.parquet")}))  # fmt: skip
    [job_id] = run_spec(spec)
    rows = {r["sample_id"]: r for r in Store(spec.store).results(job_id)}
    assert len(rows) == 2
    bad = [r for r in rows.values() if r["error"]]
    assert len(bad) == 1 and bad[0]["error"].startswith("image: cannot decode")
    assert bad[0]["score"] is None


def test_killing_the_driver_then_rerunning_computes_only_the_missing_samples(tmp_path: Path) -> None:
    log = tmp_path / "answered.txt"
    spec_file = tmp_path / "spec.yaml"
    import yaml

    spec_file.write_text(
        yaml.safe_dump(
            spec_dict(
                tmp_path,
                f"fake:delay=0.3,log={log}",
                methods=["none"],
                benchmarks=["suite_count"],
                limit=40,
                resources={"actors": 1, "cpus_per_actor": 0.5, "batch_size": 2},
            )
        )
    )
    env = os.environ | {"FLOWCUT_LEASE_S": "4"}
    cmd = [sys.executable, "-m", "jobs", "run", str(spec_file)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    store = Store(f"sqlite:///{tmp_path}/s.db")
    deadline = time.time() + 120
    while time.time() < deadline and len(store.results()) < 6:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started
    proc.wait()
    before = {r["sample_id"] for r in store.results()}
    assert 6 <= len(before) < 40, "killed mid-job"
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = store.results()
    assert len(rows) == 40 and len({r["sample_id"] for r in rows}) == 40
    # every sample stored before the kill went to the model once, in the first run only
    answered = Counter(log.read_text().split())
    assert all(answered[s] == 1 for s in before), "a stored sample was recomputed"
    assert Store(f"sqlite:///{tmp_path}/s.db").list_jobs()[0].status == "succeeded"


def test_rescore_reparses_stored_outputs_without_a_model(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from jobs.cli import app

    spec = parse_spec(spec_dict(tmp_path, "fake", methods=["none"], benchmarks=["suite_pope"]))
    [job_id] = run_spec(spec)
    store = Store(spec.store)
    # make two stored outputs say "Yes." (exact match: wrong; yes/no extraction: right)
    rows = store.results(job_id)
    yes = [r for r in rows if r["reference"] == "yes"][:2]
    store.write_results(job_id, [{k: v for k, v in r.items() if k not in ("id", "job_id", "created_at")}
                                 | {"prediction": "Yes.", "score": 0.0} for r in yes])  # fmt: skip
    res = CliRunner().invoke(app, ["rescore", "--parser", "extract-yesno-v1", "--store", spec.store])
    assert res.exit_code == 0, res.output
    after = {r["sample_id"]: r for r in store.results(job_id)}
    assert all(after[r["sample_id"]]["score"] == 1.0 for r in yes)
    assert {r["parser"] for r in after.values()} == {"extract-yesno"}
    res = CliRunner().invoke(app, ["rescore", "--parser", "lmms-eval-v1", "--store", spec.store])
    assert all(store_row["score"] == 0.0 for store_row in store.results(job_id) if store_row["prediction"] == "Yes.")


def test_rounds_longer_than_a_lease_keep_their_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capfd: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    # heartbeats renew every third of a lease from the start of a round (actor start-up alone
    # outlasts a 0.6 s lease here); a lost lease would drop the rows and fail the job
    import jobs.runner as runner

    # 1.2 s: short beside the round, with 0.8 s of slack for a beat delayed by a loaded machine
    # (0.6 s flaked once beside a training run); 200 answers at 40 ms over 2 actors keep the round
    # longer than two leases however fast the machine (without the delay it took 2.1 s once)
    monkeypatch.setattr(runner, "LEASE_S", 1.2)
    spec = parse_spec(spec_dict(tmp_path, "fake:delay=0.04", methods=["none", "random", "flowcut"], budgets=[64, 128],
                                benchmarks=["suite_count", "suite_pope"], limit=20))  # fmt: skip
    start = time.monotonic()
    ids = run_spec(spec)
    assert time.monotonic() - start > 2 * runner.LEASE_S  # else this proves nothing about renewal
    store = Store(spec.store)
    assert [store.get_job(i).attempts for i in ids] == [1] * 10
    assert all(store.get_job(i).status == "succeeded" for i in ids) and len(store.results()) == 200
    # kept by renewals, not by luck: every job was renewed after its first lease would have run out
    for job in map(store.get_job, ids):
        assert job.heartbeat_at - job.started_at > timedelta(seconds=runner.LEASE_S)  # type: ignore[union-attr,operator]
    assert "heartbeat failed" not in capfd.readouterr().err


def test_a_failed_beat_does_not_stop_the_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    import jobs.runner as runner

    class FlakyStore:
        calls: list[list[str]] = []

        def heartbeats(self, ids: list[str], owner: str, lease_s: float) -> set[str]:
            self.calls.append(list(ids))
            if len(self.calls) == 1:
                raise OSError("connection reset\nwith a second line")
            return {"a"}  # "b" was taken over

    monkeypatch.setattr(runner, "LEASE_S", 0.06)
    store = FlakyStore()
    beat = runner.Heartbeat(store, ["a", "b"], "me")  # type: ignore[arg-type]
    beat.start()
    deadline = time.monotonic() + 10
    while len(store.calls) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    beat.stop.set()
    beat.join(5)
    assert not beat.is_alive() and beat.lost == {"b"}
    assert store.calls[:3] == [["a", "b"], ["a", "b"], ["a"]]  # the lost one is not renewed again


@pytest.mark.parametrize(("items", "actors", "batch"), [(1, 1, 4), (7, 4, 4), (400, 1, 4), (400, 4, 4),
                                                        (12_000, 1, 4), (12_000, 8, 16), (50, 2, 256)])  # fmt: skip
def test_blocks_stay_small_and_keep_every_actor_busy(items: int, actors: int, batch: int) -> None:
    n = num_blocks(items, actors, batch)
    assert 1 <= n <= items  # no empty blocks
    assert -(-items // n) <= BLOCK_BATCHES * batch  # a block holds a few batches, however large the round
    assert n >= min(items, 8 * actors)  # small rounds still split over every actor
    # items that each serve 25 jobs: fewer of them per block, but at least a batch
    shared = num_blocks(items, actors, batch, jobs_per_item=25)
    assert -(-items // shared) <= max(batch, BLOCK_BATCHES * batch // 25) and shared >= n


def test_a_round_ships_each_sample_once_for_all_the_jobs_that_need_it(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    import ray

    shipped: list[list[dict]] = []
    real = ray.data.from_items

    def spy(items, **kw):  # noqa: ANN001, ANN003, ANN202
        shipped.append(items)
        return real(items, **kw)

    monkeypatch.setattr(ray.data, "from_items", spy)
    spec = parse_spec(spec_dict(tmp_path, "fake", methods=["none", "random"], budgets=[64, 128],
                                benchmarks=["suite_pope"], limit=6))  # fmt: skip
    ids = run_spec(spec)
    [items] = shipped
    assert len(items) == 6 and all(sorted(i["job_ids"]) == sorted(ids) for i in items)
    assert len({i["sample_id"] for i in items}) == 6
    counts = rows_per_sample(Store(spec.store))
    assert len(counts) == 3 * 6 and set(counts.values()) == {1}


def test_a_queued_job_refuses_a_data_override_that_changed(tmp_path: Path) -> None:
    """Re-exported in place after the job was queued: the job fails saying so, no row is written."""
    import pyarrow.parquet as pq

    from jobs import fingerprint
    from jobs.runner import run_queue
    from jobs.spec import expand

    data = tmp_path / "pope.parquet"
    table = pq.read_table(FIXTURES / "pope.parquet")
    pq.write_table(table, data)
    spec = parse_spec(spec_dict(tmp_path, "fake", methods=["none"], benchmarks=["pope"], data={"pope": str(data)},
                                limit=4, max_attempts=2))  # fmt: skip
    store = Store(spec.store)
    (queued,) = store.submit_jobs([c.row(spec.max_attempts) for c in expand(spec)])
    pq.write_table(table.slice(1), data)  # one question fewer
    fingerprint.clear_cache()
    run_queue(spec.store, spec.resources)
    job = store.get_job(queued)
    assert job is not None and job.status == "failed" and job.attempts == 2
    assert job.last_error is not None and job.last_error.startswith(f"data: {data} changed since this job was queued")
    assert store.results() == []
    (now,) = run_spec(spec)  # submitted again: a new job, on what the file holds now
    assert now != queued and store.get_job(now).status == "succeeded"  # type: ignore[union-attr]
    assert len(store.results(now)) == min(4, table.num_rows - 1)
