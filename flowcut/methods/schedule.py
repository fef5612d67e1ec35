"""Layer schedules shared by the LLM-side methods (FastV, PDrop, SparseVLM, VFlowOpt).

Budget convention (baselines notes, section 7): the papers report T as the average number of
visual tokens over all L decoder layers, ``sum_l T_l / L``, where ``T_l`` counts the visual
tokens that layer ``l`` *runs on* (``n_visual`` before the first cut). ``layer_average`` mode
fits the last stage so that this average rounds (half up) to T exactly; ``after_prune`` mode
(the vision-side convention) makes the last stage keep exactly T instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

from ..errors import FlowcutError
from .base import LLMStage

BudgetMode = Literal["layer_average", "after_prune"]
BUDGET_MODES = ("layer_average", "after_prune")


def round_half_up(x: float) -> int:
    """Round to the nearest integer, halves up (Python's ``round`` rounds halves to even)."""
    return math.floor(x + 0.5)


def check_request(mode: str, budget: int, n_visual: int) -> None:
    """Reject an unknown budget mode or a budget outside ``[1, n_visual]``."""
    if mode not in BUDGET_MODES:
        raise FlowcutError("budget_mode", f"unknown mode {mode!r}", BUDGET_MODES)
    if not 1 <= budget <= n_visual:
        raise FlowcutError("budget", f"{budget} asked of {n_visual} visual tokens", f"1..{n_visual}")


def layer_average(stages: Sequence[LLMStage], n_visual: int, num_layers: int) -> float:
    """Mean number of visual tokens the ``num_layers`` decoder layers run on.

    Args:
        stages: cuts sorted by ``layer``; layers before the first one see ``n_visual``.
        n_visual: visual tokens at the LLM input.
        num_layers: decoder depth L.
    """
    total, count, prev = 0, n_visual, 0
    for stage in stages:
        total += count * (stage.layer - prev)
        prev, count = stage.layer, stage.keep
    total += count * (num_layers - prev)
    return total / num_layers


def scale_layer(paper_layer: int, num_layers: int, paper_depth: int = 32) -> int:
    """Map a layer index given for a ``paper_depth``-layer LLM to a ``num_layers``-layer one.

    Clamped to ``[1, num_layers - 1]``: a cut before layer 0 is a vision-side cut, one after
    the last layer saves nothing.
    """
    return min(max(round_half_up(paper_layer * num_layers / paper_depth), 1), num_layers - 1)


def scale_layers(paper_layers: Sequence[int], num_layers: int, paper_depth: int = 32) -> list[int]:
    """Scale a list of cut layers, keeping them strictly increasing; stages that no longer
    fit before the last layer are dropped (shallow LLMs get fewer stages)."""
    out: list[int] = []
    for paper_layer in paper_layers:
        layer = max(scale_layer(paper_layer, num_layers, paper_depth), out[-1] + 1 if out else 1)
        if layer > num_layers - 1:
            break
        out.append(layer)
    return out


def _infeasible(budget: int, n_visual: int, num_layers: int, layers: list[int], low: float) -> FlowcutError:
    return FlowcutError(
        "budget",
        f"an average of {budget} of {n_visual} visual tokens over {num_layers} decoder layers is out of "
        f"reach with cuts before layers {layers} (lowest reachable average {low:.1f}); use "
        f"budget_mode='after_prune' to keep exactly {budget} after the last cut instead",
    )


def fit_last(stages: Sequence[LLMStage], budget: int, n_visual: int, num_layers: int) -> list[LLMStage]:
    """Set the last stage's keep so that the layer average rounds to ``budget``.

    The last keep stays within ``[1, previous keep]`` (a cut never adds tokens).

    Raises:
        FlowcutError: ``budget`` when no last keep gives that average.
    """
    if not stages:
        if budget == n_visual:
            return []
        raise FlowcutError("budget", f"{num_layers} decoder layer(s) leave none to cut before", ">= 2 layers")
    *head, last = stages
    cap = head[-1].keep if head else n_visual
    base = layer_average([*head, LLMStage(last.layer, 0, last.score_layer)], n_visual, num_layers)
    per_token = (num_layers - last.layer) / num_layers  # average gained per token kept at the end
    ideal = (budget - base) / per_token
    best = min(
        sorted({min(max(math.floor(ideal), 1), cap), min(max(math.ceil(ideal), 1), cap)}),
        key=lambda r: abs(base + per_token * r - budget),
    )
    fitted = [*head, LLMStage(last.layer, best, last.score_layer)]
    if round_half_up(layer_average(fitted, n_visual, num_layers)) != budget:
        raise _infeasible(budget, n_visual, num_layers, [s.layer for s in stages], base + per_token)
    return fitted


def solve_increasing(f: Callable[[float], float], target: float, lo: float, hi: float) -> float:
    """Bisection for a non-decreasing (possibly step) ``f``: the x in ``[lo, hi]`` whose
    ``f(x)`` is closest to ``target``, preferring the smallest x reaching it."""
    for _ in range(60):  # far below one token of change
        mid = (lo + hi) / 2
        if f(mid) >= target:
            hi = mid
        else:
            lo = mid
    return min((hi, lo), key=lambda x: abs(f(x) - target))
