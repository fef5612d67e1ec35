"""Hand-built inputs where a few patches carry all the [CLS] attention.

FlowCut, VisPruner and VisionZip must keep those patches; ``random`` (checked too) does not,
so these tests would fail for a method that ignores the attention.
"""

from __future__ import annotations

import pytest
import torch

from flowcut.methods import make_method
from flowcut.methods.base import LayerView, VisionTrace

HOT = [3, 10, 20, 33]
N, H, HD = 36, 2, 4


def hot_tables() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[1, H, 1+N, HD] q, k, v: [CLS]'s query matches only the HOT patches' keys."""
    g = torch.Generator().manual_seed(0)
    q = torch.zeros(1, H, 1 + N, HD)
    q[:, :, 0, 0] = 10.0
    k = torch.randn(1, H, 1 + N, HD, generator=g) * 0.01
    k[:, :, [1 + i for i in HOT], 0] = 10.0
    v = torch.ones(1, H, 1 + N, HD)  # equal L1 norms: only the attention can decide
    v[:, :, 0] = 0.0  # a zero [CLS] value makes the semantic term uniform
    return q, k, v


def run_fake_tower(budget: int, layers: int = 8) -> torch.Tensor:
    """Drive FlowCut through ``layers`` layers whose q/k/v follow the surviving tokens."""
    q, k, v = hot_tables()
    method = make_method("flowcut")
    state = method.start(1, N, budget, layers, None)
    alive = torch.arange(N)[None]
    for i in range(layers):
        cols = torch.cat([torch.zeros(1, dtype=torch.long), alive[0] + 1])
        view = LayerView(q=q[:, :, cols], k=k[:, :, cols], v=v[:, :, cols], scale=1.0, has_cls=True)
        keep = method.step(state, i, view)
        if keep is not None:
            alive = alive.gather(1, keep)
    return alive[0]


def test_flowcut_keeps_the_patches_that_hold_the_cls_attention() -> None:
    kept = run_fake_tower(budget=len(HOT))
    assert kept.tolist() == HOT


def hot_trace() -> VisionTrace:
    q, k, v = hot_tables()
    attn = (q[:, :, :1] @ k.transpose(-1, -2)).softmax(-1)[:, :, 0, 1:]
    feats = torch.randn(1, N, 8, generator=torch.Generator().manual_seed(1))
    return VisionTrace(feats=feats, relay_attn=attn, keys=k[:, :, 1:], cls_feat=torch.zeros(1, 8), grid=(6, 6))


@pytest.mark.parametrize("name", ["vispruner", "visionzip"])
def test_vision_methods_keep_the_hot_patches(name: str) -> None:
    sel = make_method(name).select(hot_trace(), 8)
    assert set(HOT) <= set(sel.indices[0].tolist())


def test_random_does_not_find_the_hot_patches() -> None:
    # the control: the same input through `random` misses them (seeded, so stable)
    sel = make_method("random", seed=0).select(hot_trace(), 8)
    assert not set(HOT) <= set(sel.indices[0].tolist())
