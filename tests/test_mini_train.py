"""The mini LLaVA's training script: the background curriculum, the batches it builds, a smoke run."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import typer
from transformers import CLIPVisionConfig, CLIPVisionModel, LlavaForConditionalGeneration

from flowcut.errors import FlowcutError
from flowcut.mini import clip as clip_module
from flowcut.mini import train
from flowcut.mini.clip import Budget
from flowcut.mini.config import MiniConfig
from flowcut.mini.tokenizer import train_tokenizer

CFG = MiniConfig()


@pytest.fixture(scope="module")
def model_and_tok():
    tok = train_tokenizer(train.corpus(8), CFG.vocab_size)
    vision = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            image_size=CFG.image_size, patch_size=CFG.patch_size,
        )
    )  # fmt: skip
    return train.build_llava(CFG, tok, vision).eval(), tok


def test_split_punctuation_keeps_newlines_and_punctuation_out_of_words() -> None:
    # a BPE merging across them made "red\nB." one token: option A's value fused with B's letter
    prompt = "What colour is the circle at the top left?\nA. red\nB. blue\nAnswer with the option's letter."
    for split in (True, False):
        tok = train_tokenizer(train.corpus(8), CFG.vocab_size, split_punctuation=split)
        ids = tok(prompt).input_ids
        pieces = tok.convert_ids_to_tokens(ids)
        marks = [p for p in pieces if set(p) & set("\n?.'")]
        assert (marks == ["?", "\n", ".", "\n", ".", "\n", "'", "."]) == split, marks
        assert ("▁red" in pieces and "B" in pieces) == split
        assert tok.decode(ids, skip_special_tokens=True) == prompt


def test_the_default_tokenizer_is_the_shipped_checkpoints() -> None:
    """``MiniConfig``'s defaults are the shipped recipe: the script's tokenizer is the checkpoint's, merge for merge."""
    shipped = json.loads((Path(train.__file__).parent / "checkpoint" / "tokenizer.json").read_text())
    ours = json.loads(train_tokenizer(train.corpus(2000), MiniConfig().vocab_size).backend_tokenizer.to_str())
    for key in ("normalizer", "pre_tokenizer", "decoder"):
        assert ours[key] == shipped[key], key
    assert ours["model"]["vocab"] == shipped["model"]["vocab"] and ours["model"]["merges"] == shipped["model"]["merges"]


def test_keep_share_grows_to_all_patches_and_stays() -> None:
    shares = [train.keep_share(f / 100, 0.03, 0.6) for f in range(101)]
    assert shares[0] == pytest.approx(0.03)
    assert all(a <= b for a, b in zip(shares, shares[1:], strict=False))
    assert all(s == 1.0 for s in shares[60:])
    assert shares[59] < 1.0


def test_keep_share_holds_at_the_start_share_then_ramps() -> None:
    assert [train.keep_share(f, 0.0, 0.7, 0.35) for f in (0.0, 0.2, 0.35)] == [0.0, 0.0, 0.0]
    assert train.keep_share(0.525, 0.0, 0.7, 0.35) == pytest.approx(0.5)  # halfway up the ramp
    assert train.keep_share(0.7, 0.0, 0.7, 0.35) == 1.0


def test_basic_questions_are_answered_by_the_scene() -> None:
    import random

    from flowcut.tasks.suite.scene import make_scene

    answers: dict[str, set[str]] = {}
    for seed in range(40):
        scene = make_scene(seed)
        colours, shapes = {o.colour for o in scene.objects}, {o.shape for o in scene.objects}
        places = {o.where: o for o in scene.objects}
        for q, a in train.basic_qa(scene, random.Random(seed)):
            words = q.split("\n")[0].rstrip("?").split()
            if q.startswith("Is there a") and words[4] == "object":
                assert a == ("yes" if words[3] in colours else "no")
            elif q.startswith("Is there a"):
                assert a == ("yes" if words[3] in shapes else "no")
            else:
                obj = places[" ".join(words[-2:])]
                assert a == (obj.colour if q.startswith("What colour") else obj.shape)
            answers.setdefault(" ".join(words[:2] + words[4:5]), set()).add(a)
    assert len(answers) == 4 and all(len(v) >= 2 for v in answers.values())  # yes and no; several colours, shapes


