"""Harness overhead: samples/s of the full service vs a bare Python loop over the same model and samples.

    python benchmarks/harness_overhead.py           # fake:delay=0.05 (400 samples) and tiny-llava (200)

The bare loop loads the samples and the model, then calls ``generate`` on the same batches
of the same samples with the same torch thread count as the service's actor, nothing else.
The full service runs them through ``run_spec`` with one actor (``_service.py``): queue,
Arrow/PNG round trip, Ray Data, scoring, store upserts. Target: service / bare >= 0.9, read
two ways: end to end (both sides from nothing to the last sample: loading the samples and
the model included) and steady (the service's middle 80% against the bare loop alone).
``fixed s`` is what the service's round pays once beyond its steady work; the end-to-end
ratio grows with the round's size as that amortises (``--models fake:delay=0.05=2000``).
"""

from __future__ import annotations

import argparse

from _service import bare_loop, fmt_row, machine, print_head, service_run, start_ray


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="fake:delay=0.05=400,tiny-llava=200",
                    help="model=samples pairs, comma-separated")  # fmt: skip
    ap.add_argument("--cpus-per-actor", type=float, default=1.0, help="the actor runs torch on round(this) threads")
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args()

    threads = max(1, round(args.cpus_per_actor))
    ray_s = start_ray()
    service_run("fake", 8, 1, args.cpus_per_actor, args.batch_size)  # warm-up: imports, Ray Data's first plan
    results = []
    for pair in args.models.split(","):
        model, n = pair.rsplit("=", 1)
        bare = bare_loop(model, int(n), args.batch_size, threads)
        svc = service_run(model, int(n), 1, args.cpus_per_actor, args.batch_size)
        results.append((model, int(n), bare, svc))
    print(f"\nharness overhead: {BENCH_NOTE} 1 actor with {args.cpus_per_actor} CPU ({threads} torch thread(s), the "
          f"bare loop too), batch {args.batch_size}; Ray started in {ray_s:.0f} s (not timed); {machine()}")  # fmt: skip
    widths = [20, 8, 9, 9, 10, 9, 11, 10, 9, 10, 8, 9]
    print_head(["model", "samples", "bare e2e", "bare/s", "service/s", "fixed s", "ratio e2e", "steady/s", "1st row",
                "ratio st.", "target", "ok"], widths)  # fmt: skip
    for model, n, bare, svc in results:
        r_e2e, r_st = svc["rate"] / bare["e2e"], svc["steady"] / bare["rate"]
        ok = f"{'yes' if r_e2e >= 0.9 else 'NO'}/{'yes' if r_st >= 0.9 else 'NO'}"
        print(fmt_row([model, n, f"{bare['e2e']:.2f}", f"{bare['rate']:.2f}", f"{svc['rate']:.2f}", f"{svc['fixed']:.1f}",
                       f"{r_e2e:.2f}", f"{svc['steady']:.2f}", f"{svc['first']:.1f}", f"{r_st:.2f}", ">= 0.9", ok],
                      widths))  # fmt: skip
    print(
        "(samples/s; bare e2e: loading samples + model + loop, bare/s: the loop; service/s: run_spec's wall; "
        "ok: end-to-end / steady; bare loads: "
        + ", ".join(f"{m} samples {b['data']:.1f} s + model {b['load']:.1f} s" for m, _, b, _ in results)
        + ")"
    )


BENCH_NOTE = "suite_pope samples, method none, max_new_tokens 8;"

if __name__ == "__main__":
    main()
