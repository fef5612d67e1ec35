"""Every method inside every supported model class: budgets, equivalence, determinism."""

from __future__ import annotations

import pytest
import torch

from flowcut.errors import FlowcutError
from flowcut.methods import METHODS, LLMMethod, VisionMethod, make_method
from flowcut.models import VLMAdapter

from .conftest import get_adapter, make_image

PRUNING = [m for m in METHODS if m != "none"]
BUDGET = 64
# LLaVA-NeXT's tiny 336 px images give 1152 patches + newlines: 64 is out of reach as a
# decoder-layer average (K=2 layers see them all), so it gets a budget the papers' scale uses
BUDGETS = {"llava": 64, "llava_next": 320, "qwen2_vl": 64}
QUESTIONS = ["what is this", "what colour is the circle", "how many", "is there a red square"]


def check_budget(adapter: VLMAdapter, method_name: str, outs: list, budget: int) -> None:
    method = METHODS[method_name]
    for out in outs:
        kept_patches = sum(len(k) for k in out.kept)
        for k, grid in zip(out.kept, out.grids):
            assert torch.equal(torch.tensor(k).sort().values, torch.tensor(k)), "kept positions ascending"
            assert len(set(k)) == len(k) and all(0 <= i < grid[0] * grid[1] for i in k)
        avg = out.cost.visual_tokens_layer_avg
        if issubclass(method, LLMMethod) and getattr(method, "budget_mode", "") == "layer_average":
            # the papers' convention for LLM-side pruning: the average over decoder layers
            # SparseVLM's official counts at 32 layers / 576 patches: the reference's int() (64.81 is "64")
            per_layer = out.cost.llm_layer_visual_tokens
            official = method_name == "sparsevlm" and (len(per_layer), per_layer[0]) == (32, 576)
            near = int(avg) if official else round(avg)
            assert near == budget, (method_name, out.cost.llm_layer_visual_tokens)
        elif method_name == "visionzip" and adapter.model_type != "qwen2_vl":
            # VisionZip sends [CLS] as one of its tokens, which has no grid position
            assert kept_patches in (budget - 1, budget - len(out.kept))
            assert out.cost.visual_tokens_llm_input == budget
        elif adapter.model_type == "llava_next":
            assert kept_patches == budget  # plus the newline tokens of rows that keep a patch
        else:
            assert kept_patches == budget
            assert out.cost.visual_tokens_llm_input == budget


@pytest.mark.parametrize("method_name", PRUNING)
def test_batched_generate_keeps_exactly_the_budget(adapter: VLMAdapter, method_name: str, images: list) -> None:
    budget = BUDGETS[adapter.model_type]
    outs = adapter.generate(images, QUESTIONS, make_method(method_name), budget, max_new_tokens=3, min_new_tokens=3)
    assert len(outs) == 4
    check_budget(adapter, method_name, outs, budget)
    for out in outs:
        assert out.cost.prefill_ms > 0 and out.cost.decode_ms > 0 and out.cost.flops > out.cost.prefill_flops > 0
        assert out.cost.kv_cache_bytes > 0 and out.cost.peak_memory_bytes > 0


@pytest.mark.parametrize("method_name", PRUNING)
def test_unbatched_matches_batched_selection(adapter: VLMAdapter, method_name: str, images: list) -> None:
    budget = BUDGETS[adapter.model_type]
    one = adapter.generate(
        images[1:2], QUESTIONS[1:2], make_method(method_name), budget, max_new_tokens=3, min_new_tokens=3
    )
    check_budget(adapter, method_name, one, budget)
    if issubclass(METHODS[method_name], VisionMethod) or method_name == "flowcut":
        four = adapter.generate(images, QUESTIONS, make_method(method_name), budget, max_new_tokens=3, min_new_tokens=3)
        assert four[1].kept == one[0].kept, "an image's kept set must not depend on its batch-mates"


