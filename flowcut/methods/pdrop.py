"""PyramidDrop (PDrop): visual tokens cut geometrically at several LLM stages.

Paper: Xing et al., "PyramidDrop: Accelerating Your Large Vision-Language Models via Pyramid
Visual Redundancy Reduction", arXiv 2410.17247 (CVPR 2025). Reference code:
Cooperx521/PyramidDrop (``pdrop_rank_drop`` in ``llava/model/modeling_llama_pdrop.py``).

Before each stage layer l the visual tokens are cut to ``round(N * lam**i)`` (i = 1, 2, 3),
ranked by a light attention pass of layer l itself (its input norm, q/k projections and RoPE
on its input) from the last instruction token, mean over heads. lam is solved by bisection so
that the average over all L layers rounds to T (the last stage is then fitted exactly), as
the maintainer advises for budgets the paper's lam = 0.5 does not give (PyramidDrop#29, #10);
``after_prune`` uses ``lam = (T / N) ** (1 / stages)`` and makes the last stage keep T.

Positions: the tokens left after a drop are renumbered without gaps and decoded tokens lose
the dropped count at each layer, as the reference does (``position_ids[i, :cur_len] =
arange(cur_len)``); ``positions="original"`` keeps their ids instead.

Deviations from the reference code, on purpose:

* Default layers (2, 8, 16), not (8, 16, 24); see the field comment.
* Stage layers are given for a 32-layer LLM and scaled to the model's depth.
* Keeps round half up; the reference takes ``int(N * ratio)`` (the same at lam = 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .base import LLMMethod, LLMScoreContext, LLMStage, Positions
from .fastv import last_token_attention
from .schedule import (
    BudgetMode,
    check_request,
    fit_last,
    layer_average,
    round_half_up,
    scale_layers,
    solve_increasing,
)


@dataclass
class PDrop(LLMMethod):
    """PyramidDrop with the maintainer's low-budget layers and a solved ratio lam."""

    name = "pdrop"
    # The official (8, 16, 24) leaves layers 0-7 with all 576 tokens, so its average can never
    # drop below 576 * 8 / 32 = 144; for the 64/128 budgets the maintainer recommends cutting
    # at (2, 8, 16) with lam solved for the target (Cooperx521/PyramidDrop#29, pointing to #10).
    layers: tuple[int, ...] = (2, 8, 16)
    version = 2  # 2: contiguous positions by default (2026-12-03)
    budget_mode: BudgetMode = "layer_average"
    positions: Positions = "contiguous"  # as the reference renumbers after each drop

    def _stages(self, lam: float, layers: list[int], n_visual: int) -> list[LLMStage]:
        keeps = [min(max(round_half_up(n_visual * lam**i), 1), n_visual) for i in range(1, len(layers) + 1)]
        return [LLMStage(layer, keep, layer) for layer, keep in zip(layers, keeps, strict=True)]

    def schedule(self, budget: int, num_layers: int, n_visual: int) -> list[LLMStage]:
        """Stages ``LLMStage(l_i, round(N * lam**i), l_i)``, the last one fitted to the budget.

        Raises:
            FlowcutError: ``budget`` when the layer average cannot reach ``budget``.
        """
        check_request(self.budget_mode, budget, n_visual)
        layers = scale_layers(self.layers, num_layers)
        if self.budget_mode == "after_prune" and layers:
            stages = self._stages((budget / n_visual) ** (1 / len(layers)), layers, n_visual)
            last = stages[-1]
            return [*stages[:-1], LLMStage(last.layer, budget, last.score_layer)]

        def average(lam: float) -> float:
            return layer_average(self._stages(lam, layers, n_visual), n_visual, num_layers)

        lam = solve_increasing(average, budget, 0.0, 1.0)
        return fit_last(self._stages(lam, layers, n_visual), budget, n_visual, num_layers)

    def score(self, stage: LLMStage, ctx: LLMScoreContext) -> Tensor:
        """[B, P] last-instruction-token attention of the stage layer on its input, head mean."""
        return last_token_attention(ctx)
