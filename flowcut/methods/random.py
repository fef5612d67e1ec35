"""Uniform random patches: the floor any informed method must beat."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import Tensor

from .base import Selection, VisionMethod, VisionTrace


def image_generator(seed: int, pixels: Tensor) -> torch.Generator:
    """A generator seeded by ``seed`` and the bytes of one preprocessed image."""
    raw = pixels.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()  # any dtype, bf16 too
    digest = hashlib.blake2b(raw, digest_size=8,
                             salt=(seed % 2**128).to_bytes(16, "little"))  # fmt: skip
    return torch.Generator().manual_seed(int.from_bytes(digest.digest(), "little"))


@dataclass
class RandomPruning(VisionMethod):
    """``budget`` patches drawn without replacement, the draw a function of the seed and the image.

    A draw from one running stream would depend on how many images the method saw before this
    one, i.e. on the batch, the actor a sample is sharded to and where a resumed job restarts,
    so a sweep and a rerun of it would not agree. A trace without pixels (one built by hand)
    falls back to the method's seeded stream.
    """

    name = "random"

    def select(self, trace: VisionTrace, budget: int) -> Selection:
        b, n = trace.feats.shape[:2]
        if trace.pixels is None:
            noise = torch.rand(b, n, generator=self.generator)
        else:
            noise = torch.stack([torch.rand(n, generator=image_generator(self.seed, px)) for px in trace.pixels])
        idx = noise.topk(budget, dim=-1).indices.sort(dim=-1).values
        return Selection(indices=idx.to(trace.feats.device))
