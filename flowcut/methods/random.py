"""Uniform random patches: the floor any informed method must beat."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Selection, VisionMethod, VisionTrace


@dataclass
class RandomPruning(VisionMethod):
    """``budget`` patches drawn without replacement from the method's seeded generator."""

    name = "random"

    def select(self, trace: VisionTrace, budget: int) -> Selection:
        b, n = trace.feats.shape[:2]
        noise = torch.rand(b, n, generator=self.generator)
        idx = noise.topk(budget, dim=-1).indices.sort(dim=-1).values
        return Selection(indices=idx.to(trace.feats.device))
