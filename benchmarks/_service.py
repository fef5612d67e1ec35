"""What the service benchmarks share: one sweep through the full service, and the bare loop.

The full service is ``jobs.runner.run_spec``: submit to the queue (a fresh SQLite store in a
temp folder per run, so nothing is found already done), claim, load the benchmark, encode
images for Arrow, shard over a Ray Data actor pool, decode, generate, score, and upsert
every batch of rows into the store. Two rates come out of a run (and ``first``: seconds until the first batch is stored):

* end to end: samples / wall time of ``run_spec`` (actor start-up and model load included);
* steady: the middle 80% of the samples / the time between the 10th and the 90th percentile
  of their store timestamps (``results.created_at``), i.e. once the pool is running;
* and ``fixed``: the wall time beyond ``samples / steady``, what a round pays once (queue,
  loading, actor start-up and model load, the last block's trip to the store), whatever its size.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere
# the suite's default folder is relative to the working directory: from anywhere else, a run
# would build a second 100 MB copy there instead of using the repository's
os.environ.setdefault("FLOWCUT_SUITE_DIR", str(ROOT / "data" / "suite"))

from jobs import raycompat  # noqa: E402
from jobs.runner import run_spec  # noqa: E402
from jobs.spec import parse_spec  # noqa: E402
from jobs.store import Store  # noqa: E402

BENCHMARK = "suite_pope"  # the generated suite: 500 samples, 336 x 336 images, on disk already
PER_JOB = 500  # the benchmark's size: a larger round is several jobs over the same samples


def round_jobs(samples: int) -> tuple[int, list[tuple[str, int]]]:
    """(samples per job, [(method, budget)]) for a round of ``samples``: ``none``, then ``random`` at
    64, 128, ... tokens, as a sweep's methods x budgets share one benchmark."""
    n = -(-samples // PER_JOB)
    if samples % n:
        raise SystemExit(f"--samples {samples}: above {PER_JOB} it must split evenly into {n} jobs")
    return samples // n, [("none", 0)] + [("random", 64 * k) for k in range(1, n)]


def service_run(model: str, samples: int, actors: int, cpus_per_actor: float, batch_size: int) -> dict[str, float]:
    """Run one sweep of ``samples`` samples of ``model`` through the full service (``round_jobs``)."""
    per, jobs = round_jobs(samples)
    with tempfile.TemporaryDirectory(prefix="flowcut-bench-") as tmp:
        spec = parse_spec({
            "name": "bench", "models": [model], "methods": sorted({m for m, _ in jobs}),
            "budgets": [b for _, b in jobs if b] or [64], "benchmarks": [BENCHMARK],
            "limit": per, "store": f"sqlite:///{tmp}/store.db",
            "resources": {"actors": actors, "cpus_per_actor": cpus_per_actor, "batch_size": batch_size},
        })  # fmt: skip
        t0, epoch0 = time.perf_counter(), time.time()
        run_spec(spec, log=lambda _: None)
        wall = time.perf_counter() - t0
        rows = Store(spec.store).results()
    if len(rows) != samples or any(r["error"] for r in rows):
        raise RuntimeError(
            f"expected {samples} clean rows, got {len(rows)} ({sum(bool(r['error']) for r in rows)} errored)"
        )
    stamps = sorted(r["created_at"].timestamp() for r in rows)
    lo, hi = int(0.1 * samples), int(0.9 * samples)
    span = stamps[hi] - stamps[lo]
    steady = (hi - lo) / span if span > 0 else float("nan")
    return {
        "wall": wall,
        "rate": samples / wall,
        "steady": steady,
        "first": stamps[0] - epoch0,  # start-up: submit, load, encode, actor start, first batch
        "fixed": wall - samples / steady,  # what the round pays once: the wall beyond its steady-state work
    }


def bare_loop(model_name: str, samples: int, batch_size: int, threads: int) -> dict[str, float]:
    """The same model and samples in a plain Python loop: load them, generate per batch, nothing else.

    Two rates, like the service's: ``e2e`` counts loading the samples and the model (a bare script
    pays both, and ``run_spec``'s wall includes them), ``rate`` the loop alone.
    """
    import torch

    from flowcut.methods import make_method
    from flowcut.tasks.registry import load_examples
    from jobs.models import load_model

    per, jobs = round_jobs(samples)
    torch.set_num_threads(threads)  # what the actor sets for itself
    t0 = time.perf_counter()
    examples = load_examples(BENCHMARK, limit=per)
    t1 = time.perf_counter()
    model = load_model(model_name)
    t2 = time.perf_counter()
    for name, budget in jobs:
        method = make_method(name)
        budget = budget or model.visual_tokens(examples[0].image)
        for i in range(0, len(examples), batch_size):
            part = examples[i : i + batch_size]
            model.generate([e.image for e in part], [e.prompt for e in part], method, budget, max_new_tokens=8)
    t3 = time.perf_counter()
    return {"data": t1 - t0, "load": t2 - t1, "wall": t3 - t2, "rate": samples / (t3 - t2),
            "e2e": samples / (t3 - t0)}  # fmt: skip


def start_ray() -> float:
    """Start (or join) Ray once, before anything is timed; returns the seconds it took."""
    t0 = time.perf_counter()
    raycompat.init()
    raycompat.quiet_progress()
    return time.perf_counter() - t0


def machine() -> str:
    import os
    import platform

    import ray

    return (f"{platform.node()} | nproc {os.cpu_count()} | ray {ray.__version__} | "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | load {os.getloadavg()[0]:.2f}")  # fmt: skip


def fmt_row(cells: list[Any], widths: list[int]) -> str:
    return "".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, widths)))


def print_head(cells: list[Any], widths: list[int]) -> None:
    """A table's header row and the rule under it."""
    head = fmt_row(cells, widths)
    print(head)
    print("-" * len(head))
