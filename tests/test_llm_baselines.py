"""LLM-side baselines without models: schedules, scores, DPC-kNN, raters, VFlowOpt recycling."""

from __future__ import annotations

import pytest
import torch

from flowcut.errors import FlowcutError
from flowcut.methods.base import LLMScoreContext, LLMStage, VisionTrace
from flowcut.methods.fastv import FastV
from flowcut.methods.pdrop import PDrop
from flowcut.methods.schedule import layer_average, round_half_up, scale_layer, scale_layers
from flowcut.methods.sparsevlm import OFFICIAL_KEEPS, SparseVLM, dpc_knn, text_raters
from flowcut.methods.vflowopt import RELEASES, VFlowOpt, recycle_select

N = 576
LLM = (FastV, PDrop, SparseVLM)


def keeps(stages: list[LLMStage]) -> list[int]:
    return [s.keep for s in stages]


def test_layer_average_and_scaling() -> None:
    stages = [LLMStage(2, 100, 1), LLMStage(4, 50, 3)]
    assert layer_average(stages, 200, 8) == (2 * 200 + 2 * 100 + 4 * 50) / 8
    assert layer_average([], 200, 8) == 200
    assert [scale_layer(2, d) for d in (32, 28, 40, 4)] == [2, 2, 3, 1]  # 2.5 rounds half up
    assert scale_layer(31, 32) == 31 and scale_layer(40, 32) == 31
    assert scale_layers([2, 8, 16], 4) == [1, 2, 3]
    assert scale_layers([2, 8, 16], 2) == [1]  # stages that no longer fit are dropped
    assert scale_layers([2, 8, 16], 1) == []


@pytest.mark.parametrize(("budget", "keep"), [(64, 30), (128, 98), (192, 166)])
def test_fastv_layer_average(budget: int, keep: int) -> None:
    # (2 * 576 + 30 * R) / 32: R = 30 -> 64.125, R = 98 -> 127.875, R = 166 -> 191.625
    (stage,) = FastV().schedule(budget, 32, N)
    assert (stage.layer, stage.keep, stage.score_layer) == (2, keep, 1)
    assert round_half_up(layer_average([stage], N, 32)) == budget


@pytest.mark.parametrize("depth", [28, 32, 40])
@pytest.mark.parametrize("budget", [64, 96, 128, 192, 288])
def test_pdrop_average(depth: int, budget: int) -> None:
    stages = PDrop().schedule(budget, depth, N)
    assert len(stages) == 3 and all(s.score_layer == s.layer for s in stages)
    assert keeps(stages) == sorted(keeps(stages), reverse=True)
    assert round_half_up(layer_average(stages, N, depth)) == budget


def test_pdrop_matches_maintainer_example() -> None:
    # PyramidDrop#29: layers [2, 8, 16] with lam ~ 0.19 average ~64 at L = 32
    stages = PDrop().schedule(64, 32, N)
    assert [s.layer for s in stages] == [2, 8, 16]
    assert stages[0].keep / N == pytest.approx(0.19, abs=0.01)


# the v1.0 lists plain, the recycled tokens on top: 192 -> 300 + 9 (of 276 dropped: int(0.3 * 276) + 1
# = 83 candidates -> 9 clusters), 200 + 4 (109 dropped), 110 + 3 (94 dropped)
SPARSEVLM_AT_32 = [(64, [82, 32, 18], 64.81), (128, [312, 117, 39], 128.63), (192, [309, 204, 113], 192.03)]


@pytest.mark.parametrize(("budget", "expected", "logged"), SPARSEVLM_AT_32)
def test_sparsevlm_official_counts_at_32(budget: int, expected: list[int], logged: float) -> None:
    stages = SparseVLM().schedule(budget, 32, N)
    assert [(s.layer, s.score_layer) for s in stages] == [(2, 2), (6, 6), (15, 15)]
    assert keeps(stages) == expected
    # the reference's "Equal Tokens" (Gumpest/SparseVLMs#24 logs 192.03125 for 192) and its int()
    average = layer_average(stages, N, 32)
    assert average == pytest.approx(logged, abs=0.005) and int(average) == budget
    # each stage's plain share is the official entry: recycle_count takes the rest
    present = [N, *keeps(stages)[:-1]]
    plain = [s.keep - SparseVLM().recycle_count(s.keep, n) for s, n in zip(stages, present, strict=True)]
    assert plain == list(OFFICIAL_KEEPS[budget])
    # without recycling (v2.0's switch) the plain lists, the last keep fitted so the average rounds to T
    v2 = SparseVLM(recycle=False).schedule(budget, 32, N)
    assert keeps(v2)[:2] == list(OFFICIAL_KEEPS[budget][:2])
    assert round_half_up(layer_average(v2, N, 32)) == budget


