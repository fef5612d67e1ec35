"""Model names in specs -> loaded adapters: ``mini`` (the embedded default), ``fake...``, or any checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MINI = Path(__file__).resolve().parent.parent / "flowcut" / "mini" / "checkpoint"


def load_model(name: str, device: str = "cpu") -> Any:
    """An adapter with ``generate`` / ``visual_tokens``; FakeVLM for ``fake`` names."""
    if name == "fake" or name.startswith("fake:"):
        from .fake import FakeVLM

        return FakeVLM.from_name(name)
    from flowcut.models import load

    return load(str(MINI) if name == "mini" else name, device=device)
