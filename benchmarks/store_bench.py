"""Store throughput on PostgreSQL: result rows/s from concurrent writers, claim latency under concurrent claimers.

    python benchmarks/store_bench.py                      # starts a private PostgreSQL (tests/jobs/pg.py)
    python benchmarks/store_bench.py --url postgresql+psycopg://user@host/scratch_db

Targets (the issue's): >= 5,000 rows/s from 4 writer processes, claim p99 <= 50 ms with 8 claimers.
Each writer / claimer is its own process with its own ``Store``, released together by a barrier.
With ``--url`` the benchmark adds ``bench-*`` jobs and results to that database: give it an empty scratch one.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
import uuid
from contextlib import nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from jobs.store import RESULT_MEASURED, Store  # noqa: E402


def job_row(job_id: str) -> dict[str, Any]:
    return {"id": job_id, "spec_name": "bench", "config": {"bench": True}, "model": "fake", "method": "flowcut",
            "budget": 64, "benchmark": "pope"}  # fmt: skip


def result_row(i: int) -> dict[str, Any]:
    """A realistic row: a short answer, timings, and 64 kept indices in ``extra``."""
    row: dict[str, Any] = dict.fromkeys(RESULT_MEASURED)
    row.update(sample_id=f"s{i:07d}", prediction="Yes, there is a dog in the image.", reference={"answer": "yes"},
               score=1.0, parser="yesno", parser_version="1", kept_tokens=64, tokens_llm_input=130,
               tokens_layer_avg=71.3, vision_ms=4.1, prefill_ms=20.2, decode_ms=35.5, total_ms=59.8, flops=1.2e12,
               kv_bytes=12_345_678, peak_memory=2_000_000_000,
               extra={"kept": list(range(0, 576, 9)), "category": "random"})  # fmt: skip
    return row


def writer(url: str, job_id: str, rows: int, batch: int, barrier: Any, out: Any) -> None:
    payload = [result_row(i) for i in range(rows)]
    with Store(url) as store:
        barrier.wait(timeout=120)
        t0 = time.time()
        for i in range(0, rows, batch):
            store.write_results(job_id, payload[i : i + batch])
        out.put((t0, time.time(), rows))


def claimer(url: str, owner: str, job_ids: list[str] | None, barrier: Any, out: Any) -> None:
    latencies: list[float] = []
    with Store(url) as store:
        barrier.wait(timeout=120)
        while True:
            t0 = time.perf_counter()
            job = store.claim(owner, lease_s=60, job_ids=job_ids)
            if job is None:
                break
            latencies.append(time.perf_counter() - t0)
            store.complete(job.id, owner)
    out.put(latencies)


def run_all(target: Any, args_list: list[tuple[Any, ...]]) -> list[Any]:
    """Start one process per argument tuple (plus a shared barrier and queue); collect their outputs."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(len(args_list)), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, barrier, out)) for a in args_list]
    for p in procs:
        p.start()
    got = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="PostgreSQL URL (default: start a private server)")
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--rows", type=int, default=20_000, help="rows per writer")
    ap.add_argument("--batch", type=int, default=500, help="rows per write_results call")
    ap.add_argument("--claimers", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=800, help="jobs to claim")
    ap.add_argument("--job-ids", action="store_true", help="claim among the job ids, as the runner does")
    args = ap.parse_args()

    if args.url:
        server: Any = nullcontext(args.url)
    else:
        from tests.jobs.pg import private_postgres

        server = private_postgres()
    tag = uuid.uuid4().hex[:8]
    with server as url:
        with Store(url) as store:
            if store.list_jobs(status="queued"):
                sys.exit("the database has queued jobs: give --url a scratch database (claimers take any job)")
            write_jobs = [f"bench-{tag}-w{i}" for i in range(args.writers)]
            store.submit_jobs([job_row(j) for j in write_jobs])
            for j in write_jobs:  # out of the queue, so that the claimers find only their own jobs
                store.claim("bench", 60, job_ids=[j])
            claim_jobs = store.submit_jobs([job_row(f"bench-{tag}-c{i:05d}") for i in range(args.jobs)])

        spans = run_all(writer, [(url, j, args.rows, args.batch) for j in write_jobs])
        total = sum(n for _, _, n in spans)
        wall = max(t1 for _, t1, _ in spans) - min(t0 for t0, _, _ in spans)
        lat_ms = sorted(1000 * x for lats in run_all(
            claimer, [(url, f"c{i}", claim_jobs if args.job_ids else None) for i in range(args.claimers)]) for x in lats)  # fmt: skip
        p99 = lat_ms[min(len(lat_ms) - 1, int(0.99 * len(lat_ms)))]

    rate = total / wall
    print(f"\nstore benchmark on {url.split('@')[-1]}  (rows: {args.writers} writers x {args.rows}, batch "
          f"{args.batch}; claims: {len(lat_ms)} by {args.claimers} claimers"
          f"{', among job ids' if args.job_ids else ''})")  # fmt: skip
    print(f"{'metric':<34}{'value':>12}{'target':>12}{'ok':>6}")
    table = [
        ("result rows/s (all writers)", f"{rate:,.0f}", ">= 5,000", rate >= 5000),
        ("claim latency p50 (ms)", f"{statistics.median(lat_ms):.1f}", "", None),
        ("claim latency p99 (ms)", f"{p99:.1f}", "<= 50", p99 <= 50),
        ("claim latency max (ms)", f"{lat_ms[-1]:.1f}", "", None),
    ]
    for name, value, target, ok in table:
        print(f"{name:<34}{value:>12}{target:>12}{'' if ok is None else ('yes' if ok else 'NO'):>6}")


if __name__ == "__main__":
    main()
