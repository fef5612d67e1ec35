"""The LM's text stage: the suite's questions over scenes told in words, before any image.

Real LLaVAs start from an LM pretrained on text (Vicuna), which can already answer a question
from what its context says; the multimodal stages then only teach the projector to say it
in image tokens. Our LM starts from random weights, and the grounding notes (NOTES.md) found
that learning to compare a question with a set of objects is its slow part, even when the
objects are handed to it as word embeddings. Here it learns that on short sequences: the
scene's caption, objects row by row as their patches reach the LM, stands where the 576
image tokens will, so a step costs a fraction of an image step.
"""

from __future__ import annotations

import random

import torch

from ..tasks.suite.scene import caption
from .clip import Budget
from .config import MiniConfig
from .loop import LM_PARTS, fit, lm_group, pad_rows, train_only
from .prompts import encode_dialogue


def text_batch(model, tok, scenes, chunk: list, rng: random.Random) -> tuple:
    """(embeddings, positions, labels, mask) of (scene index, turns) rows, each scene's raster caption as its image."""
    image_id, embed, rows = model.config.image_token_id, model.get_input_embeddings(), []
    for i, turns in chunk:
        ids, lab = encode_dialogue(tok, turns, 1, image_id)
        at, words = (
            ids.index(image_id),
            tok(" " + caption(scenes[i], rng, raster=True), add_special_tokens=False).input_ids,
        )
        ids = ids[:at] + words + ids[at + 1 :]
        rows.append((embed(torch.tensor(ids, device=embed.weight.device)), torch.arange(len(ids)),
                     lab[:at] + [-100] * len(words) + lab[at + 1 :]))  # fmt: skip
    return pad_rows(rows, embed.weight.device)


def text_stage(model, tok, scenes, dialogues, budget: Budget, cfg: MiniConfig, log) -> dict:
    """Train the LM (not the projector, which has nothing to map yet) on text ``dialogues`` over ``scenes``."""
    groups = [lm_group(train_only(model, *LM_PARTS[1:]), cfg)]
    rng = random.Random("text:captions")

    def batch(chunk: list, frac: float) -> tuple:
        return *text_batch(model, tok, scenes, chunk, rng), "text"

    stats = fit(model, groups, dialogues, batch, budget, cfg.text_batch, "text", log)
    train_only(model, *LM_PARTS)
    return stats
