"""Can the mini ViT learn to read at all? The word in the text box, learned with labels.

    PYTHONPATH=. .venv/bin/python scripts/mini_read_pilot.py MINUTES [--short]

A fresh tower of the default geometry (``train.build_vision``) and a linear head on the mean
of the text box's patches at the feature layer (-2), trained with cross-entropy on the word
of 2,400 train scenes, scored every 50 steps of 32 on 300 held-out scenes (seeds 50,000+).
Supervision is the easiest signal a tower can get, so a word it cannot learn here in CPU
minutes, stage (a)'s contrastive loss will not teach it either. ``--short`` draws the words
instead from ten three-letter ones at 44 px (cap height ~31 px, two patches): the suite with
"fewer, larger words" the README's limits section asks about. Numbers are left out.
"""

from __future__ import annotations

import sys
import time

import torch
import torch.nn.functional as F

from flowcut.mini.config import MiniConfig
from flowcut.mini.train import build_vision, image_processor
from flowcut.tasks.suite import scene as S
from flowcut.tasks.suite.scene import PATCH, SIZE, box_patches

SHORT = ("cat", "dog", "sun", "car", "box", "cup", "hat", "bus", "pen", "key")
GRID = SIZE // PATCH


def data(proc, words: list[str], start: int, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pixels, word index, text-box patch mask) of the first ``n`` scenes from ``start`` with a word."""
    ims, ys, mask, seed = [], [], torch.zeros(n, GRID * GRID), start
    while len(ys) < n:
        sc = S.make_scene(seed)
        seed += 1
        if sc.text is None or sc.text.isdigit():
            continue
        im, sc = S.render(seed - 1)
        rows, cols = box_patches(sc.text_box, GRID)
        mask[len(ys), [r * GRID + c for r in range(rows.start, rows.stop) for c in range(cols.start, cols.stop)]] = 1
        ims.append(im)
        ys.append(words.index(sc.text))
    pix = torch.cat([proc(ims[i : i + 64], return_tensors="pt")["pixel_values"] for i in range(0, n, 64)])
    return pix, torch.tensor(ys), mask


def main(minutes: float, short: bool) -> None:
    torch.manual_seed(0)
    if short:  # the scene module reads both at draw time
        S.WORDS, S.FONT_PX = SHORT, 44
    words, proc = list(S.WORDS), image_processor(MiniConfig())
    train_x, train_y, train_m = data(proc, words, 0, 2400)
    test_x, test_y, test_m = data(proc, words, 50_000, 300)
    vit, head = build_vision(MiniConfig()), torch.nn.Linear(MiniConfig().vit_width, len(words))
    opt = torch.optim.AdamW([*vit.parameters(), *head.parameters()], lr=1e-3)

    def logits(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        h = vit(pixel_values=x, output_hidden_states=True).hidden_states[-2][:, 1:]
        return head((h * m[..., None]).sum(1) / m.sum(1, keepdim=True))

    t0, step = time.time(), 0
    while time.time() - t0 < minutes * 60:
        idx = torch.randint(0, len(train_y), (32,))
        loss = F.cross_entropy(logits(train_x[idx], train_m[idx]), train_y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            with torch.no_grad():
                hits = sum((logits(test_x[i : i + 100], test_m[i : i + 100]).argmax(1) == test_y[i : i + 100]).sum()
                           for i in range(0, len(test_y), 100))  # fmt: skip
            print(f"step {step} {time.time() - t0:.0f}s loss {loss.item():.3f} "
                  f"held-out {hits.item() / len(test_y):.3f} (chance {1 / len(words):.3f})", flush=True)  # fmt: skip


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1 or set(sys.argv[1:]) - {*args, "--short"}:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    main(float(args[0]), "--short" in sys.argv)
