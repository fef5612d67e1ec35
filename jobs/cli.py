"""``python -m jobs``: run sweeps through the queue and Ray, inspect and steer the queue, read results."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from flowcut.errors import FlowcutError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
STORE_HELP = "store URL (default: the spec's, else sqlite:///results/flowcut.db)"


def _fail(e: Exception) -> None:
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(2)


def _store(url: str | None):
    from .spec import DEFAULT_STORE, open_store

    return open_store(url or DEFAULT_STORE)


@app.command()
def run(spec_path: Path, store: str | None = typer.Option(None, envvar="FLOWCUT_STORE", help=STORE_HELP)) -> None:
    """Submit SPEC_PATH's jobs and run all that are missing (starts a local Ray if none is running)."""
    from .report import job_summaries, relative_table
    from .runner import run_spec
    from .spec import load_spec

    try:
        spec = load_spec(spec_path)
        if store:
            spec = spec.model_copy(update={"store": store})
        ids = run_spec(spec)
        st = _store(spec.store)
        # the spec's own jobs, whichever spec first submitted them (a shared baseline keeps its first name);
        # the ids run_spec submitted, not a second expansion, which could pin a hub model that moved since
        Console().print(relative_table(job_summaries(st, job_ids=set(ids))))
        typer.echo(f"results in {spec.store}")
    except FlowcutError as e:
        _fail(e)


@app.command()
def submit(spec_path: Path, store: str | None = typer.Option(None, envvar="FLOWCUT_STORE", help=STORE_HELP)) -> None:
    """Queue SPEC_PATH's jobs without running them (workers or a later ``run`` pick them up)."""
    from .spec import expand, load_spec

    try:
        spec = load_spec(spec_path)
        st = _store(store or spec.store)
        ids = st.submit_jobs([c.row(spec.max_attempts) for c in expand(spec)], priority=spec.priority)
        typer.echo(f"{len(ids)} jobs queued or reused")
    except FlowcutError as e:
        _fail(e)


@app.command("list")
def list_jobs(
    status: str | None = None, store: str | None = typer.Option(None, envvar="FLOWCUT_STORE", help=STORE_HELP)
) -> None:
    """One line per job: id, status, attempts, progress, coordinates, last error."""
    try:
        st = _store(store)
        table = Table()
        for col in ("job", "status", "tries", "done", "model", "method", "budget", "benchmark", "error"):
            table.add_column(col)
        for j in st.list_jobs(status=status):
            done, total = st.progress(j.id)
            table.add_row(j.id[:12], j.status, str(j.attempts), f"{done}/{total if total is not None else '?'}",
                          j.model, j.method, str(j.budget or "all"), j.benchmark, (j.last_error or "")[:60])  # fmt: skip
        Console().print(table)
    except FlowcutError as e:
        _fail(e)


@app.command()
def status(store: str | None = typer.Option(None, envvar="FLOWCUT_STORE", help=STORE_HELP)) -> None:
    """Job counts per status."""
    try:
        counts: dict[str, int] = {}
        for j in _store(store).list_jobs():
            counts[j.status] = counts.get(j.status, 0) + 1
        typer.echo(json.dumps(counts))
    except FlowcutError as e:
        _fail(e)


@app.command()
def cancel(job_id: str, store: str | None = typer.Option(None, envvar="FLOWCUT_STORE", help=STORE_HELP)) -> None:
    """Cancel a queued or running job (a running one stops at its next heartbeat)."""
    try:
        st = _store(store)
        matches = [j.id for j in st.list_jobs() if j.id.startswith(job_id)]
        if len(matches) != 1:
            raise FlowcutError("job_id", f"{job_id!r} matches {len(matches)} jobs")
        typer.echo("cancelled" if st.cancel(matches[0]) else "already finished")
    except FlowcutError as e:
        _fail(e)


@app.command()
def results(spec: str | None = None, store: str | None = typer.Option(None, envvar="FLOWCUT_STORE", help=STORE_HELP),
            as_json: bool = typer.Option(False, "--json"), markdown: bool = False) -> None:  # fmt: skip
    """Accuracy per model x method x budget x benchmark, and relative to the unpruned model."""
    from .report import job_summaries, markdown_table, relative_table

    try:
        rows = job_summaries(_store(store), spec)
        if as_json:  # per job; the per-sample scores stay in the store
            typer.echo(json.dumps([{k: v for k, v in r.items() if k != "scores"} for r in rows], default=str))
        elif markdown:
            typer.echo(markdown_table(rows))
        else:
            Console().print(relative_table(rows))
    except FlowcutError as e:
        _fail(e)


@app.command()
def rescore(parser: str = typer.Option(..., help="parser key, e.g. extract-yesno-v2"), spec: str | None = None,
            store: str | None = typer.Option(None, envvar="FLOWCUT_STORE", help=STORE_HELP)) -> None:  # fmt: skip
    """Recompute stored scores from the stored raw outputs with another parser (no model runs)."""
    from flowcut.tasks.parsers import get_parser
    from flowcut.tasks.registry import get_spec
    from flowcut.tasks.spec import Example

    from .scoring import sample_score

    try:
        key = get_parser(parser).key
        st = _store(store)
        n = 0
        for job in st.list_jobs(spec_name=spec):
            bench = get_spec(job.benchmark)
            updates = []
            for r in st.results(job.id):
                if r["error"] is not None or r["prediction"] is None:
                    continue
                extra = r["extra"] or {}
                ex = Example(id=r["sample_id"], image=None, question="", reference=r["reference"],
                             options=extra.get("options", {}), meta=extra.get("meta", {}))  # fmt: skip
                score, _, k = sample_score(bench, key, ex, r["prediction"])
                updates.append((r["sample_id"], score, *k.rsplit("-", 1)))
            n += len(updates)
            st.update_scores(job.id, updates)
        typer.echo(f"rescored {n} samples with {key}")
    except FlowcutError as e:
        _fail(e)


@app.command("serve")
def serve_cmd(
    store: str | None = typer.Option(None, envvar="FLOWCUT_STORE", help=STORE_HELP),
    host: str = typer.Option("127.0.0.1", help="bind address (0.0.0.0 exposes it: set FLOWCUT_API_TOKEN)"),
    port: int = typer.Option(8000),
) -> None:
    """Run the Ray Serve application: job API and live pruned-VLM queries (OpenAPI at /docs)."""
    from . import raycompat
    from .serve import build
    from .spec import DEFAULT_STORE, open_store

    try:
        open_store(store or DEFAULT_STORE).close()  # fail fast on a bad URL, before Ray starts
    except FlowcutError as e:
        _fail(e)
    raycompat.init()
    typer.echo(f"serving on http://{host}:{port} (docs at /docs)")
    raycompat.serve_run(build(store or DEFAULT_STORE), host, port, blocking=True)


@app.command()
def work(
    store: str | None = typer.Option(None, envvar="FLOWCUT_STORE", help=STORE_HELP),
    actors: int = typer.Option(1, min=1),
    cpus_per_actor: float = typer.Option(0.5),
    gpus_per_actor: float = typer.Option(0.0),
    batch_size: int = typer.Option(4, min=1),
) -> None:
    """Run queued jobs from any spec (submitted by ``submit`` or the API) until the queue is empty."""
    from .runner import run_queue
    from .spec import DEFAULT_STORE, Resources

    try:
        res = Resources(actors=actors, cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor,
                        batch_size=batch_size)  # fmt: skip
        n = run_queue(store or DEFAULT_STORE, res)
        typer.echo(f"ran {n} jobs")
    except FlowcutError as e:
        _fail(e)
