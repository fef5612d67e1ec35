"""Samples: per-sample results of two methods at one budget, side by side, with the kept patches drawn.

Filter to the samples where the two methods disagree (one right, one wrong) or answer differently.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboard import queries, samples, ui

SHOW = ("all samples", "one right, one wrong", "different predictions")

st.title("Samples")
ui.require_results()
jobs = queries.jobs()
done = jobs[(jobs["done"] > 0) & ((jobs["status"] == "succeeded") | (not ui.finished_only()))]
c1, c2, c3 = st.columns(3)
model = c1.selectbox("model", sorted(done["model"].unique()), key="s_model")
mine = done[done["model"] == model]
benchmark = c2.selectbox("benchmark", sorted(mine["benchmark"].unique()), key="s_benchmark")
mine = mine[mine["benchmark"] == benchmark]
pruned = sorted(int(b) for b in mine["budget"].unique() if b > 0)
budget = c3.selectbox("budget", pruned or [0], format_func=ui.budget_label, key="s_budget",
                      help="the unpruned method (none) is always at all tokens")  # fmt: skip
methods = sorted(mine["method"].unique())
c4, c5, c6 = st.columns(3)
method_a = c4.selectbox("method A", methods, index=0, key="s_a")
method_b = c5.selectbox("method B", methods, index=min(1, len(methods) - 1), key="s_b")
show = c6.radio("show", SHOW, key="s_show")


def job_of(method: str) -> str | None:
    want = 0 if method == "none" else budget
    hit = mine[(mine["method"] == method) & (mine["budget"] == want)]
    return None if hit.empty else str(hit["id"].iloc[0])


job_a, job_b = job_of(method_a), job_of(method_b)
if job_a is None or job_b is None:
    st.info(f"No results for {method_a if job_a is None else method_b} at budget {budget}.")
    st.stop()
rows = queries.sample_rows(sorted({job_a, job_b}))
a = rows[rows["job_id"] == job_a].set_index("sample_id")
b = rows[rows["job_id"] == job_b].set_index("sample_id")
both = a.merge(b, left_index=True, right_index=True, suffixes=("_a", "_b"))
if show == SHOW[1]:
    both = both[both["score_a"].fillna(-1) != both["score_b"].fillna(-1)]
elif show == SHOW[2]:
    both = both[both["prediction_a"].fillna("") != both["prediction_b"].fillna("")]
st.caption(f"{len(both)} of {len(a.index.intersection(b.index))} shared samples")
if both.empty:
    st.info("No samples match.")
    st.stop()
table = pd.DataFrame({
    "sample": both.index, "reference": both["reference_a"].map(json.dumps),
    f"A: {method_a}": both["prediction_a"], "A score": both["score_a"],
    f"B: {method_b}": both["prediction_b"], "B score": both["score_b"],
})  # fmt: skip
st.dataframe(table, hide_index=True, key="s_table",
             column_config={"A score": st.column_config.NumberColumn(format="%.2f"),
                            "B score": st.column_config.NumberColumn(format="%.2f")})  # fmt: skip

sample_id = st.selectbox("sample", list(both.index), key="s_sample")
row = both.loc[sample_id]
allow = st.toggle("load real benchmark images (may download the dataset)", key="s_download")
view = queries.sample_view(benchmark, str(sample_id), json.dumps(row["reference_a"]), allow)
st.markdown(f"**Question:** {view.question or '(not stored)'}  \n**Reference:** `{json.dumps(row['reference_a'])}`")
for col, side, method in zip(st.columns(2), ("a", "b"), (method_a, method_b)):
    score = row[f"score_{side}"]
    verdict = "error" if pd.notna(row[f"error_{side}"]) else {1.0: "correct", 0.0: "wrong"}.get(score, f"{score:.2f}")
    col.markdown(f"**{method}**: `{row[f'prediction_{side}']}` ({verdict}); {row[f'kept_tokens_{side}']} tokens kept")
    if view.image is None:
        col.caption(view.note)
        continue
    for image, caption in samples.kept_overlays(view.image, row[f"extra_{side}"]) or [(view.image, view.note)]:
        col.image(image, caption=f"{caption} ({view.note})")
