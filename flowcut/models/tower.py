"""Our own loop over a vision tower's layers, so methods can read and cut inside it.

The layers are the unmodified transformers modules; forward hooks on their q/k/v
projections give the methods what they read without recomputing anything. Two towers:
CLIP (LLaVA-1.5, LLaVA-NeXT: [CLS] + patches, batched) and Qwen2-VL's ViT (no [CLS],
one image at a time, 2x2 groups that its merger joins).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..methods.base import EncoderMethod, LayerView, Method, Selection, VisionMethod, VisionTrace


@dataclass
class TowerResult:
    """Output of the tower for a batch of images (or crops) sharing one budget.

    Attributes:
        tokens: [B, T, D] vision features to project (pre-projector), T == budget.
        indices: [B, K] kept positions in the original patch (or merge-group) grid.
        layer_tokens: tokens (incl. [CLS]) each run layer processed, for FLOPs.
        importance: [B, N] the method's patch importance (``Selection.importance``), or None.
        row_layer_tokens: per row, its own layer tokens when the rows ran apart (a per-image
            method, whose rows prune differently), else None.
    """

    tokens: Tensor
    indices: Tensor
    layer_tokens: list[int]
    importance: Tensor | None = None
    row_layer_tokens: list[list[int]] | None = None


@contextmanager
def capture_outputs(modules: dict[str, nn.Module]) -> Iterator[dict[str, Tensor]]:
    """Record the latest forward output of each named module while the block is open."""
    seen: dict[str, Tensor] = {}
    handles = []
    for name, mod in modules.items():

        def hook(_m: nn.Module, _i: object, out: Tensor, name: str = name) -> None:
            seen[name] = out

        handles.append(mod.register_forward_hook(hook))
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def _heads(x: Tensor, n_heads: int) -> Tensor:
    """[B, n, H*hd] -> [B, H, n, hd]."""
    b, n, _ = x.shape
    return x.view(b, n, n_heads, -1).transpose(1, 2)


def _gather(x: Tensor, idx: Tensor) -> Tensor:
    """Rows of [B, n, D] at [B, k] -> [B, k, D]."""
    return x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def layers_to_run(num_layers: int, feature_layer: int) -> int:
    """How many layers produce ``hidden_states[feature_layer]`` (index 0 is the embeddings)."""
    return feature_layer if feature_layer >= 0 else num_layers + 1 + feature_layer


def run_clip(
    vision_model: nn.Module,
    pixels: Tensor,
    feature_layer: int,
    method: Method,
    budget: int,
    valid: Tensor | None = None,
) -> TowerResult:
    """Run a CLIP vision transformer up to ``feature_layer`` and apply ``method``.

    Args:
        vision_model: ``CLIPVisionModel.vision_model`` (embeddings, pre_layrnorm, encoder).
        pixels: [B, 3, S, S] preprocessed crops.
        feature_layer: LLaVA's ``vision_feature_layer`` (-2 for LLaVA-1.5).
        method: any registered method; LLM-side methods get all patches here.
        budget: visual tokens to keep per crop (ignored by LLM-side methods).
        valid: [B, N] bool, patches the model keeps at all (LLaVA-NeXT drops the padded
            margin of grid crops); methods choose only among them. None = all.
    """
    layers = vision_model.encoder.layers
    n_run = layers_to_run(len(layers), feature_layer)
    h = vision_model.pre_layrnorm(vision_model.embeddings(pixels))
    b, n_tok, _ = h.shape
    n_patch = n_tok - 1
    side = int(round(n_patch**0.5))
    orig = torch.arange(n_patch, device=h.device).expand(b, n_patch)
    encoder = method if isinstance(method, EncoderMethod) else None
    state = encoder.start(b, n_patch, budget, n_run, valid) if encoder else None
    watch = range(n_run) if encoder else [n_run - 1]
    mods = {}
    for i in watch:
        attn = layers[i].self_attn
        mods.update({f"{i}q": attn.q_proj, f"{i}k": attn.k_proj, f"{i}v": attn.v_proj})
    layer_tokens = []
    with capture_outputs(mods) as seen:
        for i in range(n_run):
            layer_tokens.append(h.shape[1])
            h = layers[i](h, attention_mask=None)
            if encoder is None:
                continue
            attn = layers[i].self_attn
            nh = attn.num_heads
            view = LayerView(
                q=_heads(seen[f"{i}q"], nh),
                k=_heads(seen[f"{i}k"], nh),
                v=_heads(seen[f"{i}v"], nh),
                scale=attn.scale,
                has_cls=True,
            )
            keep = encoder.step(state, i, view)
            for part in "qkv":  # a layer's q/k/v are not needed after its step: free them now
                seen.pop(f"{i}{part}", None)
            if keep is not None:
                h = torch.cat([h[:, :1], _gather(h[:, 1:], keep)], dim=1)
                orig = orig.gather(1, keep)
        if encoder is not None:
            keep = encoder.finish(state, h[:, 1:])
            if keep is not None:
                h = torch.cat([h[:, :1], _gather(h[:, 1:], keep)], dim=1)
                orig = orig.gather(1, keep)
            return TowerResult(tokens=h[:, 1:], indices=orig, layer_tokens=layer_tokens)
        attn = layers[n_run - 1].self_attn
        nh = attn.num_heads
        q, k = _heads(seen[f"{n_run - 1}q"], nh), _heads(seen[f"{n_run - 1}k"], nh)
        relay = ((q[:, :, :1].float() @ k.float().transpose(-1, -2)) * attn.scale).softmax(-1)[:, :, 0, 1:]
    trace = VisionTrace(
        feats=h[:, 1:], relay_attn=relay, keys=k[:, :, 1:], cls_feat=h[:, 0], grid=(side, side), pixels=pixels
    )
    if valid is not None and not bool(valid.all()) and isinstance(method, VisionMethod):
        rows = range(trace.feats.shape[0])
        parts = [_apply_selection(method, _restrict(trace, r, valid[r]), budget, layer_tokens) for r in rows]
        for b_, part in enumerate(parts):
            at = valid[b_].nonzero().flatten()
            part.indices = at[part.indices]
            if part.importance is not None:  # back on the whole grid; padding patches rank last
                full = part.importance.new_full((1, valid.shape[1]), float("-inf"))
                part.importance = full.index_copy(1, at, part.importance)
        return TowerResult(
            tokens=torch.cat([p.tokens for p in parts]),
            indices=torch.cat([p.indices for p in parts]),
            layer_tokens=layer_tokens,
            importance=cat_or_none([p.importance for p in parts]),
        )
    return _apply_selection(method, trace, budget, layer_tokens)


def cat_or_none(parts: list[Tensor | None]) -> Tensor | None:
    return None if any(p is None for p in parts) else torch.cat(parts)  # type: ignore[arg-type]


def _restrict(trace: VisionTrace, b: int, valid: Tensor) -> VisionTrace:
    """Row ``b`` of ``trace`` with only its ``valid`` patches (positions renumbered)."""
    idx = valid.nonzero().flatten()
    return VisionTrace(
        feats=trace.feats[b : b + 1, idx],
        relay_attn=trace.relay_attn[b : b + 1, :, idx],
        keys=trace.keys[b : b + 1, :, idx],
        cls_feat=None if trace.cls_feat is None else trace.cls_feat[b : b + 1],
        grid=trace.grid,
        pixels=None if trace.pixels is None else trace.pixels[b : b + 1],
    )


def _apply_selection(method: Method, trace: VisionTrace, budget: int, layer_tokens: list[int]) -> TowerResult:
    if isinstance(method, VisionMethod):
        sel: Selection = method.select(trace, budget)
    else:  # LLM-side methods prune later: every patch goes in
        b, n = trace.feats.shape[:2]
        sel = Selection(indices=torch.arange(n, device=trace.feats.device).expand(b, n))
    tokens = sel.tokens if sel.tokens is not None else _gather(trace.feats, sel.indices)
    return TowerResult(tokens=tokens, indices=sel.indices, layer_tokens=layer_tokens, importance=sel.importance)


def run_qwen2_vl(
    visual: nn.Module,
    pixels: Tensor,
    grid_thw: Tensor,
    method: Method,
    budget: int,
    rotary: Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]],
) -> TowerResult:
    """Run Qwen2-VL's ViT for ONE image and apply ``method`` at merge-group granularity.

    Args:
        visual: ``Qwen2VisionTransformerPretrainedModel``.
        pixels: [n_patches, C*T*P*P] the processor's flattened patches of one image.
        grid_thw: [1, 3] (t, h, w) patch grid of that image.
        rotary: the model module's ``apply_rotary_pos_emb_vision``.
    Returns:
        tokens are merged features [1, T, D_llm] (the merger already applied).
    """
    from transformers.models.qwen2_vl import modeling_qwen2_vl as mq

    g = visual.spatial_merge_size**2
    position_ids = mq.get_vision_position_ids(grid_thw, visual.spatial_merge_size)
    h = visual.patch_embed(pixels)
    cos, sin = visual.rotary_pos_emb(h, position_ids)
    n_tok = h.shape[0]
    n_units = n_tok // g
    t, gh, gw = (int(x) for x in grid_thw[0])
    blocks = visual.blocks
    encoder = method if isinstance(method, EncoderMethod) else None
    state = encoder.start(1, n_units, budget, len(blocks) + 1, None) if encoder else None
    orig = torch.arange(n_units, device=h.device)[None]
    watch = range(len(blocks)) if encoder else [len(blocks) - 1]
    layer_tokens = []
    with capture_outputs({str(i): blocks[i].attn.qkv for i in watch}) as seen:
        for i, blk in enumerate(blocks):
            n = h.shape[0]
            layer_tokens.append(n)
            cu = torch.tensor([0, n], dtype=torch.int32, device=h.device)
            h = blk(h, cu_seqlens=cu, max_seqlen=n, position_embeddings=(cos, sin))
            if encoder is None and i != len(blocks) - 1:
                continue
            attn = blk.attn
            q, k, v = seen[str(i)].reshape(n, 3, attn.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
            q, k = rotary(q, k, cos, sin)
            view = LayerView(
                q=q.transpose(0, 1)[None],
                k=k.transpose(0, 1)[None],
                v=v.transpose(0, 1)[None],
                scale=attn.scaling,
                has_cls=False,
                group=g,
            )
            if encoder is None:
                break
            keep = encoder.step(state, i, view)
            seen.pop(str(i), None)  # as in run_clip: free the layer's qkv output once its step is done
            if keep is not None:
                tok = (keep[0, :, None] * g + torch.arange(g, device=h.device)).flatten()
                h, cos, sin = h[tok], cos[tok], sin[tok]
                orig = orig.gather(1, keep)
    if encoder is not None:
        keep = encoder.finish(state, h.view(1, -1, h.shape[-1] * g))
        if keep is not None:
            tok = (keep[0, :, None] * g + torch.arange(g, device=h.device)).flatten()
            h, orig = h[tok], orig.gather(1, keep)
        return TowerResult(tokens=visual.merger(h)[None], indices=orig, layer_tokens=layer_tokens)
    from ..methods.base import relay_attention

    relay = relay_attention(view)  # [1, H, n_tok]
    relay = relay.view(1, relay.shape[1], -1, g).sum(-1)
    keys = view.k.reshape(1, view.k.shape[1], n_units, g * view.k.shape[-1])
    merged = visual.merger(h)[None]  # [1, n_units, D_llm]
    trace = VisionTrace(
        feats=merged, relay_attn=relay, keys=keys, cls_feat=None, grid=(t * gh // 2, gw // 2), pixels=pixels[None]
    )
    return _apply_selection(method, trace, budget, layer_tokens)
