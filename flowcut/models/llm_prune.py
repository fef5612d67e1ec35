"""Pruning inside an unmodified transformers decoder, through forward pre-hooks.

At prefill, a pre-hook on every decoder layer (1) slices the layer's keyword arguments
(mask, rotary embeddings, position ids) to the tokens still present, (2) lets the method
score at its scoring layers, and (3) cuts the hidden states at its stage layers. Kept
tokens keep their original positions (FastV's in-place mode), or, for a method whose
``positions`` is ``"contiguous"`` (PDrop's and SparseVLM v1.0's references), are renumbered
without gaps after each cut, and a decoded token's position at a layer drops by the tokens
that layer lost. Each layer's KV cache then holds only what that layer saw; during decoding
the same hook narrows the mask columns to that layer's kept keys. :class:`PruningCache`
reports the *logical* length, so ``generate`` keeps counting positions and mask columns in
the unpruned coordinates.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import Tensor, nn
from transformers import DynamicCache

from ..errors import FlowcutError
from ..methods.base import LLMMethod, LLMScoreContext, LLMStage


class PruningCache(DynamicCache):
    """A DynamicCache whose lengths count the tokens a layer dropped at prefill."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dropped: dict[int, int] = {}

    def get_seq_length(self, layer_idx: int = 0) -> int:
        n = super().get_seq_length(layer_idx)
        return n + self.dropped.get(layer_idx, 0) if n else 0

    def get_mask_sizes(self, query_length: int, layer_idx: int) -> tuple[int, int]:
        kv_length, kv_offset = super().get_mask_sizes(query_length, layer_idx)
        if super().get_seq_length(layer_idx):
            kv_length += self.dropped.get(layer_idx, 0)
        return kv_length, kv_offset


def _rows(x: Tensor, idx: Tensor, dim: int) -> Tensor:
    """Gather ``idx`` [B, k] along ``dim`` of ``x`` whose dim 0 (or 1 for [3, B, ...]) is batch."""
    shape = list(x.shape)
    shape[dim] = idx.shape[-1]
    view = [1] * x.dim()
    view[0], view[dim] = idx.shape[0], idx.shape[-1]
    return x.gather(dim, idx.view(view).expand(shape))


