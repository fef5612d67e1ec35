"""Ray's state API over a cluster's dashboard, for tests: which nodes exist and which ran our actors.

The tests' version-sensitive Ray calls live here (as jobs/raycompat.py holds the service's). Token
auth is on (Ray 2.60's default once ~/.ray/auth_token exists), so requests carry the token themselves:
this process never joins the cluster and needs no RAY_AUTH_MODE of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

from ray.util.state.api import StateApiClient
from ray.util.state.common import ListApiOptions, StateResource


def _token() -> str:
    token = os.environ.get("RAY_AUTH_TOKEN")
    if token:
        return token.strip()
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH", "~/.ray/auth_token")).expanduser().read_text().strip()


def _client(dashboard: str) -> StateApiClient:
    return StateApiClient(address=dashboard, headers={"Authorization": f"Bearer {_token()}"})


def nodes(dashboard: str) -> dict[str, tuple[str, str]]:
    """node id -> (name, state): the name is the node's own custom resource (``head``, ``worker_a``, ...)."""
    out = {}
    for n in _client(dashboard).list(StateResource.NODES, ListApiOptions(detail=True), raise_on_missing_output=False):
        own = [r for r in (n.resources_total or {}) if r == "head" or r.startswith("worker_")]
        out[n.node_id] = (own[0] if own else n.node_id, n.state)
    return out


def nodes_that_ran(dashboard: str, name_part: str) -> dict[str, int]:
    """node id -> how many finished tasks whose name contains ``name_part`` ran there.

    Ray Data's actor tasks are named after the pool's worker class and the mapped class, e.g.
    ``MapWorker(MapBatches(EvalActor)).submit``.
    """
    opts = ListApiOptions(filters=[("state", "=", "FINISHED")], limit=10_000)
    counts: dict[str, int] = {}
    for t in _client(dashboard).list(StateResource.TASKS, opts, raise_on_missing_output=False):
        if name_part in (t.name or "") and t.node_id:
            counts[t.node_id] = counts.get(t.node_id, 0) + 1
    return counts
