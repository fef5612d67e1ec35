"""VisionZip and VisPruner on hand-built feature-layer traces (no model)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from flowcut.errors import FlowcutError
from flowcut.methods import METHODS, make_method
from flowcut.methods.base import VisionTrace
from flowcut.methods.random import RandomPruning
from flowcut.methods.visionzip import VisionZip, split_budget
from flowcut.methods.vispruner import VisPruner

B, N, H, D, HD = 2, 36, 2, 8, 4


def make_trace(cls: bool = True, seed: int = 0, n: int = N, d: int = D) -> VisionTrace:
    """Random trace of B images: [B, n, d] features, [B, H, n] attention, [B, H, n, HD] keys."""
    g = torch.Generator().manual_seed(seed)
    return VisionTrace(
        feats=torch.randn(B, n, d, generator=g),
        relay_attn=torch.rand(B, H, n, generator=g).softmax(dim=-1),
        keys=torch.randn(B, H, n, HD, generator=g),
        cls_feat=torch.randn(B, d, generator=g) if cls else None,
        grid=(6, n // 6),
    )


def check_indices(idx: Tensor, k: int, n: int = N) -> None:
    assert idx.shape == (B, k)
    for row in idx.tolist():
        assert row == sorted(set(row)), "indices must be ascending and unique"
        assert all(0 <= i < n for i in row)


@pytest.mark.parametrize(
    "budget, expected", [(1, (1, 0)), (2, (1, 1)), (64, (54, 10)), (128, (108, 20)), (192, (162, 30))]
)
def test_visionzip_budget_split(budget: int, expected: tuple[int, int]) -> None:
    assert split_budget(budget, 54 / 64) == expected


@pytest.mark.parametrize("cls", [True, False])
@pytest.mark.parametrize("budget", [1, 2, 3, 8, 20, N])
def test_visionzip_counts(cls: bool, budget: int) -> None:
    trace = make_trace(cls=cls)
    sel = VisionZip().select(trace, budget)
    check_indices(sel.indices, budget - cls)
    assert sel.tokens is not None and sel.tokens.shape == (B, budget, D)
    if cls:
        assert torch.equal(sel.tokens[:, 0], trace.cls_feat)


@pytest.mark.parametrize("ratio", [None, 0.0, 0.5, 1.0])
@pytest.mark.parametrize("step", [1, 8])
@pytest.mark.parametrize("budget", [1, 2, 3, 8, 17, N])
def test_vispruner_counts(ratio: float | None, step: int, budget: int) -> None:
    sel = VisPruner(important_ratio=ratio, step=step).select(make_trace(), budget)
    check_indices(sel.indices, budget)
    assert sel.tokens is None


def test_bad_budgets_are_errors() -> None:
    with pytest.raises(FlowcutError):
        VisionZip().select(make_trace(cls=True), N + 2)
    with pytest.raises(FlowcutError):
        VisionZip().select(make_trace(cls=False), N + 1)
    with pytest.raises(FlowcutError):
        VisPruner().select(make_trace(), N + 1)
    with pytest.raises(FlowcutError):
        VisPruner().select(make_trace(), 0)


def test_vispruner_default_ratio() -> None:
    assert VisPruner().ratio(64) == 0.75 and VisPruner().ratio(128) == 0.5


@pytest.mark.parametrize("cls", [True, False])
def test_attention_carrying_patches_are_kept(cls: bool) -> None:
    trace = make_trace(cls=cls)
    hot = [[3, 17, 30], [0, 12, 35]]
    attn = torch.zeros(B, H, N)
    for i, pos in enumerate(hot):
        attn[i, :, pos] = 1.0 / len(pos)
    trace.relay_attn = attn
    # Budget 8: VisionZip keeps 7 dominant tokens (6 or 7 patches), VisPruner 6 important ones.
    for method in (VisionZip(), VisPruner()):
        kept = method.select(trace, 8).indices.tolist()
        for i, pos in enumerate(hot):
            assert set(pos) <= set(kept[i]), method.name


def test_visionzip_contextual_merge_by_hand() -> None:
    n = 6
    pos = torch.arange(n, dtype=torch.float32)
    feats = torch.stack([torch.stack([pos, 10 * pos, torch.full_like(pos, s)], dim=-1) for s in (1.0, -1.0)])
    attn = torch.zeros(B, H, n)
    attn[:, :, 2] = 1.0  # patch 2 is the only dominant patch
    key_means = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.5, 0.5], [0.0, 1.0], [0.2, 0.8], [0.1, 1.0]])
    key_means = key_means.expand(B, n, 2).clone()
    key_means[1, 1] = torch.tensor([0.1, 0.9])  # image 1: patch 1 joins target 3, target 0 stays alone
    delta = torch.tensor([0.25, -0.5])  # heads differ, only their mean matters
    keys = torch.stack([key_means + delta, key_means - delta], dim=1)  # [B, H, n, 2]
    cls_feat = torch.tensor([[100.0, 100.0, 100.0], [200.0, 200.0, 200.0]])
    trace = VisionTrace(feats=feats, relay_attn=attn, keys=keys, cls_feat=cls_feat, grid=(2, 3))

    # T = 4 at share 1/2: [CLS] + patch 2 dominant; remaining 0,1,3,4,5 -> step 2 -> targets 0 and 3.
    sel = VisionZip(dominant_share=0.5).select(trace, 4)
    assert sel.indices.tolist() == [[0, 2, 3], [0, 2, 3]]
    f = feats
    expected = torch.stack(
        [
            torch.stack([cls_feat[0], f[0, 2], f[0, 0] + f[0, 1], f[0, 3] + (f[0, 4] + f[0, 5]) / 2]),
            torch.stack([cls_feat[1], f[1, 2], f[1, 0], f[1, 3] + (f[1, 1] + f[1, 4] + f[1, 5]) / 3]),
        ]
    )
    torch.testing.assert_close(sel.tokens, expected)
    torch.testing.assert_close(expected[0, 3], torch.tensor([7.5, 75.0, 2.0]))


def descending_attention(n: int = N) -> Tensor:
    """[B, H, n] relay attention that ranks patches by position: 0 first."""
    return torch.linspace(1.0, 0.1, n).expand(B, H, n).clone()


def test_vispruner_drops_one_duplicate_in_a_single_round() -> None:
    trace = make_trace(d=32)
    trace.relay_attn = descending_attention()
    trace.feats[:, 20] = trace.feats[:, 3]  # slot 3 is in B, slot 20 in A: the A copy goes
    # r = 0: all 36 patches are "diverse", T_div = 35 -> one round that drops one token.
    sel = VisPruner(important_ratio=0.0).select(trace, N - 1)
    expected = [i for i in range(N) if i != 20]
    assert sel.indices.tolist() == [expected, expected]


def test_vispruner_keeps_one_of_a_duplicate_pair() -> None:
    trace = make_trace(d=32)
    trace.relay_attn = descending_attention()
    trace.feats[:, 7] = trace.feats[:, 6]  # first two non-important patches, one in A, one in B
    # T = 8 at r = 0.75: patches 0..5 important, 2 diverse ones out of 30.
    kept = VisPruner().select(trace, 8).indices.tolist()
    for row in kept:
        assert set(range(6)) <= set(row)
        assert 6 not in row, "the A copy of the duplicate is the most redundant token"


@pytest.mark.parametrize("method", [VisionZip(), VisPruner()], ids=lambda m: m.name)
def test_deterministic_and_per_image(method: VisionZip | VisPruner) -> None:
    trace = make_trace(seed=3)
    first, again = method.select(trace, 10), type(method)().select(trace, 10)
    assert torch.equal(first.indices, again.indices)
    if first.tokens is not None:
        assert torch.equal(first.tokens, again.tokens)
    # An image's choice does not depend on its batch-mates.
    one = VisionTrace(
        feats=trace.feats[1:],
        relay_attn=trace.relay_attn[1:],
        keys=trace.keys[1:],
        cls_feat=trace.cls_feat[1:],
        grid=trace.grid,
    )
    alone = type(method)().select(one, 10)
    assert torch.equal(alone.indices[0], first.indices[1])
    if first.tokens is not None:
        torch.testing.assert_close(alone.tokens[0], first.tokens[1])


def test_random_draw_depends_on_seed_and_image_not_on_batch_or_history() -> None:
    # a sweep shards samples over actors and a resumed job restarts mid-way: the same image must
    # get the same patches wherever it lands, or a rerun of a spec would not reproduce `random`
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(3, 12, 12, generator=g), torch.rand(3, 12, 12, generator=g)
    trace = make_trace()
    method = RandomPruning(seed=5)
    first = method.select(replace(trace, pixels=torch.stack([a, b])), 8).indices
    swapped = method.select(replace(trace, pixels=torch.stack([b, a])), 8).indices  # after a draw already
    fresh = RandomPruning(seed=5).select(replace(trace, pixels=torch.stack([b, a])), 8)
    assert torch.equal(first, swapped.flip(0))
    assert torch.equal(fresh.indices[0], first[1]) and torch.equal(fresh.indices[1], first[0])
    check_indices(first, 8)
    assert not torch.equal(first[0], first[1])  # two images, two draws
    other_seed = RandomPruning(seed=6).select(replace(trace, pixels=torch.stack([a, b])), 8).indices
    assert not torch.equal(first, other_seed)
    # a trace without pixels (built by hand) draws from the method's own stream, still seeded
    assert torch.equal(RandomPruning(seed=5).select(trace, 8).indices, RandomPruning(seed=5).select(trace, 8).indices)


_VISION = sorted(n for n, c in METHODS.items() if c.kind == "vision" and n != "none")


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(_VISION),
    rows=st.integers(1, 7),
    cols=st.integers(1, 7),
    cls=st.booleans(),
    flat=st.sampled_from(["none", "features", "attention", "both"]),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_any_trace_and_budget_give_a_valid_selection(name: str, rows: int, cols: int, cls: bool, flat: str,
                                                     seed: int, data: st.DataObject) -> None:  # fmt: skip
    """Degenerate scenes (a blank background: equal features, ties in attention) included."""
    n = rows * cols
    budget = data.draw(st.integers(1, n), label="budget")
    g = torch.Generator().manual_seed(seed)
    feats = torch.ones(B, n, D) if flat in ("features", "both") else torch.randn(B, n, D, generator=g)
    attn = (
        torch.full((B, H, n), 1 / n) if flat in ("attention", "both") else torch.rand(B, H, n, generator=g).softmax(-1)
    )
    trace = VisionTrace(feats=feats, relay_attn=attn, keys=torch.randn(B, H, n, HD, generator=g),
                        cls_feat=torch.randn(B, D, generator=g) if cls else None, grid=(rows, cols))  # fmt: skip
    method = make_method(name)
    # VFlowOpt's vision stage keeps more, for its LLM stages to cut to the budget
    want = method.vision_keep(budget, n) if hasattr(method, "vision_keep") else budget
    try:
        sel = method.select(trace, budget)
    except FlowcutError as e:  # a refusal must name the budget, never be a crash
        assert e.field == "budget" and budget < n, e  # every patch can always be kept
        return
    if sel.tokens is None:
        check_indices(sel.indices, want, n)
    else:  # built tokens: as many as asked, each of the features' width and finite
        assert sel.tokens.shape == (B, want, D) and torch.isfinite(sel.tokens).all()
        for row in sel.indices.tolist():
            assert row == sorted(set(row)) and all(0 <= i < n for i in row)
