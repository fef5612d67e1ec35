"""Prefill and end-to-end speed-up of every method vs unpruned, beside FlowCut's Table 5.

    python benchmarks/prefill_speedup.py --geometry llava15             # every method, K = 64/128/192
    python benchmarks/prefill_speedup.py --geometry next --methods random,flowcut,visionzip,fastv

Random-weight LLaVA-1.5-7B (576 patches) and LLaVA-NeXT-7B (a 672 x 672 image: 2 x 2 grid +
base = 5 crops, 2880 patches) geometries, see ``_vlm.py``: the vision tower whole, the
decoder cut to ``--depth`` of its 32 layers (CPU). One image, greedy ``generate`` with
exactly 16 new tokens. Per configuration the median of ``--repeats`` runs, configurations
interleaved within each repeat, after one warm-up of each budget.

Columns (ratios are unpruned / pruned, so > 1 is faster):
  prefill x     time to first token (vision tower + selection + LLM prefill)
  LLM x         LLM prefill alone (``cost.prefill_ms``)
  total x       the whole generate call
  FLOPs x       theoretical prefill FLOPs (``cost.prefill_flops``: tower + LLM), same geometry
  pre/FLOPs     prefill x / FLOPs x (target for FlowCut: >= 0.8)
  vs bound      bound's time to first token / the method's (target for FlowCut: >= 0.9); the
                bound keeps K evenly spaced patches with no scoring (``_vlm.Bound``)
  prefill x@32  vision-side methods only: measured vision time + LLM prefill time scaled to
                32 layers (each layer runs the same tokens, so LLM time is linear in depth)
  TFLOPs@32     full-depth prefill TFLOPs of this method (vision as measured + 32 layers)
  paper         FlowCut Table 5 (A800, POPE, fp16): prefill x / total x / TFLOPs
"""

from __future__ import annotations

import argparse
import time

import torch
from _vlm import (
    LLM_METHODS,
    PAPER_DEPTH,
    QUESTION,
    add_model_args,
    build,
    full_depth_prefill_flops,
    machine,
    median,
    method,
    pick_dtype,
)

from flowcut.methods import METHODS

BUDGETS = {"llava15": (64, 128, 192), "next": (160, 320, 640)}
NAMES = {"llava15": "LLaVA-1.5-7B geometry", "next": "LLaVA-NeXT-7B geometry (5 crops)"}
# FlowCut Table 5 (../shared/reference/paper-results.csv): (prefill x, total x, TFLOPs)
PAPER = {
    ("llava15", "none"): (1.0, 1.0, 8.82), ("llava15", "fastv", 64): (1.2, 1.1, 2.26),
    ("llava15", "sparsevlm", 64): (1.1, 1.1, 2.31), ("llava15", "pdrop", 64): (1.4, 1.3, 2.16),
    ("llava15", "visionzip", 64): (1.5, 1.4, 2.03), ("llava15", "flowcut", 64): (1.6, 1.5, 1.95),
    ("next", "none"): (1.0, 1.0, 31.03), ("next", "fastv", 160): (1.8, 1.3, 7.35),
    ("next", "sparsevlm", 160): (1.5, 1.2, 7.62), ("next", "pdrop", 160): (2.6, 2.6, 6.78),
    ("next", "visionzip", 160): (2.9, 2.8, 4.72), ("next", "flowcut", 160): (3.2, 3.0, 4.29),
}  # fmt: skip
NEW_TOKENS = 16


def run_once(adapter, image, name: str, budget: int):  # noqa: ANN001, ANN201
    out = adapter.generate([image], [QUESTION], method(name), budget, max_new_tokens=NEW_TOKENS,
                           min_new_tokens=NEW_TOKENS)[0]  # fmt: skip
    return out.cost


