"""VisPruner: important tokens by [CLS] attention plus diverse tokens by duplicate removal.

Paper: Zhang et al., "Beyond Text-Visual Attention: Exploiting Visual Cues for Effective
Token Pruning in VLMs", arXiv 2412.01818 (ICCV 2025). Reference code:
Theia-4869/VisPruner, ``llava/model/llava_arch.py`` (``encode_images``) and
``llava/model/multimodal_encoder/clip_encoder.py``.

Budget: ``T`` patches, exactly, per image (crop): ``T_imp = int(T * r)`` important ones
(top relay attention, head mean) and ``T_div = T - T_imp`` diverse ones. The diverse ones
come from the other patches in descending-attention order by rounds of ToMe-style
bipartite matching on L2-normalised features: alternate tokens form sets A and B, each
``a`` scores ``max_b cos(a, b)``, and the ``min(step, R - T_div)`` most redundant of A are
dropped; survivors of A (in the reference's order: by descending score) go first, then
all of B. Rounds repeat until ``T_div`` remain. The matching only looks within the
remaining set, never against the important tokens (as in the code, unlike the paper).

Deviations: a round drops at most ``ceil(R / 2)`` tokens (all of A; the reference would
fail on a shape there, which its LLaVA settings never reach); features are normalised
with an epsilon; sorts are stable so that ties break by position, deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import FlowcutError
from .base import Selection, VisionMethod, VisionTrace


@dataclass
class VisPruner(VisionMethod):
    """Keeps ``T_imp`` high-attention patches and ``T_div`` mutually dissimilar others.

    Attributes:
        important_ratio: ``r``; None = the README's choice, 0.75 for budgets up to 64
            (48 + 16) and 0.5 above (128 = 64 + 64); the CLI default is 0.5. Small budgets
            favour attention because few diverse tokens cannot cover the image anyway.
        step: most tokens dropped per matching round (hard-coded 8 in the reference).
    """

    name = "vispruner"
    important_ratio: float | None = None
    step: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.important_ratio is not None and not 0.0 <= self.important_ratio <= 1.0:
            raise FlowcutError("vispruner.important_ratio", f"{self.important_ratio} is out of range", "[0, 1]")
        if self.step < 1:
            raise FlowcutError("vispruner.step", f"{self.step} is out of range", ">= 1")

    def ratio(self, budget: int) -> float:
        """The important share ``r`` used at ``budget``."""
        if self.important_ratio is not None:
            return self.important_ratio
        return 0.75 if budget <= 64 else 0.5

    def select(self, trace: VisionTrace, budget: int) -> Selection:
        """Pick ``budget`` patches per image.

        Args:
            trace: feature-layer internals; uses ``feats`` [B, N, D] and ``relay_attn``
                [B, H, N].
            budget: ``T``, patches kept per image.

        Returns:
            Selection with ``indices`` [B, T], ascending.
        """
        feats = trace.feats
        _, n, d = feats.shape
        if not 1 <= budget <= n:
            raise FlowcutError("budget", f"{budget} tokens from {n} patches", f"1..{n}")
        n_imp = int(budget * self.ratio(budget))
        n_div = budget - n_imp
        order = trace.relay_attn.float().mean(dim=1).argsort(dim=-1, descending=True, stable=True)
        important, residual = order[:, :n_imp], order[:, n_imp:]  # [B, T_imp], [B, R]
        if n_div == 0:
            return Selection(indices=important.sort(dim=-1).values)

        normed = F.normalize(feats.float(), dim=-1)
        # Every image has the same R each round, so rounds run on the whole batch at once.
        while True:
            r = residual.shape[1]
            drop = min(self.step, r - n_div, (r + 1) // 2)
            if drop <= 0:
                break
            tokens = normed.gather(1, residual.unsqueeze(-1).expand(-1, -1, d))  # [B, R, D]
            score = (tokens[:, ::2] @ tokens[:, 1::2].transpose(1, 2)).amax(dim=-1)  # [B, |A|]
            keep_a = score.argsort(dim=-1, descending=True, stable=True)[:, drop:]
            residual = torch.cat([residual[:, ::2].gather(1, keep_a), residual[:, 1::2]], dim=1)

        kept = torch.cat([important, residual], dim=1)
        return Selection(indices=kept.sort(dim=-1).values)
