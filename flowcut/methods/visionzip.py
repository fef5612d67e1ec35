"""VisionZip: dominant tokens by [CLS] attention plus merged contextual tokens.

Paper: Yang et al., "VisionZip: Longer is Better but Not Necessary in Vision Language
Models", arXiv 2412.04467 (CVPR 2025). Reference code: dvlab-research/VisionZip (now
JIA-Lab-research/VisionZip), ``visionzip/clip_encoder.py``, ``visionzip/utils.py``,
``visionzip/main.py``.

Budget: ``T`` = tokens sent to the LLM = ``D`` dominant + ``C`` contextual, with
``D = round(T * dominant_share)`` (at least 1, and at most ``T - 1`` so that ``C >= 1``
when ``T >= 2``). Where the tower has [CLS], the [CLS] feature is one of the ``D``
(``visionzip(model, dominant=D, ...)`` passes ``D - 1`` patches); without [CLS] all ``D``
are patches.

* Dominant: top patches by relay attention summed over heads (the [CLS] row).
* Contextual: the other patches, ascending by position; similarity = cosine of head-mean
  keys. ``C`` targets are taken uniformly by position (every ``M // C``-th); every other
  patch joins its most similar target; a contextual token is the target's feature plus
  the *mean* of its members' features (the target itself is not in the mean).

Output order: [CLS], dominant patches ascending by position (the reference's
``masked_select`` order), contextual tokens in target order.

Deviations: keys are L2-normalised with an epsilon (a zero key gives similarity 0, not
NaN), and the merge is computed in float32 and cast back to the feature dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import FlowcutError
from .base import Selection, VisionMethod, VisionTrace, topk_sorted


def split_budget(budget: int, share: float) -> tuple[int, int]:
    """(dominant, contextual) token counts for a total of ``budget`` tokens."""
    dominant = max(1, round(budget * share))
    if budget >= 2:
        # At least one contextual token: the merge is what sets VisionZip apart from top-k.
        dominant = min(dominant, budget - 1)
    return dominant, budget - dominant


def gather_rows(x: Tensor, idx: Tensor) -> Tensor:
    """[B, N, D] rows picked by [B, K] indices -> [B, K, D]."""
    return x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


@dataclass
class VisionZip(VisionMethod):
    """Keeps ``D`` dominant tokens ([CLS] counted) and merges the rest into ``C`` tokens.

    Attributes:
        dominant_share: share ``D / T`` of dominant tokens. The README's 64 = 54 + 10; the
            paper's 128 = 108 + 20 and 192 = 162 + 30 keep the same 54/64 share.
    """

    name = "visionzip"
    dominant_share: float = 54 / 64

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.dominant_share <= 1.0:
            raise FlowcutError("visionzip.dominant_share", f"{self.dominant_share} is out of range", "(0, 1]")

    def select(self, trace: VisionTrace, budget: int) -> Selection:
        """Pick dominant patches and build contextual tokens.

        Args:
            trace: feature-layer internals; uses ``feats`` [B, N, D], ``relay_attn``
                [B, H, N], ``keys`` [B, H, N, hd] and ``cls_feat`` [B, D] or None.
            budget: ``T``, total tokens per image ([CLS] and contextual ones included).

        Returns:
            Selection with ``indices`` [B, K] (dominant and target patch positions,
            ascending; K = T - 1 with [CLS], else T) and ``tokens`` [B, T, D].
        """
        feats = trace.feats
        b, n, _ = feats.shape
        has_cls = trace.cls_feat is not None
        if not 1 <= budget <= n + has_cls:
            raise FlowcutError("budget", f"{budget} tokens from {n} patches", f"1..{n + has_cls}")
        n_dom, n_ctx = split_budget(budget, self.dominant_share)
        dom = topk_sorted(trace.relay_attn.float().sum(dim=1), n_dom - has_cls)  # [B, Dp]
        parts = [trace.cls_feat.unsqueeze(1)] if has_cls else []
        parts.append(gather_rows(feats, dom))
        if n_ctx == 0:
            return Selection(indices=dom, tokens=torch.cat(parts, dim=1))

        # Remaining patches in ascending position: every row has the same count M.
        is_dom = torch.zeros(b, n, dtype=torch.bool, device=feats.device).scatter_(1, dom, True)
        rest = torch.arange(n, device=feats.device).expand(b, n)[~is_dom].view(b, -1)  # [B, M]
        m = rest.shape[1]
        step = max(1, m // n_ctx)
        slots = torch.arange(0, m, step, device=feats.device)[:n_ctx]  # [C]
        is_target = torch.zeros(m, dtype=torch.bool, device=feats.device)
        is_target[slots] = True
        others = torch.arange(m, device=feats.device)[~is_target]  # [M - C]

        keys = F.normalize(gather_rows(trace.keys.float().mean(dim=1), rest), dim=-1)  # [B, M, hd]
        sim = keys[:, others] @ keys[:, slots].transpose(1, 2)  # [B, M - C, C]
        assign = F.one_hot(sim.argmax(dim=-1), n_ctx).float()  # [B, M - C, C]
        counts = assign.sum(dim=1).clamp(min=1).unsqueeze(-1)  # [B, C, 1]
        rest_feats = gather_rows(feats, rest).float()  # [B, M, D]
        merged = assign.transpose(1, 2) @ rest_feats[:, others] / counts
        parts.append((rest_feats[:, slots] + merged).to(feats.dtype))

        indices = torch.cat([dom, rest[:, slots]], dim=1).sort(dim=1).values
        return Selection(indices=indices, tokens=torch.cat(parts, dim=1))