class DecoderPruner:
    """Hooks that apply a vision drop mask and/or an LLM method's stages to one generate call.

    Args:
        layers: the decoder layers (``language_model.layers``).
        visual: [B, P] bool, visual positions of the prompt.
        pad: [B, P] bool, True where the prompt is real (the 2D attention mask).
        method: LLM-side method, or None.
        stages: its schedule.
        drop: [B, P] bool, tokens to drop before layer 0 (vision-side selection applied in
            the LLM, as for Qwen2-VL), or None.
        raters: [B, P] bool text raters (SparseVLM), or None.
        cache: the PruningCache passed to ``generate``.
        vision_scores: [B, P] the vision stage's importance per prompt position (VFlowOpt), or None.
        rotary_emb: the text model's rotary embedding module when its positions are 1D (not
            Qwen2-VL's multimodal ones); ``method.positions == "contiguous"`` needs it.
    """

    def __init__(
        self,
        layers: nn.ModuleList,
        visual: Tensor,
        pad: Tensor,
        method: LLMMethod | None,
        stages: list[LLMStage],
        drop: Tensor | None,
        raters: Tensor | None,
        cache: PruningCache,
        vision_scores: Tensor | None = None,
        rotary_emb: nn.Module | None = None,
    ) -> None:
        self.layers, self.visual, self.pad, self.method = layers, visual, pad, method
        self.stages = {s.layer: s for s in stages}
        self.scorers = {s.score_layer: s for s in stages}
        self.drop, self.raters, self.cache, self.vision_scores = drop, raters, cache, vision_scores
        # renumbering needs 1D rotary positions: a model with multimodal ones (Qwen2-VL) passes
        # no rotary_emb and keeps the original positions, as no reference defines the other
        contiguous = getattr(method, "positions", "original") == "contiguous"
        self.contiguous = contiguous and rotary_emb is not None and bool(stages)
        self.rotary_emb = rotary_emb
        self.prompt_len = visual.shape[1]
        self.keep: Tensor | None = None  # [B, P_cur] original positions alive at prefill
        self.layer_keep: dict[int, Tensor] = {}
        self.scores: dict[int, Tensor] = {}
        self.visual_per_layer: list[int] = []
        self.handles: list[Any] = []
        mod = sys.modules[type(layers[0].self_attn).__module__]
        self.rotary = mod.apply_rotary_pos_emb

    def __enter__(self) -> DecoderPruner:
        for i, layer in enumerate(self.layers):
            self.handles.append(
                layer.register_forward_pre_hook(lambda m, a, k, i=i: self._pre(i, a, k), with_kwargs=True)
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self.handles:
            h.remove()

    # -- the hook -----------------------------------------------------------------------
    def _pre(self, i: int, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        hidden = args[0] if args else kwargs["hidden_states"]
        if i == 0 and hidden.shape[1] == self.prompt_len and not self.layer_keep:
            b = hidden.shape[0]
            self.keep = torch.arange(self.prompt_len, device=hidden.device).expand(b, -1)
        if self.keep is None or len(self.layer_keep) == len(self.layers):
            return args, self._decode_kwargs(i, kwargs)
        if i == 0 and self.drop is not None:
            hidden = self._cut(hidden, ~self.drop)
        kw = self._slice(kwargs)
        if i in self.scorers and self.method is not None:
            stage = self.scorers[i]
            ctx = self._context(i, hidden, kw)
            self.scores[stage.layer] = (self.method.score(stage, ctx), ctx)  # type: ignore[assignment]
        if i in self.stages and self.method is not None:
            hidden = self._stage(i, hidden)
            kw = self._slice(kwargs)
        assert self.keep is not None
        self.layer_keep[i] = self.keep
        self.cache.dropped[i] = self.prompt_len - self.keep.shape[1]
        self.visual_per_layer.append(int(self.visual.gather(1, self.keep)[0].sum()))
        args = (hidden, *args[1:]) if args else args
        if not args:
            kw["hidden_states"] = hidden
        return args, kw

    def _cut(self, hidden: Tensor, alive_orig: Tensor) -> Tensor:
        """Keep the current positions whose original position is alive ([B, P] bool)."""
        assert self.keep is not None
        alive = alive_orig.gather(1, self.keep)
        counts = alive.sum(1)
        if not bool((counts == counts[0]).all()):
            raise RuntimeError("rows of a batch must keep the same number of tokens")
        local = alive.float().topk(int(counts[0]), dim=1).indices.sort(1).values
        self.keep = self.keep.gather(1, local)
        return _rows(hidden, local, 1)

    def _stage(self, i: int, hidden: Tensor) -> Tensor:
        stage = self.stages[i]
        assert self.keep is not None and self.method is not None
        scores, ctx = self.scores.pop(i)  # type: ignore[misc]
        vis = self.visual.gather(1, self.keep)
        n_vis = int(vis[0].sum())
        if stage.keep >= n_vis:
            return hidden
        ranked = scores.float().masked_fill(~vis, float("-inf"))
        top = ranked.topk(stage.keep, dim=1).indices
        keep_local = (~vis).clone()
        keep_local.scatter_(1, top, True)
        ctx.hidden = hidden  # merge the states being cut (this layer's input), which is what moves on
        replacement = self.method.merge(stage, ctx, scores, top)
        if replacement is not None and ctx.hidden.shape[1] == hidden.shape[1]:
            hidden = torch.where(keep_local[..., None], replacement.to(hidden.dtype), hidden)
        local = keep_local.float().topk(int(keep_local[0].sum()), dim=1).indices.sort(1).values
        self.keep = self.keep.gather(1, local)
        return _rows(hidden, local, 1)

    def _slice(self, kwargs: dict) -> dict:
        """Narrow the full-length prefill kwargs to the current ``keep`` positions."""
        keep = self.keep
        assert keep is not None
        if keep.shape[1] == self.prompt_len:
            return kwargs
        kw = dict(kwargs)
        mask = kw.get("attention_mask")
        if isinstance(mask, Tensor):
            m = mask.expand(keep.shape[0], *mask.shape[1:])
            kw["attention_mask"] = _rows(_rows(m.transpose(1, 2), keep, 1).transpose(1, 2), keep, 3)
        pe = kw.get("position_embeddings")
        if pe is not None:
            kw["position_embeddings"] = tuple(_rows(t.expand(keep.shape[0], *t.shape[1:]), keep, 1) for t in pe)
        pos = kw.get("position_ids")
        if isinstance(pos, Tensor):
            if pos.dim() == 2:
                kw["position_ids"] = _rows(pos.expand(keep.shape[0], -1), keep, 1)
            else:  # [3 or 4, B, P] multimodal rope ids
                kw["position_ids"] = torch.stack([_rows(p.expand(keep.shape[0], -1), keep, 1) for p in pos])
        if self.contiguous:
            # keep is ascending, so keep[j] - j positions before the j-th kept one were cut
            kw = self._renumber(kw, keep - torch.arange(keep.shape[1], device=keep.device))
        return kw

    def _renumber(self, kw: dict, cut: Tensor | int) -> dict:
        """``kw`` with its (already narrowed) position ids lowered by ``cut``, the tokens cut before
        each, and the rotary embeddings computed for the new ids."""
        assert self.rotary_emb is not None
        pos = kw.get("position_ids")
        if not isinstance(pos, Tensor) or pos.dim() != 2:
            raise FlowcutError("positions", "contiguous positions need 1D position ids (not multimodal rotary ones)",
                               ["original"])  # fmt: skip
        kw = dict(kw)
        kw["position_ids"] = pos.expand(self.pad.shape[0], -1) - cut
        kw["position_embeddings"] = self.rotary_emb(kw["position_embeddings"][0], kw["position_ids"])
        return kw

    def _decode_kwargs(self, i: int, kwargs: dict) -> dict:
        mask = kwargs.get("attention_mask")
        kept = self.layer_keep.get(i)
        if kept is None or kept.shape[1] == self.prompt_len:
            return kwargs
        b, kw = kept.shape[0], dict(kwargs)
        if isinstance(mask, Tensor):  # None when nothing needs masking (one row, no padding)
            new = torch.arange(self.prompt_len, mask.shape[-1], device=kept.device).expand(b, -1)
            kw["attention_mask"] = _rows(mask.expand(b, *mask.shape[1:]), torch.cat([kept, new], dim=1), 3)
        if self.contiguous:  # this layer lost prompt_len - kept tokens before every new one
            kw = self._renumber(kw, self.prompt_len - kept.shape[1])
        return kw

    # -- what a method may read ---------------------------------------------------------
    def _context(self, i: int, hidden: Tensor, kw: dict) -> LLMScoreContext:
        assert self.keep is not None
        layer = self.layers[i]
        attn = layer.self_attn
        keep = self.keep
        normed = layer.input_layernorm(hidden)
        b, p, _ = hidden.shape
        hd = attn.head_dim
        cos, sin = kw["position_embeddings"]
        pad = self.pad.gather(1, keep)
        visual = self.visual.gather(1, keep)
        real = pad.long()
        last = (real * torch.arange(p, device=hidden.device)).argmax(1)

        def keys_values(proj: nn.Module) -> Tensor:
            return proj(normed).view(b, p, -1, hd).transpose(1, 2)

        def attention(q_pos: Tensor) -> Tensor:
            q = _rows(normed, q_pos, 1)
            q = attn.q_proj(q).view(b, q_pos.shape[1], -1, hd).transpose(1, 2)
            k = keys_values(attn.k_proj)
            q_cos, q_sin = _rows(cos.expand(b, -1, -1), q_pos, 1), _rows(sin.expand(b, -1, -1), q_pos, 1)
            q, _ = self.rotary(q, q, q_cos, q_sin)
            _, k = self.rotary(k, k, cos.expand(b, -1, -1), sin.expand(b, -1, -1))
            k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
            logits = (q.float() @ k.float().transpose(-1, -2)) * attn.scaling
            allowed = (torch.arange(p, device=hidden.device)[None, None, :] <= q_pos[:, :, None]) & pad[:, None, :]
            probs = logits.masked_fill(~allowed[:, None], float("-inf")).softmax(-1)
            # a query on a left-padding position may attend to nothing: zeros, not NaN, since a method
            # that pads its query set with zero-weighted rows (SparseVLM's raters) multiplies them by 0
            return probs.nan_to_num(0.0)

        def values() -> Tensor:
            return keys_values(attn.v_proj)

        raters = self.raters.gather(1, keep) if self.raters is not None else None
        prior = self.vision_scores.gather(1, keep) if self.vision_scores is not None else None
        return LLMScoreContext(
            attention=attention,
            hidden=hidden,
            visual=visual,
            last=last,
            values=values,
            text_raters=raters,
            vision_scores=prior,
        )
