"""SparseVLM: text-guided visual token sparsification inside the LLM, with token recycling.

Paper: Zhang et al., "SparseVLM: Visual Token Sparsification for Efficient Vision-Language
Model Inference", arXiv 2410.04417 (ICML 2025). Reference code: Gumpest/SparseVLMs, v1.0
(``llava/model/language_model/modelling_sparse_llama.py``, ``score.py``, ``utils.py``).

* Raters, once at the LLM input: ``s_t`` = mean over visual v of softmax over text t of
  ``v . t``; raters = text tokens after the image with ``s_t > mean(s)``.
* At each pruning location (layers 2, 6, 15): score = that layer's attention over its
  input, rows = raters, mean over heads and raters; the visual tokens are cut to the stage's
  keep from that layer on.
* Recycling: of the dropped visual tokens the top 30% (+1) by score are clustered with
  DPC-kNN into ``floor(n / 10) + 1`` clusters; each cluster's mean is kept as a token.

Deviations from the reference code, on purpose:

* Token counts. A stage's ``keep`` is every visual token it leaves, recycled ones included
  (:meth:`SparseVLM.recycle_count` splits it). At L = 32, N = 576 and an official budget
  the stages are the reference's: each v1.0 list entry plain plus the tokens recycled on top
  of it (``v_token_num = pred_score_vis.sum() + cluster_num``), 64 -> 82 / 32 / 18,
  128 -> 312 / 117 / 39, 192 -> 309 / 204 / 113, whose layer averages (64.81, 128.63,
  192.03) are what the reference logs as "Equal Tokens" (``int`` of them). (An earlier
  version of this module, after Gumpest/SparseVLMs#33, counted the recycled tokens inside
  the list entries; #33 took 10% of the dropped tokens as clusters where the code takes 10%
  of the top 30%.) Other depths and budgets scale the nearest list by one factor and fit the
  last keep so that the average rounds to T.
* Where the cut lands: the reference scores at layer ``loc``, lets layer ``loc`` run on all
  tokens and cuts (and clusters) its output; its accounting above counts layer ``loc`` at
  the reduced size, so we cut *before* layer ``loc``, scoring with layer ``loc``'s attention
  on its input and clustering that input (Gumpest/SparseVLMs#29, #35 dispute the count).
* Recycled tokens sit in the prompt slots of the highest-scored dropped tokens, in the order
  of their cluster centres' positions; the reference appends them after the kept visual
  tokens.
* Positions: renumbered without gaps after each cut, as v1.0 truncates its position ids
  (``positions="original"`` keeps them, as v2.0's "Keep Position ID" does).
* The rater-to-text softmax masks non-text columns per batch row; the reference's random
  density jitter in DPC-kNN is replaced by a deterministic tie-break (earlier index wins).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .base import LLMMethod, LLMScoreContext, LLMStage, Positions
from .schedule import (
    BudgetMode,
    check_request,
    fit_last,
    layer_average,
    round_half_up,
    scale_layers,
    solve_increasing,
)

# score.py, v1.0 (RETAIN_TOKN -> keeps after pruning locations 2, 6, 15)
OFFICIAL_KEEPS: dict[int, tuple[int, ...]] = {
    64: (66, 30, 17),
    96: (238, 48, 26),
    128: (303, 110, 36),
    192: (300, 200, 110),
}


def text_raters(embeds: Tensor, visual: Tensor, text_after: Tensor) -> Tensor:
    """Rater text tokens, chosen once from the LLM input embeddings.

    Args:
        embeds: [B, P, D] input embeddings.
        visual: [B, P] bool, visual tokens.
        text_after: [B, P] bool, text tokens after the image (the rated question span).

    Returns:
        [B, P] bool: ``text_after`` tokens whose ``s_t`` (mean over visual v of the softmax
        over text t of ``v . t``) exceeds the mean of ``s`` over ``text_after``.
    """
    x = embeds.float()
    logits = (x @ x.transpose(1, 2)).masked_fill(~text_after[:, None, :], float("-inf"))  # [B, v, t]
    probs = logits.softmax(dim=-1).nan_to_num(0.0)  # rows of a batch item without text are all -inf
    w = visual.float()[..., None]
    s = (probs * w).sum(dim=1) / w.sum(dim=1).clamp_min(1)  # [B, P]
    mean = (s * text_after).sum(dim=1, keepdim=True) / text_after.sum(dim=1, keepdim=True).clamp_min(1)
    return text_after & (s > mean)


def dpc_knn(x: Tensor, n_clusters: int, k: int) -> tuple[Tensor, Tensor]:
    """Density-peak clustering with k-nearest-neighbour density (the reference's
    ``cluster_and_merge`` without the merge).

    Args:
        x: [n, D] points.
        n_clusters: number of centres (clamped to n).
        k: neighbours for the density (the reference passes ``n_clusters``).

    Returns:
        assignment: [n] cluster index in ``0..n_clusters-1`` of every point.
        centres: [n_clusters] indices into ``x`` of the centres; centre i has assignment i.
    """
    n, d = x.shape
    n_clusters = min(n_clusters, n)
    xf = x.float()
    dist = torch.cdist(xf, xf, compute_mode="donot_use_mm_for_euclid_dist") / d**0.5
    knn = dist.topk(min(k, n), dim=-1, largest=False).values
    density = (-(knn**2).mean(dim=-1)).exp()
    idx = torch.arange(n, device=x.device)
    # j outranks i if denser, or as dense and earlier: a deterministic stand-in for the jitter
    denser = density[None, :] > density[:, None]
    tie = (density[None, :] == density[:, None]) & (idx[None, :] < idx[:, None])
    delta = dist.masked_fill(~(denser | tie), float(dist.max())).min(dim=-1).values
    centres = (delta * density).topk(n_clusters).indices
    assignment = dist[centres].argmin(dim=0)
    assignment[centres] = torch.arange(n_clusters, device=x.device)
    return assignment, centres


def _clusters_for(n_dropped: int) -> int:
    """Recycled tokens the reference makes from ``n_dropped`` dropped visual tokens."""
    if n_dropped <= 0:
        return 0
    candidates = 3 * n_dropped // 10 + 1  # int(0.3 * n) + 1 without float error
    return candidates // 10 + 1


@dataclass
class SparseVLM(LLMMethod):
    """SparseVLM v1.0 with recycled tokens counted inside the budget.

    Plumbing contract (no extra step beyond the protocol):

    1. At the LLM input, ``text_raters(embeds, visual, text_after)`` gives ``ctx.text_raters``
       (positions must follow the sequence as it is cut).
    2. At ``score_layer``: ``score`` ranks the visual tokens; the plumbing takes the usual
       top-``keep`` positions and calls ``merge`` with them.
    3. ``merge`` splits those ``keep`` positions: the best ``keep - r`` stay as they are
       (plain top-k), and the rows of the ``r`` lowest-scored ones, ``r = recycle_count(keep,
       n_visual)``, are overwritten with the recycled cluster means (clusters in order of
       their centre's position). So exactly ``keep`` visual tokens survive, ``r`` of them
       recycled; the plumbing must *not* subtract ``r`` itself. ``merge`` clusters
       ``ctx.hidden``, the states being cut: the input of the pruning layer (see the module
       docstring for the reference's output of it).
    """

    name = "sparsevlm"
    # v1.0 pruning_loc for a 32-layer LLM (layers that see the reduced set, see the docstring)
    layers: tuple[int, ...] = (2, 6, 15)
    recycle: bool = True  # v1.0 merges dropped tokens; v2.0 ("USE_VERSION=2_0") does not
    version = 2  # 2: the reference's counts at 32 layers, contiguous positions (2026-12-03)
    budget_mode: BudgetMode = "layer_average"
    positions: Positions = "contiguous"  # v1.0 truncates its position ids; v2.0 keeps them ("original")

    text_raters = staticmethod(text_raters)

    def schedule(self, budget: int, num_layers: int, n_visual: int) -> list[LLMStage]:
        """Stages ``LLMStage(loc, k_i, loc)`` with keeps shaped like the nearest official list.

        Raises:
            FlowcutError: ``budget`` when the layer average cannot reach ``budget``.
        """
        check_request(self.budget_mode, budget, n_visual)
        cuts = scale_layers(list(self.layers), num_layers)
        if not cuts:
            return fit_last([], budget, n_visual, num_layers)
        nearest = min(OFFICIAL_KEEPS, key=lambda t: (abs(t - budget), t))
        shape = OFFICIAL_KEEPS[nearest][: len(cuts)]

        def stages(c: float) -> list[LLMStage]:
            keeps = [min(max(round_half_up(c * k), 1), n_visual) for k in shape]
            return [LLMStage(layer, k, layer) for layer, k in zip(cuts, keeps, strict=True)]

        official = (num_layers, n_visual, tuple(self.layers)) == (32, 576, (2, 6, 15))
        if official and budget in OFFICIAL_KEEPS and self.budget_mode == "layer_average":
            if not self.recycle:
                return fit_last(stages(1.0), budget, n_visual, num_layers)
            # the reference's own count: each list entry plain, its recycled tokens on top
            out, present = [], n_visual
            for stage in stages(1.0):
                present = stage.keep + _clusters_for(present - stage.keep)
                out.append(LLMStage(stage.layer, present, stage.score_layer))
            return out

        if self.budget_mode == "after_prune":
            *head, last = stages(budget / shape[-1])
            return [*head, LLMStage(last.layer, budget, last.score_layer)]
        c = solve_increasing(
            lambda c: layer_average(stages(c), n_visual, num_layers), budget, 0.0, n_visual / min(shape)
        )
        return fit_last(stages(c), budget, n_visual, num_layers)

    def recycle_count(self, keep: int, n_visual: int) -> int:
        """How many of a stage's ``keep`` survivors are recycled tokens.

        The largest plain count ``p`` with ``p + clusters(n_visual - p) <= keep`` (equality
        holds: one more plain token removes at most one cluster); at least one plain token.

        Args:
            keep: visual tokens the stage keeps in total.
            n_visual: visual tokens present before the cut.
        """
        if not self.recycle or keep >= n_visual:
            return 0
        for plain in range(keep - 1, 0, -1):
            if plain + _clusters_for(n_visual - plain) <= keep:
                return keep - plain
        return keep - 1

    def _raters(self, ctx: LLMScoreContext) -> Tensor:
        """[B, P] bool raters; falls back to the text after the last visual token (or the last
        prompt token alone) for rows without raters."""
        pos = torch.arange(ctx.visual.shape[1], device=ctx.visual.device)[None, :]
        last_visual = torch.where(ctx.visual, pos, -1).amax(dim=1, keepdim=True)
        fallback = (pos > last_visual) & (pos <= ctx.last[:, None]) & ~ctx.visual
        fallback |= ~fallback.any(dim=1, keepdim=True) & (pos == ctx.last[:, None])
        if ctx.text_raters is None:
            return fallback
        return torch.where(ctx.text_raters.any(dim=1, keepdim=True), ctx.text_raters, fallback)

    def score(self, stage: LLMStage, ctx: LLMScoreContext) -> Tensor:
        """[B, P] attention from the raters, mean over heads and raters."""
        raters = self._raters(ctx)
        n_q = max(int(raters.sum(dim=1).max()), 1)
        # rater positions first, ascending; rows with fewer raters are padded and weighted 0
        order = torch.argsort((~raters).to(torch.uint8), dim=1, stable=True)[:, :n_q]
        weight = raters.gather(1, order).float()[..., None]  # [B, Q, 1]
        attn = ctx.attention(order).float().mean(dim=1)  # [B, Q, P]
        return (attn * weight).sum(dim=1) / weight.sum(dim=1).clamp_min(1)

    def merge(self, stage: LLMStage, ctx: LLMScoreContext, scores: Tensor, keep: Tensor) -> Tensor | None:
        """[B, P, D] ``ctx.hidden`` with recycled cluster means in the lowest-scored kept rows."""
        if not self.recycle:
            return None
        out, changed, n_keep = ctx.hidden.clone(), False, keep.shape[1]
        for b in range(keep.shape[0]):
            r = self.recycle_count(n_keep, int(ctx.visual[b].sum()))
            if r == 0:
                continue
            ranked = keep[b][scores[b, keep[b]].argsort(descending=True, stable=True)]
            plain, slots = ranked[: n_keep - r], ranked[n_keep - r :].sort().values
            dropped_mask = ctx.visual[b].clone()
            dropped_mask[plain] = False
            dropped = dropped_mask.nonzero().squeeze(1)
            n_cand = min(3 * dropped.numel() // 10 + 1, dropped.numel())
            cand = dropped[scores[b, dropped].float().topk(n_cand).indices]
            n_clusters = min(r, n_cand)
            x = ctx.hidden[b, cand].float()
            assignment, centres = dpc_knn(x, n_clusters, k=n_clusters)
            sums = x.new_zeros(n_clusters, x.shape[1]).index_add_(0, assignment, x)
            means = sums / torch.bincount(assignment, minlength=n_clusters).clamp_min(1)[:, None]
            out[b, slots[:n_clusters]] = means[cand[centres].argsort()].to(out.dtype)
            changed = True
        return out if changed else None
