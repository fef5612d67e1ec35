"""Run a sweep: submit its jobs, then claim and run them in rounds (the jobs of one model) through Ray Data.

For each round the driver loads each benchmark once, leaves out the (job, sample) pairs the
store already holds (durability lives in the store: Ray does not retry a dead driver), shards
the rest, one row per sample with the jobs that need it, over an actor pool (``map_batches``
with ``ActorPoolStrategy``), and upserts each block of result rows as it arrives, renewing
the jobs' leases by heartbeat meanwhile.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from flowcut.tasks.registry import get_spec, load_examples

from .evaluate import EvalActor, encode_example, error_row
from .spec import Resources, SweepSpec, expand, open_store, stale_data
from .store import Store

BLOCK_BATCHES = 8  # batches per Ray Data block (num_blocks)
LEASE_S = float(os.environ.get("FLOWCUT_LEASE_S", "60"))  # a dead driver's jobs return to the queue after this


def environment(device: str) -> dict[str, Any]:
    import ray
    import torch
    import transformers

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).parent).stdout.strip() or None  # fmt: skip
    except OSError:
        commit = None
    commit = commit or os.environ.get("FLOWCUT_GIT_COMMIT")  # ray job submit uploads no .git
    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "ray": ray.__version__, "git_commit": commit, "device": device, "host": socket.gethostname()}  # fmt: skip


def ensure_suite(benchmarks: list[str]) -> None:
    """Build the generated suite's test split on first use (the main command's fresh machine)."""
    if not any(get_spec(b).path.startswith("suite:") for b in benchmarks):
        return
    from flowcut.tasks.suite.build import build_suite, default_root

    root = default_root()
    if not all((root / get_spec(b).path.removeprefix("suite:")).exists()
               for b in benchmarks if get_spec(b).path.startswith("suite:")):  # fmt: skip
        build_suite(root)


class Heartbeat(threading.Thread):
    """Renews the leases of a round's jobs every third of a lease; ``lost`` names jobs taken from us."""

    def __init__(self, store: Store, job_ids: list[str], owner: str) -> None:
        super().__init__(daemon=True)
        self.store, self.job_ids, self.owner = store, job_ids, owner
        self.lost: set[str] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(LEASE_S / 3):
            mine = [j for j in self.job_ids if j not in self.lost]
            try:
                held = self.store.heartbeats(mine, self.owner, LEASE_S)
            except Exception as exc:  # noqa: BLE001 - a store blip: two more beats before the lease runs out
                print(f"heartbeat failed, retrying in {LEASE_S / 3:g} s: {exc}".splitlines()[0], file=sys.stderr)
                continue
            self.lost.update(set(mine) - held)


def claim_round(store: Store, owner: str, ids: list[str] | None, size: int) -> list[Any]:
    """Claim up to ``size`` jobs of one model (an actor loads its model once per round).

    ``ids`` None: any queued job, whatever spec submitted it.
    """
    first = store.claim(owner, LEASE_S, job_ids=ids)
    if first is None:
        return []
    jobs = [first]
    pool = [store.get_job(i) for i in ids] if ids is not None else store.list_jobs(status="queued")
    same = [j.id for j in pool if j is not None and j.model == first.model]
    while len(jobs) < size:
        nxt = store.claim(owner, LEASE_S, job_ids=same)
        if nxt is None:
            break
        jobs.append(nxt)
    return jobs