@pytest.mark.parametrize("method_name", PRUNING)
def test_each_answer_is_what_it_is_alone(adapter: VLMAdapter, method_name: str, images: list) -> None:
    """Left padding differs with the batch: no method may read it (a padded query once gave NaN scores)."""
    budget = BUDGETS[adapter.model_type]

    def run(rows: slice) -> tuple[list, torch.Tensor]:
        return adapter.generate(
            images[rows], QUESTIONS[rows], make_method(method_name), budget, max_new_tokens=4, min_new_tokens=4,
            return_logits=True,
        )  # fmt: skip

    four, logits = run(slice(0, 4))
    for i in range(4):
        one, alone = run(slice(i, i + 1))
        torch.testing.assert_close(logits[i], alone[0], atol=1e-4, rtol=1e-4, msg=f"row {i}")
        assert four[i].text == one[0].text, f"row {i}: decoding over the pruned cache differs"


def test_pruning_reduces_prefill_work(adapter: VLMAdapter, images: list) -> None:
    full = adapter.visual_tokens(images[0])
    base = adapter.generate(images[:1], QUESTIONS[:1], make_method("none"), full, max_new_tokens=2)[0]
    cut = adapter.generate(images[:1], QUESTIONS[:1], make_method("flowcut"), BUDGET, max_new_tokens=2)[0]
    assert cut.cost.prefill_flops < base.cost.prefill_flops
    assert cut.cost.kv_cache_bytes < base.cost.kv_cache_bytes


def reference_logits(adapter: VLMAdapter, image, question: str) -> torch.Tensor:
    """Last-position logits of the plain model fed the way its processor feeds it."""
    model, ip = adapter.model, adapter.processor.image_processor
    n = adapter.visual_tokens(image)
    if adapter.model_type == "llava":
        ids = adapter.prompt_ids(question, n)
        pix = ip([image], return_tensors="pt")
        out = model(input_ids=torch.tensor([ids]), pixel_values=pix["pixel_values"])
    elif adapter.model_type == "llava_next":
        pix = ip([image], return_tensors="pt")
        feats = model.model.get_image_features(pix["pixel_values"], pix["image_sizes"]).pooler_output
        ids = adapter.prompt_ids(question, sum(f.shape[0] for f in feats))
        out = model(input_ids=torch.tensor([ids]), pixel_values=pix["pixel_values"], image_sizes=pix["image_sizes"])
    else:
        pix = ip([image], return_tensors="pt")
        row = adapter.tokenizer(adapter.template.format(question=question)).input_ids
        at = row.index(adapter.image_token_id)
        ids = torch.tensor([row[:at] + [adapter.image_token_id] * n + row[at + 1 :]])
        out = model(
            input_ids=ids,
            pixel_values=pix["pixel_values"],
            image_grid_thw=pix["image_grid_thw"],
            mm_token_type_ids=(ids == adapter.image_token_id).int(),
        )
    return out.logits[0, -1]


@pytest.mark.parametrize("method_name", ["none", "flowcut"])
def test_full_budget_gives_the_unpruned_logits(adapter: VLMAdapter, method_name: str, images: list) -> None:
    full = adapter.visual_tokens(images[0])
    with torch.inference_mode():
        ref = reference_logits(adapter, images[0], QUESTIONS[0])
    _, logits = adapter.generate(
        images[:1], QUESTIONS[:1], make_method(method_name), full, max_new_tokens=1, return_logits=True
    )
    # float32 on CPU; differences come only from summation order (SDPA vs our gathers)
    torch.testing.assert_close(logits[0].float(), ref.float(), atol=1e-4, rtol=1e-4)


def test_same_seed_same_output_and_random_varies_with_seed(images: list) -> None:
    from .conftest import get_adapter

    adapter = get_adapter("llava")
    a = adapter.generate(images[:2], QUESTIONS[:2], make_method("random", seed=1), BUDGET, max_new_tokens=3)
    b = adapter.generate(images[:2], QUESTIONS[:2], make_method("random", seed=1), BUDGET, max_new_tokens=3)
    c = adapter.generate(images[:2], QUESTIONS[:2], make_method("random", seed=2), BUDGET, max_new_tokens=3)
    assert [o.kept for o in a] == [o.kept for o in b] and [o.text for o in a] == [o.text for o in b]
    assert [o.kept for o in a] != [o.kept for o in c]
    f1 = adapter.generate(images[:2], QUESTIONS[:2], make_method("flowcut"), BUDGET, max_new_tokens=3)
    f2 = adapter.generate(images[:2], QUESTIONS[:2], make_method("flowcut"), BUDGET, max_new_tokens=3)
    assert [o.kept for o in f1] == [o.kept for o in f2] and [o.text for o in f1] == [o.text for o in f2]


