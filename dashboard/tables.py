"""The dashboard's tables as pure pandas: per-job accuracy, the leaderboard, trade-off points, the papers' rows.

Accuracy is the mean per-sample score over the scored samples of a job, in % (errored samples are
counted apart, never as wrong), as ``jobs/report.py`` prints it: per-question accuracy for every
benchmark, where the papers print POPE's F1 (or accuracy), MME's perception total and MMBench's
circular accuracy. "rel %" is the papers' "Avg." arithmetic on those accuracies: the mean over
benchmarks of method / unpruned x 100 (FlowCut, Table 1 caption), each benchmark counted once, the
unpruned accuracy taken on the samples the method scored, and only for a row with every shown
benchmark whose baseline is above 0 (an average over fewer is another figure; a baseline of 0
divides nothing).

One job per cell: when several finished jobs share a model, method, budget and benchmark (another
limit, seed, parser or method options), the one with the most scored samples stands for it and
``jobs`` counts them; their samples are never pooled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import bootstrap_ci, bootstrap_diff_ci, pareto_front

KEYS = ["model", "method", "budget"]
BASELINE = "none"  # the unpruned model: budget 0, every visual token
REL = "avg rel %"
MEASURED, REPORTED = "measured", "reported (paper)"
# paper-results.csv benchmark names -> registry names; the rest (MMB-CN, SEED, ...) we do not run
PAPER_BENCHMARKS = {
    "GQA": "gqa", "POPE": "pope", "MME": "mme", "SQA": "scienceqa_img", "MMB": "mmbench_en_dev",
    "TextVQA": "textvqa_val", "VQAv2": "vqav2_val",
}  # fmt: skip
PAPER_METRICS = ("accuracy", "score", "mme_score", "f1")  # f1: VisPruner's POPE


def job_accuracy(results: pd.DataFrame) -> pd.DataFrame:
    """One row per model x method x budget x benchmark: n scored, errors, accuracy % and mean costs.

    Args:
        results: ``Store.results_frame()`` rows.
    """
    cols = [*KEYS, "benchmark", "n", "errors", "accuracy", "total_ms", "prefill_ms", "flops", "tokens_layer_avg",
            "jobs", "base_accuracy"]  # fmt: skip
    if results.empty:
        return pd.DataFrame(columns=cols)
    r = results.assign(
        ok=results["error"].isna() & results["score"].notna(),
        errored=results["error"].notna(),
    )
    per_job = [*KEYS, "benchmark", "job_id"]
    scored = r[r["ok"]]
    out = scored.groupby(per_job).agg(
        n=("score", "size"), accuracy=("score", "mean"), total_ms=("total_ms", "mean"),
        prefill_ms=("prefill_ms", "mean"), flops=("flops", "mean"), tokens_layer_avg=("tokens_layer_avg", "mean"),
    )  # fmt: skip
    errors = r.groupby(per_job)["errored"].sum().rename("errors")
    out = out.join(errors, how="outer").reset_index()
    out["n"] = out["n"].fillna(0).astype(int)
    out["errors"] = out["errors"].astype(int)
    out["accuracy"] = out["accuracy"] * 100
    cell = [*KEYS, "benchmark"]
    out["jobs"] = out.groupby(cell)["job_id"].transform("size")
    out = out.sort_values("n", kind="stable").groupby(cell).tail(1)  # the job with the most scored samples
    # the unpruned model's accuracy on the samples this job scored, as the papers compare: a sample
    # the method errored on (or a shorter run) must not leave the baseline averaging over more
    ok = scored[scored["job_id"].isin(set(out["job_id"]))]
    base = ok[ok["method"] == BASELINE][["model", "benchmark", "sample_id", "score"]]
    paired = ok.merge(base.rename(columns={"score": "base_score"}), on=["model", "benchmark", "sample_id"])
    out["base_accuracy"] = out["job_id"].map(paired.groupby("job_id")["base_score"].mean() * 100)
    return out.sort_values(cell, ignore_index=True)[cols]


def _relative(long: pd.DataFrame, group: list[str]) -> pd.Series:
    """Per row of ``long`` (``group`` + benchmark + accuracy): accuracy / baseline accuracy x 100,
    the baseline on the row's own samples where ``job_accuracy`` paired them (``base_accuracy``)."""
    if "base_accuracy" in long:
        return (long["accuracy"] / long["base_accuracy"] * 100).where(long["base_accuracy"] > 0)
    base_keys = [k for k in group if k not in ("method", "budget", "tokens")] + ["benchmark"]
    base = long[long["method"] == BASELINE].groupby(base_keys)["accuracy"].mean().rename("base")
    joined = long.join(base, on=base_keys)
    rel = joined["accuracy"] / joined["base"] * 100
    return rel.where(joined["base"] > 0)