def num_blocks(items: int, actors: int, batch_size: int, jobs_per_item: int = 1) -> int:
    """Ray Data blocks for a round: about BLOCK_BATCHES batches of work each, and at least 8 per actor.

    Rows reach the driver (and the store) a block at a time, so the block size bounds both the
    work a killed run loses and how often the progress bar moves; a fixed count of blocks per
    actor alone made them grow with the round (1,500 samples each for a 12,000-sample round).
    An item is one sample for ``jobs_per_item`` jobs, so a block holds fewer of them (never
    less than a batch). Eight per actor keep a small round balanced: the last blocks leave few
    actors idle.
    """
    per_block = max(batch_size, BLOCK_BATCHES * batch_size // max(1, jobs_per_item))
    return max(1, min(items, max(8 * actors, -(-items // per_block))))


def run_round(store: Store, jobs: list[Any], owner: str, res: Resources) -> set[str]:
    """Evaluate every missing sample of ``jobs`` through one actor pool; returns the jobs that failed."""

    # renew leases from the start: loading and encoding a large round can outlast one lease
    beat = Heartbeat(store, [j.id for j in jobs], owner)
    beat.start()
    try:
        _run_round(store, jobs, res, beat)
    finally:
        beat.stop.set()
        beat.join()  # no beat may add to ``lost`` while it is read below
    return set(beat.lost)


def _run_round(store: Store, jobs: list[Any], res: Resources, beat: Heartbeat) -> None:
    import ray

    from . import raycompat

    totals: dict[str, int] = {}
    # the jobs of a round mostly share benchmarks (one per method x budget): load and encode
    # each benchmark's samples once per round, and ship each sample once with the ids of the
    # jobs that still need it (its image crosses the object store once, is decoded once)
    loaded: dict[tuple[Any, ...], list[Any]] = {}
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for job in jobs:
        cfg = job.config
        key = (cfg["benchmark"], cfg.get("data_path"), cfg["limit"])
        if key not in loaded:
            # checked, not decoded: the actors decode each image once, the driver holds bytes only
            loaded[key] = load_examples(cfg["benchmark"], path=cfg.get("data_path"), limit=cfg["limit"], decode=False)
        examples = loaded[key]
        store.set_total(job.id, len(examples))
        done = store.done_sample_ids(job.id)
        todo = [e for e in examples if e.id not in done]
        bad = [e for e in todo if e.error is not None]
        if bad:  # a broken row is a result too: errored, with its reason
            store.write_results(job.id, [error_row(e.id, e.reference, e.error or "") for e in bad])
        for e in todo:
            if e.error is None:
                if (key, e.id) not in rows:
                    rows[(key, e.id)] = {"job_ids": [], **encode_example(e)}
                rows[(key, e.id)]["job_ids"].append(job.id)
        totals[job.id] = len(examples)
    items = list(rows.values())
    pending = sum(len(i["job_ids"]) for i in items)
    bar = tqdm(total=sum(totals.values()), initial=sum(totals.values()) - pending, unit="sample",
               desc=f"{jobs[0].model}: {len(jobs)} jobs", dynamic_ncols=True,
               mininterval=0.2 if sys.stderr.isatty() else 10.0)  # fmt: skip
    if items:
        # trust the spec on a cluster (an autoscaler may add GPU nodes later) or when pinned to a
        # node type; only a local Ray without GPUs runs a GPU spec on CPUs
        on_cluster = bool(os.environ.get("RAY_ADDRESS")) or res.node_type is not None
        gpus = res.gpus_per_actor if on_cluster or ray.cluster_resources().get("GPU", 0) else 0.0
        actors = min(res.actors, len(items))  # no idle actors for a handful of samples
        per_item = -(-pending // len(items))
        ds = ray.data.from_items(items, override_num_blocks=num_blocks(len(items), actors, res.batch_size, per_item))
        out = raycompat.actor_map(
            ds,
            EvalActor,
            actors=actors,
            batch_size=res.batch_size,
            cpus=res.cpus_per_actor,
            gpus=gpus,
            node_type=res.node_type,
            constructor_kwargs={
                "configs": {j.id: j.config for j in jobs},
                "device": "cuda" if gpus else "cpu",
                "threads": max(1, round(res.cpus_per_actor)),
            },
        )
        for batch in out.iter_batches(batch_size=None, batch_format="pandas"):
            for job_id, part in batch.groupby("job_id", sort=False):
                if job_id in beat.lost:
                    continue  # another runner owns it now; its rows would be written twice over
                store.write_results(str(job_id), part.drop(columns=["job_id"]).to_dict("records"))
            bar.update(len(batch))
    bar.close()


def run_spec(spec: SweepSpec, log: Callable[[str], None] = print, round_size: int = 64) -> list[str]:
    """Submit the spec's jobs and run every one that is missing; returns the job ids."""
    store = open_store(spec.store)
    ensure_suite(spec.benchmarks)  # first: a built suite's fingerprint is part of the job ids
    ids = store.submit_jobs([c.row(spec.max_attempts) for c in expand(spec)], priority=spec.priority)
    drain(store, ids, spec.resources, log, round_size)
    return ids


def run_queue(store_url: str, res: Resources, log: Callable[[str], None] = print, round_size: int = 64) -> int:
    """Run whatever is queued (any spec) until the queue is empty; returns how many jobs ran."""
    store = open_store(store_url)
    ensure_suite(sorted({j.benchmark for j in store.list_jobs(status="queued")}))
    return drain(store, None, res, log, round_size, wait=False)


def drain(store: Store, ids: list[str] | None, res: Resources, log: Callable[[str], None], round_size: int,
          wait: bool = True, poll_s: float = 2.0) -> int:  # fmt: skip
    """Claim and run rounds until nothing is left; with ``wait``, also outwait others' running jobs."""
    from . import raycompat

    raycompat.init()
    raycompat.quiet_progress()
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    env = environment("cuda" if res.gpus_per_actor else "cpu")
    ran = 0
    while True:
        jobs = claim_round(store, owner, ids, round_size)
        if not jobs:
            mine = [store.get_job(i) for i in ids] if ids is not None else []
            if not wait or not [j for j in mine if j is not None and j.status in ("queued", "running")]:
                return ran
            time.sleep(poll_s)  # others hold them; wait for them to finish or their leases to expire
            continue
        for job in list(jobs):
            if why := stale_data(job.config):  # its data changed since it was queued: it cannot run
                store.fail(job.id, owner, why)
                log(f"job {job.id}: {why}")
                jobs.remove(job)
        if not jobs:
            continue
        ran += len(jobs)
        for job in jobs:
            store.record_environment(job.id, owner, env)
        try:
            lost = run_round(store, jobs, owner, res)
        except Exception as e:  # noqa: BLE001 - recorded on the jobs; the sweep goes on with the others
            reason = f"{type(e).__name__}: {e}".splitlines()[0][:1000]
            for job in jobs:
                store.fail(job.id, owner, reason)
            log(f"round of {len(jobs)} jobs failed: {reason}")
            continue
        for job in jobs:
            if job.id in lost:
                continue
            done, total = store.progress(job.id)
            if total is not None and done >= total:
                store.complete(job.id, owner)
            else:
                store.fail(job.id, owner, f"{done} of {total} samples stored")
