"""Every version-sensitive Ray call in one place (Ray 2.60 here), so an upgrade touches one file."""

from __future__ import annotations

import os
from typing import Any

import ray


def init() -> None:
    """Join the cluster this process runs in (``ray job submit`` sets it), else start a local one."""
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False, "configure_logging": False}
    if not os.environ.get("RAY_ADDRESS"):
        # a local stand-in: no dashboard (saves a core's worth of start-up on small machines)
        kwargs["include_dashboard"] = False
    ray.init(**kwargs)


def actor_map(ds: Any, cls: type, *, actors: int, batch_size: int, cpus: float, gpus: float,
              node_type: str | None, constructor_kwargs: dict[str, Any]) -> Any:  # fmt: skip
    """``map_batches`` over a fixed pool of ``actors`` stateful actors (one model each).

    Actor deaths are retried by Ray Data (its actor pools default to ``max_restarts=-1`` and
    ``max_task_retries=-1``); exceptions from our own code are not, which is why the
    evaluator turns them into errored rows itself.
    """
    return ds.map_batches(
        cls,
        compute=ray.data.ActorPoolStrategy(size=actors),
        batch_size=batch_size,
        batch_format="pandas",
        num_cpus=cpus,
        num_gpus=gpus,
        fn_constructor_kwargs=constructor_kwargs,
        # pin to nodes advertising this custom resource (cluster/ starts GPU nodes with their type)
        resources={node_type: 0.001} if node_type else None,
    )


def quiet_progress() -> None:
    """Our own progress bar counts samples; Ray Data's per-operator bars would interleave with it."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False


def serve_run(app: Any, host: str, port: int, blocking: bool) -> None:
    """Start Serve's HTTP proxy on ``host:port`` (127.0.0.1 unless told) and deploy ``app``."""
    from ray import serve

    serve.start(http_options={"host": host, "port": port})
    serve.run(app, name="flowcut", route_prefix="/", blocking=blocking)
