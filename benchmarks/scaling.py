"""Scaling of the full service with 1, 2 and 4 actors on a model that only sleeps.

    python benchmarks/scaling.py                    # fake:delay=0.05, 400 samples per run
    python benchmarks/scaling.py --samples 4000     # a round of realistic size: the start-up amortises

``FakeVLM`` sleeps ``delay`` seconds per sample and computes nothing, so the runs isolate
the scheduler (queue, Ray Data actor pool, store writes) from the CPU. Each actor reserves
``--cpus-per-actor`` (0.25: four actors fit on a 2-core machine with room for Ray Data's
own tasks). Ray is started once before anything is timed and a small warm-up sweep runs
first. Efficiency = rate(n) / (n x rate(1)); target: >= 90% at 4 actors. The ideal rate is
``actors / delay``. End-to-end and steady rates: see ``_service.py``.
"""

from __future__ import annotations

import argparse

from _service import fmt_row, machine, print_head, service_run, start_ray


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--delay", type=float, default=0.05, help="seconds FakeVLM sleeps per sample")
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--actors", default="1,2,4")
    ap.add_argument("--cpus-per-actor", type=float, default=0.25)
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args()

    model = f"fake:delay={args.delay}"
    ray_s = start_ray()
    service_run(model, 8, 1, args.cpus_per_actor, args.batch_size)  # warm-up: imports, Ray Data's first plan
    runs = {n: service_run(model, args.samples, n, args.cpus_per_actor, args.batch_size)
            for n in (int(x) for x in args.actors.split(","))}  # fmt: skip
    one = runs[min(runs)]
    print(f"\nscaling: {model}, {args.samples} samples per run, batch {args.batch_size}, {args.cpus_per_actor} CPU per "
          f"actor, fresh SQLite store per run; Ray started in {ray_s:.0f} s (not timed); {machine()}")  # fmt: skip
    widths = [8, 8, 9, 11, 14, 12, 12, 14, 10, 10, 9]
    print_head(["actors", "wall s", "fixed s", "1st row s", "end-to-end/s", "efficiency", "steady/s", "steady eff.",
                "ideal/s", "target", "ok"], widths)  # fmt: skip
    for n, r in runs.items():
        eff = r["rate"] / (n * one["rate"])
        eff_s = r["steady"] / (n * one["steady"])
        target = ">= 90%" if n == 4 else ""
        ok = f"{'yes' if eff >= 0.9 else 'NO'}/{'yes' if eff_s >= 0.9 else 'NO'}" if target else ""
        print(fmt_row([n, f"{r['wall']:.1f}", f"{r['fixed']:.1f}", f"{r['first']:.1f}", f"{r['rate']:.1f}", f"{100 * eff:.0f}%", f"{r['steady']:.1f}",
                       f"{100 * eff_s:.0f}%", f"{n / args.delay:.0f}", target, ok], widths))  # fmt: skip
    print("(ok: end-to-end / steady; fixed s: the wall beyond samples / steady rate, paid once per round)")


if __name__ == "__main__":
    main()