def test_option_lookup_answers_the_letter_of_the_named_value() -> None:
    import random

    letters: set[str] = set()
    for seed in range(60):
        ((q, a),) = train.option_qa(random.Random(seed))
        head, *options, suffix = q.split("\n")
        value = head.removeprefix("Which option says ").removesuffix("?")
        shown = dict(o.split(". ", 1) for o in options)
        assert list(shown) == ["A", "B", "C", "D"] and len(set(shown.values())) == 4
        assert shown[a] == value and suffix.startswith("Answer with the option's letter")
        letters.add(a)
    assert letters == {"A", "B", "C", "D"}


def test_place_questions_are_answered_by_the_scene() -> None:
    import random

    from flowcut.tasks.suite.scene import make_scene

    seen: dict[str, set[str]] = {}
    for seed in range(60):
        scene = make_scene(seed)
        by_name = {f"{o.colour} {o.shape}": o for o in scene.objects}
        for q, a in train.place_qa(scene, random.Random(seed)):
            q = q.split("\n")[0]
            if q.startswith("Which row"):
                kind, want = "row", by_name[q.split("the ")[1].removesuffix(" in?")].where.split()[0]
            elif q.startswith("Which column"):
                kind, want = "column", by_name[q.split("the ")[1].removesuffix(" in?")].where.split()[1]
            elif q.startswith("Where is the"):
                colour = q.split()[3]
                (obj,) = [o for o in scene.objects if o.colour == colour]  # asked only of a unique colour
                kind, want = "where", obj.where
            else:
                place = q.removeprefix("What is at the ").removesuffix("?")
                hits = [n for n, o in by_name.items() if o.where == place]
                kind, want = "at", hits[0] if hits else "nothing"
            assert a == want, (seed, q, a)
            seen.setdefault(kind, set()).add(a)
    assert set(seen) == {"row", "column", "where", "at"}
    assert len(seen["row"]) == 3 and len(seen["column"]) == 3 and "nothing" in seen["at"] and len(seen["at"]) > 3


def test_place_questions_join_the_dialogues_only_when_set() -> None:
    import random

    from flowcut.tasks.suite.scene import make_scene

    seeds = list(range(6))
    scenes = [make_scene(s) for s in seeds]
    plain = train.make_dialogues(seeds, scenes, dataclasses.replace(CFG, place_questions=False), random.Random(1))
    assert not any("Which row" in q for _, turns in plain for q, _ in turns)
    more = train.make_dialogues(seeds, scenes, dataclasses.replace(CFG, place_questions=True), random.Random(1))
    asked = sum(len(t) for _, t in more) - sum(len(t) for _, t in plain)
    assert asked >= 3 * len(seeds)  # row, column and the reverse lookup at least, per scene


def test_clip_batches_group_a_scene_with_its_edits(model_and_tok) -> None:
    import dataclasses

    _, tok = model_and_tok
    cfg = dataclasses.replace(CFG, clip_batch=8, clip_group=4)
    pix, ids, mask = next(train.clip_batches(cfg, train.image_processor(cfg), tok))
    assert pix.shape == (8, 3, 336, 336) and ids.shape[0] == mask.shape[0] == 8
    captions = tok.batch_decode(ids, skip_special_tokens=True)
    # every image of a group differs from the first in a few object or text pixels, never everywhere
    for start in (0, 4):
        changed = [(pix[start + k] != pix[start]).any(0).float().mean().item() for k in range(1, 4)]
        assert all(0 < c < 0.25 for c in changed), changed
    assert (pix[4] != pix[0]).any(0).float().mean() > 0.5  # the next group is another scene
    assert len(set(captions)) == 8
    plain = next(train.clip_batches(dataclasses.replace(cfg, clip_group=1), train.image_processor(cfg), tok))[0]
    assert all((plain[k] != plain[0]).any(0).float().mean() > 0.5 for k in range(1, 8))  # 8 distinct scenes


