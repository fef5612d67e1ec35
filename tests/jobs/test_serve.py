"""The Ray Serve application end to end: ``python -m jobs serve`` on 127.0.0.1, queried over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_health_jobs_and_ask(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"FLOWCUT_API_TOKEN": "t0k"}
    proc = subprocess.Popen([sys.executable, "-m", "jobs", "serve", "--store", f"sqlite:///{tmp_path}/s.db",
                             "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        else:
            pytest.fail("serve did not come up in 180 s")
        spec = {"name": "s", "models": ["fake"], "methods": ["none"], "budgets": [64], "benchmarks": ["suite_pope"]}
        assert httpx.post(f"{base}/jobs", json=spec).status_code == 401
        r = httpx.post(f"{base}/jobs", json=spec, headers={"Authorization": "Bearer t0k"})
        assert r.status_code == 200 and len(r.json()["jobs"]) == 1
        assert [j["status"] for j in httpx.get(f"{base}/jobs").json()] == ["queued"]
        import io

        from tests.conftest import make_image

        buf = io.BytesIO()
        make_image(1).save(buf, format="PNG")
        r = httpx.post(f"{base}/ask", files={"image": ("a.png", buf.getvalue(), "image/png")},
                       data={"question": "what?", "model": "fake", "budget": "64"}, timeout=60)  # fmt: skip
        assert r.status_code == 200 and len(r.json()["kept"][0]) == 64
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "flowcut-eval"
    finally:
        os.killpg(proc.pid, 9)  # the driver and the local Ray it started (same session)
        proc.wait()
