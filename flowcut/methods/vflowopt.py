"""VFlowOpt: vision-side pruning with cell recycling, then LLM cuts.

Paper: Yang et al., "VFlowOpt: A Token Pruning Framework for LMMs with Visual Information
Flow-Guided Optimization", arXiv 2508.05211 (ICCV 2025). Reference code: sihany077/VFlowOpt
(LLaVA-OneVision only: ``multimodal_encoder/siglip_encoder.py``,
``language_model/llava_qwen_training_free.py``, ``lmms_eval/models/llava_onevision_training_free.py``).

* Vision stage: importance per patch; keep ``T_v`` tokens: the most important patches plus
  one recycled token per grid cell (cell of patch (r, c) = ``(floor(r / m), floor(c / m))``)
  that holds pruned patches. The recycled token is the importance-weighted mean of the cell's
  pruned patches and sits at the position of the most important of them.
* LLM stages: before layers 9 and 18 of 28, keep the release's share of the visual tokens
  present (a share of 1.0, the 10% release's layer 9, is no stage), ranked by the vision
  stage's importance map again, as the reference's generation path (``use_cache=True``)
  does: its ``VIT_ATTN_MAP`` is the vision importance of the tokens the vision stage kept, a
  recycled token carrying its anchor's. ``T_v`` is chosen so that the layer average is T
  (``layer_average``) or the last LLM stage keeps T (``after_prune``).
* Releases: the reference ships one searched configuration per keep ratio (10%, 25%, 50% in
  ``llava_onevision_training_free.py``); ``release`` picks one, the 10% one by default (64 of
  576 tokens is 11%). The cell side ``m`` and the LLM shares come from it.

Deviations from the reference code, on purpose:

* Importance: the reference averages, over "global" tokens (received attention > t * mean),
  their attention rows; our trace only has the relay row ([CLS] for CLIP, the dominant global
  token; the mean query otherwise), so importance = head-mean relay attention and ``t`` is
  unused. The entropy term is not implemented (``alpha_v`` = 0 in every released config).
* Exact count: the reference keeps ``N - reduce - int(N / m**2)`` patches and then adds one
  token per cell, so its total varies; we solve the plain count so that plain + recycled is
  exactly ``T_v``.
* LLM score without a vision importance map (a hand-built trace, another plumbing):
  last-prompt-token attention of the layer before the cut, head mean, as the reference's
  no-cache path would (that path raises on the released configs, whose LLM ratio is a list).
* Cells come from positions in the trace; a trace restricted to the valid patches of a padded
  LLaVA-NeXT crop renumbers them, so there the cells are only approximately square.
* ``T_v`` uses the paper's 9/18 of 28 split (``select`` does not know the depth L);
  ``schedule`` then fits the last LLM keep so that the average at the actual depth rounds to T.
* Recycling on every image. The reference recycles in its multi-crop (AnyRes) branch, the
  one LLaVA-OneVision runs; its single-tensor branch keeps a plain top-k, and one crop in the
  spatial branch is not pruned. LLaVA-1.5 feeds one crop, and we keep the paper's method.
* The LLM keep rounds half up from the share; the reference removes ``round(n * (1 - share))``
  (the two can differ by one token).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from ..errors import FlowcutError
from .base import Kind, LLMMethod, LLMScoreContext, LLMStage, Selection, VisionMethod, VisionTrace
from .fastv import last_token_attention
from .schedule import BudgetMode, check_request, fit_last, round_half_up, scale_layers

PAPER_DEPTH = 28  # Qwen2-7B in LLaVA-OneVision
PAPER_LLM_LAYERS = (9, 18)  # illava_llm_k

# llava_onevision_training_free.py: keep ratio -> (illava_vit_t, illava_vit_m, illava_vit_r,
# illava_llm_r); each LLM share is of the visual tokens present at that layer
RELEASES: dict[str, tuple[float, float, float, tuple[float, float]]] = {
    "10%": (39.26492840997221, 17.386981849158786, 0.11661529508161146, (1.0, 0.6011)),
    "25%": (34.759552803070484, 15.580797034937687, 0.2651026358526424, (0.9833433139039235, 0.8773258179532721)),
    "50%": (28.683047941520474, 11.756787150848968, 0.7233201448753168, (0.748747637472693, 0.487)),
}


def recycle_select(feats: Tensor, score: Tensor, grid: tuple[int, int], keep: int, m: float) -> Selection:
    """Keep ``keep`` tokens per image: top patches plus one recycled token per pruned cell.

    Args:
        feats: [B, N, D] patch features.
        score: [B, N] patch importance (higher = keep).
        grid: (rows, cols), N == rows * cols.
        keep: tokens per image, at least the number of cells.
        m: cell side in patches (may be fractional, as in the reference).

    Returns:
        Selection with ``indices`` [B, keep] ascending (plain patches and the recycled tokens'
        positions) and ``tokens`` [B, keep, D] aligned with them.
    """
    b, n, _ = feats.shape
    rows, cols = grid
    pos = torch.arange(n, device=feats.device)
    cell_cols = math.floor((cols - 1) / m) + 1
    cell = torch.div(pos // cols, m, rounding_mode="floor").long() * cell_cols
    cell += torch.div(pos % cols, m, rounding_mode="floor").long()
    n_cells = int(cell.max()) + 1
    if keep < n_cells:
        raise FlowcutError("budget", f"VFlowOpt keeps one token per recycling cell: {keep} < {n_cells} cells")
    out_idx, out_tok = [], []
    for i in range(b):
        order = score[i].float().argsort(descending=True, stable=True)
        rank = torch.empty_like(order)
        rank[order] = pos
        # a cell holds pruned patches while its worst-ranked patch is at rank >= p
        worst = torch.full((n_cells,), -1, device=feats.device).scatter_reduce(0, cell, rank, "amax")
        total = pos + (worst[None, :] >= pos[:, None]).sum(dim=1)  # plain p + cells recycled, per p
        plain = int((total <= keep).nonzero().max())  # steps of 0 or 1: total[plain] == keep
        tokens = feats[i].clone()
        kept = [order[:plain]]
        pruned = order[plain:]  # descending importance: the first of each cell is its anchor
        for c in cell[pruned].unique():
            members = pruned[cell[pruned] == c]
            w = score[i, members].float()
            w = w / w.sum().clamp_min(1e-30)
            tokens[members[0]] = (w[:, None] * feats[i, members].float()).sum(dim=0).to(feats.dtype)
            kept.append(members[:1])
        idx = torch.cat(kept).sort().values
        out_idx.append(idx)
        out_tok.append(tokens[idx])
    return Selection(indices=torch.stack(out_idx), tokens=torch.stack(out_tok))


@dataclass
class VFlowOpt(VisionMethod, LLMMethod):
    """VFlowOpt with one of the released configurations; a vision stage, then its LLM stages.

    The plumbing runs ``select`` on the vision side, then treats the method as an
    :class:`LLMMethod` whose ``schedule`` gets ``n_visual`` = the ``T_v`` tokens kept.
    """

    name = "vflowopt"
    kind: ClassVar[Kind] = "vision"  # the vision stage runs first; the LLM stage follows
    version = 2  # 2: LLM cuts ranked by the vision importance map, releases (2026-12-03)
    # the searched configuration (t, m and the LLM shares; its vision keep follows from the budget)
    release: str = "10%"
    alpha_v: float = 0.0  # weight of the patch-entropy term; 0 (off) in all released configs
    budget_mode: BudgetMode = "layer_average"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha_v != 0.0:
            raise FlowcutError("alpha_v", "the entropy term is not implemented", "0.0")
        if self.release not in RELEASES:
            raise FlowcutError("release", f"unknown release {self.release!r}", sorted(RELEASES))

    @property
    def m(self) -> float:
        """Recycling cell side in patches (2x2 cells on a 24x24 or 27x27 grid in the 10% release)."""
        return RELEASES[self.release][1]

    @property
    def llm_ratios(self) -> tuple[float, float]:
        """Shares of the present visual tokens kept before layers 9 and 18 of 28."""
        return RELEASES[self.release][3]

    def _after_vision(self) -> float:
        """Layer average of the visual tokens, as a multiple of ``T_v``, at the paper's depth."""
        (a, b), (r1, r2) = PAPER_LLM_LAYERS, self.llm_ratios
        return (a + (b - a) * r1 + (PAPER_DEPTH - b) * r1 * r2) / PAPER_DEPTH

    def vision_keep(self, budget: int, n_patches: int) -> int:
        """``T_v``: tokens the vision stage keeps so that the LLM side meets ``budget``."""
        r1, r2 = self.llm_ratios
        t_v = budget / (r1 * r2) if self.budget_mode == "after_prune" else budget / self._after_vision()
        return min(max(round_half_up(t_v), budget), n_patches)

    def select(self, trace: VisionTrace, budget: int) -> Selection:
        """Keep ``vision_keep(budget, N)`` tokens per image (see :func:`recycle_select`)."""
        n = trace.feats.shape[1]
        keep = self.vision_keep(budget, n)
        if keep >= n:
            b = trace.feats.shape[0]
            return Selection(indices=torch.arange(n, device=trace.feats.device).expand(b, n))
        importance = trace.relay_attn.float().mean(dim=1)
        sel = recycle_select(trace.feats, importance, trace.grid, keep, self.m)
        sel.importance = importance  # the LLM stages rank by it again
        return sel

    def schedule(self, budget: int, num_layers: int, n_visual: int) -> list[LLMStage]:
        """A stage before layers 9 and 18 of 28 (scaled to the depth) for each share below 1.

        Args:
            n_visual: the ``T_v`` tokens the vision stage kept.
        """
        check_request(self.budget_mode, budget, n_visual)
        shares = [share for share in self.llm_ratios if share < 1.0]
        paper = [layer for layer, share in zip(PAPER_LLM_LAYERS, self.llm_ratios, strict=True) if share < 1.0]
        stages, present = [], n_visual
        for layer, share in zip(scale_layers(paper, num_layers, PAPER_DEPTH), shares):  # shallow: fewer stages
            present = round_half_up(present * share)
            stages.append(LLMStage(layer=layer, keep=present, score_layer=layer - 1))
        if self.budget_mode == "after_prune" and stages:
            return [*stages[:-1], LLMStage(stages[-1].layer, budget, stages[-1].score_layer)]
        return fit_last(stages, budget, n_visual, num_layers)

    def score(self, stage: LLMStage, ctx: LLMScoreContext) -> Tensor:
        """[B, P] the vision stage's importance of each visual token; without it, the last
        prompt token's attention, mean over heads."""
        if ctx.vision_scores is not None:
            return ctx.vision_scores
        return last_token_attention(ctx)