def test_edit_group_with_text_edits_only_changes_the_word_alone() -> None:
    import random

    from flowcut.tasks.suite.scene import make_scene

    cfg = CFG.with_overrides(["clip_group=4", "clip_edits=text"])
    rng = random.Random(0)
    with_text = next(s for s in range(100) if make_scene(s).text is not None)
    without = next(s for s in range(100) if make_scene(s).text is None)
    group = train.edit_group(make_scene(with_text), cfg, rng)
    assert len(group) == 4 and len({sc.text for sc in group}) == 4  # four words, no repeat
    assert all(sc.objects == group[0].objects for sc in group)  # nothing but the word changed
    assert train.edit_group(make_scene(without), cfg, rng) == [make_scene(without)]  # no text: alone
    mixed = train.edit_group(make_scene(with_text), CFG.with_overrides(["clip_group=6"]), rng)
    assert len(mixed) >= 3 and len({repr(sc) for sc in mixed}) == len(mixed)
    state = rng.getstate()
    assert train.edit_group(make_scene(with_text), CFG, rng) == [make_scene(with_text)]
    assert rng.getstate() == state  # clip_group 1 draws nothing: the default run's stream is unchanged
    with pytest.raises(ValueError, match="clip_edits: unknown edit 'word'"):
        CFG.with_overrides(["clip_edits=text,word"])


def test_build_llava_scales_the_lm_init_but_keeps_the_vit(model_and_tok) -> None:
    model, _ = model_and_tok
    std = model.model.language_model.layers[0].self_attn.q_proj.weight.std().item()
    assert std == pytest.approx(CFG.init_std, rel=0.1)
    assert model.config.vision_config.hidden_size == 32  # the tower handed in, not a new one


def _batch(model, tok, keep: list[int], keep_bg: float):
    feats = torch.randn(1, 576, model.config.vision_config.hidden_size)
    masks = torch.zeros(1, 576, dtype=torch.bool)
    masks[0, keep] = True
    turns = [("Is there a red circle in the image?", "yes")]
    with torch.no_grad():
        out = train.dialogue_batch(model, tok, feats, masks, [(0, turns)], keep_bg, torch.Generator().manual_seed(0))
    ids, labels = train.encode_dialogue(tok, turns, 576, model.config.image_token_id)
    return feats, out, ids, labels


def test_dialogue_batch_with_every_patch_is_the_plain_llava_sequence(model_and_tok) -> None:
    model, tok = model_and_tok
    feats, (emb, pos, lab, att), ids, labels = _batch(model, tok, list(range(576)), 0.0)
    assert pos[0].tolist() == list(range(len(ids)))
    assert lab[0].tolist() == labels
    assert bool(att.all())
    image = torch.tensor(ids) == model.config.image_token_id
    with torch.no_grad():
        expected = model.model.multi_modal_projector(feats[0])
        text = model.get_input_embeddings()(torch.tensor(ids))
    torch.testing.assert_close(emb[0, image], expected)
    torch.testing.assert_close(emb[0, ~image], text[~image])


def test_dialogue_batch_drops_background_but_keeps_positions(model_and_tok) -> None:
    model, tok = model_and_tok
    keep = [5, 6, 100, 575]
    _, (emb, pos, lab, _), ids, labels = _batch(model, tok, keep, 0.0)
    at = ids.index(model.config.image_token_id)
    assert emb.shape[1] == len(ids) - 576 + len(keep)
    assert pos[0, at : at + len(keep)].tolist() == [at + k for k in keep]
    # text after the image keeps the positions it has in the full sequence
    assert pos[0, at + len(keep) :].tolist() == list(range(at + 576, len(ids)))
    assert lab[0, at : at + len(keep)].eq(-100).all()
    assert lab[0, at + len(keep) :].tolist() == labels[at + 576 :]


