"""On a CUDA device: the adapters run in fp16 and time with CUDA events (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch

from flowcut.methods import make_method
from flowcut.models import adapt
from flowcut.models.tiny import tiny_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
]


@pytest.mark.parametrize("method", ["none", "flowcut", "fastv", "visionzip"])
def test_fp16_generate_on_cuda_keeps_the_budget(method: str, images: list) -> None:
    model, proc = tiny_model("llava")
    adapter = adapt(model.to("cuda", torch.float16), proc)
    budget = 576 if method == "none" else 64
    outs = adapter.generate(
        images, ["what is this"] * 4, make_method(method), budget, max_new_tokens=4, min_new_tokens=4
    )
    for out in outs:
        assert out.cost.prefill_ms > 0 and out.cost.peak_memory_bytes > 0
        if method in ("none", "flowcut"):
            assert sum(len(k) for k in out.kept) == budget
