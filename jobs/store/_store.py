"""``Store``: the one object the service uses to reach its database (SQLite file or PostgreSQL)."""

from __future__ import annotations

from types import TracebackType

from ._engine import open_engine
from ._environment import EnvironmentOps
from ._queue import QueueOps
from ._reads import ReadOps
from ._results import ResultOps


class Store(QueueOps, ResultOps, EnvironmentOps, ReadOps):
    """The SQL store: job queue, runs and their environments, and per-sample results.

    Opening it upgrades the schema to the newest migration, so a new SQLite file or an empty
    PostgreSQL database is ready at once (concurrent openers are serialised).

    Example:
        >>> store = Store("sqlite://")  # in memory; a file: sqlite:///results/flowcut.db
        >>> store.submit_jobs([{"id": "ab12", "spec_name": "demo", "config": {}, "model": "fake",
        ...                     "method": "none", "budget": 0, "benchmark": "pope"}])
        ['ab12']
        >>> job = store.claim("worker-1", lease_s=60)
        >>> store.complete(job.id, "worker-1")
        True
        >>> store.close()

    Args:
        url: ``sqlite:///PATH``, ``sqlite://`` (in memory: one connection, for tests) or
            ``postgresql+psycopg://USER[:PASSWORD]@HOST:PORT/DB``.

    Raises:
        FlowcutError: on ``store_url`` with a one-line reason when the URL is invalid or the
            database cannot be reached within a few seconds.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._engine = open_engine(url)

    @property
    def url(self) -> str:
        """The URL the store was opened with."""
        return self._url

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    def close(self) -> None:
        """Close every pooled connection (the store must not be used afterwards)."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self._engine.url.render_as_string(hide_password=True)!r})"
