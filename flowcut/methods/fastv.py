"""FastV: one cut inside the LLM, ranked by the last prompt token's attention.

Paper: Chen et al., "An Image is Worth 1/2 Tokens After Layer 2: Plug-and-Play Inference
Acceleration for Large Vision-Language Models", arXiv 2403.06764 (ECCV 2024). Reference code:
pkunlp-icler/FastV (patched ``LlamaModel.forward`` in
``src/transformers/src/transformers/models/llama/modeling_llama.py``).

Before decoder layer K (0-based; paper K = 2) the visual tokens are cut to R, ranked by the
attention of layer K-1 (the layer just run) from the last prompt token, mean over heads.
Text and system tokens are always kept. Budget: R is fitted so that the average over all L
layers, ``(K * N + (L - K) * R) / L``, rounds to T (``layer_average``, the convention of the
SparseVLM / VisionZip tables), or R = T (``after_prune``).

Deviations from the reference code, on purpose:

* K is given for a 32-layer LLM and scaled to the model's depth (the reference uses K = 2
  for every depth, LLaVA-1.5-13B's 40 layers included; there we get K = 3).
* Scores come per batch row and image positions come from the plumbing's visual mask (the
  reference reads batch element 0 at a fixed system-prompt offset).
* One cut, at prefill; decoding keeps that set. The paper's in-place path runs without a KV
  cache (``use_cache=False`` in its ``inference_aokvqa.py``), so every new token re-ranks the
  image tokens with itself as the query; the first answer token is the same either way, later
  ones may differ. This is the reference's own KV-cache variant (``fastv_kvcache.py``), which
  its README calls slightly divergent from the original; re-ranking would forbid a KV cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .base import LLMMethod, LLMScoreContext, LLMStage
from .schedule import BudgetMode, check_request, fit_last, scale_layers


def last_token_attention(ctx: LLMScoreContext) -> Tensor:
    """[B, P] head-mean attention of the last prompt token (``ctx.last``) over all positions."""
    attn = ctx.attention(ctx.last[:, None])  # [B, H, 1, P]
    return attn.float().mean(dim=1)[:, 0]


@dataclass
class FastV(LLMMethod):
    """FastV with the paper's K = 2; one stage before layer K scored at layer K-1."""

    name = "fastv"
    k: int = 2  # paper K (for a 32-layer LLM): attention is already sparse after layer 2
    budget_mode: BudgetMode = "layer_average"

    def schedule(self, budget: int, num_layers: int, n_visual: int) -> list[LLMStage]:
        """One stage ``LLMStage(K, R, K - 1)``; see the module docstring for R.

        Raises:
            FlowcutError: ``budget`` when the layer average cannot reach ``budget``.
        """
        check_request(self.budget_mode, budget, n_visual)
        layers = scale_layers([self.k], num_layers)
        stages = [LLMStage(layer=layer, keep=budget, score_layer=layer - 1) for layer in layers]
        if self.budget_mode == "after_prune" and stages:
            return stages
        return fit_last(stages, budget, n_visual, num_layers)

    def score(self, stage: LLMStage, ctx: LLMScoreContext) -> Tensor:
        """[B, P] last-prompt-token attention of layer K-1, mean over heads."""
        return last_token_attention(ctx)
