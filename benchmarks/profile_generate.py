"""Where one ``generate`` call's time goes: phases from ``Cost`` and torch's operator profile.

    python benchmarks/profile_generate.py --geometry llava15 --method flowcut --budget 64

For the notes in BENCHMARKS.md where a measured ratio falls short: the same random-weight
7B geometry as ``prefill_speedup.py`` (``_vlm.py``), one warm-up call, then one call under
``torch.profiler`` (CPU), printing the phase split and the operators by self time.
``--tower`` profiles the vision tower loop alone (``encode_crops``: tower + selection), as
``selection_overhead.py`` times it.
"""

from __future__ import annotations

import argparse

import torch
from _vlm import QUESTION, add_model_args, build, machine, method, pick_dtype
from torch.profiler import ProfilerActivity, profile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--geometry", default="llava15")
    ap.add_argument("--method", default="flowcut")
    ap.add_argument("--budget", type=int, default=64)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--rows", type=int, default=15)
    ap.add_argument("--tower", action="store_true", help="the vision tower loop alone")
    ap.add_argument("--tiny", action="store_true")
    add_model_args(ap)
    args = ap.parse_args()

    adapter, image = build(args.geometry, depth=args.depth, dtype=pick_dtype(args.dtype, args.device), tiny=args.tiny,
                           shared=args.shared_layers, device=args.device)  # fmt: skip
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if adapter.device.type == "cuda" else [])
    budget = adapter.visual_tokens(image) if args.method == "none" else args.budget
    m = method(args.method)

    if args.tower:
        pixels = adapter.processor.image_processor([image], return_tensors="pt")["pixel_values"]
        pixels = pixels.to(adapter.device, adapter.model.dtype)
        with torch.inference_mode():
            adapter.encode_crops(pixels, m, budget)
            with profile(activities=activities) as prof:
                adapter.encode_crops(pixels, m, budget)
        print(f"\n{args.geometry} {args.method} K={budget}: vision tower loop alone; {machine()}")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=40))
        return

    def call():  # noqa: ANN202
        return adapter.generate([image], [QUESTION], m, budget, max_new_tokens=16, min_new_tokens=16)[0].cost

    call()
    with profile(activities=activities) as prof:
        cost = call()
    decode = cost.total_ms - cost.vision_ms - cost.prefill_ms
    print(f"\n{args.geometry} {args.method} K={budget}, decoder {args.depth} layers; {machine()}")
    print(f"phases (under the profiler): vision tower + selection {cost.vision_ms:.0f} ms, LLM prefill "
          f"{cost.prefill_ms:.0f} ms, decode (15 steps) {decode:.0f} ms, total {cost.total_ms:.0f} ms")  # fmt: skip
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=40))


if __name__ == "__main__":
    main()
