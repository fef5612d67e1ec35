"""A sweep on the local 3-node stand-in (cluster/local.sh) with the store on PostgreSQL (cluster/postgres.sh).

The FakeVLM sweep's actors are pinned to the two worker nodes (``node_type: worker``); once both
have finished batches, worker_b is killed (SIGKILL of its raylet and everything under it, as when a
machine is lost) and the sweep must still end with exactly one result row per sample. The test
owns both servers and stops them whatever happens. About 80 s on a busy 2-core machine (20 s to
start the nodes, 40 s of sweep, 15 s to stop them).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from jobs.store import Store
from tests.cluster import raystate
from tests.jobs import pg

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
JOBS, SAMPLES, BATCH = 2, 50, 2  # methods none + flowcut on 50 suite_count samples: 50 batches
# FakeVLM seconds per sample: 100 samples over 2 actors is ~15 s of work, time enough to kill a node
# mid-sweep even when one actor starts seconds after the other (Ray Data starts the pool's actors
# asynchronously and feeds the first one ready)
DELAY_S = 0.3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def script(name: str, *args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ROOT / "cluster" / name), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def alive_nodes(dashboard: str, want: int, timeout_s: float = 60) -> dict[str, str]:
    """node id -> name of the ALIVE nodes, once there are ``want`` (the dashboard may still be coming up)."""
    deadline, last = time.monotonic() + timeout_s, "nothing yet"
    while time.monotonic() < deadline:
        try:
            alive = {nid: name for nid, (name, state) in raystate.nodes(dashboard).items() if state == "ALIVE"}
        except Exception as e:  # noqa: BLE001 - the dashboard answers a few seconds after `ray start` returns
            last = f"{type(e).__name__}: {e}"
        else:
            if len(alive) >= want:
                return alive
            last = f"alive: {sorted(alive.values())}"
        time.sleep(1)
    raise AssertionError(f"{want} nodes not alive within {timeout_s:.0f} s ({last})")


def tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short path: Ray's socket paths under a node's temp dir must fit in 107 bytes (pytest's tmp_path is long)."""
    d = Path(tempfile.mkdtemp(prefix="fcl-", dir="/tmp"))
    d.chmod(0o755)  # as root, postgres.sh runs the server as nobody, who must reach d/pg
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def store_url(short_dir: Path) -> Iterator[str]:
    """cluster/postgres.sh on a private data dir and port (fsync off: the data is thrown away)."""
    try:
        pg.find_bin("initdb")
    except pg.PostgresUnavailable as e:
        pytest.skip(f"PostgreSQL server binaries not installed: {e}")
    env = os.environ | {"FLOWCUT_PG_DIR": str(short_dir / "pg"), "FLOWCUT_PG_PORT": str(free_port()),
                        "FLOWCUT_PG_OPTS": "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"}  # fmt: skip
    try:
        r = script("postgres.sh", "start", env=env, timeout=120)
        assert r.returncode == 0, f"postgres.sh start failed: {r.stderr}"
        yield r.stdout.strip().splitlines()[-1]
    finally:
        script("postgres.sh", "stop", env=env, timeout=120)


@pytest.fixture
def standin(short_dir: Path) -> Iterator[dict[str, str]]:
    """cluster/local.sh start ... stop: a head and worker_a / worker_b, each its own ``ray start``."""
    env = os.environ | {
        "FLOWCUT_LOCAL_DIR": str(short_dir / "ray"),
        "FLOWCUT_LOCAL_PORT": str(free_port()),
        "FLOWCUT_LOCAL_DASHBOARD_PORT": str(free_port()),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    try:
        r = script("local.sh", "start", env=env, timeout=300)
        assert r.returncode == 0, f"local.sh start failed:\n{r.stdout}\n{r.stderr}"
        yield env | dict(line.split("=", 1) for line in r.stdout.split() if "=" in line)
    finally:
        r = script("local.sh", "stop", env=env, timeout=120)
        assert r.returncode == 0, f"local.sh stop left processes behind: {r.stderr}"


def test_a_sweep_spreads_over_the_workers_and_survives_losing_one(store_url: str, standin: dict[str, str],
                                                                     tmp_path: Path) -> None:  # fmt: skip
    dashboard, t0 = standin["DASHBOARD_URL"], time.monotonic()
    names = alive_nodes(dashboard, 3)
    assert sorted(names.values()) == ["head", "worker_a", "worker_b"]
    by_name = {name: nid for nid, name in names.items()}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "standin", "models": [f"fake:delay={DELAY_S}"], "methods": ["none", "flowcut"], "budgets": [64],
        "benchmarks": ["suite_count"], "limit": SAMPLES, "store": store_url, "max_attempts": 5,
        # fractional CPUs: both actors fit on one 1-CPU worker, so the one that loses its node can restart
        "resources": {"actors": 2, "cpus_per_actor": 0.5, "batch_size": BATCH, "node_type": "worker"},
    }))  # fmt: skip
    log = tmp_path / "driver.log"
    # the driver runs as `ray job submit` would start it on a head: RAY_ADDRESS names the cluster
    env = standin | {"RAY_AUTH_MODE": "token"}
    store = Store(store_url)  # creates the schema before the driver opens it
    with log.open("w") as out:
        driver = subprocess.Popen([sys.executable, "-m", "jobs", "run", str(spec)], cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        ran: dict[str, int] = {}
        while len(ran.keys() & {by_name["worker_a"], by_name["worker_b"]}) < 2:
            assert driver.poll() is None, f"the driver ended before both workers ran batches:\n{tail(log)}"
            assert sum(ran.values()) < 0.7 * JOBS * SAMPLES / BATCH, f"the batches ran on one node: {ran} ({names})"
            assert time.monotonic() < deadline, f"no batches on both workers within 240 s: {ran}\n{tail(log)}"
            time.sleep(0.5)
            ran = raystate.nodes_that_ran(dashboard, "EvalActor")
        stored_before = len(store.results())
        r = script("local.sh", "kill", "worker_b", env=standin, timeout=60)
        assert r.returncode == 0, r.stderr
        assert stored_before < JOBS * SAMPLES, "the sweep ended before worker_b was lost"
        try:
            rc = driver.wait(timeout=300)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the driver did not finish within 300 s of the kill:\n{tail(log)}")
        assert rc == 0, f"the driver failed ({rc}):\n{tail(log)}"
        rows, jobs = store.results(), store.list_jobs()
    finally:
        store.close()
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    counts = Counter((r["job_id"], r["sample_id"]) for r in rows)
    assert len({j for j, _ in counts}) == JOBS and len(counts) == JOBS * SAMPLES, f"{len(counts)} samples stored"
    assert set(counts.values()) == {1}, [k for k, c in counts.items() if c > 1][:5]
    assert not [r["error"] for r in rows if r["error"]], "no errored rows: the lost batches were recomputed"
    assert [j.status for j in jobs] == ["succeeded"] * JOBS
    assert raystate.nodes(dashboard)[by_name["worker_b"]][1] == "DEAD", "Ray saw worker_b go"
    print(
        f"\nbatches per node before the kill: { {names[n]: c for n, c in ran.items()} }; "
        f"{stored_before} of {JOBS * SAMPLES} rows stored then; {time.monotonic() - t0:.0f} s from cluster up"
    )
