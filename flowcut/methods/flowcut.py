"""FlowCut: information-flow-aware pruning inside the vision encoder.

Paper: Tong et al., "FlowCut: Rethinking Redundancy via Information Flow for Efficient
Vision-Language Models", arXiv 2505.19536 (NeurIPS 2025). Reference code:
TungChintao/FlowCut (``flowcut/modeling_clip_flowcut.py``, ``flowcut/utils_flowcut.py``).

Per layer, from that layer's attention (scores) and after its output (pruning):

* ``a`` = [CLS]-query attention over patches, head mean;
* ``s`` = per head softmax over all tokens of the *unscaled* dot product of the [CLS]
  value with every value (the code's form; the paper speaks of cosine similarity),
  head mean, patches only;
* score = (a / sum a + s / sum s) * L1(head-mean value); cumulative
  S = 0.5 * S + 0.5 * score from the first layer on;
* every second layer counted back from the feature layer (``rpl`` even), prune
  r = (N - budget) / sqrt(rpl) * (1 - H(a)^2 / log(N)^2) patches (entropy-adaptive),
  all excess at ``rpl == 0``; keep the top patches by S, re-sorted spatially.

Deviations from the reference code, on purpose:

* The pruning count ``r`` is the reference's max over the batch, but the tower loop runs
  encoder methods one image at a time (``per_image = True``), so an image's kept set never
  depends on its batch-mates (the reference at batch size 1). LLaVA-NeXT's crops of one
  image (with the same budget share) run as one batch and share ``r``, as in the reference.
* Towers without [CLS] (Qwen2-VL): the relay is the mean query and the score is
  ``a * L1(v)`` (no semantic term), as ``FlowCut_Qwen`` does; units are 2x2 merge groups
  so that the merger still sees whole groups (the reference keeps 8x tokens in the tower
  and cuts again inside the LLM).
* LLaVA-NeXT: each crop is pruned in the tower to its share of the per-image budget; the
  reference's second cut (at LLM layer 1, by the last instruction token) is not applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .base import EncoderMethod, LayerView, relay_attention


def unit_scores(view: LayerView) -> tuple[Tensor, Tensor]:
    """Per-unit FlowCut score and relay attention for one layer.

    Returns:
        score: [B, n] (a / sum a + s / sum s) * L1(v), over units (patches or groups).
        attn: [B, n] head-mean relay attention over units.
    """
    attn_all = relay_attention(view).mean(dim=1)  # [B, n_tokens]
    # fp32 accumulation without an fp32 copy of the layer's values (see relay_attention)
    v_mean = view.v.mean(dim=1, dtype=torch.float32)  # [B, n_tokens, hd]
    v_l1 = v_mean.abs().sum(dim=-1)
    if view.has_cls:
        cls_v = view.v[:, :, :1]
        sem = (cls_v @ view.v.transpose(-1, -2)).float().softmax(dim=-1)[:, :, 0].mean(dim=1)
        a, s, l1 = attn_all[:, 1:], sem[:, 1:], v_l1[:, 1:]
        score = (a / a.sum(-1, keepdim=True) + s / s.sum(-1, keepdim=True)) * l1
    else:
        a, l1 = attn_all, v_l1
        score = a * l1
    if view.group > 1:
        b = score.shape[0]
        score = score.view(b, -1, view.group).sum(-1)
        a = a.reshape(b, -1, view.group).sum(-1)
    return score, a


def adaptive_prune_count(attn: Tensor, rpl: int, target: int) -> Tensor:
    """[B] number of units to prune at this layer, from the entropy of ``attn`` [B, n]."""
    n = attn.shape[-1]
    p = attn / attn.sum(dim=-1, keepdim=True)
    entropy = -(p * p.clamp_min(1e-30).log()).sum(dim=-1)
    ratio = entropy / math.log(n) if n > 1 else torch.zeros_like(entropy)
    return ((n - target) / math.sqrt(rpl) * (1 - ratio**2)).round().long()


@dataclass
class _State:
    budget: int
    num_layers: int
    cumulative: Tensor | None = None
    valid: Tensor | None = None  # [B, n] units the model keeps at all (LLaVA-NeXT's unpadding)


@dataclass
class FlowCut(EncoderMethod):
    """FlowCut with the reference defaults (0.5/0.5 cumulative score, prune every 2nd layer)."""

    name = "flowcut"
    per_image = True  # see the module docstring: no batch-dependent kept sets
    momentum: float = 0.5  # weight of the past in the cumulative score (reference: 0.5)

    def start(self, batch: int, n_units: int, budget: int, num_layers: int, valid: Tensor | None) -> _State:
        return _State(budget=budget, num_layers=num_layers, valid=valid)

    def step(self, state: _State, layer: int, view: LayerView) -> Tensor | None:
        n_units = (view.k.shape[2] - int(view.has_cls)) // view.group
        # units the model would drop anyway (LLaVA-NeXT's padded margins) never count
        n_valid = n_units if state.valid is None else int(state.valid.sum(1).max())
        if n_valid <= state.budget:
            return None
        score, attn = unit_scores(view)
        if state.cumulative is None:
            state.cumulative = score
        else:
            state.cumulative = self.momentum * state.cumulative + (1 - self.momentum) * score
        # the feature layer is the last one run; the reference's select_layer is its index
        rpl = state.num_layers - 2 - layer
        if rpl < 0 or rpl % 2:
            return None
        if rpl == 0:
            new_len = state.budget
        else:
            r = adaptive_prune_count(attn, rpl, state.budget)
            new_len = max(n_valid - int(r.max()), state.budget)
        if new_len >= n_units:
            return None
        ranked = state.cumulative
        if state.valid is not None:
            ranked = ranked.masked_fill(~state.valid, float("-inf"))
        keep = ranked.topk(new_len, dim=-1).indices.sort(dim=-1).values
        state.cumulative = state.cumulative.gather(1, keep)
        if state.valid is not None:
            state.valid = state.valid.gather(1, keep)
        return keep

    def finish(self, state: _State, feats: Tensor) -> Tensor | None:
        n = feats.shape[1]
        if n <= state.budget:
            return None
        # towers shallower than two layers never reach rpl == 0: cut by the last scores;
        # with nothing scored (budget = every valid unit) keep the valid units in order
        ranked = state.cumulative if state.cumulative is not None else feats.new_zeros(feats.shape[:2])
        if state.valid is not None:
            ranked = ranked.masked_fill(~state.valid, float("-inf"))
        return ranked.topk(state.budget, dim=-1).indices.sort(dim=-1).values