def leaderboard(acc: pd.DataFrame, benchmarks: list[str], group: list[str] | None = None) -> pd.DataFrame:
    """Methods x budgets: one accuracy column per benchmark and ``REL``, sorted by model, budget, method.

    Args:
        acc: ``job_accuracy`` rows (or ``paper_long`` rows with ``group`` naming their extra keys).
        benchmarks: the columns to show, in order; ``REL`` averages over these only.
        group: row keys (default ``KEYS``).
    """
    group = group or KEYS
    long = acc[acc["benchmark"].isin(benchmarks)].copy()
    if long.empty:
        return pd.DataFrame(columns=[*group, *benchmarks, REL, *(["errors"] if "errors" in acc else [])])
    long["rel"] = _relative(long, group)
    wide = long.pivot_table(index=group, columns="benchmark", values="accuracy", aggfunc="mean", dropna=False)
    wide = wide.reindex(columns=benchmarks)  # a benchmark without rows stays, as an empty column
    # complete: a relative score on every shown benchmark whose baseline can divide (> 0)
    keys = [k for k in group if k not in ("method", "budget", "tokens")]
    usable = long[(long["method"] == BASELINE) & (long["accuracy"] > 0)].groupby(keys)["benchmark"].nunique()
    rows = long.groupby(group)["rel"].agg(["count", "mean"]).reset_index()
    rows = rows.merge(usable.rename("needed").reset_index(), on=keys, how="left").set_index(group)
    wide[REL] = rows["mean"].where(rows["count"] == rows["needed"])
    if "errors" in long:  # errored samples are left out of a row's accuracy: say how many there were
        wide["errors"] = long.groupby(group)["errors"].sum()
    wide = wide.dropna(how="all").reset_index()
    wide.columns.name = None
    return wide.sort_values([*[k for k in group if k != "method"], "method"], kind="stable", ignore_index=True)


def tradeoffs(acc: pd.DataFrame) -> pd.DataFrame:
    """Per model x method x budget: mean accuracy and costs over benchmarks, speed-ups, Pareto flags.

    Speed-up = the unpruned model's mean latency (or FLOPs) / this one's, both over this row's
    benchmarks, averaged alike. ``pareto_ms`` / ``pareto_flops``: on the front of accuracy vs that cost, per model.
    """
    cols = [*KEYS, "accuracy", REL, "total_ms", "prefill_ms", "flops", "speedup", "prefill_speedup",
            "flops_reduction", "pareto_ms", "pareto_flops"]  # fmt: skip
    if acc.empty:
        return pd.DataFrame(columns=cols)
    long = acc.copy()
    long["rel"] = _relative(long, KEYS)
    costs = ["total_ms", "prefill_ms", "flops"]
    # the baseline's costs on each row's own benchmarks: a method run on fewer (or shorter) ones
    # must not look faster for it
    base = long[long["method"] == BASELINE].groupby(["model", "benchmark"])[costs].mean()
    long = long.join(base.add_prefix("base_"), on=["model", "benchmark"])
    pts = long.groupby(KEYS).agg(
        accuracy=("accuracy", "mean"), rel=("rel", "mean"), total_ms=("total_ms", "mean"),
        prefill_ms=("prefill_ms", "mean"), flops=("flops", "mean"),
        base_total_ms=("base_total_ms", "mean"), base_prefill_ms=("base_prefill_ms", "mean"),
        base_flops=("base_flops", "mean"),
    ).reset_index().rename(columns={"rel": REL})  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        pts["speedup"] = pts["base_total_ms"] / pts["total_ms"]
        pts["prefill_speedup"] = pts["base_prefill_ms"] / pts["prefill_ms"]
        pts["flops_reduction"] = pts["base_flops"] / pts["flops"]
    for cost, flag in (("total_ms", "pareto_ms"), ("flops", "pareto_flops")):
        pts[flag] = False
        for _, part in pts.groupby("model"):
            pts.loc[part.index, flag] = pareto_front(part[cost].to_numpy(), part["accuracy"].to_numpy())
    return pts[cols].replace([np.inf, -np.inf], np.nan)


