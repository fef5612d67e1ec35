"""Shared fixtures: tiny random models of the real classes and a few synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from flowcut.models import VLMAdapter, adapt
from flowcut.models.tiny import tiny_model

MODEL_TYPES = ["llava", "llava_next", "qwen2_vl"]


def make_image(seed: int, size: tuple[int, int] = (336, 336)) -> Image.Image:
    """A random image with a few bright blocks, different for every seed."""
    rng = np.random.default_rng(seed)
    arr = (rng.random((size[1], size[0], 3)) * 80).astype("uint8")
    for _ in range(3):
        y, x = rng.integers(0, size[1] - 60), rng.integers(0, size[0] - 60)
        arr[y : y + 60, x : x + 60] = rng.integers(120, 255, 3)
    return Image.fromarray(arr)


@pytest.fixture(scope="session")
def images() -> list[Image.Image]:
    return [make_image(s) for s in range(4)]


_ADAPTERS: dict[str, VLMAdapter] = {}


def get_adapter(model_type: str) -> VLMAdapter:
    if model_type not in _ADAPTERS:
        model, proc = tiny_model(model_type)
        _ADAPTERS[model_type] = adapt(model, proc)
    return _ADAPTERS[model_type]


@pytest.fixture(scope="session", params=MODEL_TYPES)
def adapter(request: pytest.FixtureRequest) -> VLMAdapter:
    return get_adapter(request.param)
