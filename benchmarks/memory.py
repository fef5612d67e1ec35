"""KV-cache bytes and peak memory per sample, pruned vs unpruned, beside the papers' claims.

    python benchmarks/memory.py                       # LLaVA-1.5-7B geometry, every method, K = 64/128/192

Random-weight LLaVA-1.5-7B geometry (``_vlm.py``), decoder cut to ``--depth`` layers, bf16,
one image, ``generate`` with 16 new tokens. Columns:

  KV MB         ``cost.kv_cache_bytes`` as measured (the cache after generate, this depth)
  KV MB@32      the same sample's cache on the full 32-layer decoder in fp16: per layer, the
                tokens that layer kept (LLM-side methods: their schedule at 32 layers, K kept
                after the cut) + 15 generated, x 2 (K, V) x 4096 x 2 bytes
  KV -%@32      reduction vs unpruned at full depth (VFlowOpt claims -89%)
  FLOPs -%@32   prefill FLOPs reduction at full depth (VisPruner claims -91% on LLaVA-1.5-7B)
  peak MB       the process's peak RSS during the call (weights included)
  act MB        peak RSS above the RSS before the call: activations + cache (the CPU
                counterpart of CUDA's peak allocated minus the weights)

The peak is the kernel's high-water mark (``VmHWM``), reset before each call through
``/proc/self/clear_refs``; glibc is told to return every allocation over 64 KiB to the
kernel on free (``MALLOC_MMAP_THRESHOLD_``, set by re-running this script), so freed
activations do not hide the next call's.
"""

from __future__ import annotations

import argparse
import os
import sys

if "MALLOC_MMAP_THRESHOLD_" not in os.environ:  # must be set before the process starts
    os.execve(sys.executable, [sys.executable, *sys.argv], os.environ | {"MALLOC_MMAP_THRESHOLD_": "65536"})

import torch  # noqa: E402
from _vlm import (  # noqa: E402
    PAPER_DEPTH,
    QUESTION,
    add_model_args,
    build,
    full_depth_prefill_flops,
    machine,
    method,
    per_layer_visual,
    pick_dtype,
    text_tokens,
)

from flowcut.methods import METHODS  # noqa: E402

NEW_TOKENS = 16
CLAIMS = {"vispruner": "FLOPs -91% (VisPruner, LLaVA-1.5-7B)", "vflowopt": "KV cache -89% (VFlowOpt)"}


def status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith(key + ":"))


def kv_bytes_full_depth(adapter, m, budget: int, n_vis: int) -> float:  # noqa: ANN001
    cfg = adapter.text_model.config
    d_kv = cfg.num_key_value_heads * (cfg.hidden_size // cfg.num_attention_heads)
    text = text_tokens(adapter)
    per_layer = per_layer_visual(m, budget, n_vis, PAPER_DEPTH)
    return sum((text + v + NEW_TOKENS - 1) * 2 * d_kv * 2 for v in per_layer)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default=",".join(m for m in METHODS if m != "none"))
    ap.add_argument("--budgets", default="64,128,192")
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--tiny", action="store_true", help="tiny widths: a smoke test of the script")
    add_model_args(ap)  # on cuda, peak and act come from CUDA's allocator
    args = ap.parse_args()

    dtype = pick_dtype(args.dtype, args.device)
    adapter, image = build("llava15", depth=args.depth, dtype=dtype, tiny=args.tiny, shared=args.shared_layers,
                           device=args.device)  # fmt: skip
    cuda = adapter.device.type == "cuda"
    full = adapter.visual_tokens(image)
    configs = [("none", full)] + [(m, int(k)) for m in args.methods.split(",") if m for k in args.budgets.split(",")]

    def run(name: str, k: int) -> dict[str, float]:
        m = method(name)
        if cuda:  # the allocator's own counters, in bytes / 1024 like the kernel's
            torch.cuda.synchronize()
            rss0 = torch.cuda.memory_allocated() // 1024
            torch.cuda.reset_peak_memory_stats()
        else:
            rss0 = status_kb("VmRSS")
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
        cost = adapter.generate([image], [QUESTION], m, k, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS)[0].cost
        peak = torch.cuda.max_memory_allocated() // 1024 if cuda else status_kb("VmHWM")
        n_vis = cost.llm_layer_visual_tokens[0]
        return {"kv": cost.kv_cache_bytes, "kv32": kv_bytes_full_depth(adapter, m, k, n_vis),
                "flops32": full_depth_prefill_flops(adapter, m, k, cost, NEW_TOKENS), "peak": peak * 1024,
                "act": (peak - rss0) * 1024, "vis_in": n_vis}  # fmt: skip

    run("none", full)  # warm-up: allocator, kernels
    res = {c: run(*c) for c in configs}
    base = res[configs[0]]
    mb = 1 / 2**20
    print(f"\nmemory per sample, LLaVA-1.5-7B geometry{' (TINY widths: smoke test only)' if args.tiny else ''}: "
          f"decoder {args.depth} of {PAPER_DEPTH} layers{' (shared weights)' if args.shared_layers else ''}, "
          f"{str(dtype).removeprefix('torch.')} on {args.device}, {full} patches, {text_tokens(adapter)} text tokens, "
          f"{NEW_TOKENS} new tokens; {machine()}")  # fmt: skip
    head = (f"{'method':<10}{'K':>5}{'vis@LLM':>8}{'KV MB':>8}{'KV -%':>7}{'KV MB@32':>10}{'KV -%@32':>9}"
            f"{'FLOPs -%@32':>12}{'peak MB':>9}{'act MB':>8}{'act -%':>7}   paper claim")  # fmt: skip
    print(head)
    print("-" * len(head))
    for c in configs:
        r = res[c]
        print(f"{c[0]:<10}{c[1]:>5}{r['vis_in']:>8}{r['kv'] * mb:>8.1f}{100 * (1 - r['kv'] / base['kv']):>7.1f}"
              f"{r['kv32'] * mb:>10.1f}{100 * (1 - r['kv32'] / base['kv32']):>9.1f}"
              f"{100 * (1 - r['flops32'] / base['flops32']):>12.1f}{r['peak'] * mb:>9.0f}{r['act'] * mb:>8.1f}"
              f"{100 * (1 - r['act'] / base['act']):>7.1f}   {CLAIMS.get(c[0], '')}")  # fmt: skip


if __name__ == "__main__":
    main()
