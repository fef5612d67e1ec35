"""The leaderboard arithmetic and the papers' rows, without Streamlit."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard import tables
from dashboard.queries import PAPER_CSV, store_url
from jobs.store import Store

from .conftest import seed_store


def test_accuracy_and_relative_by_hand(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    seed_store(url)
    with Store(url) as store:
        res = store.results_frame()
    acc = tables.job_accuracy(res[res["status"] == "succeeded"])
    random_pope = acc[(acc["method"] == "random") & (acc["benchmark"] == "suite_pope")].iloc[0]
    assert (random_pope["n"], random_pope["errors"], random_pope["accuracy"]) == (4, 1, 25.0)  # error not counted
    board = tables.leaderboard(acc, ["suite_count", "suite_pope"]).set_index("method")
    assert board.loc["random", "errors"] == 1 and board.loc["none", "errors"] == 0  # shown, not hidden
    assert board.loc["none", tables.REL] == pytest.approx(100)
    assert board.loc["flowcut", tables.REL] == pytest.approx((25 / 50 + 50 / 75) / 2 * 100)
    assert board.loc["random", ["suite_count", "suite_pope"]].tolist() == [0.0, 25.0]
    pts = tables.tradeoffs(acc).set_index("method")
    assert pts.loc["flowcut", "speedup"] == pytest.approx(2.5) and pts.loc["flowcut", "flops_reduction"] == 5
    assert pts["pareto_ms"].to_dict() == {"flowcut": True, "none": True, "random": False}


def test_paper_rows_map_names_and_keep_the_printed_average() -> None:
    long = tables.paper_long(pd.read_csv(PAPER_CSV, dtype={"visual_tokens": str}))
    assert set(long["benchmark"]) == set(tables.PAPER_BENCHMARKS.values())
    t1 = tables.paper_leaderboard(long[long["table"] == "Table 1"], ["gqa", "pope"]).set_index(["method", "budget"])
    assert t1.loc[("none", 0), "gqa"] == 61.9 and t1.loc[("flowcut", 64), "gqa"] == 55.6
    assert t1.loc[("flowcut", 64), "paper_rel"] == 96.0  # the paper's Avg. over its 12 benchmarks
    assert t1.loc[("flowcut", 64), tables.REL] == pytest.approx((55.6 / 61.9 + 80.2 / 85.9) / 2 * 100)
    assert (t1["source"] == tables.REPORTED).all()


def test_store_url_precedence(monkeypatch) -> None:
    monkeypatch.setenv("FLOWCUT_STORE", "sqlite:///env.db")
    assert store_url(["--store", "sqlite:///arg.db"]) == "sqlite:///arg.db"
    assert store_url([]) == "sqlite:///env.db"
    monkeypatch.delenv("FLOWCUT_STORE")
    assert store_url(["--other", "x"]) == "sqlite:///results/flowcut.db"


def _rows(job: str, method: str, benchmark: str, scores: list[float]) -> list[dict]:
    return [{"model": "m", "method": method, "budget": 0 if method == "none" else 64, "benchmark": benchmark,
             "job_id": job, "sample_id": f"s{i}", "score": s, "error": None, "total_ms": 10.0, "prefill_ms": 5.0,
             "flops": 1.0, "tokens_layer_avg": 1.0} for i, s in enumerate(scores)]  # fmt: skip


def test_one_job_per_cell_and_no_average_over_fewer_benchmarks() -> None:
    res = pd.DataFrame(
        _rows("n4", "none", "a", [1, 1, 1, 1])  # a smoke run of the same cell: not pooled with n8
        + _rows("n8", "none", "a", [1, 1, 1, 1, 0, 0, 0, 0])
        + _rows("nb", "none", "b", [1, 1])
        + _rows("x", "x", "a", [1, 1, 1, 1, 0, 0, 0, 0]) + _rows("xb", "x", "b", [1, 0])
        + _rows("y", "y", "a", [1, 1])  # y has no result on b
        + _rows("nz", "none", "z", [0]) + _rows("xz", "x", "z", [1])  # a baseline of 0 divides nothing
    )  # fmt: skip
    acc = tables.job_accuracy(res).set_index(["method", "benchmark"])
    assert acc.loc[("none", "a"), ["n", "accuracy", "jobs"]].tolist() == [8, 50.0, 2]
    board = tables.leaderboard(acc.reset_index(), ["a", "b", "z"]).set_index("method")
    assert board.loc["x", tables.REL] == pytest.approx((50 / 50 + 50 / 100) / 2 * 100)
    assert board.loc["y", "a"] == 100 and pd.isna(board.loc["y", tables.REL])


def test_speedup_compares_the_same_benchmarks() -> None:
    """A method run on the short benchmark only is compared with the baseline's time there, not its mean."""
    short, long_ = _rows("ns", "none", "short", [1]), _rows("nl", "none", "long", [1])
    for r in long_:
        r["total_ms"] = 30.0
    fast = _rows("x", "x", "short", [1])
    fast[0]["total_ms"] = 4.0
    pts = tables.tradeoffs(tables.job_accuracy(pd.DataFrame(short + long_ + fast))).set_index("method")
    assert pts.loc["x", "speedup"] == pytest.approx(10 / 4)  # not (10 + 30) / 2 / 4


def test_relative_accuracy_pairs_the_samples_the_method_scored() -> None:
    """A method that errored on half the samples is compared with the baseline on the other half."""
    base = _rows("n", "none", "a", [1, 1, 0, 0])
    method = _rows("x", "x", "a", [1, 1, 0, 0])
    for r in method[2:]:
        r["score"], r["error"] = None, "model: out of memory"  # the two the baseline got wrong
    acc = tables.job_accuracy(pd.DataFrame(base + method)).set_index("method")
    assert acc.loc["x", ["n", "errors", "accuracy", "base_accuracy"]].tolist() == [2, 2, 100.0, 100.0]
    board = tables.leaderboard(acc.reset_index(), ["a"]).set_index("method")
    assert board.loc["x", tables.REL] == pytest.approx(100.0)  # not 100 / 50: the same two samples
