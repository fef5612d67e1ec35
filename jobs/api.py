"""The service's HTTP API (FastAPI, served by Ray Serve in ``jobs/serve.py``).

- ``POST /jobs`` submit a sweep spec (JSON, the YAML's fields), ``GET /jobs``, ``GET /jobs/{id}``,
  ``POST /jobs/{id}/cancel``, ``GET /jobs/{id}/results``;
- ``POST /ask`` answer a question about an uploaded image with a chosen model, method and budget.

Submit and cancel need ``Authorization: Bearer <FLOWCUT_API_TOKEN>``; without that variable
set they are refused. Bad input is a 4xx whose ``detail`` names the field.
"""

from __future__ import annotations

import hmac
import os
from functools import lru_cache
from typing import Any

from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from flowcut.errors import FlowcutError


class Problem(BaseModel):
    """Every 4xx: one line naming the field (and the allowed values where known)."""

    detail: str


PROBLEM = {
    400: {"model": Problem, "description": "unparseable body"},
    422: {"model": Problem, "description": "bad input"},
}


class JobOut(BaseModel):
    id: str
    status: str
    model: str
    method: str
    budget: int
    benchmark: str
    attempts: int
    priority: int
    last_error: str | None
    done: int
    total: int | None


class SubmitOut(BaseModel):
    jobs: list[str]


class AskOut(BaseModel):
    answer: str
    kept: list[list[int]]
    visual_tokens_llm_input: int
    visual_tokens_layer_avg: float
    vision_ms: float
    prefill_ms: float
    decode_ms: float
    total_ms: float
    flops: float
    kv_cache_bytes: int


def make_app(store_url: str, token: str | None = None) -> FastAPI:
    """The API over the store at ``store_url``; ``token`` defaults to $FLOWCUT_API_TOKEN."""
    app = FastAPI(title="flowcut-eval", version="0.1.0", description=__doc__, responses=PROBLEM)
    secret = token if token is not None else os.environ.get("FLOWCUT_API_TOKEN")

    def store() -> Any:
        return _open_cached(store_url)

    def authorised(authorization: str | None = Header(None)) -> None:
        if not secret:
            raise HTTPException(403, "submit and cancel are disabled: the server has no FLOWCUT_API_TOKEN")
        if not authorization or not hmac.compare_digest(authorization, f"Bearer {secret}"):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(FlowcutError)
    async def bad_input(_: Any, exc: FlowcutError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    def job_out(job: Any) -> JobOut:
        done, total = store().progress(job.id)
        return JobOut(id=job.id, status=job.status, model=job.model, method=job.method, budget=job.budget,
                      benchmark=job.benchmark, attempts=job.attempts, priority=job.priority,
                      last_error=job.last_error, done=done, total=total)  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Any, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"] if x not in ("body", "query", "path", "form")) or "request"
        return JSONResponse(status_code=422, content={"detail": f"{field}: {err['msg']}"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette lists only the first matching route's methods; GET and POST /jobs are two routes
            methods = {m for r in app.routes if isinstance(r, APIRoute) and r.path_regex.match(request.url.path)
                       for m in r.methods}  # fmt: skip
            headers["Allow"] = ", ".join(sorted(methods))
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail}, headers=headers)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/jobs", response_model=SubmitOut, dependencies=[Depends(authorised)],
              responses={401: {"description": "bad token"}, 403: {"description": "disabled"}})  # fmt: skip
    def submit(spec: dict[str, Any]) -> SubmitOut:
        from .runner import ensure_suite
        from .spec import expand, parse_spec

        parsed = parse_spec(spec)
        ensure_suite(parsed.benchmarks)  # first, as a CLI sweep: a built suite's fingerprint is part of the job ids
        rows = [c.row(parsed.max_attempts) for c in expand(parsed)]
        return SubmitOut(jobs=store().submit_jobs(rows, priority=parsed.priority))

    @app.get("/jobs", response_model=list[JobOut])
    def list_jobs(status: str | None = Query(None, pattern="^(queued|running|succeeded|failed|cancelled)$"),
                  spec: str | None = None) -> list[JobOut]:  # fmt: skip
        return [job_out(j) for j in store().list_jobs(status=status, spec_name=spec)]

    def find(job_id: str) -> Any:
        job = store().get_job(job_id)
        if job is None:
            raise HTTPException(404, f"job_id: no job {job_id!r}")
        return job

    @app.get("/jobs/{job_id}", response_model=JobOut, responses={404: {"description": "no such job"}})
    def get_job(job_id: str) -> JobOut:
        return job_out(find(job_id))

    @app.post("/jobs/{job_id}/cancel", dependencies=[Depends(authorised)],
              responses={404: {"description": "no such job"}, 401: {"description": "bad token"},
                         403: {"description": "disabled"}})  # fmt: skip
    def cancel(job_id: str) -> dict[str, bool]:
        find(job_id)
        return {"cancelled": store().cancel(job_id)}

    @app.get("/jobs/{job_id}/results", responses={404: {"description": "no such job"}})
    def results(job_id: str, limit: int = Query(1000, ge=1, le=100_000)) -> list[dict[str, Any]]:
        find(job_id)
        return store().results(job_id, limit=limit)

    @app.post("/ask", response_model=AskOut, responses={422: {"description": "bad input"}})
    def ask(
        image: UploadFile = File(...),
        question: str = Form(..., min_length=1, max_length=2000),
        model: str = Form("mini"),
        method: str = Form("flowcut"),
        budget: int = Form(64),
        max_new_tokens: int = Form(16, ge=1, le=256),
    ) -> AskOut:
        from flowcut.images import open_image
        from flowcut.methods import make_method

        pruner = make_method(method)
        img = open_image(image.file.read())
        adapter = load_cached(model)
        out = adapter.generate([img], [question], pruner, budget, max_new_tokens=max_new_tokens)[0]
        c = out.cost
        return AskOut(answer=out.text, kept=out.kept, visual_tokens_llm_input=c.visual_tokens_llm_input,
                      visual_tokens_layer_avg=c.visual_tokens_layer_avg, vision_ms=c.vision_ms,
                      prefill_ms=c.prefill_ms, decode_ms=c.decode_ms, total_ms=c.total_ms, flops=c.flops,
                      kv_cache_bytes=c.kv_cache_bytes)  # fmt: skip

    return app


@lru_cache(maxsize=8)
def _open_cached(url: str) -> Any:
    """One Store per URL and process (module level: Ray Serve pickles the app's closures)."""
    from .spec import open_store

    return open_store(url)


ALLOWED_MODELS = os.environ.get("FLOWCUT_SERVE_MODELS", "mini,fake").split(",")


@lru_cache(maxsize=4)
def load_cached(name: str) -> Any:
    """One loaded adapter per model name; only names in $FLOWCUT_SERVE_MODELS may be loaded."""
    from .models import load_model

    if name not in ALLOWED_MODELS and not (name.startswith("fake") and "fake" in ALLOWED_MODELS):
        raise FlowcutError("model", f"{name!r} is not served here", ALLOWED_MODELS)
    return load_model(name)
