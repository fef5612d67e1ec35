"""Trade-offs: accuracy vs budget per method, accuracy vs measured latency and FLOPs with the Pareto front,
and the speed-up over the unpruned model."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, tables, ui

st.title("Trade-offs")
acc = ui.require_results()
f = ui.sidebar_filters(acc)
st.caption(
    "Per method and budget: accuracy and costs averaged over the selected benchmarks (mean per-sample "
    "latency and FLOPs as measured in `flowcut/measure.py`). Speed-up = unpruned / method. Filled points "
    "joined by the dashed line: the Pareto front (no other point is both cheaper and more accurate)."
)
pts = f.apply(tables.tradeoffs(f.apply(acc, keep_baseline=True)))  # speed-ups need the unpruned rows
if pts.empty:
    st.info("No rows inside the filters.")
    st.stop()
for model in sorted(pts["model"].unique()):
    mine = pts[pts["model"] == model].drop(columns="model")
    st.subheader(model)
    left, mid, right = st.columns(3)
    with left:
        st.markdown("**Accuracy vs budget** (dashed: unpruned)")
        st.altair_chart(charts.accuracy_vs_budget(mine), width="stretch")
    with mid:
        st.markdown("**Accuracy vs latency**")
        st.altair_chart(
            charts.accuracy_vs_cost(mine, "total_ms", "pareto_ms", "latency (ms / sample)"), width="stretch"
        )
    with right:
        st.markdown("**Accuracy vs FLOPs**")
        st.altair_chart(charts.accuracy_vs_cost(mine, "flops", "pareto_flops", "FLOPs / sample"), width="stretch")
    st.dataframe(
        mine.sort_values(["budget", "method"]),
        hide_index=True,
        key=f"speedup_{model}",
        column_config={
            "accuracy": st.column_config.NumberColumn("accuracy", format="%.1f"),
            tables.REL: st.column_config.NumberColumn(tables.REL, format="%.1f"),
            "total_ms": st.column_config.NumberColumn("latency ms", format="%.1f"),
            "prefill_ms": st.column_config.NumberColumn("prefill ms", format="%.1f"),
            "flops": st.column_config.NumberColumn("FLOPs", format="%.3e"),
            "speedup": st.column_config.NumberColumn("speed-up", format="%.2fx", help="unpruned latency / this"),
            "prefill_speedup": st.column_config.NumberColumn("prefill speed-up", format="%.2fx"),
            "flops_reduction": st.column_config.NumberColumn("FLOPs reduction", format="%.2fx"),
            "pareto_ms": st.column_config.CheckboxColumn("front (latency)"),
            "pareto_flops": st.column_config.CheckboxColumn("front (FLOPs)"),
        },
    )
