"""Model names in specs -> loaded adapters: ``mini`` (the embedded default), ``fake...``, or any checkpoint.

``mini`` is whatever checkpoint this checkout ships, and a new one replaces it under the same
name, so a sweep stores it as ``mini@<revision>`` (the first hex digits of its weights' SHA-256):
a store that outlives a checkpoint keeps the old results under their own name instead of
resuming or ranking them as the new model's, and a queued job never runs on other weights.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from flowcut.errors import FlowcutError

MINI = Path(__file__).resolve().parent.parent / "flowcut" / "mini" / "checkpoint"


@lru_cache(maxsize=1)
def mini_revision() -> str:
    """8 hex digits of the SHA-256 of the shipped checkpoint's weights (9 MB: ~20 ms)."""
    return hashlib.sha256((MINI / "model.safetensors").read_bytes()).hexdigest()[:8]


def pinned(name: str) -> str:
    """The name a job stores: ``mini`` pinned to this checkout's revision, anything else as given."""
    return f"mini@{mini_revision()}" if name == "mini" else name


def load_model(name: str, device: str = "cpu") -> Any:
    """An adapter with ``generate`` / ``visual_tokens``; FakeVLM for ``fake`` names."""
    if name == "fake" or name.startswith("fake:"):
        from .fake import FakeVLM

        return FakeVLM.from_name(name)
    if name.startswith("mini@") and name != pinned("mini"):
        raise FlowcutError("model", f"{name} is another checkpoint than this checkout's {pinned('mini')}; "
                                    "check out the commit that shipped it, or submit the spec again")  # fmt: skip
    from flowcut.models import load

    return load(str(MINI) if name == "mini" or name.startswith("mini@") else name, device=device)
