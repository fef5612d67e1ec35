"""The mini LM's text stage (scenes told in words) and the projector-only caption stage."""

from __future__ import annotations

import copy
import dataclasses
import random

import pytest
import torch
from transformers import CLIPVisionConfig, CLIPVisionModel

from flowcut.mini import train
from flowcut.mini.clip import Budget
from flowcut.mini.config import MiniConfig
from flowcut.mini.text_stage import text_batch, text_stage
from flowcut.mini.tokenizer import train_tokenizer
from flowcut.tasks.suite.scene import caption, make_scene

CFG = dataclasses.replace(MiniConfig(), lm_batch=2, text_batch=2)


@pytest.fixture(scope="module")
def model_and_tok():
    tok = train_tokenizer(train.corpus(8), CFG.vocab_size)
    vision = CLIPVisionModel(CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                              num_attention_heads=2, image_size=336, patch_size=14))  # fmt: skip
    return train.build_llava(CFG, tok, vision).eval(), tok


def test_raster_caption_lists_objects_row_by_row_and_keeps_every_fact() -> None:
    scene = next(s for s in map(make_scene, range(200)) if len(s.objects) >= 4 and s.text)
    text = caption(scene, random.Random(0), raster=True)
    at = [text.index(o.name) for o in scene.objects]
    order = sorted(range(len(scene.objects)), key=lambda k: (scene.objects[k].row, scene.objects[k].col))
    assert [at[k] for k in order] == sorted(at)
    assert all(o.where in text for o in scene.objects) and scene.text in text
    # the default order is still the rng's (the shipped recipe's captions)
    assert caption(scene, random.Random(0)) != text or len(scene.objects) == 1


def test_text_batch_puts_the_caption_where_the_image_goes_and_scores_only_answers(model_and_tok) -> None:
    model, tok = model_and_tok
    scenes = [make_scene(3), make_scene(4)]
    chunk = [(1, [("What colour is the object at the top left?", "red"), ("Is there a square?", "no")])]
    with torch.no_grad():
        emb, pos, lab, att = text_batch(model, tok, scenes, chunk, random.Random(7))
    words = tok(" " + caption(scenes[1], random.Random(7), raster=True), add_special_tokens=False).input_ids
    ids, labels = train.encode_dialogue(tok, chunk[0][1], 1, model.config.image_token_id)
    at = ids.index(model.config.image_token_id)
    expected = ids[:at] + words + ids[at + 1 :]
    with torch.no_grad():
        torch.testing.assert_close(emb[0], model.get_input_embeddings()(torch.tensor(expected)))
    assert lab[0].tolist() == labels[:at] + [-100] * len(words) + labels[at + 1 :]
    assert pos[0].tolist() == list(range(len(expected))) and bool(att.all())
    answers = tok.decode([t for t in lab[0].tolist() if t != -100])
    assert "red" in answers and "no" in answers and "top" not in answers


def _changed(before: dict, model) -> set[str]:
    return {k.split(".")[1] if k.startswith("model.") else k.split(".")[0]
            for k, v in model.state_dict().items() if not torch.equal(before[k], v)}  # fmt: skip


def test_text_stage_trains_the_lm_alone_for_its_budget(model_and_tok) -> None:
    model, tok = copy.deepcopy(model_and_tok[0]), model_and_tok[1]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scenes = [make_scene(200_000 + i) for i in range(4)]
    rows = train.make_dialogues(list(range(200_000, 200_004)), scenes, CFG, random.Random(0))
    stats = text_stage(model, tok, scenes, rows, Budget(60.0, steps=3), CFG, lambda _: None)
    assert stats["steps"] == 3
    assert _changed(before, model) == {"language_model", "lm_head"}
    # the stages after it find every weight but the ViT's trainable again
    assert all(p.requires_grad != n.startswith("model.vision") for n, p in model.named_parameters())


def test_caption_stage_without_the_lm_trains_the_projector_alone(model_and_tok) -> None:
    model, tok = copy.deepcopy(model_and_tok[0]), model_and_tok[1]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    feats, _ = train.cache_features(model, train.image_processor(CFG), [0, 1])
    masks = torch.ones(2, 576, dtype=torch.bool)
    rows = [(i, [(train.CAPTION_Q, "a large red circle at top left.")]) for i in range(2)]
    train.lm_stage(
        model, tok, feats, masks, rows, Budget(60.0, steps=2), CFG, "caption", lambda _: None, train_lm=False
    )
    assert _changed(before, model) == {"multi_modal_projector"}
    train.lm_stage(model, tok, feats, masks, rows, Budget(60.0, steps=2), CFG, "caption", lambda _: None)
    assert _changed(before, model) == {"multi_modal_projector", "language_model", "lm_head"}


def test_text_settings_parse_and_counts_below_one_are_refused() -> None:
    cfg = MiniConfig().with_overrides(["text_minutes=10", "caption_lm=false", "text_batch=4"])
    assert (cfg.text_minutes, cfg.caption_lm, cfg.text_batch) == (10.0, False, 4)
    with pytest.raises(ValueError, match="text_scenes"):
        MiniConfig().with_overrides(["text_scenes=0"])


def test_text_turns_shortens_the_text_dialogues_only() -> None:
    cfg = MiniConfig().with_overrides(["text_turns=2"])
    told, rows = train.text_rows(cfg, 20, random.Random(0))
    assert len(told) == 20 and max(len(turns) for _, turns in rows) == 2
    # the image stages' dialogues still follow ``turns``
    seeds = list(range(20))
    long = train.make_dialogues(seeds, [make_scene(s) for s in seeds], cfg, random.Random(0))
    assert max(len(turns) for _, turns in long) > 2
    assert MiniConfig().with_overrides(["text_turns=none"]).text_turns is None
    with pytest.raises(ValueError, match="text_turns"):
        MiniConfig().with_overrides(["text_turns=0"])
