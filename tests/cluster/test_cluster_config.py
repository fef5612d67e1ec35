"""The cluster-launcher configs: valid for Ray's launcher, and shaped the way the runbook promises.

``ray up`` validates a config against ``ray/autoscaler/ray-schema.json`` after filling in the
provider's defaults; these tests do both without a cloud account, then check what the schema
cannot: a CPU head that runs the store, the API and the dashboard, GPU node types that advertise
their GPUs and a resource named after themselves, and the README's install on every node.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).parents[2]
CONFIGS = {"aws": ROOT / "ray_cluster.yaml", "gcp": ROOT / "cluster" / "ray_cluster.gcp.yaml"}
INSTALL = "bash scripts/setup.sh"  # the README's setup (scripts/run.sh and scripts/test.sh run it too)


def load(provider: str) -> dict[str, Any]:
    return yaml.safe_load(CONFIGS[provider].read_text())


def gpu_types(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: t for n, t in cfg["available_node_types"].items() if t["resources"].get("GPU", 0) > 0}


def setup_of(cfg: dict[str, Any], node_type: str) -> list[str]:
    """The setup commands a node of ``node_type`` runs, merged the way the launcher merges them."""
    if node_type == cfg["head_node_type"]:
        return cfg["setup_commands"] + cfg.get("head_setup_commands", [])
    own = cfg["available_node_types"][node_type].get("worker_setup_commands")
    return own if own is not None else cfg["setup_commands"] + cfg.get("worker_setup_commands", [])


def first(commands: list[str], needle: str) -> int:
    """Index of the first command containing ``needle``."""
    hits = [i for i, c in enumerate(commands) if needle in c]
    assert hits, f"no command contains {needle!r}"
    return hits[0]


@pytest.mark.parametrize("provider", CONFIGS)
def test_config_is_valid_for_rays_launcher_schema(provider: str) -> None:
    import ray.autoscaler

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(load(provider), schema)


@pytest.mark.parametrize("provider", CONFIGS)
def test_ray_up_prepares_and_validates_it(provider: str) -> None:
    """What ``ray up`` does before it calls the cloud: merge the provider defaults, then validate."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = prepare_config(copy.deepcopy(load(provider)))
    validate_config(cfg)
    assert set(cfg["available_node_types"]) == set(load(provider)["available_node_types"])  # no default types added


@pytest.mark.parametrize("provider", CONFIGS)
def test_node_types_advertise_their_resources(provider: str) -> None:
    cfg = load(provider)
    types, head = cfg["available_node_types"], cfg["head_node_type"]
    assert head in types and types[head]["resources"].get("GPU", 0) == 0, "the head is a CPU node"
    assert sorted(t["resources"]["GPU"] for t in gpu_types(cfg).values()) == [1, 8]
    for name, t in types.items():
        assert t["resources"].get("CPU", 0) > 0, name
        # a spec's resources.node_type: NAME asks for NAME: 0.001, so each type must advertise NAME
        assert t["resources"].get(name, 0) >= 1, f"{name} does not advertise a resource named {name}"
        if name != head:
            assert 0 <= t["min_workers"] <= t["max_workers"], name
    assert sum(t.get("max_workers", 0) for n, t in types.items() if n != head) <= cfg["max_workers"]
    assert gpu_types(cfg)["gpu_1x"]["min_workers"] >= 1, "the runner needs a GPU in the cluster to ask for GPUs"


@pytest.mark.parametrize("provider", CONFIGS)
def test_shipped_gpu_specs_fit_one_actor_per_gpu(provider: str) -> None:
    from jobs.spec import load_spec

    cfg = load(provider)
    for path in sorted((ROOT / "jobs" / "specs").glob("*.yaml")):
        res = load_spec(path).resources
        if res.node_type is not None:
            assert res.node_type in cfg["available_node_types"], f"{path.name} pins an unknown node type"
        if not res.gpus_per_actor:
            continue
        assert res.gpus_per_actor == 1, f"{path.name}: one actor per GPU"
        for name, t in gpu_types(cfg).items():
            per_gpu = t["resources"]["CPU"] / t["resources"]["GPU"]
            assert res.cpus_per_actor <= per_gpu, f"{path.name} leaves {name}'s GPUs idle for lack of CPUs"


@pytest.mark.parametrize("provider", CONFIGS)
def test_every_node_installs_the_project_as_the_readme_does(provider: str) -> None:
    cfg = load(provider)
    assert "scripts/setup.sh" in (ROOT / "README.md").read_text()
    assert (ROOT / "scripts" / "setup.sh").exists()
    for name in cfg["available_node_types"]:
        cmds = setup_of(cfg, name)
        torch_index = "whl/cu" if name in gpu_types(cfg) else "whl/cpu"
        # torch's build first: setup.sh's torch==2.13.0 is then already satisfied and stays
        assert first(cmds, torch_index) < first(cmds, INSTALL), name
        assert all("torch==2.13.0" in c for c in cmds if "download.pytorch.org" in c), name


@pytest.mark.parametrize("provider", CONFIGS)
def test_head_runs_the_store_the_api_and_the_dashboard(provider: str) -> None:
    cfg = load(provider)
    setup, start = setup_of(cfg, cfg["head_node_type"]), cfg["head_start_ray_commands"]
    assert first(setup, "cluster/postgres.sh start") > first(setup, "install -y -qq postgresql")
    assert first(setup, "FLOWCUT_STORE=") == first(setup, "cluster/postgres.sh url")
    ray_start = first(start, "ray start --head")
    serve = first(start, "python -m jobs serve --host 0.0.0.0")
    dashboard = first(start, "streamlit run dashboard/app.py")
    assert ray_start < serve and ray_start < dashboard, "the API and the dashboard need Ray (and the store) up"
    assert "FLOWCUT_API_TOKEN=" in start[serve] and '--store "$FLOWCUT_STORE"' in start[serve]
    assert '-- --store "$FLOWCUT_STORE"' in start[dashboard]
    for path in ("cluster/postgres.sh", "dashboard/app.py"):
        assert (ROOT / path).exists(), path


@pytest.mark.parametrize("provider", CONFIGS)
def test_ray_starts_from_the_venv_with_token_auth(provider: str) -> None:
    cfg = load(provider)
    starts = [c for c in cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"] if "ray start" in c]
    assert len(starts) == 2
    assert all(".venv/bin/ray start" in c and "RAY_AUTH_MODE=token" in c for c in starts)
    assert "--address=$RAY_HEAD_IP:6379" in starts[1]
    assert cfg["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert cfg["file_mounts"]["~/flowcut-eval"] == "."


def test_aws_and_gcp_differ_only_in_machines_and_the_autoscalers_library() -> None:
    aws, gcp = load("aws"), load("gcp")
    assert {n: t["resources"] for n, t in aws["available_node_types"].items()} == {
        n: t["resources"] for n, t in gcp["available_node_types"].items()
    }
    for key in ("setup_commands", "head_start_ray_commands", "worker_start_ray_commands", "file_mounts"):
        assert aws[key] == gcp[key], key
    library = ("boto3", "google-api-python-client")
    assert [c for c in aws["head_setup_commands"] if not any(lib in c for lib in library)] == [
        c for c in gcp["head_setup_commands"] if not any(lib in c for lib in library)
    ]
    for name in gpu_types(aws):
        assert setup_of(aws, name) == setup_of(gcp, name), name


def test_cluster_scripts_parse() -> None:
    for script in sorted((ROOT / "cluster").glob("*.sh")):
        r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert r.returncode == 0, f"{script.name}: {r.stderr}"