def test_sparsevlm_official_lists_overshoot_when_inputs_count() -> None:
    # why the official lists are only a shape: the layer at a pruning location runs on all 576
    official = [LLMStage(3, 300, 2), LLMStage(7, 200, 6), LLMStage(16, 110, 15)]
    assert layer_average(official, N, 32) == pytest.approx((3 * 576 + 4 * 300 + 9 * 200 + 16 * 110) / 32)
    assert layer_average(official, N, 32) > 200


@pytest.mark.parametrize("cls", LLM)
def test_infeasible_average_names_budget(cls: type) -> None:
    # 4 layers, first cut before layer 1: at best (576 + 3 * 1) / 4 = 144.75 > 64
    with pytest.raises(FlowcutError) as err:
        cls().schedule(64, 4, N)
    assert err.value.field == "budget" and "after_prune" in str(err.value)


@pytest.mark.parametrize("cls", LLM)
def test_after_prune_keeps_budget(cls: type) -> None:
    for depth in (4, 28, 32):
        stages = cls(budget_mode="after_prune").schedule(64, depth, N)
        assert stages[-1].keep == 64 and all(s.keep >= 64 for s in stages)


@pytest.mark.parametrize("cls", LLM)
def test_bad_requests(cls: type) -> None:
    with pytest.raises(FlowcutError, match="budget_mode"):
        cls(budget_mode="average").schedule(64, 32, N)
    with pytest.raises(FlowcutError, match="budget"):
        cls().schedule(N + 1, 32, N)


@pytest.mark.parametrize("cls", LLM)
def test_schedules_are_valid_or_refused(cls: type) -> None:
    for depth in (2, 3, 6, 12, 24, 28, 32, 40, 80):
        for budget in (1, 16, 64, 144, 300, N):
            try:
                stages = cls().schedule(budget, depth, N)
            except FlowcutError as e:
                assert e.field == "budget"
                continue
            layers = [s.layer for s in stages]
            assert layers == sorted(set(layers)) and all(1 <= x <= depth - 1 for x in layers)
            assert all(0 <= s.score_layer <= s.layer for s in stages)
            kept = keeps(stages)
            assert all(1 <= k <= N for k in kept) and kept == sorted(kept, reverse=True)
            # SparseVLM's official counts at 32 layers: the reference's int() of its average (64.81 is "64")
            official = cls is SparseVLM and depth == 32 and budget in OFFICIAL_KEEPS
            assert (int if official else round_half_up)(layer_average(stages, N, depth)) == budget


def fake_ctx(attn: torch.Tensor, visual: torch.Tensor, last: torch.Tensor, **kw: object) -> LLMScoreContext:
    """attn: [B, H, P, P] full attention; ``attention(q)`` returns its rows q."""

    def attention(q: torch.Tensor) -> torch.Tensor:
        idx = q[:, None, :, None].expand(-1, attn.shape[1], -1, attn.shape[-1])
        return attn.gather(2, idx)

    hidden = kw.pop("hidden", torch.zeros(*visual.shape, 2))
    return LLMScoreContext(attention=attention, hidden=hidden, visual=visual, last=last, values=None, **kw)


def test_last_token_scores_rank_as_built() -> None:
    # P = 6: 0 system, 1-4 visual, 5 last prompt token; head mean of row 5 ranks 3 > 1 > 4 > 2
    attn = torch.zeros(1, 2, 6, 6)
    attn[0, 0, 5, 1:5] = torch.tensor([0.3, 0.0, 0.4, 0.1])
    attn[0, 1, 5, 1:5] = torch.tensor([0.1, 0.1, 0.4, 0.2])
    visual = torch.tensor([[False, True, True, True, True, False]])
    ctx = fake_ctx(attn, visual, torch.tensor([5]))
    for method in (FastV(), PDrop(), VFlowOpt()):
        s = method.score(LLMStage(2, 2, 1), ctx)
        assert torch.allclose(s[0, 1:5], torch.tensor([0.2, 0.05, 0.4, 0.15]))
        assert s[0].masked_fill(~visual[0], -1).topk(2).indices.sort().values.tolist() == [1, 3]


