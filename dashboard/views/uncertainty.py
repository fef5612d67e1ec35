"""Uncertainty: bootstrap confidence intervals on each accuracy, and on the difference between two methods."""

from __future__ import annotations

import streamlit as st

from dashboard import queries, stats, ui

st.title("Uncertainty")
acc = ui.require_results()
f = ui.sidebar_filters(acc)
st.caption(
    f"{stats.LEVEL:.0%} percentile bootstrap intervals ({stats.N_BOOT} resamples, seed {stats.SEED}) over the "
    "scored samples; none of the papers report them. A difference whose interval excludes 0 is marked."
)
PCT = st.column_config.NumberColumn(format="%.1f")
PCTS = {"accuracy": PCT, "A - B": PCT, "low": PCT, "high": PCT}

st.subheader("Accuracy")
cis = f.apply(queries.accuracy_intervals(ui.finished_only()))
st.dataframe(cis, hide_index=True, key="u_acc", column_config=PCTS)

st.subheader("Difference between two methods")
st.caption("A minus B in points, resampled in pairs over the samples both scored (the unpruned `none` at all tokens).")
c1, c2, c3, c4 = st.columns(4)
model = c1.selectbox("model", f.models, key="u_model")
mine = acc[acc["model"] == model]
methods = sorted(mine["method"].unique())
a = c2.selectbox("method A", methods, index=0, key="u_a")
b = c3.selectbox("method B", methods, index=min(1, len(methods) - 1), key="u_b")
budgets = sorted(int(x) for x in mine["budget"].unique() if x > 0) or [0]
budget = c4.selectbox("budget", budgets, format_func=ui.budget_label, key="u_budget")
diff = queries.difference_intervals(str(model), str(a), str(b), int(budget), ui.finished_only())
diff = diff[diff["benchmark"].isin(f.benchmarks)]
if diff.empty:
    st.info(f"{a} and {b} share no scored samples at budget {budget}.")
else:
    st.dataframe(diff, hide_index=True, key="u_diff", column_config=PCTS)
