"""Sweep specs: every shipped spec loads; bad specs are one error naming the field; jobs are content-hashed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flowcut.errors import FlowcutError
from jobs.spec import expand, load_spec, parse_spec

SPECS = sorted((Path(__file__).parents[2] / "jobs" / "specs").glob("*.yaml"))
BASE = {"name": "t", "models": ["fake"], "methods": ["none", "flowcut"], "budgets": [64, 128],
        "benchmarks": ["suite_pope", "suite_count"]}  # fmt: skip


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_shipped_spec_loads_and_starts_with_its_command(path: Path) -> None:
    spec = load_spec(path)
    assert expand(spec)
    head = path.read_text().splitlines()[:4]
    assert any(line.startswith("#") and "ray job submit" in line and path.name in line for line in head)


def test_expansion_and_fingerprints() -> None:
    jobs = expand(parse_spec(BASE))
    # none runs once per benchmark at every token; flowcut once per budget
    assert sorted((j.method, j.budget, j.benchmark) for j in jobs) == sorted(
        [("none", 0, b) for b in BASE["benchmarks"]]
        + [("flowcut", k, b) for k in (64, 128) for b in BASE["benchmarks"]]
    )
    assert len({j.id for j in jobs}) == len(jobs)
    again = expand(parse_spec(BASE | {"name": "other-name"}))
    assert {j.id for j in again} == {j.id for j in jobs}, "the id hashes the configuration, not the spec's name"
    changed = expand(parse_spec(BASE | {"limit": 5}))
    assert not {j.id for j in changed} & {j.id for j in jobs}


def test_a_method_version_is_part_of_the_job_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """A method whose behaviour changed gets new job ids: a store never serves the old results."""
    from flowcut.methods import METHODS

    def ids(method: str) -> set[str]:
        return {j.id for j in expand(parse_spec(BASE)) if j.method == method}

    flowcut, none = ids("flowcut"), ids("none")
    monkeypatch.setattr(METHODS["flowcut"], "version", 2)
    assert flowcut and not flowcut & ids("flowcut")
    assert ids("none") == none  # the other methods' jobs are untouched


def test_the_embedded_model_is_pinned_to_its_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A new checkpoint under the name ``mini`` gets new job ids and its own rows, and old jobs never load it."""
    from jobs import models

    def expanded() -> list:
        models.mini_revision.cache_clear()
        return expand(parse_spec(BASE | {"models": ["mini"]}))

    try:
        shipped = expanded()
        assert {j.model for j in shipped} == {models.pinned("mini")}
        assert models.pinned("mini").startswith("mini@") and len(models.pinned("mini")) == len("mini@") + 8
        other = tmp_path / "model.safetensors"
        weights = (models.MINI / "model.safetensors").read_bytes()
        other.write_bytes(weights[:-1] + bytes([weights[-1] ^ 1]))  # one bit differs
        monkeypatch.setattr(models, "MINI", tmp_path)
        swapped = expanded()
        assert not {j.id for j in swapped} & {j.id for j in shipped}
        with pytest.raises(
            FlowcutError, match=rf"^model: {shipped[0].model} is another checkpoint than this checkout's"
        ):
            models.load_model(shipped[0].model)
        assert parse_spec(BASE | {"models": [shipped[0].model]}).models == [shipped[0].model]  # a stored name resubmits
    finally:  # the next caller hashes the shipped weights again (MINI is restored at teardown)
        models.mini_revision.cache_clear()