def paper_long(paper: pd.DataFrame) -> pd.DataFrame:
    """paper-results.csv rows in ``job_accuracy``'s shape, for the benchmarks we run.

    Methods are lower-cased ("Vanilla" becomes ``BASELINE``), the vanilla token count becomes budget 0
    (as our unpruned jobs), a percent budget (Qwen2-VL) stays NaN; ``tokens`` keeps the printed count.
    ``paper_rel`` is the paper's own "Avg." (over all of its benchmarks, not only these).
    """
    p = paper[paper["metric"].isin(PAPER_METRICS) & paper["benchmark"].isin(PAPER_BENCHMARKS)]
    out = pd.DataFrame({
        "paper": p["paper"], "table": p["table"], "model": p["model"],
        "method": p["method"].str.lower().replace({"vanilla": BASELINE}),
        "budget": pd.to_numeric(p["visual_tokens"], errors="coerce"),
        "tokens": p["visual_tokens"].astype(str), "benchmark": p["benchmark"].map(PAPER_BENCHMARKS),
        "accuracy": pd.to_numeric(p["value"], errors="coerce"),
    })  # fmt: skip
    out.loc[out["method"] == BASELINE, "budget"] = 0
    avg = paper[paper["benchmark"] == "avg_relative"].assign(method=lambda d: d["method"].str.lower())
    avg = avg.assign(method=avg["method"].replace({"vanilla": BASELINE}), tokens=avg["visual_tokens"].astype(str))
    avg = avg.groupby(["paper", "table", "model", "method", "tokens"])["value"].first().rename("paper_rel")
    return out.join(pd.to_numeric(avg), on=["paper", "table", "model", "method", "tokens"])


def paper_leaderboard(long: pd.DataFrame, benchmarks: list[str]) -> pd.DataFrame:
    """``leaderboard`` of the papers' rows, keyed by paper, table, model, method, budget, with ``paper_rel``."""
    group = ["paper", "table", "model", "method", "budget", "tokens"]
    long = long.assign(budget=long["budget"].fillna(-1))  # pivot keys may not be NaN
    wide = leaderboard(long, benchmarks, group)
    wide = wide.join(long.groupby(group)["paper_rel"].first(), on=group)
    return wide.assign(budget=wide["budget"].replace(-1, np.nan), source=REPORTED)


def _scored(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["error"].isna() & results["score"].notna()]


def accuracy_intervals(results: pd.DataFrame) -> pd.DataFrame:
    """Per model x method x budget x benchmark: accuracy % with its bootstrap interval (``stats.bootstrap_ci``)."""
    rows = []
    for key, part in _scored(results).groupby([*KEYS, "benchmark"]):
        ci = bootstrap_ci(part["score"].to_numpy())
        rows.append((*key, 100 * ci.estimate, 100 * ci.low, 100 * ci.high, ci.n))
    return pd.DataFrame(rows, columns=[*KEYS, "benchmark", "accuracy", "low", "high", "n"])


def difference_intervals(results: pd.DataFrame, model: str, a: str, b: str, budget: int) -> pd.DataFrame:
    """Per benchmark: accuracy of method ``a`` minus ``b`` in points, paired on the samples both scored.

    ``budget`` applies to pruned methods; ``BASELINE`` is always at 0 (every token).
    """
    res = _scored(results)

    def side(method: str) -> pd.Series:
        want = 0 if method == BASELINE else budget
        mine = res[(res["model"] == model) & (res["method"] == method) & (res["budget"] == want)]
        return mine.set_index(["benchmark", "sample_id"])["score"]

    paired = pd.concat({"a": side(a), "b": side(b)}, axis=1, join="inner")
    rows = []
    for bench, part in paired.groupby(level="benchmark"):
        ci = bootstrap_diff_ci(part["a"].to_numpy(), part["b"].to_numpy(), paired=True)
        rows.append((bench, 100 * ci.estimate, 100 * ci.low, 100 * ci.high, ci.n, ci.low > 0 or ci.high < 0))
    return pd.DataFrame(rows, columns=["benchmark", "A - B", "low", "high", "pairs", "excludes 0"])
