"""`python -m jobs results`: which jobs make the relative table."""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from jobs.report import markdown_table


def summary(method: str, benchmark: str, accuracy: float, n: int = 8, status: str = "succeeded",
            budget: int = 64) -> dict:  # fmt: skip
    return {"model": "m", "method": method, "budget": 0 if method == "none" else budget, "benchmark": benchmark,
            "accuracy": accuracy, "n": n, "status": status}  # fmt: skip


def rows(table: str) -> dict[str, list[str]]:
    return {line.split(" | ")[1]: line.strip("| ").split(" | ") for line in table.splitlines()[2:]}


def test_relative_table_uses_finished_jobs_one_per_cell_and_whole_rows() -> None:
    table = markdown_table([
        summary("none", "a", 50.0), summary("none", "b", 80.0),
        summary("none", "a", 100.0, n=4),  # a smaller run of the same cell: left out, not averaged in
        summary("x", "a", 50.0), summary("x", "b", 40.0),
        summary("x", "a", 10.0, n=100, status="running"),  # unfinished: never in the table
        summary("y", "a", 75.0),  # no result on b: no average over a alone
        summary("none", "c", 0.0), summary("x", "c", 10.0),  # a baseline of 0 divides nothing: c is left out
    ])  # fmt: skip
    got = rows(table)
    assert got["none"][3:] == ["50.0", "80.0", "0.0", "100.0"]
    assert got["x"][3:] == ["50.0", "40.0", "10.0", "75.0"]  # (50/50 + 40/80) / 2
    assert got["y"][3:] == ["75.0", "-", "-", "-"]


def test_a_specs_summary_holds_the_jobs_another_spec_submitted_first(tmp_path) -> None:
    from jobs.report import job_summaries
    from jobs.store import Store

    from ..dashboard.conftest import job

    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        shared = job("none", 0, "suite_pope") | {"spec_name": "first"}
        store.submit_jobs([shared])
        store.submit_jobs(
            [shared | {"spec_name": "second"}, job("flowcut", 64, "suite_pope") | {"spec_name": "second"}]
        )
        assert [s["method"] for s in job_summaries(store, "second")] == ["flowcut"]  # by name: the baseline is not
        ids = {shared["id"], "flowcut-64-suite_pope"}
        assert sorted(s["method"] for s in job_summaries(store, job_ids=ids)) == ["flowcut", "none"]


def test_relative_table_pairs_the_baseline_with_the_samples_the_method_scored() -> None:
    base = summary("none", "a", 50.0, n=4) | {"scores": {"s0": 1.0, "s1": 1.0, "s2": 0.0, "s3": 0.0}}
    # the method errored on s2 and s3, the two the baseline got wrong: 2 of 2 against the baseline's 2 of 2
    method = summary("x", "a", 100.0, n=2) | {"scores": {"s0": 1.0, "s1": 1.0}}
    got = rows(markdown_table([base, method]))
    assert got["x"][3:] == ["100.0", "100.0"]  # not 100 / 50 = 200


def test_the_main_commands_table_fits_an_80_column_log() -> None:
    """`scripts/run.sh` prints the table to a log of 80 columns: no method, benchmark or model name is cut."""
    import io

    from rich.console import Console

    from jobs.report import relative_table

    benches = ("pope", "gqa", "count", "mme", "mcq", "textvqa")
    one = [summary(m, f"suite_{b}", 50.0) | {"model": "mini@cc63a542"} for m in ("none", "visionzip") for b in benches]
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(relative_table(one))
    text = console.export_text()
    assert "…" not in text and "mini@cc63a542" in text and all(f" {b} " in text for b in benches)
    assert "visionzip" in text and "100.0" in text
    hub = "org/model@" + "0123456789" * 4
    console.print(relative_table(one + [s | {"model": hub} for s in one]))
    folded = console.export_text()  # a long pinned name is folded over lines in its column, never cut
    assert "…" not in folded and folded.count("org/model@") == 2 and folded.count("0123456789") == 2 * 4


# a sample's outcome for one job: right, wrong, errored, or never run (a shorter or cut-off job)
_OUTCOMES = st.sampled_from([1.0, 0.0, "error", None])


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
@given(st.data())
def test_the_cli_and_the_dashboard_report_the_same_figures(data: st.DataObject) -> None:
    """The relative score lives twice (rows of dicts here, pandas in the dashboard): both must agree."""
    import tempfile

    from dashboard.tables import REL, job_accuracy, leaderboard
    from jobs.report import job_summaries, relative_table
    from jobs.store import RESULT_MEASURED, Store

    benches = data.draw(st.lists(st.sampled_from(["suite_pope", "suite_gqa", "suite_count"]), min_size=1,
                                 max_size=3, unique=True))  # fmt: skip
    n = data.draw(st.integers(1, 5))
    cells = [("none", 0), ("flowcut", 64), ("random", 64), ("random", 128)]
    with tempfile.TemporaryDirectory() as tmp, Store(f"sqlite:///{tmp}/s.db") as store:
        for method, budget in cells:
            for bench in data.draw(st.lists(st.sampled_from(benches), unique=True), label=f"{method}@{budget}"):
                jid = f"{method}-{budget}-{bench}"
                store.submit_jobs([{"id": jid, "spec_name": "t", "config": {}, "model": "m", "method": method,
                                    "budget": budget, "benchmark": bench}])  # fmt: skip
                store.claim("w", 600, job_ids=[jid])
                rows = []
                for i, outcome in enumerate(data.draw(st.lists(_OUTCOMES, min_size=n, max_size=n))):
                    if outcome == "error":
                        rows.append({"sample_id": f"s{i}", "error": "image: missing"})
                    elif outcome is not None:
                        rows.append(
                            {
                                **dict.fromkeys(RESULT_MEASURED),
                                "sample_id": f"s{i}",
                                "prediction": "x",
                                "reference": "x",
                                "score": outcome,
                                "parser": "p",
                                "parser_version": "1",
                            }
                        )
                store.write_results(jid, rows)
                assert store.complete(jid, "w")
        cli = relative_table(job_summaries(store), model_column=True)
        frame = store.results_frame()
    acc = job_accuracy(frame[frame["status"] == "succeeded"])
    board = leaderboard(acc, sorted(benches))
    col = {c.header: list(c._cells) for c in cli.columns}
    shown = [c for c in col if c not in ("model", "method", "budget", "rel %")]
    got_cli = {
        (m, b): (i, r) for i, (m, b, r) in enumerate(zip(col["method"], col["budget"], col["rel %"], strict=True))
    }
    got_board = {(m, "all" if b == 0 else str(b)): "-" if pd.isna(r) else f"{r:.1f}"
                 for m, b, r in zip(board["method"], board["budget"], board[REL], strict=True)}  # fmt: skip
    assert set(got_board) <= set(got_cli)
    # a finished job without a result row is a row of '-' in the CLI and no row in the dashboard
    assert all(all(col[c][i] == "-" for c in shown) for key, (i, _) in got_cli.items() if key not in got_board)
    assert {key: r for key, (_, r) in got_cli.items() if key in got_board} == got_board
    runs = [i for key, (i, _) in got_cli.items() if key in got_board]
    for name in shown:
        for i in runs:
            m, b = col["method"][i], col["budget"][i]
            want = board[(board["method"] == m) & (board["budget"] == (0 if b == "all" else int(b)))]["suite_" + name]
            assert col[name][i] == ("-" if pd.isna(want.iloc[0]) else f"{want.iloc[0]:.1f}"), (m, b, name)
