"""Altair charts of the trade-off points (``tables.tradeoffs`` rows); pure functions returning charts."""

from __future__ import annotations

import altair as alt
import pandas as pd

from .tables import BASELINE

METHOD = alt.Color("method:N", title="method")


def accuracy_vs_budget(pts: pd.DataFrame) -> alt.LayerChart:
    """Mean accuracy per method over budgets; the unpruned model as a dashed rule."""
    pruned = pts[pts["method"] != BASELINE]
    tip = ["method", "budget", alt.Tooltip("accuracy:Q", format=".1f")]
    lines = alt.Chart(pruned).mark_line(point=True).encode(
        x=alt.X("budget:Q", title="visual tokens kept", axis=alt.Axis(format="d")),
        y=alt.Y("accuracy:Q", title="accuracy (%)"),
        color=METHOD, tooltip=tip,
    )  # fmt: skip
    base = pts[pts["method"] == BASELINE]
    rule = alt.Chart(base).mark_rule(strokeDash=[6, 4], color="gray").encode(y="accuracy:Q", tooltip=tip)
    return alt.LayerChart(layer=[lines, rule])


def accuracy_vs_cost(pts: pd.DataFrame, cost: str, flag: str, title: str) -> alt.LayerChart:
    """Accuracy against a cost: Pareto-front points filled and joined by a dashed line, the others hollow.

    Args:
        cost: the column on x (``total_ms``, ``flops``). flag: its Pareto column (``pareto_ms``, ...).
    """
    tip = ["method", "budget", alt.Tooltip("accuracy:Q", format=".1f"), alt.Tooltip(f"{cost}:Q", format=".3s"), flag]
    x = alt.X(f"{cost}:Q", title=title, axis=alt.Axis(format="~s"))  # SI prefixes: 200G, 1T
    enc = {"x": x, "y": alt.Y("accuracy:Q", title="accuracy (%)"), "tooltip": tip}
    front = pts[pts[flag].astype(bool)].sort_values(cost)
    line = alt.Chart(front).mark_line(color="black", strokeDash=[2, 2]).encode(x=f"{cost}:Q", y="accuracy:Q")
    on = alt.Chart(front).mark_point(size=110, filled=True).encode(color=METHOD, **enc)
    off = alt.Chart(pts[~pts[flag].astype(bool)]).mark_point(size=70).encode(color=METHOD, **enc)
    return alt.LayerChart(layer=[line, off, on])
