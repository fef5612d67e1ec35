"""The method protocol: what a pruning method sees and what it returns.

Methods see tensors, never models. Three kinds, by where the paper prunes:

* ``vision``: after the vision tower, from the feature layer's internals
  (:class:`VisionTrace`) -> :class:`Selection` of patches (or new tokens).
* ``encoder``: inside the vision tower, layer by layer (FlowCut): the tower loop hands
  each layer's q/k/v (:class:`LayerView`) to :meth:`EncoderMethod.step`, which may shorten
  the sequence.
* ``llm``: inside the language model, at decoder layers given by a schedule of
  :class:`LLMStage`; scores come from :class:`LLMScoreContext`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from ..errors import FlowcutError

Kind = Literal["vision", "encoder", "llm"]


@dataclass
class VisionTrace:
    """Feature-layer internals of the vision tower for a batch of images (or crops).

    Attributes:
        feats: [B, N, D] patch features at the feature layer (no [CLS]).
        relay_attn: [B, H, N] attention of the relay query over the patches at the feature
            layer: the [CLS] query where the tower has one, else the mean query.
        keys: [B, H, N, hd] keys of the patches at the feature layer.
        cls_feat: [B, D] the [CLS] feature, or None for towers without [CLS].
        grid: (rows, cols) of the patch grid; N == rows * cols.
        pixels: the preprocessed images, for methods that read the image itself: [B, 3, H, W]
            crops for CLIP towers, [1, n_patches, C*T*P*P] flattened patches for Qwen2-VL.
    """

    feats: Tensor
    relay_attn: Tensor
    keys: Tensor
    cls_feat: Tensor | None
    grid: tuple[int, int]
    pixels: Tensor | None = None


@dataclass
class Selection:
    """What a vision-side method keeps for each image of a batch.

    Attributes:
        indices: [B, K] kept patch positions in the original grid, ascending.
        tokens: [B, T, D] tokens to send instead of ``feats[indices]`` when the method
            builds its own (VisionZip's [CLS] and merged tokens); None otherwise.
        importance: [B, N] the score the method ranked every patch by, when a later LLM stage of
            the same method ranks by it again (VFlowOpt); None otherwise.
    """

    indices: Tensor
    tokens: Tensor | None = None
    importance: Tensor | None = None


@dataclass
class LayerView:
    """One vision-tower layer's attention inputs, for encoder-side methods.

    Attributes:
        q, k, v: [B, H, n, hd] per-head queries, keys and values of the current sequence.
        scale: softmax scale of the layer's attention.
        has_cls: position 0 is [CLS] (kept, never scored); otherwise the relay is the mean
            query over all tokens.
        group: tokens pruned together (4 for Qwen2-VL's 2x2 merger, else 1).
    """

    q: Tensor
    k: Tensor
    v: Tensor
    scale: float
    has_cls: bool
    group: int = 1


@dataclass(frozen=True)
class LLMStage:
    """Cut the visual tokens to ``keep`` before decoder layer ``layer`` runs.

    Scores come from decoder layer ``score_layer`` (``<= layer``) applied to its input.
    """

    layer: int
    keep: int
    score_layer: int


@dataclass
class LLMScoreContext:
    """What an LLM-side method may read at its scoring layer, for the current sequence.

    Attributes:
        attention: callable(query_positions [B, q]) -> [B, H, q, P] softmax attention
            rows of this layer over the current sequence (causal and padding masked).
        hidden: [B, P, D] input hidden states of the scoring layer.
        visual: [B, P] bool, which current positions are visual tokens.
        last: [B] position of the last prompt token.
        text_raters: [B, P] bool, text tokens chosen as raters at the LLM input (SparseVLM).
        values: callable() -> [B, H, P, hd] this layer's value vectors.
        vision_scores: [B, P] the vision stage's importance of each current visual token (a
            recycled token carries its anchor patch's), +inf for visual tokens that are no
            patch (LLaVA-NeXT newlines), 0 elsewhere; None unless the method's vision stage
            gave one (``Selection.importance``).
    """

    attention: Any
    hidden: Tensor
    visual: Tensor
    last: Tensor
    values: Any
    text_raters: Tensor | None = None
    vision_scores: Tensor | None = None


@dataclass
class Method:
    """Base of every method: a name, a kind, and typed options (dataclass fields)."""

    name: ClassVar[str]
    kind: ClassVar[Kind]
    # bumped whenever the method's output changes for the same options (a fix, a new default):
    # part of every job's identity, so a store never serves results of the old behaviour
    version: ClassVar[int] = 1
    seed: int = 0
    generator: torch.Generator = field(default_factory=torch.Generator, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.generator.manual_seed(self.seed)


class VisionMethod(Method):
    kind: ClassVar[Kind] = "vision"

    def select(self, trace: VisionTrace, budget: int) -> Selection:
        raise NotImplementedError


class EncoderMethod(Method):
    kind: ClassVar[Kind] = "encoder"

    def start(self, batch: int, n_units: int, budget: int, num_layers: int, valid: Tensor | None) -> Any:
        """Fresh per-batch state.

        Args:
            num_layers: tower layers run up to and including the feature layer.
            valid: [B, n_units] bool, units that may be kept (None = all).
        """
        raise NotImplementedError

    def step(self, state: Any, layer: int, view: LayerView) -> Tensor | None:
        """After layer ``layer``: [B, n'] positions (units, excluding [CLS]) to keep, or None."""
        raise NotImplementedError

    def finish(self, state: Any, feats: Tensor) -> Tensor | None:
        """Last chance to cut to the budget after the feature layer; [B, K] or None."""
        return None


POSITIONS = ("original", "contiguous")
Positions = Literal["original", "contiguous"]


class LLMMethod(Method):
    kind: ClassVar[Kind] = "llm"
    budget_mode: Literal["layer_average", "after_prune"] = "layer_average"
    # position ids of the tokens a cut leaves: "original" keeps theirs (FastV's in-place mode);
    # "contiguous" renumbers them without gaps (PDrop's and SparseVLM v1.0's references), on
    # models with 1D rotary positions (the plumbing keeps the original ones on Qwen2-VL)
    positions: Positions = "original"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.positions not in POSITIONS:
            raise FlowcutError("positions", f"unknown mode {self.positions!r}", list(POSITIONS))

    def schedule(self, budget: int, num_layers: int, n_visual: int) -> list[LLMStage]:
        raise NotImplementedError

    def score(self, stage: LLMStage, ctx: LLMScoreContext) -> Tensor:
        """[B, P] importance of every current position (only visual ones are used)."""
        raise NotImplementedError

    def merge(self, stage: LLMStage, ctx: LLMScoreContext, scores: Tensor, keep: Tensor) -> Tensor | None:
        """Optional: [B, P, D] hidden states to use for kept positions (token recycling)."""
        return None


def topk_sorted(scores: Tensor, k: int) -> Tensor:
    """[B, N] scores -> [B, k] indices of the k best, re-sorted ascending (spatial order)."""
    return scores.topk(k, dim=-1).indices.sort(dim=-1).values


def relay_attention(view: LayerView) -> Tensor:
    """[B, H, n] softmax attention of the relay query over all n tokens of the layer.

    The relay is [CLS] (position 0) where the tower has one; else the mean query, as
    FlowCut does for Qwen2-VL.
    """
    if view.has_cls:
        q = view.q[:, :, :1]
    else:
        q = view.q.mean(dim=2, keepdim=True, dtype=torch.float32).to(view.k.dtype)
    # the product in the tower's dtype (as the reference runs it, fp16 on GPU), softmax in
    # fp32: upcasting the layer's whole keys first cost FlowCut ~2% of the tower on CPU
    logits = (q @ view.k.transpose(-1, -2)).float() * view.scale
    return logits.softmax(dim=-1)[:, :, 0]
