"""Where each run ran: library versions, commit, device and host, one ``environments`` row per run."""

from __future__ import annotations

import platform
from typing import Any

from sqlalchemy import Engine, func, select

from flowcut.errors import FlowcutError

from ._engine import insert_for, read_tx, write_tx
from .models import Environment, Run, utcnow

ENV_COLUMNS = ("python", "torch", "transformers", "ray", "git_commit", "device", "host")


class EnvironmentOps:
    """Environment methods of ``Store`` (mixed in; ``_engine`` is set by ``Store.__init__``)."""

    _engine: Engine

    def record_environment(self, job_id: str, owner: str, env: dict[str, Any]) -> int:
        """Store what ``owner``'s latest run of ``job_id`` ran on (see ``record_run_environment``).

        Returns:
            The run id.

        Raises:
            FlowcutError: on ``job_id`` when ``owner`` never claimed that job.
        """
        with read_tx(self._engine) as conn:
            run_id = conn.scalar(select(func.max(Run.id)).where(Run.job_id == job_id, Run.owner == owner))
        if run_id is None:
            raise FlowcutError("job_id", f"no run of job {job_id} by {owner}")
        self.record_run_environment(run_id, env)
        return int(run_id)

    def record_run_environment(self, run_id: int, env: dict[str, Any]) -> None:
        """Store what a run (``JobInfo.run_id`` from ``claim``) ran on; calling again overwrites it.

        Args:
            run_id: the run.
            env: python, torch, transformers, ray, git_commit, device, host (stored as text; python
                and host default to this process's); any other key goes into ``extra`` (JSON).
        """
        defaults = {"python": platform.python_version(), "host": platform.node()}
        merged = {**defaults, **{k: v for k, v in env.items() if k in ENV_COLUMNS}}
        known = {k: None if merged.get(k) is None else str(merged[k]) for k in ENV_COLUMNS}
        extra = {k: v for k, v in env.items() if k not in ENV_COLUMNS} or None
        values = {**known, "extra": extra, "created_at": utcnow()}
        with write_tx(self._engine) as conn:
            if conn.scalar(select(Run.id).where(Run.id == run_id)) is None:
                raise FlowcutError("run_id", f"no such run: {run_id}")
            stmt = insert_for(conn, Environment).values(run_id=run_id, **values)
            conn.execute(stmt.on_conflict_do_update(index_elements=["run_id"], set_=values))
