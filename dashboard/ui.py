"""Pieces every page shares: the guard that shows a friendly empty state, and the sidebar filters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from flowcut.errors import FlowcutError

from . import queries

UNFINISHED_KEY = "filter_unfinished"
RUN_COMMANDS = """bash scripts/run.sh                           # the README's main command
python -m jobs run jobs/specs/default.yaml   # the default sweep into sqlite:///results/flowcut.db"""


def empty_state(headline: str) -> None:
    """A friendly note with the commands that fill the store, instead of an error."""
    st.info(headline)
    st.markdown("Fill the store by running the evaluation:")
    st.code(RUN_COMMANDS, language="bash")
    st.caption(
        f"Store: `{queries.display_url()}`; choose another with "
        "`streamlit run dashboard/app.py -- --store URL` or `FLOWCUT_STORE=URL`."
    )


def require_jobs() -> dict[str, int]:
    """Jobs per status; stops the page with the empty state when the store is missing, unreadable or empty."""
    missing = queries.missing_file()
    if missing is not None:
        empty_state(f"No store at `{missing}` yet.")
        st.stop()
    try:
        counts = queries.status_counts()
    except FlowcutError as e:
        st.error(f"Cannot open the store: {e}")
        st.stop()
    if sum(counts.values()) == 0:
        empty_state("The store has no jobs yet.")
        st.stop()
    return counts


def finished_only() -> bool:
    """The sidebar's choice: results of succeeded jobs only (the default), or of unfinished ones too."""
    return not st.session_state.get(UNFINISHED_KEY, False)


def require_results() -> pd.DataFrame:
    """``queries.accuracy()`` under the sidebar's unfinished-jobs toggle; stops with the empty state while
    there is no result to show."""
    require_jobs()
    st.sidebar.toggle("include unfinished jobs", key=UNFINISHED_KEY, help="running, failed or cancelled jobs' rows")
    acc = queries.accuracy(finished_only())
    if acc.empty:
        empty_state("No finished results yet: the jobs are queued or running (see the Jobs page).")
        st.stop()
    return acc


def budget_label(budget: float) -> str:
    return "all (unpruned)" if budget == 0 else f"{budget:g}"


@dataclass(frozen=True)
class Filters:
    """The sidebar's selection; ``apply`` keeps the rows inside it."""

    models: list[str]
    benchmarks: list[str]
    budgets: list[int]
    methods: list[str]

    def apply(self, df: pd.DataFrame, *, keep_baseline: bool = False) -> pd.DataFrame:
        """Rows inside the selection; ``keep_baseline``: also the unpruned rows of the selected models and
        benchmarks, whatever the method and budget filters say (relative % and speed-ups divide by them)."""
        chosen = df["method"].isin(self.methods) & df["budget"].isin(self.budgets)
        mask = df["model"].isin(self.models) & (chosen | (keep_baseline & (df["method"] == "none")))
        return df[mask & df["benchmark"].isin(self.benchmarks)] if "benchmark" in df else df[mask]


def sidebar_filters(acc: pd.DataFrame, more_benchmarks: tuple[str, ...] = ()) -> Filters:
    """Multiselects for model, benchmark, budget and method; an empty one means all, so what a running
    sweep adds later is shown too.

    Args:
        more_benchmarks: benchmark options besides ours (the papers' reported ones).
    """

    def pick(label: str, values: list, format_func: Callable[[Any], str] = str) -> list:
        chosen = st.sidebar.multiselect(
            label, values, key=f"filter_{label}", placeholder="all", format_func=format_func
        )
        return list(chosen) or values

    st.sidebar.header("Filters")
    return Filters(
        models=pick("model", sorted(acc["model"].unique())),
        benchmarks=pick("benchmark", sorted(set(acc["benchmark"]) | set(more_benchmarks))),
        budgets=pick("budget", sorted(int(b) for b in acc["budget"].unique()), format_func=budget_label),
        methods=pick("method", sorted(acc["method"].unique())),
    )