def test_dialogue_batch_project_maps_the_image_slots(model_and_tok) -> None:
    model, tok = model_and_tok
    width = model.config.text_config.hidden_size
    tokens, masks = torch.randn(1, 576, width), torch.zeros(1, 576, dtype=torch.bool)
    masks[0, [3, 40]] = True
    turns = [("Is there a red circle in the image?", "yes")]
    emb, _, _, _ = train.dialogue_batch(model, tok, tokens, masks, [(0, turns)], 0.0, torch.Generator(),
                                        torch.nn.Identity())  # fmt: skip
    at = train.encode_dialogue(tok, turns, 1, model.config.image_token_id)[0].index(model.config.image_token_id)
    torch.testing.assert_close(emb[0, at : at + 2], tokens[0, [3, 40]])  # taken as they are, no projector


@pytest.mark.parametrize("turns", [12, 3, 1])
def test_make_dialogues_asks_every_question_once_in_chunks_of_at_most_turns(turns: int) -> None:
    import random

    from flowcut.tasks.suite.scene import make_scene

    seeds = list(range(30))
    scenes = [make_scene(s) for s in seeds]
    cfg = dataclasses.replace(CFG, basic_questions=False, place_questions=False, turns=turns)
    dialogues = train.make_dialogues(seeds, scenes, cfg, random.Random(0))
    for i, s in enumerate(seeds):
        asked = sorted(t for j, turns in dialogues if j == i for t in turns)
        assert asked == sorted(train.qa_for_scene(s, None, scenes[i], 0) + train.qa_for_scene(s, None, scenes[i], 1))
    assert all(1 <= len(turns) <= cfg.turns for _, turns in dialogues)
    assert {len(turns) for _, turns in dialogues} & {1, 2, 3}  # short ones, as evaluation asks one question


def test_focus_dialogues_ask_one_task_alone_one_question_a_sequence() -> None:
    from flowcut.tasks.suite.scene import make_scene

    seeds = list(range(12))
    scenes = [make_scene(s) for s in seeds]
    rows = train.focus_dialogues(seeds, scenes, "mcq")
    assert len(rows) == 4 * len(seeds) and all(len(turns) == 1 for _, turns in rows)
    assert {answer for _, [(_, answer)] in rows} <= set("ABCD")
    assert all("A." in prompt for _, [(prompt, _)] in rows)
    for i in range(len(seeds)):  # the four variants are not one question asked four times
        assert len({turns[0] for j, turns in rows if j == i}) > 1
    with_text = [i for i, sc in enumerate(scenes) if sc.text is not None]
    assert {j for j, _ in train.focus_dialogues(seeds, scenes, "textvqa")} == set(with_text)


def test_lm_rope_theta_reaches_the_language_model(model_and_tok) -> None:
    model, tok = model_and_tok
    assert model.config.text_config.rope_parameters["rope_theta"] == CFG.lm_rope_theta
    wide = train.build_llava(CFG.with_overrides(["lm_rope_theta=1000000"]), tok, model.model.vision_tower)
    assert wide.config.text_config.rope_parameters["rope_theta"] == 1e6