@pytest.mark.parametrize("budget", [0, -3, 577, 2.5, "64", True])
def test_bad_budget_is_a_clear_error(budget: object, images: list) -> None:
    from .conftest import get_adapter

    with pytest.raises(FlowcutError, match=r"^budget: "):
        get_adapter("llava").generate(images[:1], QUESTIONS[:1], make_method("flowcut"), budget)  # type: ignore[arg-type]


def test_none_needs_the_full_budget(images: list) -> None:
    from .conftest import get_adapter

    with pytest.raises(FlowcutError, match=r"budget: method 'none'.*allowed: 576"):
        get_adapter("llava").generate(images[:1], QUESTIONS[:1], make_method("none"), 64)


def test_unknown_method_lists_the_known_ones() -> None:
    with pytest.raises(FlowcutError, match=r"method: unknown method 'zip'.*flowcut"):
        make_method("zip")


def test_llava_next_mixed_image_sizes_run_as_sub_batches() -> None:
    from .conftest import get_adapter

    adapter = get_adapter("llava_next")
    imgs = [make_image(7, (336, 336)), make_image(8, (672, 336))]
    outs = adapter.generate(imgs, QUESTIONS[:2], make_method("flowcut"), 160, max_new_tokens=2)
    assert [len(o.kept) for o in outs] == [3, 3]  # base + 2 grid crops for both shapes
    assert [sum(len(k) for k in o.kept) for o in outs] == [160, 160]
    outs = adapter.generate(imgs, QUESTIONS[:2], make_method("fastv"), 320, max_new_tokens=2)
    assert all(round(o.cost.visual_tokens_layer_avg) == 320 for o in outs)


def test_llava_next_flowcut_runs_an_images_crops_as_one_batch(monkeypatch) -> None:
    from flowcut.models import llava

    from .conftest import get_adapter

    adapter = get_adapter("llava_next")
    batches: list[int] = []
    real = llava.run_clip

    def spy(vm, pixels, *args, **kwargs):  # noqa: ANN001, ANN202
        batches.append(pixels.shape[0])
        return real(vm, pixels, *args, **kwargs)

    monkeypatch.setattr(llava, "run_clip", spy)
    imgs = [make_image(7, (672, 336)), make_image(8, (672, 336))]
    outs = adapter.generate(imgs, QUESTIONS[:2], make_method("flowcut"), 159, max_new_tokens=2)
    # 3 crops each, shares 53/53/53: one tower pass per image, never one mixing the two images
    assert [len(o.kept) for o in outs] == [3, 3]
    assert batches == [3, 3]


