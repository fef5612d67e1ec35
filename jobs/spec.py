"""Sweep specs: YAML in, validated at the edge, expanded into one job per combination.

A job is model x method x budget x benchmark (+ the settings they share); its id is the
SHA-256 of its canonical JSON together with the benchmark's own definition (dataset,
split, prompt, parser and its version), so submitting a spec again finds the jobs it
already ran and only runs what is missing.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from flowcut.errors import FlowcutError

from .fingerprint import files_revision
from .models import is_hub, local_pin, pinned

DEFAULT_STORE = "sqlite:///results/flowcut.db"


def _known(names: list[str], registry: dict[str, Any], what: str) -> list[str]:
    for n in names:
        if n not in registry:
            raise ValueError(f"unknown {what} {n!r} (allowed: {', '.join(sorted(registry))})")
    return names


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Generation(Strict):
    max_new_tokens: int = Field(8, ge=1, le=512)  # suite answers are one or two words


class Resources(Strict):
    actors: int = Field(1, ge=1, le=1024)
    gpus_per_actor: float = Field(0.0, ge=0)
    # fractional CPUs let 2 actors and the driver share a 2-core machine without deadlock
    cpus_per_actor: float = Field(0.5, gt=0)
    batch_size: int = Field(4, ge=1, le=256)
    node_type: str | None = None  # pin actors to nodes that advertise this custom resource


class SweepSpec(Strict):
    """The YAML a user writes (see ``jobs/specs/*.yaml``)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    models: list[str] = Field(min_length=1)
    methods: list[str] = Field(min_length=1)
    budgets: list[int] = Field(min_length=1)
    benchmarks: list[str] = Field(min_length=1)
    limit: int | None = Field(None, ge=1)
    seed: int = 0
    parser: str | None = None  # None: each benchmark's default parser
    # benchmark -> dataset location override (a .parquet file, a save_to_disk folder, an HF id)
    data: dict[str, str] = Field(default_factory=dict)
    method_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    generation: Generation = Generation()
    resources: Resources = Resources()
    store: str = DEFAULT_STORE
    max_attempts: int = Field(3, ge=1, le=100)
    priority: int = 0

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, v: list[str]) -> list[str]:
        from flowcut.methods import METHODS

        return _known(v, METHODS, "method")

    @field_validator("models")
    @classmethod
    def _plausible_models(cls, v: list[str]) -> list[str]:
        # hub names cannot be checked offline; anything else must be ours or a local folder
        for m in v:
            ours = m in ("mini", "fake") or m.startswith(("mini@", "fake:", "tiny-"))
            if not (ours or is_hub(m) or Path(m).is_dir() or ((pin := local_pin(m)) and pin[0].is_dir())):
                raise ValueError(
                    f"unknown model {m!r} (allowed: mini, fake[:options], tiny-<type>, a checkpoint folder, "
                    "or a hub name like llava-hf/llava-1.5-7b-hf)"
                )
        return v

    @field_validator("budgets")
    @classmethod
    def _positive_budgets(cls, v: list[int]) -> list[int]:
        for b in v:
            if b < 1:
                raise ValueError(f"budget {b} must be at least 1")
        return v

    @field_validator("benchmarks")
    @classmethod
    def _known_benchmarks(cls, v: list[str]) -> list[str]:
        from flowcut.tasks.registry import BENCHMARKS

        return _known(v, BENCHMARKS, "benchmark")

    @field_validator("method_options")
    @classmethod
    def _options_fit_methods(cls, v: dict[str, dict[str, Any]], info: ValidationInfo) -> dict[str, dict[str, Any]]:
        from flowcut.methods import make_method

        for m, opts in v.items():
            if m not in info.data.get("methods", []):
                raise ValueError(f"{m} is not one of this spec's methods")
            try:
                make_method(m, **opts)
            except (FlowcutError, TypeError) as e:
                raise ValueError(f"{m}: {e}") from None
        return v


@dataclasses.dataclass(frozen=True)
class JobConfig:
    """One job: everything that decides its results. ``budget`` 0 = every token (method none)."""

    spec_name: str
    model: str
    method: str
    budget: int
    benchmark: str
    limit: int | None
    seed: int
    parser: str | None
    method_options: dict[str, Any]
    max_new_tokens: int
    data_path: str | None = None
    # the local override's contents (``data_revision``), not only its path: a file re-exported in
    # place gets new jobs, and a job queued before refuses it (``stale_data``)
    data_revision: str | None = None

    def canonical(self) -> dict[str, Any]:
        from flowcut.methods import METHODS
        from flowcut.tasks.registry import BENCHMARKS

        body = {k: v for k, v in dataclasses.asdict(self).items() if k != "spec_name"}
        if body["data_revision"] is None:  # left out when None: the ids of jobs from before it stay
            del body["data_revision"]
        version = METHODS[self.method].version
        if version > 1:  # left out at 1, so that the ids of jobs of never-changed methods stay as they were
            body["method_version"] = version
        bench = benchmark_identity(BENCHMARKS[self.benchmark])
        if bench["path"].startswith("suite:") and self.data_path is None:
            from flowcut.tasks.suite.build import suite_fingerprint

            bench["suite_fingerprint"] = suite_fingerprint(bench["path"].removeprefix("suite:"))
        return {"job": body, "benchmark": bench}

    @functools.cached_property
    def id(self) -> str:
        # computed once: it reads the suite's build state and hashes override files, and one
        # expansion must hand the store one id per job even if a file changes meanwhile
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def row(self, max_attempts: int) -> dict[str, Any]:
        """The store's ``submit_jobs`` row."""
        return {
            "id": self.id,
            "spec_name": self.spec_name,
            "config": dataclasses.asdict(self),
            "model": self.model,
            "method": self.method,
            "budget": self.budget,
            "benchmark": self.benchmark,
            "max_attempts": max_attempts,
        }


def open_store(url: str):  # noqa: ANN201 - returns jobs.store.Store (imported lazily: SQLAlchemy is heavy)
    """Open the store, creating a local SQLite file's folder first (``results/`` on a fresh clone)."""
    from .store import Store

    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return Store(url)


def benchmark_identity(spec: Any) -> dict[str, Any]:
    """The parts of a benchmark definition that change results (functions by qualified name)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        v = getattr(spec, f.name)
        out[f.name] = f"{v.__module__}.{v.__qualname__}" if callable(v) else v
    return out


def data_revision(benchmark: str, path: str | None) -> str | None:
    """The revision of the local files ``path`` overrides ``benchmark`` with; None for none or a hub id."""
    from flowcut.tasks.registry import local_files

    if path is None or not (files := local_files(benchmark, path)):
        return None
    return files_revision(files, Path(path).parent)


def stale_data(config: dict[str, Any]) -> str | None:
    """Why a queued job must not run on its data override any more (it changed), or None."""
    queued = config.get("data_revision")
    if queued is None or (now := data_revision(config["benchmark"], config.get("data_path"))) == queued:
        return None
    return (f"data: {config['data_path']} changed since this job was queued (revision {queued}, now {now}); "
            "submit the spec again to evaluate what it holds now")  # fmt: skip


def expand(spec: SweepSpec) -> list[JobConfig]:
    """models x methods x budgets x benchmarks; method ``none`` runs once, at every token.

    ``mini`` becomes ``mini@<revision>``, a hub name ``org/name@<commit>`` and a checkpoint folder
    ``<folder>@<revision>`` (``jobs.models.pinned``), so its jobs name the weights they ran.
    """
    jobs = []
    revisions = {bench: data_revision(bench, spec.data.get(bench)) for bench in spec.benchmarks}
    for model in map(pinned, spec.models):
        for bench in spec.benchmarks:
            for method in spec.methods:
                budgets = [0] if method == "none" else spec.budgets
                for budget in budgets:
                    jobs.append(JobConfig(
                        spec_name=spec.name, model=model, method=method, budget=budget, benchmark=bench,
                        limit=spec.limit, seed=spec.seed, parser=spec.parser,
                        method_options=spec.method_options.get(method, {}),
                        max_new_tokens=spec.generation.max_new_tokens, data_path=spec.data.get(bench),
                        data_revision=revisions[bench],
                    ))  # fmt: skip
    return jobs


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a YAML spec; every problem is one FlowcutError naming the field."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise FlowcutError("spec", f"no such file: {p}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise FlowcutError("spec", f"{p} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(raw, dict):
        raise FlowcutError("spec", f"{p} must hold a mapping of settings, got {type(raw).__name__}")
    return parse_spec(raw)


def parse_spec(raw: dict[str, Any]) -> SweepSpec:
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "spec"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown setting (allowed: {', '.join(sorted(SweepSpec.model_fields))})"
        raise FlowcutError(field, msg) from None
