"""The SQL store of the evaluation service: all of the project's SQL lives in this package.

``Store(url)`` opens (and migrates) a SQLite file or a PostgreSQL database; see ``_store.Store``.
Tables: ``jobs`` (the queue), ``runs`` (one per attempt), ``environments`` (one per run),
``results`` (one per job and sample). Migrations: ``migrations/versions``.
"""

from ._queue import JOB_REQUIRED, JobInfo
from ._results import RESULT_FIELDS, RESULT_MEASURED
from ._store import Store
from .models import JobStatus, RunStatus

__all__ = ["JOB_REQUIRED", "RESULT_FIELDS", "RESULT_MEASURED", "JobInfo", "JobStatus", "RunStatus", "Store"]
