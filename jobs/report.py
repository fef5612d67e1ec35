"""Summaries of stored results: accuracy per job and relative to the unpruned model, as the papers report."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rich import box
from rich.table import Table

from .store import Store


def job_summaries(store: Store, spec_name: str | None = None, job_ids: set[str] | None = None) -> list[dict[str, Any]]:
    """One dict per job: its coordinates, status, samples scored / errored, mean score and mean timings.

    Args:
        spec_name: jobs first submitted by that spec (a job another spec submitted first keeps that
            spec's name); ``job_ids``: exactly these jobs, e.g. all of a spec's expansion.
    """
    out = []
    for job in store.list_jobs(spec_name=spec_name):
        if job_ids is not None and job.id not in job_ids:
            continue
        rows = store.results(job.id)
        ok = [r for r in rows if r["error"] is None and r["score"] is not None]

        def mean(key: str, ok: list[dict[str, Any]] = ok) -> float:
            # a cost a backend does not measure (FLOPs of an unknown architecture) is None, not 0
            got = [r[key] for r in ok if r[key] is not None]
            return sum(got) / len(got) if got else float("nan")

        out.append({
            "job": job.id, "status": job.status, "model": job.model, "method": job.method, "budget": job.budget,
            "benchmark": job.benchmark, "n": len(ok), "errors": len(rows) - len(ok), "total": job.total_samples,
            "accuracy": 100 * mean("score"), "total_ms": mean("total_ms"),
            "prefill_ms": mean("prefill_ms"), "tokens": mean("tokens_llm_input"), "flops": mean("flops"),
            "scores": {r["sample_id"]: r["score"] for r in ok},  # to pair a method with the baseline
        })  # fmt: skip
    return out


def _paired_base(method: dict[str, Any], base: dict[str, Any]) -> float:
    """The baseline's accuracy (%) on the samples ``method`` scored, or its whole accuracy without per-sample scores."""
    mine, theirs = method.get("scores"), base.get("scores")
    if not mine or theirs is None:
        return base["accuracy"]
    shared = [theirs[s] for s in mine if s in theirs]
    return 100 * sum(shared) / len(shared) if shared else float("nan")


def relative_table(summaries: list[dict[str, Any]], model_column: bool | None = None) -> Table:
    """Methods x budgets per model: per-benchmark accuracy and the average relative to ``none`` (%).

    ``model_column``: None names a single model in the title instead, so that the table fits an
    80-column log whatever the model's name (a pinned hub name is 60 characters).
    """
    # only finished jobs, and of several finished jobs in one cell (other limits, seeds, options)
    # the one with the most scored samples: a cell never mixes or silently swaps runs
    done = [s for s in summaries if s["status"] == "succeeded"]
    chosen: dict[tuple[str, str, int, str], dict[str, Any]] = {}
    for s in sorted(done, key=lambda s: s["n"]):
        chosen[(s["model"], s["method"], s["budget"], s["benchmark"])] = s
    summaries = list(chosen.values())
    left_out = len(done) - len(summaries)
    benches = sorted({s["benchmark"] for s in summaries})
    baselines = {(s["model"], s["benchmark"]): s for s in summaries if s["method"] == "none"}
    base = {key: s["accuracy"] for key, s in baselines.items()}
    cells: dict[tuple[str, str, int], dict[str, float]] = defaultdict(dict)
    paired: dict[tuple[str, str, int], dict[str, float]] = defaultdict(dict)  # the baseline on the cell's samples
    for s in summaries:
        cells[(s["model"], s["method"], s["budget"])][s["benchmark"]] = s["accuracy"]
        if (s["model"], s["benchmark"]) in baselines:
            paired[(s["model"], s["method"], s["budget"])][s["benchmark"]] = _paired_base(
                s, baselines[(s["model"], s["benchmark"])]
            )
    note = f"; {left_out} other finished job(s) of the same cells left out" if left_out else ""
    models = sorted({s["model"] for s in summaries})
    if model_column is None:
        model_column = len(models) != 1
    # the generated suite's names share a prefix; without it the table fits an 80-column log
    suite = bool(benches) and all(b.startswith("suite_") for b in benches)
    title = f"accuracy (%) per {'suite_ ' if suite else ''}benchmark, finished jobs"
    title += "" if model_column else f" of {models[0] if models else 'no model'}"
    table = Table(title=f"{title}; rel = mean of method / unpruned over benchmarks, '-' unless it has all of "
                  f"them{note}", box=box.SIMPLE_HEAD, collapse_padding=True)  # fmt: skip
    if model_column:
        table.add_column("model", overflow="fold")  # a pinned name is told apart by its end: folded, never cut
    for col in ("method", "budget", *(b.removeprefix("suite_") if suite else b for b in benches), "rel %"):
        table.add_column(col, justify="right")
    for (model, method, budget), accs in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        # a baseline of 0 divides nothing, nor one without a scored sample (NaN), as in the dashboard
        usable = [b for b in benches if (v := base.get((model, b))) and v == v]
        pair = paired[(model, method, budget)]
        # no sample scored by both the method and the baseline: a NaN pair, nothing to divide by
        rels = [accs[b] / p * 100 for b in usable if b in accs and accs[b] == accs[b] and (p := pair.get(b)) and p == p]
        complete = len(rels) == len(usable)  # an average over fewer benchmarks is not the same figure
        table.add_row(*([model] if model_column else []), method, "all" if budget == 0 else str(budget),
                      *[f"{accs[b]:.1f}" if b in accs and accs[b] == accs[b] else "-" for b in benches],
                      f"{sum(rels) / len(rels):.1f}" if rels and complete else "-")  # fmt: skip
    return table


def markdown_table(summaries: list[dict[str, Any]]) -> str:
    """The same table as :func:`relative_table`, as Markdown (for README / BENCHMARKS.md)."""
    table = relative_table(summaries, model_column=True)
    cols = [c.header for c in table.columns]
    cells = [list(c.cells) for c in table.columns]
    lines = ["| " + " | ".join(str(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(col[i]) for col in cells) + " |" for i in range(len(cells[0]) if cells else 0)]
    return "\n".join(lines)