def test_smoke_run_saves_a_checkpoint_that_loads(tmp_path) -> None:
    train.main(out=tmp_path, device="cpu", scale=0.002)
    model = LlavaForConditionalGeneration.from_pretrained(tmp_path)
    assert model.config.vision_config.image_size == 336
    assert model.config.vision_config.patch_size == 14
    stats = json.loads((tmp_path / "training.json").read_text())["stats"]
    assert {"clip", "text", "caption", "instruct", "total_minutes"} <= set(stats) and stats["device"] == "cpu"

    # a second run that takes stage (a) from the first keeps its ViT (all but the layers the
    # instruction stage tunes) and its stage-(a) record
    again = tmp_path / "again"
    train.main(
        out=again,
        device="cpu",
        scale=0.002,
        vision_from=tmp_path,
        set_=[
            "lm_lr=0.002",
            "text_steps=1000",
            "caption_steps=500",
            "instruct_steps=1500",
            "caption_qa=false",
            "caption_lm=true",
            "focus_steps=1000",
        ],
    )
    first, second = model, LlavaForConditionalGeneration.from_pretrained(again)
    tuned = {f".layers.{k}." for k in range(CFG.vit_tune_from or 0, CFG.vit_layers - 1)} if CFG.vit_tune_from else set()
    kept = 0
    for (name, a), (_, b) in zip(first.model.vision_tower.state_dict().items(),
                                 second.model.vision_tower.state_dict().items(), strict=True):  # fmt: skip
        if not any(t in name for t in tuned):
            torch.testing.assert_close(a, b, msg=name)
            kept += 1
    assert kept >= 3  # at least the embeddings and pre-norm were compared
    clip = json.loads((again / "training.json").read_text())["stats"]["clip"]
    assert clip["from"] == str(tmp_path) and clip["steps"] == stats["clip"]["steps"]
    record = json.loads((again / "training.json").read_text())
    assert record["config"]["lm_lr"] == 0.002
    # step budgets scale like minutes: 1000, 500 and 1500 steps at scale 0.002 are 2, 1 and 3
    assert [record["stats"][s]["steps"] for s in ("text", "caption", "instruct", "focus")] == [2, 1, 3, 2]
    assert "focus" not in stats  # off unless asked for
    assert "caption stage on the" not in (again / "train.log").read_text()
    assert "caption stage on the" in (tmp_path / "train.log").read_text()  # the default since 2026-12-02

    # a warm start: the ViT of the first run with fixed position codes in place of its learned
    # ones, its projector and LM as they were (no LM step here, so they must be equal)
    warm = tmp_path / "warm"
    train.main(out=warm, device="cpu", scale=0.002, vision_from=tmp_path, lm_from=tmp_path,
               set_=["vit_pos_sincos=1.0", "text_steps=0", "caption_steps=0", "instruct_steps=0"])  # fmt: skip
    third = LlavaForConditionalGeneration.from_pretrained(warm).state_dict()
    for name, a in first.state_dict().items():
        b = third[name]
        if name.endswith("position_embedding.weight"):
            torch.testing.assert_close(b[1:], train.sincos_2d(24, CFG.vit_width))
        else:
            torch.testing.assert_close(a, b, msg=name)
    warm_stats = json.loads((warm / "training.json").read_text())["stats"]
    assert warm_stats["lm_from"] == str(tmp_path)
    # no image stage has a budget, so no scene was rendered for a feature cache
    assert "cache_seconds" not in warm_stats and "caption" not in warm_stats
    assert "no image stage has a budget" in (warm / "train.log").read_text()

    # warm-starting from a checkpoint with another tokenizer, or from no checkpoint, is refused
    other_tok = train_tokenizer(train.corpus(8), 300)
    other_model = train.build_llava(CFG, other_tok, train.build_vision(CFG))
    with pytest.raises(FlowcutError, match="tokenizer differs"):
        train.load_lm(other_model, other_tok, tmp_path)
    with pytest.raises(typer.BadParameter, match="--lm-from .*no checkpoint"):
        train.main(out=tmp_path / "x", device="cpu", scale=0.002, lm_from=tmp_path / "missing")


@pytest.mark.parametrize(("name", "says"), [
    ("tpu", "expected cpu, cuda or cuda:N"), ("gpu0", "expected cpu, cuda or cuda:N"), ("meta", "expected cpu"),
])  # fmt: skip
def test_train_device_refuses_unknown_names(name, says) -> None:
    with pytest.raises(typer.BadParameter, match=f"--device '{name}': {says}"):
        train.train_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_training_on_cuda_without_a_gpu_is_refused_before_any_work(tmp_path) -> None:
    with pytest.raises(typer.BadParameter, match="no CUDA device"):
        train.main(out=tmp_path / "x", device="cuda", scale=0.002)
    assert not (tmp_path / "x").exists()


