"""Store fixtures: a SQLite file per test, and a PostgreSQL server per session with a database per test.

``FLOWCUT_TEST_PG_URL`` points the tests at an existing server instead of a private one (its
role must be allowed to CREATE DATABASE: every test gets a fresh, empty database).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.jobs import pg

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL for the session; skips when PostgreSQL is not installed, fails when it won't start."""
    override = os.environ.get("FLOWCUT_TEST_PG_URL")
    if override:
        yield override
        return
    try:
        pg.find_bin("initdb")
        pg.find_bin("pg_ctl")
    except pg.PostgresUnavailable as e:
        pytest.skip(f"PostgreSQL server binaries not installed: {e}")
    stack = ExitStack()
    try:
        url = stack.enter_context(pg.private_postgres())
    except (RuntimeError, OSError) as e:
        pytest.fail(f"PostgreSQL is installed but the private server did not start: {e}")
    with stack:
        yield url


@pytest.fixture
def pg_db_url(pg_url: str) -> Iterator[str]:
    """A new, empty database on the session's server, dropped after the test."""
    url = pg.create_database(pg_url)
    yield url
    pg.drop_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest) -> str:
    """An empty database on each backend in turn."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_db_url"
    return request.getfixturevalue(fixture)