def test_another_build_of_the_suite_gets_new_job_ids(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def ids(patch: dict | None = None) -> dict[str, str]:
        return {j.benchmark: j.id for j in expand(parse_spec(BASE | (patch or {}))) if j.method == "none"}

    shipped = ids()
    (tmp_path / "pope" / "test").mkdir(parents=True)
    (tmp_path / "pope" / "test" / "state.json").write_text(json.dumps({"_fingerprint": "0123456789abcdef"}))
    monkeypatch.setenv("FLOWCUT_SUITE_DIR", str(tmp_path))
    rebuilt = ids()
    assert rebuilt["suite_pope"] != shipped["suite_pope"]
    assert rebuilt["suite_count"] != shipped["suite_count"]  # unbuilt here: not the shipped build either
    # a spec that reads the task from its own files does not depend on the suite's build
    own = {"data": {"suite_pope": str(tmp_path / "pope")}}
    with_env = ids(own)["suite_pope"]
    monkeypatch.delenv("FLOWCUT_SUITE_DIR")
    assert ids(own)["suite_pope"] == with_env


def test_a_hub_model_is_pinned_to_its_commit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A hub name is stored at the commit the cache holds; a new commit gets new ids, old jobs load their own."""
    from huggingface_hub import constants

    from jobs import models

    def push(commit: str, eps: float) -> None:  # a commit in the cache's layout, the branch moved to it
        repo = tmp_path / "models--test-org--mini"
        shutil.copytree(models.MINI, repo / "snapshots" / commit)
        config = repo / "snapshots" / commit / "config.json"
        config.write_text(json.dumps(json.loads(config.read_text()) | {"eps_marker": eps}))
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(commit)

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    spec = BASE | {"models": ["test-org/mini"]}
    assert {j.model for j in expand(parse_spec(spec))} == {"test-org/mini"}, "neither cached nor reachable: as given"
    push("a" * 40, 1.0)
    first = expand(parse_spec(spec))
    assert {j.model for j in first} == {"test-org/mini@" + "a" * 40}
    push("b" * 40, 2.0)
    second = expand(parse_spec(spec))
    assert {j.model for j in second} == {"test-org/mini@" + "b" * 40}
    assert not {j.id for j in first} & {j.id for j in second}
    assert models.load_model(first[0].model).model.config.eps_marker == 1.0
    assert models.load_model(second[0].model).model.config.eps_marker == 2.0
    with pytest.raises(FlowcutError, match=r"^model: cannot load 'test-org/mini' at revision c{40}: "):
        models.load_model("test-org/mini@" + "c" * 40)
    assert parse_spec(spec | {"models": [first[0].model]}).models == [first[0].model]  # a stored name resubmits


def test_a_checkpoint_folder_is_pinned_to_its_contents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder retrained in place gets new job ids; a job queued before refuses the new weights."""
    from jobs import fingerprint, models

    folder = tmp_path / "ckpt"
    shutil.copytree(models.MINI, folder)

    def rewrite(data: bytes) -> None:  # the cache keys on mtime, which a coarse clock may not move
        (folder / "model.safetensors").write_bytes(data)
        fingerprint.clear_cache()

    spec = BASE | {"models": [str(folder)]}
    first = expand(parse_spec(spec))
    (name,) = {j.model for j in first}
    assert name == f"{folder}@{models.local_revision(folder)}" and len(name) == len(str(folder)) + 9
    monkeypatch.chdir(tmp_path)  # spelt relative, or with a trailing slash: the same folder, the same jobs
    assert {j.model for j in expand(parse_spec(BASE | {"models": ["ckpt/"]}))} == {name}
    assert {j.id for j in expand(parse_spec(spec))} == {j.id for j in first}  # unchanged: the same jobs
    assert models.load_model(name).model.config.model_type == "llava"
    assert parse_spec(spec | {"models": [name]}).models == [name]  # a stored name resubmits
    # one bit of the weights differs (9 MB: hashed whole)
    weights = (folder / "model.safetensors").read_bytes()
    rewrite(weights[:-1] + bytes([weights[-1] ^ 1]))
    second = expand(parse_spec(spec))
    assert not {j.id for j in first} & {j.id for j in second}
    with pytest.raises(FlowcutError, match=rf"^model: {folder} changed since this job was queued \(revision "):
        models.load_model(name)
    shutil.rmtree(folder)  # a node without the folder: said so, not looked up on the hub
    with pytest.raises(FlowcutError, match=rf"^model: checkpoint folder {folder} not found on "):
        models.load_model(name)


def test_a_local_dataset_override_is_pinned_to_its_contents(tmp_path: Path) -> None:
    """A parquet file (with GQA's images beside it) or a suite task's folder re-exported in place gets new job ids."""
    from jobs import fingerprint

    fixtures = Path(__file__).parents[1] / "data"
    for name in ("gqa.parquet", "gqa_images.parquet", "pope.parquet"):
        shutil.copy(fixtures / name, tmp_path / name)
    suite = tmp_path / "suite"  # a suite root: one folder a task
    for task in ("count", "pope"):
        (suite / task / "test").mkdir(parents=True)
        (suite / task / "test" / "state.json").write_text(json.dumps({"_fingerprint": "a"}))

    def ids() -> dict[str, str]:
        fingerprint.clear_cache()  # rewrites within the clock's resolution keep their mtime
        spec = BASE | {"benchmarks": ["gqa", "pope", "suite_count"], "methods": ["none"],
                       "data": {"gqa": str(tmp_path / "gqa.parquet"), "pope": str(tmp_path / "pope.parquet"),
                                "suite_count": str(suite)}}  # fmt: skip
        return {j.benchmark: j.id for j in expand(parse_spec(spec))}

    first = ids()
    assert ids() == first  # unchanged files: the same jobs
    (tmp_path / "gqa_images.parquet").write_bytes((fixtures / "pope.parquet").read_bytes())
    second = ids()
    assert second["gqa"] != first["gqa"] and second["pope"] == first["pope"]
    (suite / "pope" / "test" / "state.json").write_text(json.dumps({"_fingerprint": "b"}))  # another task
    (suite / "count" / "test" / "cache-0123.arrow").write_bytes(b"datasets' own cache")  # not the data
    (suite / "count" / ".git").mkdir()
    (suite / "count" / ".git" / "HEAD").write_text("ref: refs/heads/main")  # nor is version control
    assert ids() == second
    (suite / "count" / "test" / "state.json").write_text(json.dumps({"_fingerprint": "b"}))
    assert ids()["suite_count"] != second["suite_count"]


def test_job_ids_stay_what_earlier_releases_stored() -> None:
    """A store outlives releases: a new optional setting (a data revision, a method version) must leave
    the ids of jobs that do not use it as they were, or re-submitting a spec would run everything again.
    The ids below are those the release of 2026-12-03 (1cc9b49) gave."""
    spec = {
        "name": "t",
        "models": ["fake"],
        "methods": ["none", "fastv"],
        "budgets": [64],
        "benchmarks": ["pope", "gqa"],
    }
    assert {(j.method, j.benchmark): j.id for j in expand(parse_spec(spec))} == {
        ("none", "pope"): "4d146ef46588ce09fc2d3c29cc21f87c", ("fastv", "pope"): "21b34406209bcf5cc0946d4c6e2660fa",
        ("none", "gqa"): "38680a32aa9ec72bc025209025636927", ("fastv", "gqa"): "f67a0a5cc889f600a9db3dff2bc45c53",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("patch", "field", "text"),
    [
        ({"methods": ["zip"]}, "methods", "unknown method 'zip'"),
        ({"benchmarks": ["pope2"]}, "benchmarks", "unknown benchmark 'pope2'"),
        ({"budgets": [0]}, "budgets", "at least 1"),
        ({"budgets": ["many"]}, "budgets.0", "integer"),
        ({"colour": "red"}, "colour", "unknown setting"),
        ({"resources": {"actors": 0}}, "resources.actors", "greater than or equal to 1"),
        ({"method_options": {"flowcut": {"speed": 2}}}, "method_options", "no option"),
        ({"models": []}, "models", "at least 1"),
        ({"models": ["llava"]}, "models", "unknown model 'llava'"),
    ],
)
def test_bad_specs_name_the_field(patch: dict, field: str, text: str) -> None:
    with pytest.raises(FlowcutError) as err:
        parse_spec(BASE | patch)
    assert str(err.value).startswith(f"{field}: ") and text in str(err.value)


def test_malformed_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodels: [fake\n")
    with pytest.raises(FlowcutError, match=r"^spec: .*not valid YAML at line"):
        load_spec(bad)
    with pytest.raises(FlowcutError, match=r"^spec: no such file"):
        load_spec(tmp_path / "none.yaml")
    bad.write_text("- just\n- a list\n")
    with pytest.raises(FlowcutError, match=r"^spec: .*mapping"):
        load_spec(bad)
