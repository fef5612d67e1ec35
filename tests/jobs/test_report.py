"""`python -m jobs results`: which jobs make the relative table."""

from __future__ import annotations

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
    ])  # fmt: skip
    got = rows(table)
    assert got["none"][3:] == ["50.0", "80.0", "100.0"]
    assert got["x"][3:] == ["50.0", "40.0", "75.0"]  # (50/50 + 40/80) / 2
    assert got["y"][3:] == ["75.0", "-", "-"]