def test_llava_original_positions_match_the_full_prompt_with_the_dropped_patches_masked(images: list) -> None:
    from flowcut.models import load

    adapter = load("tiny-llava")
    adapter.positions = "original"
    outs, logits = adapter.generate(images[:1], QUESTIONS[:1], make_method("random", seed=3), BUDGET,
                                    max_new_tokens=1, return_logits=True)  # fmt: skip
    kept = torch.tensor(outs[0].kept[0])
    assert len(kept) == BUDGET and outs[0].cost.visual_tokens_llm_input == BUDGET
    # the reference: the unmodified model on the whole prompt, the other patches masked out,
    # every token at its own position (so the kept ones sit where the image put them)
    n = adapter.visual_tokens(images[0])
    ids = torch.tensor([adapter.prompt_ids(QUESTIONS[0], n)])
    slots = (ids[0] == adapter.image_token_id).nonzero().flatten()
    mask = torch.ones_like(ids)
    mask[0, slots] = 0
    mask[0, slots[kept]] = 1
    pix = adapter.processor.image_processor(images[:1], return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        ref = adapter.model(input_ids=ids, pixel_values=pix, attention_mask=mask,
                            position_ids=torch.arange(ids.shape[1])[None]).logits[0, -1]  # fmt: skip
    torch.testing.assert_close(logits[0].float(), ref.float(), atol=1e-4, rtol=1e-4)
    adapter.positions = "repack"  # and re-packed positions are a different input
    _, packed = adapter.generate(images[:1], QUESTIONS[:1], make_method("random", seed=3), BUDGET,
                                 max_new_tokens=1, return_logits=True)  # fmt: skip
    assert not torch.allclose(packed[0].float(), ref.float(), atol=1e-4, rtol=1e-4)


def test_llava_original_positions_refuse_a_method_that_merges_tokens(images: list) -> None:
    from flowcut.models import load

    adapter = load("tiny-llava")
    adapter.positions = "original"
    with pytest.raises(FlowcutError, match="positions"):
        adapter.generate(images[:1], QUESTIONS[:1], make_method("visionzip"), BUDGET, max_new_tokens=1)
    adapter.positions = "orignal"  # a typo is an error, not a silent re-pack
    with pytest.raises(FlowcutError, match="positions"):
        adapter.generate(images[:1], QUESTIONS[:1], make_method("random"), BUDGET, max_new_tokens=1)


@pytest.mark.parametrize("release", ["10%", "25%"])
def test_vflowopt_llm_stages_keep_the_vision_stage_most_important(
    adapter: VLMAdapter, images: list, release: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the reference's generation path: the LLM cuts rank by the vision importance map again.

    One image, one crop (LLaVA-NeXT's crop bookkeeping is covered by ``Prepared.vision_scores``'s test).
    """
    from flowcut.methods.vflowopt import VFlowOpt

    if adapter.model_type == "llava_next":
        pytest.skip("several crops")
    seen = []
    select = VFlowOpt.select

    def recording(self, trace, budget):
        seen.append(select(self, trace, budget))
        return seen[-1]

    monkeypatch.setattr(VFlowOpt, "select", recording)
    budget = BUDGETS[adapter.model_type]
    method = make_method("vflowopt", budget_mode="after_prune", release=release)
    out = adapter.generate(images[:1], QUESTIONS[:1], method, budget, max_new_tokens=2)[0]
    (sel,) = seen
    vision, importance = sel.indices[0].cpu(), sel.importance[0].cpu()
    survivors = out.kept[0]
    assert len(survivors) == budget and set(survivors) <= set(vision.tolist())
    dropped = sorted(set(vision.tolist()) - set(survivors))
    assert dropped, "the LLM stage cut nothing"
    # nothing the LLM stages dropped outranks anything they kept (recycled tokens carry their anchor's)
    assert importance[dropped].max() <= importance[survivors].min()


def test_prepared_vision_scores_follow_the_labels() -> None:
    """Two crops of 4 patches, a newline (-1) in the prompt, left padding: scores land by label."""
    from flowcut.models.base import Prepared

    visual = torch.tensor([[False, True, True, True, True, False], [False, False, True, True, False, False]])
    prep = Prepared(inputs_embeds=torch.zeros(2, 6, 1), attention_mask=torch.ones(2, 6, dtype=torch.long),
                    visual=visual, kept=[], grids=[], labels=[torch.tensor([1, -1, 6, 7]), torch.tensor([3, 0])],
                    patches_per_crop=4)  # fmt: skip
    assert prep.vision_scores() is None  # no importance from the method: the plumbing passes none
    prep.patch_scores = [torch.arange(8.0) / 10, torch.tensor([0.5, 0.1, 0.2, 0.9])]
    expected = torch.tensor([[0, 0.1, float("inf"), 0.6, 0.7, 0], [0, 0, 0.9, 0.5, 0, 0]])
    assert torch.allclose(prep.vision_scores(), expected)


@pytest.mark.parametrize("positions", ["contiguous", "original"])
def test_llm_cuts_renumber_positions_when_the_method_asks(
    adapter: VLMAdapter, images: list, positions: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PDrop's and SparseVLM v1.0's references renumber the kept tokens without gaps after a cut,
    and a decoded token's position at a layer drops by the tokens that layer lost; FastV keeps them."""
    from flowcut.models.llm_prune import DecoderPruner

    seen = []
    pre = DecoderPruner._pre

    def recording(self, i, args, kwargs):
        args, kw = pre(self, i, args, kwargs)
        seen.append((i, kw["position_ids"].clone(), kw["position_embeddings"][0].clone(), self))
        return args, kw

    monkeypatch.setattr(DecoderPruner, "_pre", recording)
    method = make_method("pdrop", positions=positions, budget_mode="after_prune")
    adapter.generate(images[:1], QUESTIONS[:1], method, BUDGETS[adapter.model_type], max_new_tokens=3)
    pruner = seen[0][3]
    first_cut = min(pruner.stages)
    renumbered = positions == "contiguous" and adapter.rope_1d  # Qwen2-VL keeps its multimodal ids
    n_prompt, decoded, checked = pruner.prompt_len, {}, 0
    for i, pos, cos, _ in seen:
        if pos.dim() != 2:  # Qwen2-VL's [3, B, P] multimodal ids: never renumbered
            assert not adapter.rope_1d
            continue
        dropped = n_prompt - pruner.layer_keep[i].shape[1]
        if pos.shape[1] > 1:  # prefill: the tokens this layer runs on
            expected = torch.arange(pos.shape[1]) if renumbered else pruner.layer_keep[i][0].cpu()
        else:  # a decoded token: its logical position counts every prompt token
            decoded[i] = decoded.get(i, 0) + 1
            logical = n_prompt + decoded[i] - 1
            expected = torch.tensor([logical - dropped if renumbered else logical])
        assert torch.equal(pos[0].cpu(), expected), (i, pos, expected)
        if renumbered and i >= first_cut:
            assert torch.allclose(cos, adapter.text_model.rotary_emb(cos, pos)[0]), "rotary for the new positions"
            checked += 1
    assert checked or not renumbered


def test_costs_are_the_samples_own_batched_or_alone(adapter: VLMAdapter, images: list) -> None:
    """KV bytes and FLOPs count a sample's own tokens: not the batch's padding, nor the tokens its
    batch-mates go on generating after its EOS."""
    budget, method = BUDGETS[adapter.model_type], make_method("fastv")
    batch = adapter.generate(images[:2], QUESTIONS[:2], method, budget, max_new_tokens=4)
    for i in range(2):
        (alone,) = adapter.generate(images[i : i + 1], QUESTIONS[i : i + 1], method, budget, max_new_tokens=4)
        assert batch[i].text == alone.text
        assert batch[i].cost.kv_cache_bytes == alone.cost.kv_cache_bytes
        assert batch[i].cost.flops == pytest.approx(alone.cost.flops)


def test_unpruned_kv_bytes_by_hand(images: list) -> None:
    """One sample, no pruning: every layer caches the whole prompt and all answer tokens but the last."""
    adapter = get_adapter("llava")
    budget = adapter.visual_tokens(images[0])
    (one,) = adapter.generate(
        images[:1], QUESTIONS[:1], make_method("none"), budget, max_new_tokens=4, min_new_tokens=4
    )
    cfg = adapter.text_model.config
    prompt = len(adapter.prompt_ids(QUESTIONS[0], budget))
    head_dim = getattr(cfg, "head_dim", cfg.hidden_size // cfg.num_attention_heads)
    per_token = 2 * cfg.num_key_value_heads * head_dim * adapter.model.dtype.itemsize
    assert one.cost.kv_cache_bytes == cfg.num_hidden_layers * (prompt + 3) * per_token


def test_a_per_image_methods_tower_flops_are_each_images_own(images: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """FlowCut prunes each image on its own schedule; its tower FLOPs are each image's, not the batch mean."""
    import flowcut.models.llava as llava_module
    from flowcut.measure import vit_layer_flops

    adapter, real, runs = get_adapter("llava"), llava_module.run_clip, []

    def second_prunes_less(*args, **kwargs):
        res = real(*args, **kwargs)
        runs.append(list(res.layer_tokens))
        if len(runs) == 2:  # the second image of the batch kept 100 more tokens in every layer
            res.layer_tokens = [n + 100 for n in res.layer_tokens]
        return res

    monkeypatch.setattr(llava_module, "run_clip", second_prunes_less)
    outs = adapter.generate([images[0], images[0]], QUESTIONS[:1] * 2, make_method("flowcut"), 64, max_new_tokens=1)
    vc = adapter.model.config.vision_config
    extra = sum(vit_layer_flops(n + 100, vc.hidden_size, vc.intermediate_size)
                - vit_layer_flops(n, vc.hidden_size, vc.intermediate_size) for n in runs[1])  # fmt: skip
    assert outs[1].cost.prefill_flops - outs[0].cost.prefill_flops == pytest.approx(extra)
