"""Selection overhead: each vision-side method's added time as % of the vision tower's time.

    python benchmarks/selection_overhead.py            # LLaVA-1.5-7B geometry, 576 patches, K = 64

The tower is CLIP ViT-L/14-336 with random weights (``_vlm.py``), bf16, one image; our
tower loop (``flowcut/models/tower.py``) runs it with each method and with ``none`` on the
same preprocessed pixels; median of ``--repeats`` runs, methods interleaved. Columns:

  tower+method   ms of the tower loop with the method (selection included)
  net %          (tower+method - none) / none: what the method costs end to end; FlowCut
                 prunes inside the tower, so its later layers run fewer tokens and this
                 can be negative
  method code %  time spent inside the method's own entry points (``select``, or
                 ``start``/``step``/``finish``) / none: the selection logic alone
                 (target for FlowCut: <= 3%)

``flowcut@575`` keeps all but one patch: it scores every layer and cuts next to nothing, so its net % is
the price of FlowCut's scoring with no pruning saving to offset it. ``none (again)`` is
``none`` timed a second time: the noise floor of the net column.
LLM-side methods (FastV, PDrop, SparseVLM) select inside the decoder and are not listed.
"""

from __future__ import annotations

import argparse
import time

import torch
from _vlm import Timer, add_model_args, build, machine, median, method, pick_dtype

from flowcut.methods import METHODS, EncoderMethod, VisionMethod


def timed_method(name: str) -> tuple[object, Timer]:
    """The method with its entry points wrapped by a Timer (instance attributes: the tower
    loop calls ``method.select`` / ``method.step``, so it finds the wrapped ones)."""
    m, timer = method(name), Timer()
    entries = ("start", "step", "finish") if isinstance(m, EncoderMethod) else ("select",)
    for entry in entries:  # (VisPruner has a dataclass field named ``step``: wrap by kind)
        object.__setattr__(m, entry, timer.wrap(getattr(m, entry)))
    return m, timer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--tiny", action="store_true", help="tiny widths: a smoke test of the script")
    add_model_args(ap, shared=False)
    args = ap.parse_args()

    dtype = pick_dtype(args.dtype, args.device)
    # the decoder is not run here
    adapter, image = build("llava15", depth=1, dtype=dtype, tiny=args.tiny, device=args.device)
    n = adapter.visual_tokens(image)
    pixels = adapter.processor.image_processor([image], return_tensors="pt")["pixel_values"]
    pixels = pixels.to(adapter.device, adapter.model.dtype)
    cuda = adapter.device.type == "cuda"
    vision_side = [m for m, cls in METHODS.items() if m != "none" and issubclass(cls, (VisionMethod, EncoderMethod))]
    configs = [("none", n), ("none (again)", n)] + [(m, args.budget) for m in vision_side] + [("flowcut@575", n - 1)]

    def run(name: str, k: int) -> tuple[float, float]:
        m, timer = timed_method(name.split(" ")[0].split("@")[0])
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.inference_mode():
            adapter.encode_crops(pixels, m, k)
        if cuda:  # kernels run asynchronously: the method-code column is launch time only there
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) * 1000, timer.s * 1000

    for c in configs[:3]:  # warm-up
        run(*c)
    times: dict[tuple[str, int], list[tuple[float, float]]] = {c: [] for c in configs}
    for r in range(args.repeats):
        for c in configs if r % 2 == 0 else configs[::-1]:
            times[c].append(run(*c))

    base = median([t for t, _ in times[configs[0]]])
    print(f"\nselection overhead, LLaVA-1.5-7B geometry{' (TINY widths: smoke test only)' if args.tiny else ''}: "
          f"CLIP ViT-L/14-336 tower (23 of 24 layers run), {str(dtype).removeprefix('torch.')} on {args.device}, 1 image, {n} patches, K = {args.budget}; "
          f"median of {args.repeats}; {machine()}")  # fmt: skip
    head = f"{'method':<14}{'K':>5}{'tower+method ms':>17}{'net %':>8}{'method code %':>15}{'target':>9}{'ok':>5}"
    print(head)
    print("-" * len(head))
    for c in configs:
        name, k = c
        t = median([x for x, _ in times[c]])
        own = median([x for _, x in times[c]])
        target = "<= 3%" if name == "flowcut" else ""
        ok = ("yes" if 100 * own / base <= 3 else "NO") if target else ""
        print(f"{name:<14}{k:>5}{t:>17.1f}{100 * (t - base) / base:>+8.1f}{100 * own / base:>15.2f}{target:>9}{ok:>5}")


if __name__ == "__main__":
    main()