def test_config_overrides_parse_by_field_type() -> None:
    cfg = CFG.with_overrides(["vit_pos_sincos=none", "vit_tune_from=2", "basic_questions=false", "vit_pos_std=0.5"])
    assert (cfg.vit_pos_sincos, cfg.vit_tune_from, cfg.basic_questions, cfg.vit_pos_std) == (None, 2, False, 0.5)
    assert CFG.vit_pos_sincos == 1.0  # the default is untouched: the config is frozen


@pytest.mark.parametrize(("pair", "names"), [
    ("bogus=1", "bogus"), ("lm_lr", "lm_lr"), ("lm_batch=2.5", "lm_batch"),
    ("basic_questions=maybe", "basic_questions"), ("lm_lr=none", "lm_lr"), ("turns=0", "turns"),
    ("focus_task=vqav2", "focus_task: unknown task 'vqav2'; known: pope"),
])  # fmt: skip
def test_config_overrides_reject_bad_pairs_naming_the_field(pair, names) -> None:
    with pytest.raises(ValueError, match=names):
        CFG.with_overrides([pair])


def test_sincos_codes_are_unit_scale_and_tell_every_patch_apart() -> None:
    codes = train.sincos_2d(24, 128)
    assert codes.shape == (576, 128)
    torch.testing.assert_close(codes.std(0), torch.ones(128), atol=1e-3, rtol=0)
    assert torch.cdist(codes, codes).add(torch.eye(576) * 1e9).min() > 0.1  # no two patches share a code


def test_vision_with_sincos_positions_keeps_them_fixed() -> None:
    cfg = dataclasses.replace(CFG, vit_width=32, vit_mlp=64, vit_layers=2, vit_heads=2, vit_pos_sincos=2.0)
    emb = train.build_vision(cfg).embeddings.position_embedding
    assert not emb.weight.requires_grad  # stage (a) cannot train it away
    assert emb.weight[0].abs().sum() == 0  # the [CLS] slot has no position
    assert emb.weight[1:].std().item() == pytest.approx(2.0, rel=0.01)


def test_top_features_finish_a_lower_cache_to_the_feature_layer(model_and_tok) -> None:
    model, _ = model_and_tok
    proc = train.image_processor(CFG)
    direct, _ = train.cache_features(model, proc, [0, 1])
    lower, _ = train.cache_features(model, proc, [0, 1], first=0)
    assert lower.shape == (2, 577, 32)
    with torch.no_grad():
        torch.testing.assert_close(train.top_features(model, lower, 0), direct.float(), atol=2e-2, rtol=0)
        torch.testing.assert_close(train.top_features(model, direct, None), direct.float())


def test_lm_stage_tunes_the_vit_layers_above_the_cache_only(model_and_tok) -> None:
    model, tok = copy.deepcopy(model_and_tok[0]), model_and_tok[1]
    cfg = dataclasses.replace(CFG, vit_tune_from=0, vit_lr=1e-2, lm_batch=2)
    before = {k: v.clone() for k, v in model.model.vision_tower.state_dict().items()}
    feats, scenes = train.cache_features(model, train.image_processor(CFG), [0, 1], first=0)
    masks = torch.ones(2, 576, dtype=torch.bool)
    dialogues = [(i, [("What colour is the object?", "red")]) for i in range(2)]
    stats = train.lm_stage(
        model, tok, feats, masks, dialogues, Budget(60.0, steps=3), cfg, "t", lambda _: None, tune_vit=True
    )
    assert stats["steps"] == 3  # a step budget runs exactly that many, however fast the machine
    after = model.model.vision_tower.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # 2 layers, features from the 1st: only layer 0 is above the cache and below the feature layer
    assert changed and all(".layers.0." in k for k in changed)
    assert not any(p.requires_grad for p in model.model.vision_tower.parameters())


