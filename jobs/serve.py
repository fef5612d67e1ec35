"""Ray Serve application: the API of ``jobs/api.py`` as one deployment.

python -m jobs serve --store sqlite:///results/flowcut.db      # http://127.0.0.1:8000/docs
"""

from __future__ import annotations

from typing import Any

from ray import serve

from .api import make_app


def build(store_url: str, token: str | None = None) -> Any:
    """The bound Serve application (FastAPI ingress over the store)."""
    app = make_app(store_url, token)

    @serve.deployment(name="flowcut-api", ray_actor_options={"num_cpus": 0.25})
    @serve.ingress(app)
    class Api:
        pass

    return Api.bind()
