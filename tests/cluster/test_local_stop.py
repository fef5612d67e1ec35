"""cluster/local.sh stop without Ray: it finds the stand-in's processes by FLOWCUT_LOCAL_NODE alone.

A process that spawns a child as it is being stopped (as a raylet may start a worker) must not leave
that child behind, and a process of another stand-in (another FLOWCUT_LOCAL_DIR) must be left alone.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).parents[2]
# Ignores SIGTERM and, on it, starts a long child that inherits its environment: only SIGKILL ends it,
# after the first look at the processes, so the child is found only by looking again.
STUBBORN = "trap 'sleep 120 &' TERM; while :; do sleep 0.2; done"


def spawn(node_dir: Path, code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["bash", "-c", code], env=os.environ | {"FLOWCUT_LOCAL_NODE": str(node_dir)},
                            start_new_session=True)  # fmt: skip


def environ_of(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def running(pid: int) -> bool:
    """Still there and not a zombie (the state follows the parenthesised command name in /proc/PID/stat)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def running_under(prefix: Path) -> list[int]:
    mark = f"FLOWCUT_LOCAL_NODE={prefix}/".encode()
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return [p for p in pids if mark in environ_of(p) and running(p)]


def test_stop_ends_late_children_and_only_this_stand_ins_processes(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    procs = [spawn(ours / "head", STUBBORN), spawn(ours / "worker_a", "sleep 120"), spawn(theirs / "head", "sleep 120")]
    try:
        time.sleep(0.5)
        assert running_under(ours), "the stand-in's processes did not start"
        r = subprocess.run(["bash", str(ROOT / "cluster" / "local.sh"), "stop"], capture_output=True, text=True,
                           env=os.environ | {"FLOWCUT_LOCAL_DIR": str(ours)}, timeout=60)  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "stopped"
        assert running_under(ours) == []
        assert procs[2].poll() is None, "stop ended another stand-in's process"
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for pid in running_under(tmp_path):
            os.kill(pid, 9)