def test_a_budget_of_nothing_switches_the_stage_off() -> None:
    assert Budget(0.0).frac(0, start=0.0) == 1.0
    assert Budget(5.0, steps=0).frac(0, start=0.0) == 1.0


def test_budget_follows_steps_when_given_else_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Budget(1.0, steps=200).frac(50, start=0.0) == 0.25  # the clock plays no part
    monkeypatch.setattr(clip_module.time, "time", lambda: 130.0)
    assert Budget(1.0).frac(50, start=100.0) == 0.5  # 30 s of a 1-minute stage


def test_lm_beta2_reaches_the_lm_stages_optimiser(model_and_tok, monkeypatch: pytest.MonkeyPatch) -> None:
    from flowcut.mini import loop
    from flowcut.mini.text_stage import text_stage

    made = []

    class Recording(torch.optim.AdamW):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(loop.torch.optim, "AdamW", Recording)
    model, tok = copy.deepcopy(model_and_tok[0]), model_and_tok[1]
    cfg = dataclasses.replace(CFG, lm_beta2=0.95, lm_batch=2, text_batch=2)
    feats, _ = train.cache_features(model, train.image_processor(CFG), [0, 1])
    dialogues = [(i, [("What colour is the object?", "red")]) for i in range(2)]
    masks = torch.ones(2, 576, dtype=torch.bool)
    train.lm_stage(model, tok, feats, masks, dialogues, Budget(60.0, steps=1), cfg, "t", lambda _: None)
    scenes = [train.make_scene(s) for s in (0, 1)]
    text_stage(model, tok, scenes, dialogues, Budget(60.0, steps=1), cfg, lambda _: None)
    assert [g["betas"] for opt in made for g in opt.param_groups] == [(0.9, 0.95), (0.9, 0.95)]


GPU_TRAIN = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_train.sh"


def run_gpu_train(out: Path, seeds: str, *args: str) -> subprocess.CompletedProcess:
    """benchmarks/gpu_train.sh on the CPU, with this interpreter, into ``out``."""
    env = os.environ | {"DEVICE": "cpu", "OUT": str(out), "PYTHON": sys.executable, "SEEDS": seeds}
    return subprocess.run(["bash", str(GPU_TRAIN), *args], env=env, capture_output=True, text=True)


def test_gpu_train_script_sets_every_lm_stage_for_each_seed(tmp_path) -> None:
    # MiniConfig's defaults are the CPU recipe (63 LM minutes): a GPU call that left one stage at
    # its default would be killed by the script's own timeout before it saved anything
    limit_s = int(re.search(r'timeout "\$\{LIMIT_S:-(\d+)\}"', GPU_TRAIN.read_text()).group(1))
    done = run_gpu_train(tmp_path, "0 3", "--scale", "0.002")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "== seed 0" in done.stdout and "== seed 3" in done.stdout
    for seed in (0, 3):
        record = json.loads((tmp_path / f"ckpt_s{seed}" / "training.json").read_text())
        minutes = sum(record["config"][f"{s}_minutes"] for s in ("text", "caption", "instruct", "focus"))
        cache_allowance_s = 150  # rendering 6,000 scenes for the feature cache, ~2 min on a CPU core
        assert minutes * 60 + cache_allowance_s < limit_s, (minutes, limit_s)
        assert record["config"]["seed"] == seed
        assert record["stats"]["clip"]["from"] == "flowcut/mini/checkpoint"
        assert {"text", "caption", "instruct"} <= set(record["stats"])
        # the script shares `nproc`, which counts the CPUs this process may run on
        assert record["stats"]["cpu_threads"] == max(1, len(os.sched_getaffinity(0)) // 2)


def test_gpu_train_script_fails_when_a_run_fails(tmp_path) -> None:
    done = run_gpu_train(tmp_path, "0", "--set", "no_such_field=1")
    assert done.returncode != 0
    assert "no_such_field" in (tmp_path / "train_s0.txt").read_text()
