"""Every page under ``streamlit.testing.v1.AppTest`` on a seeded store: the numbers shown, and the empty states."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard import tables
from flowcut.tasks.suite.tasks import make_samples
from jobs.store import Store

from .conftest import open_page

PAGES = ["leaderboard", "tradeoffs", "jobs", "samples", "uncertainty"]


def frame(at, i: int) -> pd.DataFrame:
    """The page's ``i``-th table (AppTest keeps no key on a read-only ``st.dataframe``)."""
    assert len(at.dataframe) > i, f"{len(at.dataframe)} tables on the page"
    return at.dataframe[i].value


def test_leaderboard_numbers(seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(seeded_url, "leaderboard", monkeypatch)
    board = frame(at, 0).set_index("method")
    assert list(board.index) == ["none", "flowcut", "random"]  # budget 0 first; the running fastv is left out
    assert board.loc["none", ["budget", "suite_count", "suite_pope", tables.REL]].tolist() == [0, 50, 75, 100]
    assert board.loc["flowcut", ["suite_count", "suite_pope"]].tolist() == [25, 50]
    assert board.loc["flowcut", tables.REL] == pytest.approx((25 / 50 + 50 / 75) / 2 * 100)  # 58.33
    assert board.loc["random", tables.REL] == pytest.approx((0 / 50 + 25 / 75) / 2 * 100)  # 16.67
    assert set(board["source"]) == {"measured"}

    paper = frame(at, 1).set_index(["table", "method", "budget"])
    assert set(paper["source"]) == {"reported (paper)"} and set(paper.index.get_level_values("method")) <= {
        "none", "flowcut", "random",
    }  # fmt: skip
    assert paper.loc[("Table 1", "flowcut", 64), ["gqa", "pope", "paper_rel"]].tolist() == [55.6, 80.2, 96.0]

    at.sidebar.multiselect(key="filter_budget").set_value([64]).run()  # the relative % keeps its baseline
    board = frame(at, 0).set_index("method")
    assert list(board.index) == ["flowcut", "random"]
    assert board.loc["flowcut", tables.REL] == pytest.approx(58.333, abs=1e-3)
    at.sidebar.toggle(key="filter_unfinished").set_value(True).run()
    board = frame(at, 0).set_index("method")
    # the running fastv has suite_pope only: its score shows, an average over one benchmark does not
    assert board.loc["fastv", "suite_pope"] == 100 and pd.isna(board.loc["fastv", tables.REL])


def test_tradeoffs_speedups_and_front(seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(seeded_url, "tradeoffs", monkeypatch)
    pts = frame(at, 0).set_index("method")
    assert pts.loc["flowcut", ["accuracy", "total_ms", "speedup", "flops_reduction"]].tolist() == [37.5, 40, 2.5, 5]
    assert pts.loc["random", "speedup"] == 2.0 and pts.loc["none", "speedup"] == 1.0
    assert pts["pareto_ms"].to_dict() == {"none": True, "flowcut": True, "random": False}
    assert len(at.get("vega_lite_chart")) == 3  # vs budget, vs latency, vs FLOPs


def test_jobs_counts_progress_and_errors(seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(seeded_url, "jobs", monkeypatch)
    counts = {m.label: m.value for m in at.metric}
    assert counts == {"queued": "1", "running": "1", "succeeded": "6", "failed": "1", "cancelled": "1"}
    running = frame(at, 0)
    assert running[["method", "done", "total_samples", "attempts"]].values.tolist() == [["fastv", 3, 10, 1]]
    assert running["progress"].tolist() == [pytest.approx(0.3)]
    failed = frame(at, 1)
    assert failed[["method", "attempts", "last_error"]].values.tolist() == [["pdrop", 1, "boom: out of memory"]]
    assert len(frame(at, 2)) == 10


def test_samples_where_methods_disagree(seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(seeded_url, "samples", monkeypatch)
    assert [s.value for s in at.selectbox[:3]] == ["fake", "suite_count", 64]
    assert (at.selectbox(key="s_a").value, at.selectbox(key="s_b").value) == ("flowcut", "none")
    assert len(frame(at, 0)) == 4
    at.radio(key="s_show").set_value("one right, one wrong").run()
    table = frame(at, 0)
    # suite_count: flowcut 1 0 0 0 vs none 1 1 0 0: only the second sample
    assert table[["sample", "A score", "B score"]].values.tolist() == [["10000001", 0.0, 1.0]]
    question = make_samples("count", 10_000_001)[0]["question"]
    assert any(question in m.value for m in at.markdown)
    assert len(at.image) == 2  # the scene re-rendered, kept patches drawn for each method


def test_uncertainty_intervals(seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(seeded_url, "uncertainty", monkeypatch)
    cis = frame(at, 0).set_index(["method", "benchmark"])
    none_pope = cis.loc[("none", "suite_pope")]
    assert none_pope["accuracy"] == 75 and none_pope["n"] == 4 and none_pope["low"] <= 75 <= none_pope["high"]
    assert cis.loc[("random", "suite_pope"), "n"] == 4  # the errored sample is not scored
    diff = frame(at, 1).set_index("benchmark")  # flowcut - none at 64, paired on the same samples
    assert diff.loc["suite_pope", ["A - B", "pairs"]].tolist() == [-25, 4]
    assert diff.loc["suite_count", "low"] <= -25 <= diff.loc["suite_count", "high"]


@pytest.mark.parametrize("page", PAGES)
def test_empty_store_shows_the_command(page: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    Store(url).close()
    at = open_page(url, page, monkeypatch)
    assert not at.error and [i.value for i in at.info] == ["The store has no jobs yet."]
    assert "python -m jobs run jobs/specs/default.yaml" in at.code[0].value
    assert "bash scripts/run.sh" in at.code[0].value


def test_missing_store_file_is_not_created(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "nothing-yet.db"
    at = open_page(f"sqlite:///{path}", "leaderboard", monkeypatch)
    assert at.info[0].value == f"No store at `{path}` yet." and not path.exists()


def test_queued_jobs_only(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'queued.db'}"
    with Store(url) as store:
        store.submit_jobs([{"id": "q", "spec_name": "s", "config": {}, "model": "m", "method": "none", "budget": 0,
                            "benchmark": "suite_pope"}])  # fmt: skip
    at = open_page(url, "leaderboard", monkeypatch)
    assert at.info[0].value.startswith("No finished results yet")
    at.switch_page("views/jobs.py").run()
    assert {m.label: m.value for m in at.metric}["queued"] == "1"
