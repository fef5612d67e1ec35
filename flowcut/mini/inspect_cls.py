"""What the mini ViT learned: where its [CLS] token looks, on test scenes.

    python -m flowcut.mini.inspect_cls --n 200 --out flowcut/mini/checkpoint/cls_attention.png

Reports the share of [CLS] attention (feature layer, head mean) that lands on patches
covering an object or the text box, beside the share of patches that cover them (what a
uniform attention would give), and saves a strip of test images with the attention drawn.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import typer
from PIL import Image

from ..tasks.suite.build import split_seed
from ..tasks.suite.scene import object_mask, render

CHECKPOINT = Path(__file__).parent / "checkpoint"


@torch.inference_mode()
def cls_attention(model, proc, images: list[Image.Image]) -> np.ndarray:
    """[n, 24, 24] head-mean [CLS] attention over the patches at the LLaVA feature layer."""
    from ..methods import make_method
    from ..models.tower import run_clip

    seen: list[torch.Tensor] = []
    orig = make_method("none")

    class Probe(type(orig)):  # records the trace the vision-side methods read
        def select(self, trace, budget):  # noqa: ANN001, ANN202
            seen.append(trace.relay_attn.mean(1))
            return super().select(trace, budget)

    pix = proc(images, return_tensors="pt")["pixel_values"]
    tower = model.model.vision_tower
    run_clip(getattr(tower, "vision_model", tower), pix, model.config.vision_feature_layer, Probe(), 576)
    attn = seen[0]
    side = int(attn.shape[-1] ** 0.5)
    return attn.view(-1, side, side).numpy()


def heat(image: Image.Image, attn: np.ndarray) -> Image.Image:
    """The image with attention as a red overlay (normalised per image)."""
    a = attn / attn.max()
    up = Image.fromarray((a * 255).astype("uint8")).resize(image.size, Image.Resampling.NEAREST)
    red = Image.new("RGB", image.size, (255, 0, 0))
    return Image.composite(red, image.convert("RGB"), up.point(lambda v: int(v * 0.75)))


def main(n: int = 200, out: Path = CHECKPOINT / "cls_attention.png", checkpoint: Path = CHECKPOINT) -> None:
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    model = LlavaForConditionalGeneration.from_pretrained(checkpoint).eval()
    proc = AutoProcessor.from_pretrained(checkpoint).image_processor
    on_obj, obj_area = [], []
    tiles = []
    for start in range(0, n, 25):
        rendered = [render(split_seed("test", i)) for i in range(start, min(n, start + 25))]
        attn = cls_attention(model, proc, [im for im, _ in rendered])
        for (im, scene), a in zip(rendered, attn, strict=True):
            mask = object_mask(scene)
            on_obj.append(float(a[mask].sum() / a.sum()))
            obj_area.append(float(mask.mean()))
            if len(tiles) < 6:
                tiles.append(heat(im, a))
    strip = Image.new("RGB", (336 * len(tiles), 336))
    for i, t in enumerate(tiles):
        strip.paste(t, (336 * i, 0))
    strip.save(out)
    stats = {"images": n, "cls_attention_on_objects": float(np.mean(on_obj)),
             "object_patch_share": float(np.mean(obj_area))}  # fmt: skip
    (out.parent / "cls_attention.json").write_text(json.dumps(stats, indent=2))
    typer.echo(json.dumps(stats))


if __name__ == "__main__":
    typer.run(main)
