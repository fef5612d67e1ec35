"""One sample's question and image, and its kept patches drawn over it, for the Samples page.

The store keeps predictions, not images or questions. A generated-suite sample is rebuilt from its
scene seed (``flowcut.tasks.suite``: a sample is a function of task and seed; the seed is the
trailing number of its id: ``10000007``, ``count/10000007.png``). A real benchmark's sample is
looked up by id in its first ``LOOKUP_LIMIT`` rows, only when the user allows a download.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from PIL import Image

from flowcut.draw import overlay

LOOKUP_LIMIT = 2000  # rows of a real benchmark searched for an id: enough for the limits sweeps use


@dataclass(frozen=True)
class SampleView:
    """What the page shows above the predictions; ``note`` says where it came from or why it is missing."""

    question: str | None
    image: Image.Image | None
    note: str


def scene_seed(sample_id: str, meta: dict[str, Any] | None = None) -> int | None:
    """The suite scene seed: ``meta["seed"]`` when recorded, else the id's trailing number."""
    if meta and isinstance(meta.get("seed"), int):
        return int(meta["seed"])
    found = re.findall(r"\d+", sample_id)
    return int(found[-1]) if found else None


def find_sample(benchmark: str, sample_id: str, reference: str, allow_download: bool = False) -> SampleView:
    """The question and image of a stored sample.

    Args:
        reference: the stored reference as JSON text; it picks the question of an MME yes/no pair,
            whose two questions share one id.
        allow_download: for a real benchmark, load its rows (may download the dataset).
    """
    # imported here: the registry pulls in HF datasets, which only this page needs
    from flowcut.tasks.registry import BENCHMARKS, load_examples
    from flowcut.tasks.suite.tasks import make_samples

    spec = BENCHMARKS.get(benchmark)
    if spec is None:
        return SampleView(None, None, f"unknown benchmark {benchmark!r}")
    if spec.path.startswith("suite:"):
        seed = scene_seed(sample_id)
        if seed is None:
            return SampleView(None, None, f"no scene seed in sample id {sample_id!r}")
        made = make_samples(spec.path.removeprefix("suite:"), seed)
        ref = json.loads(reference)
        pick = next((s for s in made if s["answer"] == ref), made[0])
        return SampleView(pick["question"], pick["image"], f"re-rendered from scene seed {pick['seed']}")
    if not allow_download:
        return SampleView(None, None, "images of real benchmarks are not stored: allow loading the dataset")
    try:
        examples = load_examples(benchmark, limit=LOOKUP_LIMIT)
    except Exception as e:  # noqa: BLE001 - offline, missing dataset, ...: the page shows why
        return SampleView(None, None, f"cannot load {benchmark}: {type(e).__name__}: {e}".splitlines()[0])
    ex = next((e for e in examples if e.id == sample_id), None)
    if ex is None:
        return SampleView(None, None, f"{sample_id} is not among the first {LOOKUP_LIMIT} rows of {benchmark}")
    return SampleView(ex.question, ex.image, f"loaded from {spec.path}")


def kept_overlays(image: Image.Image, extra: dict[str, Any] | None) -> list[tuple[Image.Image, str]]:
    """The image with each crop's kept patches drawn (pruned ones dimmed), with a caption per crop.

    A multi-crop model (LLaVA-NeXT AnyRes) records one kept list and grid per crop; each is drawn over
    the whole image, so only the first (the global view) is exact in position.
    """
    extra = extra or {}
    kept, grids = extra.get("kept") or [], extra.get("grids") or []
    out = []
    for i, (k, g) in enumerate(zip(kept, grids)):
        rows, cols = int(g[0]), int(g[1])
        caption = f"crop {i + 1}/{len(kept)}: {len(k)} of {rows * cols} patches kept"
        out.append((overlay(image, list(k), (rows, cols)), caption))
    return out