def measure(geometry: str, methods: list[str], depth: int, repeats: int, tiny: bool, budgets: tuple[int, ...],
            dtype: torch.dtype = torch.bfloat16, shared: bool = False, warmup: str = "all",
            device: str = "cpu") -> None:  # fmt: skip
    t_build = time.perf_counter()
    adapter, image = build(geometry, depth=depth, dtype=dtype, tiny=tiny, shared=shared, device=device)
    full = adapter.visual_tokens(image)
    budgets = budgets or BUDGETS[geometry]
    configs = [("none", full)] + [("bound", k) for k in budgets] + [(m, k) for m in methods for k in budgets]
    layers = f"{depth} of {PAPER_DEPTH} layers" + (" (one layer's weights shared by all)" if shared else "")
    print(f"\n{NAMES[geometry]}{' (TINY widths: smoke test only)' if tiny else ''}: decoder {layers}, "
          f"{str(dtype).removeprefix('torch.')} on {device}, vision tower whole; {full} patches; built in "
          f"{time.perf_counter() - t_build:.0f} s")  # fmt: skip
    warm = {"all": [("none", full)] + [("bound", k) for k in budgets], "short": [("bound", min(budgets))]}
    for name, k in warm.get(warmup, []):  # all: every sequence length once; short: the code paths once
        run_once(adapter, image, name, k)
    runs: dict[tuple[str, int], list] = {c: [] for c in configs}
    t0 = time.perf_counter()
    for r in range(repeats):
        order = configs if r % 2 == 0 else configs[::-1]  # no config always runs first after another
        for c in order:
            runs[c].append(run_once(adapter, image, *c))
    print(f"{len(configs)} configurations x {repeats} repeats in {time.perf_counter() - t0:.0f} s; {machine()}")

    def stat(c: tuple[str, int]) -> dict[str, float]:
        costs = runs[c]
        return {"ttft": median([x.vision_ms + x.prefill_ms for x in costs]),
                "vision": median([x.vision_ms for x in costs]), "llm": median([x.prefill_ms for x in costs]),
                "total": median([x.total_ms for x in costs]), "flops": costs[0].prefill_flops,
                "vis_in": costs[0].llm_layer_visual_tokens[0]}  # fmt: skip

    base = stat(("none", full))
    scale = PAPER_DEPTH / depth

    def ttft32(s: dict[str, float]) -> float:
        return s["vision"] + s["llm"] * scale

    head = (f"{'method':<10}{'K':>5}{'vis@LLM':>8}{'prefill x':>10}{'LLM x':>7}{'total x':>8}{'FLOPs x':>8}"
            f"{'pre/FLOPs':>10}{'vs bound':>9}{'prefill x@32':>13}{'TFLOPs@32':>10}   paper pre/tot/TFLOPs")  # fmt: skip
    print(
        f"unpruned: time to first token {base['ttft']:.0f} ms (vision {base['vision']:.0f} ms, LLM prefill "
        f"{base['llm']:.0f} ms), total {base['total']:.0f} ms, prefill {base['flops'] / 1e12:.2f} TFLOPs here"
    )
    print(head)
    print("-" * len(head))
    for c in configs:
        name, k = c
        s = stat(c)
        m = method(name)
        bound = stat(("bound", k)) if name != "none" else s
        tf32 = full_depth_prefill_flops(adapter, m, k, runs[c][0], NEW_TOKENS) / 1e12
        pre_x, flops_x = base["ttft"] / s["ttft"], base["flops"] / s["flops"]
        proj = "–" if name in LLM_METHODS else f"{ttft32(base) / ttft32(s):.2f}"
        paper = PAPER.get((geometry, name, k)) or (PAPER.get((geometry, name)) if name == "none" else None)
        paper_s = f"{paper[0]:.1f} / {paper[1]:.1f} / {paper[2]:.2f}" if paper else ""
        print(f"{name:<10}{k:>5}{s['vis_in']:>8}{pre_x:>10.2f}{base['llm'] / s['llm']:>7.2f}"
              f"{base['total'] / s['total']:>8.2f}{flops_x:>8.2f}{pre_x / flops_x:>10.2f}"
              f"{bound['ttft'] / s['ttft']:>9.2f}{proj:>13}{tf32:>10.2f}   {paper_s}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--geometry", default="llava15,next", help="llava15, next, or both comma-separated")
    ap.add_argument("--methods", default=",".join(m for m in METHODS if m != "none"))
    ap.add_argument("--depth", type=int, default=2, help="decoder layers of 32 (CPU: 2)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budgets", default="", help="comma-separated (default: 64,128,192 / 160,320,640)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--tiny", action="store_true", help="tiny widths: a smoke test of the script")
    add_model_args(ap)
    ap.add_argument(
        "--warmup",
        default="all",
        choices=("all", "short", "none"),
        help="all: every sequence length once; short: the bound at the smallest K (full-depth runs)",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m and m != "none"]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown methods {unknown} (allowed: {', '.join(METHODS)})")
    for g in args.geometry.split(","):
        budgets = tuple(int(k) for k in args.budgets.split(",") if k)
        measure(g, methods, args.depth, args.repeats, args.tiny, budgets, pick_dtype(args.dtype, args.device),
                args.shared_layers, args.warmup, args.device)  # fmt: skip


if __name__ == "__main__":
    main()
