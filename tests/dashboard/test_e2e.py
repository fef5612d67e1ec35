"""End to end: ``streamlit run`` on a free port over a seeded store, the leaderboard in headless Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import APP

CHROMIUM = os.environ.get(
    "FLOWCUT_CHROMIUM", "/usr/bin/chromium"
)  # Debian's package (apt-get install chromium); never a downloaded browser build
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]  # fmt: skip
START_TIMEOUT_S = 90  # streamlit imports pandas / altair / sqlalchemy on a busy 2-core machine
pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(seeded_url: str, tmp_path: Path) -> Iterator[str]:
    """``streamlit run dashboard/app.py -- --store URL`` on a free port; yields its address."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--", "--store", seeded_url]  # fmt: skip
    log = (tmp_path / "streamlit.log").open("w")
    env = {k: v for k, v in os.environ.items() if k != "FLOWCUT_STORE"}  # --store alone must choose the store
    proc = subprocess.Popen(cmd, cwd=APP.parents[1], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "streamlit.log").read_text()
            assert time.monotonic() < deadline, f"streamlit did not start in {START_TIMEOUT_S} s"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def table_rows(grid) -> dict[str, list[str]]:
    """The cells of a data grid by its first column, read from the grid's accessibility table (the
    visible grid is a canvas; its cells hold the values unformatted)."""
    rows = [r.locator("td, th").all_text_contents() for r in grid.locator("tr").all()]
    return {r[0].strip(): [c.strip() for c in r[1:]] for r in rows if r}


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium; the test skips (before starting the server) only when it is absent."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (as root: apt-get install -y chromium)")
    return CHROMIUM


def test_leaderboard_in_chromium(chromium: str, server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    shot = Path(os.environ.get("FLOWCUT_SCREENSHOT_DIR", tmp_path)) / "leaderboard.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.goto(server, wait_until="domcontentloaded")
            page.get_by_text("Reported (paper)", exact=True).wait_for(timeout=60_000)
            grids = page.locator('[data-testid="stDataFrame"]')
            grids.nth(1).wait_for(timeout=30_000)
            page.wait_for_timeout(1000)  # the grids draw their canvases after they mount
            page.screenshot(path=str(shot), full_page=True)
            body = page.inner_text("body")
            ours, paper = table_rows(grids.nth(0)), table_rows(grids.nth(1))
        finally:
            browser.close()
    assert shot.stat().st_size > 20_000
    assert "Leaderboard" in body and "fake" in body and "not measured here" in body
    assert ours["method"] == ["budget", "suite_count", "suite_pope", "avg rel %", "errors", "source"]
    assert ours["none"] == ["0", "50", "75", "100", "0", "measured"]
    assert ours["random"][4] == "1"  # the errored sample, left out of its accuracy
    flowcut, random = ours["flowcut"], ours["random"]
    assert flowcut[:3] == ["64", "25", "50"] and float(flowcut[3]) == pytest.approx(58.333, abs=1e-3)
    assert random[:3] == ["64", "0", "25"] and float(random[3]) == pytest.approx(16.667, abs=1e-3)
    assert set(paper) >= {"source", "reported (paper)"}