def test_sparsevlm_scores_from_raters_and_fallback() -> None:
    # P = 7: 0 system, 1-3 visual, 4-6 text; raters 4 and 6
    attn = torch.zeros(1, 2, 7, 7)
    attn[0, :, 4, 1:4] = torch.tensor([0.6, 0.0, 0.0])
    attn[0, :, 5, 1:4] = torch.tensor([0.0, 0.9, 0.0])
    attn[0, :, 6, 1:4] = torch.tensor([0.0, 0.0, 0.2])
    visual = torch.tensor([[False, True, True, True, False, False, False]])
    raters = torch.tensor([[False, False, False, False, True, False, True]])
    ctx = fake_ctx(attn, visual, torch.tensor([6]), text_raters=raters)
    assert torch.allclose(SparseVLM().score(LLMStage(3, 1, 2), ctx)[0, 1:4], torch.tensor([0.3, 0.0, 0.1]))
    # no raters: the text after the last visual token (4, 5, 6) rates
    ctx = fake_ctx(attn, visual, torch.tensor([6]))
    expected = torch.tensor([0.2, 0.3, 0.2 / 3])
    assert torch.allclose(SparseVLM().score(LLMStage(3, 1, 2), ctx)[0, 1:4], expected)


def test_text_raters_hand_example() -> None:
    # 0 system, 1-2 visual v = (1, 0), 3-4 text t3 = (2, 0), t4 = (0, 0); v . t = (2, 0),
    # softmax -> (0.88, 0.12) for both v, mean 0.5 -> only token 3 rates; 0 is not in the span
    embeds = torch.tensor([[[5.0, 5.0], [1.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 0.0]]])
    visual = torch.tensor([[False, True, True, False, False]])
    after = torch.tensor([[False, False, False, True, True]])
    assert text_raters(embeds, visual, after).tolist() == [[False, False, False, True, False]]
    assert SparseVLM().text_raters(embeds, visual, after).tolist() == [[False, False, False, True, False]]
    assert not text_raters(embeds, visual, torch.zeros_like(after)).any()


