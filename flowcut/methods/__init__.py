"""The registry of pruning methods: one file per method, listed here by name.

A plain dict, no import-time magic: ``tests/test_registry.py`` checks that every method
file in this folder is listed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import FlowcutError
from .base import EncoderMethod, LLMMethod, Method, Selection, VisionMethod, VisionTrace
from .fastv import FastV
from .flowcut import FlowCut
from .none import NoPruning
from .pdrop import PDrop
from .random import RandomPruning
from .sparsevlm import SparseVLM
from .vflowopt import VFlowOpt
from .visionzip import VisionZip
from .vispruner import VisPruner

METHODS: dict[str, type[Method]] = {
    cls.name: cls
    for cls in (NoPruning, RandomPruning, FastV, VisionZip, VisPruner, SparseVLM, PDrop, VFlowOpt, FlowCut)
}


def make_method(name: str, seed: int = 0, **options: Any) -> Method:
    """Instantiate a method by registry name; unknown names and options are errors."""
    if name not in METHODS:
        raise FlowcutError("method", f"unknown method {name!r}", sorted(METHODS))
    cls = METHODS[name]
    known = {f.name for f in dataclasses.fields(cls)} - {"seed", "generator"}
    bad = set(options) - known
    if bad:
        raise FlowcutError("method options", f"{name} has no option {sorted(bad)}", sorted(known) or "none")
    return cls(seed=seed, **options)


__all__ = [
    "METHODS",
    "EncoderMethod",
    "LLMMethod",
    "Method",
    "Selection",
    "VisionMethod",
    "VisionTrace",
    "make_method",
]
