"""What the driver ships to the actors: the dataset's own image bytes, or a lossless PNG."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from flowcut.images import open_image
from flowcut.tasks.registry import get_spec
from flowcut.tasks.spec import to_example
from jobs.evaluate import encode_example


def _jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def _row(image: object) -> dict:
    return {"question_id": "q1", "question": "Is there a dog in the image?", "answer": "yes",
            "category": "random", "image": image}  # fmt: skip


def test_the_datasets_own_bytes_travel_unchanged_and_decode_to_the_drivers_pixels() -> None:
    raw = _jpeg(0)
    ex = to_example(get_spec("pope"), _row({"bytes": raw, "path": None}))
    assert ex.error is None and ex.image_bytes == raw
    item = encode_example(ex)
    assert item["image"] == raw  # not re-encoded: a JPEG stays the JPEG the dataset holds
    assert np.array_equal(np.asarray(open_image(item["image"])), np.asarray(ex.image))
    assert json.loads(item["reference"]) == "yes"


def test_a_decoded_image_is_shipped_as_a_lossless_png() -> None:
    img = Image.open(io.BytesIO(_jpeg(1))).convert("RGB")
    ex = to_example(get_spec("pope"), _row(img))
    assert ex.error is None and ex.image_bytes is None
    shipped = encode_example(ex)["image"]
    assert shipped.startswith(b"\x89PNG")
    assert np.array_equal(np.asarray(open_image(shipped)), np.asarray(img))


def test_a_row_whose_bytes_do_not_decode_keeps_no_bytes() -> None:
    ex = to_example(get_spec("pope"), _row({"bytes": b"not an image", "path": None}))
    assert ex.error is not None and "image" in ex.error
    assert ex.image is None and ex.image_bytes is None


def test_an_actor_holding_the_stand_in_model_answers_without_importing_torch() -> None:
    # a pool of stand-in actors starts in the time Ray takes: torch, transformers and datasets
    # cost ~3 s of imports per actor, which the scaling benchmark would otherwise measure
    code = """
import io, sys
import pandas as pd
from PIL import Image
from jobs.evaluate import EvalActor, encode_example
from flowcut.tasks.spec import Example
cfg = {"model": "fake", "method": "flowcut", "seed": 0, "method_options": {}, "benchmark": "suite_pope",
       "budget": 64, "max_new_tokens": 8, "parser": "lmms-eval-v1"}
actor = EvalActor({"j": cfg})
ex = Example(id="s1", image=Image.new("RGB", (8, 8)), question="Is there a cat?", reference="yes", prompt="p")
out = actor(pd.DataFrame([{"job_ids": ["j"], **encode_example(ex)}]))
assert out["error"].isna().all() and out["kept_tokens"].tolist() == [64], out
print(sorted(m for m in ("torch", "transformers", "datasets") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
