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