def test_dpc_knn_two_blobs() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(6, 4, generator=g) * 0.1, torch.randn(5, 4, generator=g) * 0.1 + 10])
    assignment, centres = dpc_knn(x, 2, k=2)
    assert len(set(assignment[:6].tolist())) == 1 and len(set(assignment[6:].tolist())) == 1
    assert assignment[0] != assignment[6]
    assert sorted(int(c) // 6 for c in centres) == [0, 1]  # one centre in each blob
    assert assignment[centres].tolist() == [0, 1]


def test_sparsevlm_recycle_count() -> None:
    # keep 66 of 576: 50 plain drop 526 -> int(0.3 * 526) + 1 = 158 candidates -> 16 clusters
    assert SparseVLM().recycle_count(66, 576) == 16
    assert SparseVLM().recycle_count(8, 20) == 1 and SparseVLM().recycle_count(1, 20) == 0
    assert SparseVLM(recycle=False).recycle_count(66, 576) == 0 and SparseVLM().recycle_count(20, 20) == 0


def test_sparsevlm_merge_puts_cluster_mean_in_last_kept_row() -> None:
    # 20 visual tokens, score 20 - p, keep 8 -> 7 plain (0-6) + 1 recycled in row 7; dropped
    # 7-19 -> int(0.3 * 13) + 1 = 4 candidates (7-10) -> one cluster, mean of rows 7-10
    p = torch.arange(20.0)
    hidden = torch.stack([p, -p], dim=-1)[None].repeat(2, 1, 1)
    visual = torch.ones(2, 20, dtype=torch.bool)
    ctx = fake_ctx(torch.zeros(2, 1, 20, 20), visual, torch.tensor([19, 19]), hidden=hidden)
    scores = (20 - p)[None].repeat(2, 1)
    keep = scores.topk(8, dim=1).indices
    out = SparseVLM().merge(LLMStage(3, 8, 2), ctx, scores, keep)
    assert out is not None and torch.equal(out[:, :7], hidden[:, :7])
    assert torch.allclose(out[:, 7], torch.tensor([8.5, -8.5]))
    assert SparseVLM(recycle=False).merge(LLMStage(3, 8, 2), ctx, scores, keep) is None


def test_recycle_select_hand_grid() -> None:
    # 4x4 grid, m = 2 -> cells {0,1,4,5} {2,3,6,7} {8,9,12,13} {10,11,14,15}; importance
    # 16 - p. keep 7: 3 plain (0, 1, 2) + 4 cells; each recycled token sits at its cell's
    # most important pruned patch and is the importance-weighted mean of the cell's pruned
    feats = torch.arange(16.0)[None, :, None]
    imp = (16 - torch.arange(16.0))[None]
    sel = recycle_select(feats, imp, (4, 4), 7, 2.0)
    assert sel.indices.tolist() == [[0, 1, 2, 3, 4, 8, 10]]
    assert sel.tokens is not None
    expected = [0, 1, 2, (13 * 3 + 10 * 6 + 9 * 7) / 32, (12 * 4 + 11 * 5) / 23]
    expected += [(8 * 8 + 7 * 9 + 4 * 12 + 3 * 13) / 22, (6 * 10 + 5 * 11 + 2 * 14 + 1 * 15) / 14]
    assert torch.allclose(sel.tokens[0, :, 0], torch.tensor(expected))
    with pytest.raises(FlowcutError, match="budget"):
        recycle_select(feats, imp, (4, 4), 3, 2.0)


def test_vflowopt_select_and_schedule() -> None:
    method = VFlowOpt()
    # T_v = 64 * 28 / (18 + 10 * 0.6011) = 74.6 -> 75; at L = 32 the cut is before layer
    # round(18 * 32 / 28) = 21: (21 * 75 + 11 * 43) / 32 = 64 exactly
    assert method.vision_keep(64, N) == 75
    assert method.schedule(64, 32, 75) == [LLMStage(21, 43, 20)]
    assert VFlowOpt(budget_mode="after_prune").schedule(64, 32, 106) == [LLMStage(21, 64, 20)]
    g = torch.Generator().manual_seed(0)
    trace = VisionTrace(
        feats=torch.randn(2, N, 8, generator=g),
        relay_attn=torch.rand(2, 4, N, generator=g).softmax(-1),
        keys=torch.zeros(2, 4, N, 2),
        cls_feat=None,
        grid=(24, 24),
    )
    sel = method.select(trace, 64)
    assert sel.indices.shape == (2, 75) and sel.tokens is not None and sel.tokens.shape == (2, 75, 8)
    assert bool((sel.indices.diff(dim=1) > 0).all())
    importance = trace.relay_attn.mean(1)
    for b in range(2):
        top = importance[b].topk(60).indices  # well inside the plain part (75 - 4 cells)
        rows = torch.searchsorted(sel.indices[b], top.sort().values)
        assert torch.equal(sel.tokens[b, rows], trace.feats[b, top.sort().values])
    with pytest.raises(FlowcutError, match="alpha_v"):
        VFlowOpt(alpha_v=0.1)
    assert torch.equal(sel.importance, importance)  # handed on to the LLM stage


def test_vflowopt_releases() -> None:
    # 25%: shares 0.9833 and 0.8773 before layers 9 and 18 of 28 -> 10 and 21 of 32; the vision keep
    # T_v = 64 * 28 / (9 + 9 * 0.9833 + 10 * 0.9833 * 0.8773) = 64 / 0.9456 = 67.7 -> 68
    quarter = VFlowOpt(release="25%")
    assert quarter.vision_keep(64, N) == 68 and quarter.m == pytest.approx(15.58, abs=0.01)
    stages = quarter.schedule(64, 32, 68)
    assert [(s.layer, s.score_layer) for s in stages] == [(10, 9), (21, 20)] and stages[0].keep == 67
    assert round_half_up(layer_average(stages, 68, 32)) == 64
    # after_prune: T_v = 64 / (0.9833 * 0.8773) = 74.2 -> 74; the last stage keeps exactly 64
    after = VFlowOpt(release="25%", budget_mode="after_prune")
    assert after.vision_keep(64, N) == 74 and after.schedule(64, 32, 74)[-1].keep == 64
    # each release's LLM shares at the paper's depth give its own keep ratio (0.1 / 0.25 / 0.5)
    for release, ratio in (("10%", 0.10), ("25%", 0.25), ("50%", 0.50)):
        assert RELEASES[release][2] * VFlowOpt(release=release)._after_vision() == pytest.approx(ratio, abs=0.001)
    # a shallow LLM gets the stages that fit
    assert [s.layer for s in VFlowOpt(release="50%").schedule(300, 2, 576)] == [1]
    with pytest.raises(FlowcutError, match="release"):
        VFlowOpt(release="20%")


def test_vflowopt_llm_score_is_the_vision_importance_when_given() -> None:
    visual = torch.tensor([[False, True, True, True, False]])
    attn = torch.rand(1, 2, 5, 5).softmax(-1)
    prior = torch.tensor([[0.0, 0.3, 0.9, 0.1, 0.0]])
    stage = LLMStage(2, 2, 1)
    assert torch.equal(VFlowOpt().score(stage, fake_ctx(attn, visual, torch.tensor([4]), vision_scores=prior)), prior)
    from_attention = VFlowOpt().score(stage, fake_ctx(attn, visual, torch.tensor([4])))
    assert torch.allclose(from_attention, attn[:, :, 4].mean(1))
