"""Leaderboard: per model, methods x budgets with per-benchmark accuracy and the average relative to unpruned.

The papers' published figures follow, marked "reported (paper)": they are read from the papers, not measured.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import queries, tables, ui

st.title("Leaderboard")
acc = ui.require_results()
f = ui.sidebar_filters(acc, more_benchmarks=tuple(tables.PAPER_BENCHMARKS.values()))
st.caption(
    "Accuracy: mean per-sample score over the scored samples, in % (per-question accuracy everywhere: "
    "the papers print POPE F1, MME totals and MMBench circular accuracy instead). "
    f"**{tables.REL}**: mean over the shown benchmarks of method / unpruned x 100, the papers' arithmetic, "
    "blank unless the row has every shown benchmark. One job per cell (the one with most samples). "
    "Budget: visual tokens kept, 0 = all (unpruned). Click a header to sort."
)
if (acc["jobs"] > 1).any():
    st.warning(
        f"{int((acc['jobs'] > 1).sum())} cell(s) have several finished jobs (other limits, seeds or "
        "options); each shows the one with the most scored samples."
    )


def column_config(benchmarks: list[str]) -> dict[str, Any]:
    cfg: dict[str, Any] = {b: st.column_config.NumberColumn(b, format="%.1f") for b in benchmarks}
    return cfg | {
        "budget": st.column_config.NumberColumn("budget", format="%d", help="visual tokens kept; 0 = all"),
        tables.REL: st.column_config.NumberColumn(tables.REL, format="%.1f", help="mean of method / unpruned x 100"),
        "paper_rel": st.column_config.NumberColumn(
            "paper avg %", format="%.1f", help="the paper's printed Avg. (over all of its benchmarks)"
        ),
        "source": st.column_config.TextColumn("source"),
    }


benches = [b for b in sorted(acc["benchmark"].unique()) if b in f.benchmarks]
for model in f.models if benches else []:
    # relative % needs the unpruned row, so the method / budget filters apply after it is computed
    board = f.apply(tables.leaderboard(acc[acc["model"] == model], benches))
    st.subheader(model)
    if board.empty:
        st.caption("No rows inside the filters.")
        continue
    board = board.drop(columns="model").assign(source=tables.MEASURED)
    st.dataframe(board, column_config=column_config(benches), hide_index=True, key=f"board_{model}")
if not benches or not f.models:
    st.info("Select at least one model and one of its benchmarks in the sidebar.")

st.subheader("Reported (paper)")
st.caption(
    "Figures printed in the papers (`dashboard/data/paper-results.csv`), **not measured here**: other "
    "hardware, the full benchmarks, MME on its raw score scale. Relative % uses each table's vanilla row."
)
show_all = st.toggle("all reported rows (ignore the method and budget filters)", key="paper_all")
shown = [b for b in tables.PAPER_BENCHMARKS.values() if b in f.benchmarks]
paper = tables.paper_leaderboard(queries.paper(), shown) if shown else None
if paper is not None and not show_all:
    paper = paper[paper["method"].isin(f.methods) & paper["budget"].isin(f.budgets)]
if paper is None or paper.empty:
    st.caption("No reported rows for the selected benchmarks, methods and budgets.")
else:
    cols = ["source", "paper", "table", "model", "method", "budget", "tokens", *shown, tables.REL, "paper_rel"]
    st.dataframe(paper[cols], column_config=column_config(shown), hide_index=True, key="board_paper")
