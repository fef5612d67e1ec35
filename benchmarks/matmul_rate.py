"""How fast this CPU runs the decoder's matmuls at a pruned and an unpruned token count.

    python benchmarks/matmul_rate.py                     # LLaVA-1.5 at K = 64 vs 576
    python benchmarks/matmul_rate.py --tokens 255,2979   # LLaVA-NeXT at 160 vs 2880

Why: on a CPU the measured prefill ratio falls short of the FLOPs ratio even for the bound
(no selection logic at all), and the reason is below the model: a matmul with fewer rows
runs at fewer FLOP/s. This times the Llama-7B decoder layer's linears (q, k, v, o: 4096 x
4096; gate, up: 11008 x 4096; down: 4096 x 11008) at each token count, in the dtype the speed
table used, and prints GFLOP/s and the rate of each count relative to the largest, which is
the prefill / FLOPs ratio that matmul efficiency alone allows.
"""

from __future__ import annotations

import argparse
import time

import torch
from _vlm import DTYPES, machine, pick_dtype

# (out, in) of one Llama-7B decoder layer's linears, with how many of each
LINEARS = [((4096, 4096), 4), ((11008, 4096), 2), ((4096, 11008), 1)]


def rate(tokens: int, dtype: torch.dtype, repeats: int) -> float:
    """GFLOP/s of one decoder layer's linears on ``tokens`` rows (best of ``repeats``)."""
    ws = [(torch.randn(shape, dtype=dtype), n) for shape, n in LINEARS]
    x = {shape[1]: torch.randn(tokens, shape[1], dtype=dtype) for shape, _ in LINEARS}
    flops = sum(2 * tokens * w.shape[0] * w.shape[1] * n for w, n in ws)
    best = float("inf")
    for _ in range(repeats + 1):  # the first pass warms the kernels up
        t0 = time.perf_counter()
        for w, n in ws:
            for _ in range(n):
                torch.nn.functional.linear(x[w.shape[1]], w)
        best = min(best, time.perf_counter() - t0)
    return flops / best / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", default="115,627", help="comma-separated row counts (prompt tokens at the LLM)")
    ap.add_argument("--dtype", default="auto", choices=("auto", *DTYPES))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    dtype = pick_dtype(args.dtype)
    counts = [int(t) for t in args.tokens.split(",")]
    rates = {t: rate(t, dtype, args.repeats) for t in counts}
    top = rates[max(counts)]
    print(f"\nLlama-7B decoder layer linears, {str(dtype).removeprefix('torch.')}, best of {args.repeats}; {machine()}")
    print(f"{'tokens':>8}{'GFLOP/s':>10}{'vs largest':>12}")
    for t in counts:
        print(f"{t:>8}{rates[t]:>10.1f}{rates[t] / top:>12.2f}")


if __name__ == "__main__":
    main()
