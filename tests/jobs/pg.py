"""A private, throw-away PostgreSQL server for tests and benchmarks.

``initdb`` into a temporary directory, ``pg_ctl start`` on a free localhost port (socket in the
same directory, fsync off: the data is disposable), create a database, hand out its URL, then
stop the server and delete the directory. PostgreSQL refuses to run as root, so as root the
server runs as ``nobody`` (or a ``flowcut-pg`` system user created on first use) through
``subprocess``'s ``user=`` / ``group=``, which needs no ``su`` / ``runuser``.

    with private_postgres() as url:  # postgresql+psycopg://postgres@127.0.0.1:PORT/flowcut
        ...
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

START_TIMEOUT_S = 30
FALLBACK_USER = "flowcut-pg"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server binaries are not installed here (tests skip rather than fail)."""


def find_bin(name: str) -> str:
    """The path of a PostgreSQL server binary: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return candidates[-1]
    raise PostgresUnavailable(f"{name} not found on PATH or in /usr/lib/postgresql/*/bin")


def _server_user() -> pwd.struct_passwd | None:
    """The account to run the server as: None when not root, else nobody (created if absent)."""
    if os.geteuid() != 0:
        return None
    for name in ("nobody", FALLBACK_USER):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", FALLBACK_USER], check=True, capture_output=True)
    return pwd.getpwnam(FALLBACK_USER)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], user: pwd.struct_passwd | None, cwd: str) -> subprocess.CompletedProcess[str]:
    kw: dict[str, Any] = {}
    if user is not None:
        kw = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    env = {**os.environ, "LC_ALL": "C", "HOME": cwd}  # nobody's home may not exist; C avoids locale errors
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=START_TIMEOUT_S + 10, **kw)


def _admin_url(url: str) -> str:
    """A libpq URL for the server's ``postgres`` database (to create and drop databases)."""
    u = make_url(url).set(drivername="postgresql", database="postgres")
    return u.render_as_string(hide_password=False)


def create_database(url: str, name: str | None = None) -> str:
    """Create a new empty database on the server of ``url``; return its SQLAlchemy URL."""
    name = name or f"flowcut_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_url(url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(url).set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database of ``url`` (closing any connections left open to it)."""
    name = make_url(url).database
    with psycopg.connect(_admin_url(url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def private_postgres(dbname: str = "flowcut") -> Iterator[str]:
    """Run a private PostgreSQL server for the duration of the ``with`` block.

    Yields:
        ``postgresql+psycopg://postgres@127.0.0.1:PORT/<dbname>`` (trust authentication).

    Raises:
        PostgresUnavailable: when the binaries are not installed.
        RuntimeError: when they are but the server does not start (with the tail of its log).
    """
    initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
    user = _server_user()
    tmp = tempfile.mkdtemp(prefix="flowcut-pg-")
    data, log = str(Path(tmp) / "data"), str(Path(tmp) / "server.log")
    started = False
    try:
        if user is not None:
            os.chown(tmp, user.pw_uid, user.pw_gid)
        r = _run(
            [initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"], user, tmp
        )
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
        for _attempt in range(3):  # the free port may be taken between choosing and binding it
            port = _free_port()
            opts = (
                f"-k {tmp} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off -c synchronous_commit=off"
                " -c full_page_writes=off -c max_connections=200"
            )
            r = _run([pg_ctl, "-D", data, "-l", log, "-w", "-t", str(START_TIMEOUT_S), "-o", opts, "start"], user, tmp)
            if r.returncode == 0:
                started = True
                break
        if not started:
            tail = Path(log).read_text(errors="replace")[-2000:] if Path(log).exists() else r.stderr
            raise RuntimeError(f"pg_ctl start failed ({r.returncode}): {tail.strip()}")
        server = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        yield create_database(server, dbname)
    finally:
        if started:
            _run([pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"], user, tmp)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":  # python tests/jobs/pg.py: start, print the URL, wait for Enter
    with private_postgres() as url:
        input(f"{url}\npress Enter to stop ")
