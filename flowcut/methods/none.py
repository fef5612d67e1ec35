"""The unpruned model: every visual token kept. The reference every ratio is taken against."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Selection, VisionMethod, VisionTrace


@dataclass
class NoPruning(VisionMethod):
    """Keeps all patches; a budget below the patch count is an error (checked by the caller)."""

    name = "none"

    def select(self, trace: VisionTrace, budget: int) -> Selection:
        b, n = trace.feats.shape[:2]
        return Selection(indices=torch.arange(n, device=trace.feats.device).expand(b, n))
