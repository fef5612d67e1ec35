"""Model names in specs -> loaded adapters: ``mini`` (the embedded default), ``fake...``, or any checkpoint.

``mini`` is whatever checkpoint this checkout ships, and a new one replaces it under the same
name, so a sweep stores it as ``mini@<revision>`` (the first hex digits of its weights' SHA-256):
a store that outlives a checkpoint keeps the old results under their own name instead of
resuming or ranking them as the new model's, and a queued job never runs on other weights.
A hub name moves the same way when its repository gets a new commit, so it is stored as
``org/name@<commit>``: the commit the local Hugging Face cache holds, else the hub's current one
(a name that is neither cached nor reachable stays as given), and its jobs load that commit.
A local checkpoint folder is stored as ``<folder>@<revision>`` (``local_revision``): a folder
retrained in place gets new jobs, and a queued job refuses to run on what replaced its weights.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from flowcut.errors import FlowcutError

from .fingerprint import files_revision

MINI = Path(__file__).resolve().parent.parent / "flowcut" / "mini" / "checkpoint"


@lru_cache(maxsize=1)
def mini_revision() -> str:
    """8 hex digits of the SHA-256 of the shipped checkpoint's weights (9 MB: ~20 ms)."""
    return hashlib.sha256((MINI / "model.safetensors").read_bytes()).hexdigest()[:8]


def local_revision(folder: str | Path) -> str:
    """8 hex digits over a checkpoint folder's files: names, sizes and contents (``jobs.fingerprint``)."""
    root = Path(folder)
    return files_revision((f for f in root.iterdir() if f.is_file() and not f.name.startswith(".")), root)


def local_pin(name: str) -> tuple[Path, str] | None:
    """(folder, revision) of a stored ``<absolute folder>@<8 hex>`` name, whether or not the folder is here; else None."""
    folder, _, revision = name.rpartition("@")
    if not (folder.startswith("/") and re.fullmatch(r"[0-9a-f]{8}", revision)) or Path(name).exists():
        return None
    return Path(folder), revision


def is_hub(name: str) -> bool:
    """``org/name`` that is not a local path: a Hugging Face hub repository."""
    return name.count("/") == 1 and not name.startswith((".", "/")) and not Path(name).exists()


def hub_revision(name: str) -> str | None:
    """The commit ``name``'s main branch is at: in the local cache, else on the hub; None when neither answers."""
    from huggingface_hub import constants, model_info, try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json")
    if isinstance(cached, str):  # <cache>/models--org--name/snapshots/<commit>/config.json
        return Path(cached).parent.name
    if constants.HF_HUB_OFFLINE:
        return None
    try:
        return model_info(name, timeout=10).sha
    except Exception:  # no network, no such repository, gated: the job's load says why
        return None


def pinned(name: str) -> str:
    """The name a job stores: ``mini`` and hub names pinned to their revision, anything else as given."""
    if name == "mini":
        return f"mini@{mini_revision()}"
    if Path(name).is_dir():  # absolute: the same folder is one model however a spec spells it
        return f"{os.path.abspath(name)}@{local_revision(name)}"
    if is_hub(name) and "@" not in name and (commit := hub_revision(name)):
        return f"{name}@{commit}"
    return name


def load_model(name: str, device: str = "cpu") -> Any:
    """An adapter with ``generate`` / ``visual_tokens``; FakeVLM for ``fake`` names."""
    if name == "fake" or name.startswith("fake:"):
        from .fake import FakeVLM

        return FakeVLM.from_name(name)
    if name.startswith("mini@") and name != pinned("mini"):
        raise FlowcutError("model", f"{name} is another checkpoint than this checkout's {pinned('mini')}; "
                                    "check out the commit that shipped it, or submit the spec again")  # fmt: skip
    from flowcut.models import load

    if name == "mini" or name.startswith("mini@"):
        return load(str(MINI), device=device)
    if pin := local_pin(name):
        folder, revision = pin
        if not folder.is_dir():  # not looked up on the hub: it names a folder
            raise FlowcutError("model", f"checkpoint folder {folder} not found on {platform.node()}; a cluster's "
                                        "nodes need it at the same path")  # fmt: skip
        if (now := local_revision(folder)) != revision:
            raise FlowcutError("model", f"{folder} changed since this job was queued (revision {revision}, now {now}); "
                                        "submit the spec again to evaluate what it holds now")  # fmt: skip
        return load(str(folder), device=device)
    repo, _, revision = name.partition("@")
    if revision and is_hub(repo):
        return load(repo, device=device, revision=revision)
    return load(name, device=device)
