"""What a mini ViT's patch features say: linear probes at the feature layer (-2), held-out accuracy.

    PYTHONPATH=. .venv/bin/python scripts/mini_probe.py [CHECKPOINT]

CHECKPOINT is a mini LLaVA (``flowcut/mini/checkpoint``) or a bare ``CLIPVisionModel``
directory. Features of 1,200 train scenes fit a softmax probe; 300 held-out scenes
(seeds 50,000+) score it. Probes per object: shape (3 classes), colour (4), size (2) and
cell (9), from the mean of the object's patches and from its centre patch alone; per text
box: the word (20), from the mean of its patches. Chance: 0.33 / 0.25 / 0.5 / 0.11 / 0.05.
A fact the probe cannot read is one the LM would have to dig out itself, if it can at all.
"""

from __future__ import annotations

import sys

import torch
from transformers import AutoConfig, CLIPVisionModel, LlavaForConditionalGeneration

from flowcut.mini.config import MiniConfig
from flowcut.mini.train import image_processor
from flowcut.tasks.suite.scene import COLOURS, PATCH, SHAPES, SIZES, WORDS, box_patches, render

GRID = 24


def tower(path: str) -> torch.nn.Module:
    # from_pretrained would build a random LLaVA around a bare ViT with a warning, not an error
    if AutoConfig.from_pretrained(path).model_type == "llava":
        return LlavaForConditionalGeneration.from_pretrained(path).model.vision_tower.eval()
    return CLIPVisionModel.from_pretrained(path).eval()


@torch.inference_mode()
def features(vision: torch.nn.Module, seeds: list[int]) -> tuple[torch.Tensor, list]:
    proc, feats, scenes = image_processor(MiniConfig()), [], []
    for i in range(0, len(seeds), 32):
        rendered = [render(s) for s in seeds[i : i + 32]]
        pix = proc([im for im, _ in rendered], return_tensors="pt")["pixel_values"]
        feats.append(vision(pixel_values=pix, output_hidden_states=True).hidden_states[-2][:, 1:])
        scenes += [sc for _, sc in rendered]
    return torch.cat(feats), scenes


def patches(box: tuple[int, int, int, int]) -> list[int]:
    rows, cols = box_patches(box, GRID)
    return [r * GRID + c for r in range(rows.start, rows.stop) for c in range(cols.start, cols.stop)]


def centre(box: tuple[int, int, int, int]) -> list[int]:
    x0, y0, x1, y1 = box
    return [(y0 + y1) // 2 // PATCH * GRID + (x0 + x1) // 2 // PATCH]


def rows(feats: torch.Tensor, scenes: list, pick) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, labels): one row per object; labels = shape, colour, size, cell."""
    xs, ys = [], []
    for f, sc in zip(feats, scenes, strict=True):
        for o in sc.objects:
            xs.append(f[pick(o.box)].float().mean(0))
            ys.append((SHAPES.index(o.shape), COLOURS.index(o.colour), SIZES.index(o.size), o.row * 3 + o.col))
    return torch.stack(xs), torch.tensor(ys)


def text_rows(feats: torch.Tensor, scenes: list) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [(f[patches(sc.text_box)].float().mean(0), WORDS.index(sc.text))
             for f, sc in zip(feats, scenes, strict=True) if sc.text in WORDS]  # fmt: skip
    return torch.stack([x for x, _ in pairs]), torch.tensor([y for _, y in pairs])


def probe(x: torch.Tensor, y: torch.Tensor, xt: torch.Tensor, yt: torch.Tensor, classes: int) -> float:
    """Held-out accuracy of an L2-regularised softmax regression on standardised features."""
    mu, sd = x.mean(0), x.std(0) + 1e-5
    x, xt = (x - mu) / sd, (xt - mu) / sd
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(x @ w + b, y) + 1e-3 * (w**2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return ((xt @ w + b).argmax(1) == yt).float().mean().item()


def main(path: str) -> None:
    torch.manual_seed(0)
    vision = tower(path)
    train, test = features(vision, list(range(1200))), features(vision, list(range(50_000, 50_300)))
    for name, pick in (("mean of patches", patches), ("centre patch", centre)):
        (x, y), (xt, yt) = rows(*train, pick), rows(*test, pick)
        heads = (("shape", 3), ("colour", 4), ("size", 2), ("cell", 9))
        scores = {k: probe(x, y[:, i], xt, yt[:, i], n) for i, (k, n) in enumerate(heads)}
        print(f"object, {name}: " + " ".join(f"{k} {v:.2f}" for k, v in scores.items()), flush=True)
    (x, y), (xt, yt) = text_rows(*train), text_rows(*test)
    print(f"text box, mean of patches: word {probe(x, y, xt, yt, len(WORDS)):.2f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "flowcut/mini/checkpoint")
