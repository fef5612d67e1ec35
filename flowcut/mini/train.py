"""Train the mini LLaVA from a seed, on the suite's train split only, in four stages.

(a) CLIP-style contrastive pre-training of the ViT on captions ([CLS] = pooled embedding);
(t) the LM alone on the suite's questions over scenes told in words (``text_stage``), as real
    LLaVAs start from a text-trained LM (``text_minutes=0`` skips it);
(b1) LLaVA stage 1: the projector alone on the instruction dialogues, LM and ViT frozen (by
     default; ``caption_lm`` trains the LM too, ``caption_qa=false`` uses captions instead);
(b2) LLaVA stage 2: projector + LM on the six task formats (multi-turn sequences, one
     question per task, as LLaVA's instruction data packs several turns per image), plus the
     training-only ``basic_qa`` and ``place_qa`` questions.
The ViT stays frozen after (a), so its features are computed once and cached.

    python -m flowcut.mini.train --out flowcut/mini/checkpoint

Runs on CPU or CUDA (``--device``); the device and the wall time of each stage are
recorded in ``training.json`` beside the weights.
"""

from __future__ import annotations

import json
import platform
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
from tqdm import tqdm
from transformers import (
    AutoTokenizer,
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from ..errors import FlowcutError
from ..tasks.suite import tasks as suite_tasks
from ..tasks.suite.scene import COLOURS, COLS, ROWS, SHAPES, Scene, caption, edit, make_scene, object_mask, render
from .clip import Budget, ClipPair, train_clip
from .config import MiniConfig
from .loop import LM_PARTS, fit, lm_group, pad_rows, train_only
from .prompts import CAPTION_Q, TEMPLATE, encode_dialogue
from .text_stage import text_stage
from .tokenizer import train_tokenizer


def image_processor(cfg: MiniConfig) -> CLIPImageProcessorPil:
    size = cfg.image_size
    return CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


def qa_for_scene(seed: int, image, scene, variant: int) -> list[tuple[str, str]]:
    """(prompt, answer) pairs of every task over one scene; ``variant`` varies the questions."""
    pairs = []
    for task, make in suite_tasks._MAKERS.items():
        if task == "textvqa" and scene.text is None:
            continue
        out = make(seed, image, scene, random.Random(f"{task}:{seed}:{variant}"))
        for s in suite_tasks.listed(out):
            pairs.append((s["prompt"], s["answer"]))
    return pairs


def corpus(n: int) -> list[str]:
    """Text to train the tokenizer on: captions, prompts and answers of train scenes."""
    lines = [TEMPLATE.format(q=CAPTION_Q)]
    rng = random.Random(0)
    for seed in range(n):
        image, scene = render(seed)
        lines.append(caption(scene, rng))
        lines += [f"{q} {a}" for q, a in qa_for_scene(seed, image, scene, 0)]
    return lines


def edit_group(base: Scene, cfg: MiniConfig, rng: random.Random) -> list[Scene]:
    """``base`` and up to ``cfg.clip_group - 1`` distinct edits of it, of the kinds in ``cfg.clip_edits``.

    Each kind once in a random order, as many rounds as a group needs. An edit that does not
    apply (no text to change) or repeats a member (two draws of one word) is skipped, so a group
    holds no two equal scenes: no false negatives. A group can come out short, down to ``base`` alone.
    """
    group = [base]
    if cfg.clip_group == 1:
        return group  # no draw: the rng stream stays the one that made the shipped checkpoint
    kinds = cfg.clip_edits.split(",")
    for kind in rng.sample(kinds, len(kinds)) * (cfg.clip_group - 1):
        if len(group) == cfg.clip_group:
            break
        if (new := edit(base, kind, rng)) is not None and new not in group:
            group.append(new)
    return group


def clip_batches(cfg: MiniConfig, proc, tok, seed: int = 100_000):
    """Endless (pixels, ids, mask) batches for stage (a), in groups of ``cfg.clip_group`` images.

    At 1 (the default, which made the shipped checkpoint) a batch is ``clip_batch`` distinct
    train scenes. Such batches are told apart by colour alone, and the ViT trained on them
    learned little else (``scripts/mini_probe.py``: colour 100%, shape 73%, cell and word at
    chance). Above 1 a group is a train scene and edits of it (``scene.edit``: one object's
    shape, colour, size or cell, two objects swapped, another word) over the same background,
    so the contrastive loss pays for shape, position, binding and reading; one 18-min run of
    it did not yet help (NOTES.md). Seeds from 100,000 on: the train range, apart from the
    scenes the LM stages cache.
    """
    rng = random.Random(1)
    while True:
        images, texts = [], []
        while len(images) < cfg.clip_batch:
            group = edit_group(make_scene(seed), cfg, rng)
            images += [render(seed, sc)[0] for sc in group]
            texts += [caption(sc, rng) for sc in group]
            seed += 1
        pix = proc(images[: cfg.clip_batch], return_tensors="pt")["pixel_values"]
        enc = tok(
            texts[: cfg.clip_batch],
            padding=True,
            truncation=True,
            max_length=96,
            return_tensors="pt",
            add_special_tokens=False,
        )
        yield pix, enc.input_ids, enc.attention_mask


def sincos_2d(grid: int, width: int, temperature: float = 100.0) -> torch.Tensor:
    """[grid * grid, width] 2D sine-cosine position codes (MAE's), raster order, unit std per dim.

    A quarter of the dims each: sin / cos of the row, sin / cos of the column, at geometric
    frequencies; temperature 100 (MAE uses 10,000 for a 14 grid) keeps most dims varying over 24.
    """
    quarter = width // 4
    omega = temperature ** (-torch.arange(quarter, dtype=torch.float32) / quarter)
    ys, xs = torch.meshgrid(
        torch.arange(grid, dtype=torch.float32), torch.arange(grid, dtype=torch.float32), indexing="ij"
    )
    ay, ax = ys.reshape(-1, 1) * omega, xs.reshape(-1, 1) * omega
    codes = torch.cat([ay.sin(), ay.cos(), ax.sin(), ax.cos()], dim=1)
    return (codes - codes.mean(0)) / codes.std(0).clamp_min(1e-3)


def build_vision(cfg: MiniConfig) -> CLIPVisionModel:
    """A fresh CLIP ViT of the config's geometry, its position embedding set as the config says."""
    vcfg = CLIPVisionConfig(
        hidden_size=cfg.vit_width,
        intermediate_size=cfg.vit_mlp,
        num_hidden_layers=cfg.vit_layers,
        num_attention_heads=cfg.vit_heads,
        image_size=cfg.image_size,
        patch_size=cfg.patch_size,
        projection_dim=128,
    )
    vision = CLIPVisionModel(vcfg)
    emb = vision.embeddings.position_embedding
    # transformers' default (0.02) leaves the position embedding 1/150 of the trained patch
    # embedding, and no patch feature says where it is (scripts/mini_probe.py: an object's cell
    # at chance); OpenAI CLIP draws it at width**-0.5, which vit_pos_std allows
    if cfg.vit_pos_std is not None:
        torch.nn.init.normal_(emb.weight, std=cfg.vit_pos_std)
    # a learned embedding at that scale still faded during stage (a) (NOTES.md); fixed codes at
    # the patch embedding's scale cannot fade, and the [CLS] slot gets none, as in MAE
    if cfg.vit_pos_sincos is not None:
        set_sincos(vision, cfg)
    return vision


def set_sincos(vision: CLIPVisionModel, cfg: MiniConfig) -> None:
    """Fixed 2D sine-cosine position codes at ``cfg.vit_pos_sincos`` in place of the learned embedding."""
    emb = vision.embeddings.position_embedding
    with torch.no_grad():
        emb.weight.zero_()
        emb.weight[1:] = cfg.vit_pos_sincos * sincos_2d(cfg.image_size // cfg.patch_size, cfg.vit_width)
    emb.weight.requires_grad_(False)


def load_lm(model: LlavaForConditionalGeneration, tok, path: Path) -> None:
    """Copy the projector, LM and head of the checkpoint at ``path`` into ``model`` (a warm start).

    Raises FlowcutError when that checkpoint's tokenizer differs: its embeddings would mean other tokens.
    """
    if AutoTokenizer.from_pretrained(path).get_vocab() != tok.get_vocab():
        raise FlowcutError(
            f"--lm-from {path}", "its tokenizer differs from this run's; a warm start needs the same one"
        )
    earlier = LlavaForConditionalGeneration.from_pretrained(path)
    for name in ("multi_modal_projector", "language_model"):
        getattr(model.model, name).load_state_dict(getattr(earlier.model, name).state_dict())
    model.lm_head.load_state_dict(earlier.lm_head.state_dict())


def build_llava(cfg: MiniConfig, tok, vision: CLIPVisionModel) -> LlavaForConditionalGeneration:
    text = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=cfg.lm_width,
        intermediate_size=cfg.lm_mlp,
        num_hidden_layers=cfg.lm_layers,
        num_attention_heads=cfg.lm_heads,
        num_key_value_heads=cfg.lm_heads,
        max_position_embeddings=1024,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.lm_rope_theta},
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=False,
    )
    config = LlavaConfig(
        vision_config=vision.config.to_dict(),
        text_config=text.to_dict(),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
    model = LlavaForConditionalGeneration(config)
    # Llama's default init (std 0.02) leaves attention logits ~0, and a 4-layer LM at that
    # scale never learned to look up the image tokens: after 45 min it still answered from
    # priors (POPE 50%). At std 0.06 the same LM answers colour questions from its image
    # tokens within 100 steps. Measured with frozen ViT features, 2-core CPU.
    for mod in (model.model.language_model, model.model.multi_modal_projector, model.lm_head):
        for sub in mod.modules():
            if isinstance(sub, torch.nn.Linear | torch.nn.Embedding):
                torch.nn.init.normal_(sub.weight, std=cfg.init_std)
    model.model.vision_tower.load_state_dict(vision.state_dict())
    return model


def vit_top(model, first: int | None) -> torch.nn.ModuleList:
    """The ViT layers from ``first`` up to the LLaVA feature layer (empty for None)."""
    tower = model.model.vision_tower
    layers = getattr(tower, "vision_model", tower).encoder.layers
    if first is None:
        return torch.nn.ModuleList()
    return layers[first : len(layers) + 1 + model.config.vision_feature_layer]


@torch.inference_mode()
def cache_features(model, proc, seeds: list[int], batch: int = 32, first: int | None = None):
    """Frozen-ViT states of the scenes (fp16) and the scenes (the images are not kept: 6,000 are ~2 GB).

    For ``first`` None: the features at the feature layer, [n, 576, D]. Otherwise the input
    of layer ``first``, [CLS] included, [n, 577, D], for ``top_features`` to finish.
    """
    tower = model.model.vision_tower
    at = model.config.vision_feature_layer if first is None else first
    feats, scenes = [], []
    for i in tqdm(range(0, len(seeds), batch), desc="cache ViT features"):
        rendered = [render(s) for s in seeds[i : i + batch]]
        pix = proc([im for im, _ in rendered], return_tensors="pt")["pixel_values"].to(tower.device)
        hs = tower(pixel_values=pix, output_hidden_states=True).hidden_states[at]
        feats.append((hs[:, 1:] if first is None else hs).half())
        scenes += [sc for _, sc in rendered]
    return torch.cat(feats), scenes


def top_features(model, cached: torch.Tensor, first: int | None) -> torch.Tensor:
    """[n, 576, D] feature-layer patches from ``cache_features`` output (runs the top layers)."""
    h = cached.float()
    if first is None:
        return h
    for layer in vit_top(model, first):
        h = layer(h, None)
    return h[:, 1:]


def keep_share(frac: float, start: float, full_at: float, hold: float = 0.0) -> float:
    """Share of background patches the LM sees at ``frac`` (0-1) of a stage; object patches always.

    A curriculum: early on the LM sees the object and text patches plus ``start`` of the
    background, a short sequence where learning to look things up is fast; after ``hold``
    the share grows linearly to all 576 patches at ``full_at`` and stays there, so the model
    ends trained on exactly what it sees at evaluation. Without it, our 4-layer LM stayed at
    chance on every task for 45 min (it must find ~30 object patches among 576 near-identical ones).
    """
    if frac >= full_at:
        return 1.0
    return start + (1.0 - start) * max(0.0, frac - hold) / (full_at - hold)


def basic_qa(scene, rng: random.Random) -> list[tuple[str, str]]:
    """Training-only questions, each one lookup: colour / shape existence, colour / shape at a place.

    The suite's questions compose several lookups (a colour *and* a shape, a count, a
    relation); a 4-layer LM learned single-lookup questions first in our pilots (colour
    existence over object patches: chance for ~400 steps, 76% at ~1,200), so these are in
    the mix from the start. Never asked at evaluation.
    """
    colours, shapes = {o.colour for o in scene.objects}, {o.shape for o in scene.objects}
    c = rng.choice(sorted(colours)) if rng.random() < 0.5 else rng.choice(COLOURS)
    sh = rng.choice(sorted(shapes)) if rng.random() < 0.5 else rng.choice(SHAPES)
    o = rng.choice(scene.objects)
    suffix = suite_tasks.PROMPT_SUFFIX["gqa"]
    return [
        (f"Is there a {c} object in the image?{suffix}", "yes" if c in colours else "no"),
        (f"Is there a {sh} in the image?{suffix}", "yes" if sh in shapes else "no"),
        (f"What colour is the object at the {o.where}?{suffix}", o.colour),
        (f"What shape is the object at the {o.where}?{suffix}", o.shape),
    ]


def place_qa(scene, rng: random.Random) -> list[tuple[str, str]]:
    """Training-only questions that take a place question one step at a time.

    Every question naming a place fails even when the scene is told in words (GQA "where",
    MCQ and MME keyed by a place: chance after 3,000 text steps, NOTES.md), while copying a word
    and counting are learned. These ask for the place from one attribute, its row and its
    column apart, and the reverse lookup (what is at a cell, or "nothing"). Never asked at evaluation.
    """
    objs, suffix = scene.objects, suite_tasks.PROMPT_SUFFIX["gqa"]
    o = rng.choice(objs)
    out = [
        (f"Which row is the {o.colour} {o.shape} in?{suffix}", ROWS[o.row]),
        (f"Which column is the {o.colour} {o.shape} in?{suffix}", COLS[o.col]),
    ]
    by_colour = suite_tasks.unique(objs, lambda p: p.colour)
    if by_colour:
        p = rng.choice(by_colour)
        out.append((f"Where is the {p.colour} object?{suffix}", p.where))
    at = {(p.row, p.col): p for p in objs}
    r, c = rng.randrange(len(ROWS)), rng.randrange(len(COLS))
    p = at.get((r, c))
    out.append((f"What is at the {ROWS[r]} {COLS[c]}?{suffix}", f"{p.colour} {p.shape}" if p else "nothing"))
    return out


def option_qa(rng: random.Random) -> list[tuple[str, str]]:
    """A training-only drill for the second half of a multiple-choice question: from a value to its letter.

    v18 names a place in GQA's short-answer form (93%) yet picks it among MCQ options at 17%
    (README), while its count options score ~70%: matching a multi-word value to its option is
    the step this asks alone ("Which option says top left?" -> the letter), with MCQ's own
    option pools and suffix. Never asked at evaluation. Off by default: in 1,600-1,700 steps it
    was learned for one-word values, not for places, and MCQ did not move (NOTES.md).
    """
    pool = rng.choice((COLOURS, suite_tasks.MCQ_SHAPES, suite_tasks.PLACES, suite_tasks.MCQ_COUNTS))
    options = rng.sample(pool, 4)
    right = rng.choice(options)
    prompt = f"Which option says {right}?{suite_tasks.show_options(options)}{suite_tasks.PROMPT_SUFFIX['mcq']}"
    return [(prompt, suite_tasks.LETTERS[options.index(right)])]


def dialogue_batch(model, tok, feats, masks, chunk, keep_bg: float, gen: torch.Generator, project=None):
    """Input embeddings, position ids, labels and attention mask for (image index, turns) rows.

    Dropped patches leave their positions unused (ids keep counting as if all 576 were
    there, as LLM-side pruning does at evaluation), so a kept patch's position still says
    where it lies in the grid. ``project`` maps ``feats`` rows to LM embeddings (default: the
    model's projector; the identity when ``feats`` already are LM embeddings).
    """
    project = model.model.multi_modal_projector if project is None else project
    image_id, embed = model.config.image_token_id, model.get_input_embeddings()
    n_patch, device = feats.shape[1], embed.weight.device
    rows = []
    for j, turns in chunk:
        ids, lab = encode_dialogue(tok, turns, 1, image_id)
        at = ids.index(image_id)
        # drawn on the CPU generator whatever the device, so a seed picks the same patches anywhere
        keep = (masks[j] | (torch.rand(n_patch, generator=gen) < keep_bg)).nonzero().squeeze(1)
        vis = project(feats[j, keep.to(feats.device)].float().to(device))
        text = embed(torch.tensor(ids, device=device))
        after = len(ids) - at - 1
        pos = torch.cat([torch.arange(at), at + keep, torch.arange(at + n_patch, at + n_patch + after)])
        rows.append((torch.cat([text[:at], vis, text[at + 1 :]]), pos, lab[:at] + [-100] * len(keep) + lab[at + 1 :]))
    return pad_rows(rows, device)


def lm_stage(
    model,
    tok,
    feats,
    masks,
    dialogues,
    budget: Budget,
    cfg: MiniConfig,
    name: str,
    log,
    tune_vit: bool = False,
    train_lm: bool = True,
) -> dict:
    """Train projector + LM on (image index, turns) dialogues for ``budget``.

    ``feats`` come from ``cache_features(first=cfg.vit_tune_from)``; with ``tune_vit`` the ViT
    layers above the cache are trained too, at ``cfg.vit_lr``. Without ``train_lm`` only the
    projector learns, as in LLaVA's stage 1.
    """
    top = vit_top(model, cfg.vit_tune_from)
    groups = [lm_group(train_only(model, *(LM_PARTS if train_lm else LM_PARTS[:1])), cfg)]
    if tune_vit and len(top):
        for p in top.parameters():
            p.requires_grad_(True)
        groups.append({"params": list(top.parameters()), "peak": cfg.vit_lr})
    gen = torch.Generator().manual_seed(cfg.seed)

    def batch(chunk: list, frac: float) -> tuple:
        keep_bg = keep_share(frac, cfg.keep_start, cfg.keep_full_at, cfg.keep_hold)
        idx = sorted({j for j, _ in chunk})
        with torch.set_grad_enabled(tune_vit):
            local = top_features(model, feats[idx], cfg.vit_tune_from)
        chunk = [(idx.index(j), turns) for j, turns in chunk]
        return *dialogue_batch(model, tok, local, masks[idx], chunk, keep_bg, gen), f"background {keep_bg:.2f}"

    stats = fit(model, groups, dialogues, batch, budget, cfg.lm_batch, name, log)
    train_only(model, *LM_PARTS)
    return stats


def make_dialogues(seeds: list[int], scenes, cfg: MiniConfig, rng: random.Random) -> list[tuple[int, list]]:
    """(scene index, turns) rows: every task's questions over each scene, twice varied, in multi-turn chunks."""
    dialogues = []
    for i, s in enumerate(seeds):
        pairs = qa_for_scene(s, None, scenes[i], 0) + qa_for_scene(s, None, scenes[i], 1)
        if cfg.basic_questions:
            pairs += basic_qa(scenes[i], rng)
        if cfg.place_questions:
            pairs += place_qa(scenes[i], rng)
        if cfg.option_questions:
            pairs += option_qa(rng)
        rng.shuffle(pairs)
        while pairs:
            # mostly long dialogues (the 576 image tokens are paid once per sequence), some
            # short ones so that single-question prompts, as at evaluation, stay in distribution;
            # turns < 6 makes them all short: more steps a minute, but a worse model in the one full
            # run of it (NOTES.md, "That next step")
            n = rng.randint(1, min(3, cfg.turns)) if rng.random() < 0.3 else rng.randint(min(6, cfg.turns), cfg.turns)
            dialogues.append((i, pairs[:n]))
            pairs = pairs[n:]
    return dialogues


def focus_dialogues(seeds: list[int], scenes, task: str, variants: int = 4) -> list[tuple[int, list]]:
    """(scene index, turns) rows of ``task``'s questions alone, ``variants`` a scene, one a sequence (the focus phase)."""
    make, rows = suite_tasks._MAKERS[task], []
    for i, (seed, scene) in enumerate(zip(seeds, scenes)):
        if task == "textvqa" and scene.text is None:
            continue
        for v in range(variants):
            out = make(seed, None, scene, random.Random(f"{task}:{seed}:focus{v}"))
            rows += [(i, [(s["prompt"], s["answer"])]) for s in suite_tasks.listed(out)]
    return rows


def text_rows(cfg: MiniConfig, n: int, rng: random.Random) -> tuple[list, list]:
    """``n`` train scenes for the text stage and their (scene index, turns) dialogues, as ``make_dialogues`` makes.

    Seeds 200,000+: the train range, apart from stage (a)'s (100,000+) and the image stages'
    (0+). No caption-copy rows: their ~30-token answers outweigh one-word answers in the loss,
    and the LM learned the questions slower with them (NOTES.md, "the scene told in words").
    """
    told = [make_scene(200_000 + i) for i in range(n)]
    short = replace(cfg, turns=cfg.text_turns or cfg.turns)
    return told, make_dialogues(list(range(200_000, 200_000 + n)), told, short, rng)


def train_device(name: str) -> torch.device:
    """The ``--device`` to train on; a clear error for a name torch does not know or a GPU that is not there."""
    try:
        dev = torch.device(name)
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise typer.BadParameter(f"--device {name!r}: expected cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise typer.BadParameter(
            f"--device {name!r}: this machine has no CUDA device (torch.cuda.is_available() is False)"
        )
    return dev


def main(
    out: Path = typer.Option(Path("flowcut/mini/checkpoint"), help="where the checkpoint goes"),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N (benchmarks/gpu_train.sh: a GPU run in one call)"),
    scale: float = typer.Option(1.0, help="multiply every stage's minutes or steps (0.02 for a smoke run)"),
    vision_from: Annotated[
        Path | None,
        typer.Option(
            help="skip stage (a): take the ViT of this checkpoint (trained by this script) and its stage-(a) record"
        ),
    ] = None,
    lm_from: Annotated[
        Path | None,
        typer.Option(
            help="start the projector, LM and tokenizer from this checkpoint (trained by this script) "
            "instead of from random weights"
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="override a MiniConfig field, name=value (repeatable), e.g. --set vit_pos_sincos=1.0"
        ),
    ] = None,
) -> None:
    try:
        cfg = MiniConfig().with_overrides(set_ or [])
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    for flag, path in (("--vision-from", vision_from), ("--lm-from", lm_from)):
        if path is not None and not (path / "config.json").is_file():
            raise typer.BadParameter(f"{flag} {path}: no checkpoint there (no config.json)")
    dev = train_device(device)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "train.log"
    log_path.write_text("")

    def log(msg: str) -> None:
        tqdm.write(msg)
        with log_path.open("a") as f:  # open per line: the log survives a killed run
            f.write(msg + "\n")

    def budget(stage: str) -> Budget:
        steps = getattr(cfg, f"{stage}_steps")
        if steps:  # scaled like minutes, but a stage that runs at all runs at least one step
            steps = max(1, round(steps * scale))
        return Budget(getattr(cfg, f"{stage}_minutes") * scale, steps)

    t0 = time.time()
    if lm_from is None:
        tok = train_tokenizer(corpus(2000), cfg.vocab_size, cfg.split_punctuation)
    else:  # a warm start keeps the tokenizer its embeddings were trained with
        tok = AutoTokenizer.from_pretrained(lm_from)
    log(f"tokenizer: {len(tok)} tokens ({time.time() - t0:.0f}s)")
    proc = image_processor(cfg)
    vision = build_vision(cfg)
    pair = ClipPair(vision, len(tok), width=128).to(dev)
    stats: dict = {"device": str(dev), "host": platform.node(), "cpu_threads": torch.get_num_threads()}
    if dev.type == "cuda":
        stats["gpu"] = torch.cuda.get_device_name(dev)

    if vision_from is None:
        stats["clip"] = train_clip(pair, clip_batches(cfg, proc, tok), budget("clip"), cfg.clip_lr, log)
    else:
        # the ViT is the only weight shared with an earlier run; the LM stages start afresh
        earlier = LlavaForConditionalGeneration.from_pretrained(vision_from)
        pair.vision.load_state_dict(earlier.model.vision_tower.state_dict())
        if cfg.vit_pos_sincos is not None:  # the fixed codes replace whatever embedding that ViT had
            set_sincos(pair.vision, cfg)
        record = json.loads((vision_from / "training.json").read_text())["stats"]["clip"]
        stats["clip"] = record | {"from": str(vision_from)}
        log(
            f"stage (a) skipped: ViT from {vision_from} ({record['steps']} CLIP steps, {record['seconds'] / 60:.1f} min)"
        )
    model = build_llava(cfg, tok, pair.vision)
    if lm_from is not None:
        stats["lm_from"] = str(lm_from)
        try:
            load_lm(model, tok, lm_from)
        except FlowcutError as err:
            raise typer.BadParameter(str(err)) from None
        log(f"projector and LM from {lm_from}")
    model.to(dev)
    rng = random.Random(2)
    if cfg.text_minutes or cfg.text_steps:
        told, rows = text_rows(cfg, max(8, int(cfg.text_scenes * max(scale, 0.01))), rng)
        stats["text"] = text_stage(model, tok, told, rows, budget("text"), cfg, log)
    # a stage switched off has done all its budget before its first step (Budget.frac)
    image_stages = any(budget(stage).frac(0, time.time()) < 1.0 for stage in ("caption", "instruct", "focus"))
    if not image_stages:
        # a text stage alone (to be continued with --lm-from): rendering the cache would be minutes for nothing
        log("no image stage has a budget: saving the text-trained LM as it is")
    else:
        seeds = list(range(int(cfg.cache_images * max(scale, 0.01))))
        t1 = time.time()
        feats, scenes = cache_features(model, proc, seeds, first=cfg.vit_tune_from)
        stats["cache_seconds"] = time.time() - t1
        captions = [(i, [(CAPTION_Q, caption(sc, rng))]) for i, sc in enumerate(scenes)]
        masks = torch.from_numpy(np.stack([object_mask(sc).reshape(-1) for sc in scenes]))
        # drawn before the caption stage, which may train on them; lm_stage draws nothing from rng,
        # so the rows are those a draw after that stage would give
        dialogues = make_dialogues(seeds, scenes, cfg, rng)
        if cfg.caption_qa:
            log(f"caption stage on the {len(dialogues)} instruction dialogues (caption_qa)")
        stats["caption"] = lm_stage(
            model,
            tok,
            feats,
            masks,
            dialogues if cfg.caption_qa else captions,
            budget("caption"),
            cfg,
            "caption",
            log,
            train_lm=cfg.caption_lm,
        )
        stats["instruct"] = lm_stage(
            model, tok, feats, masks, dialogues, budget("instruct"), cfg, "instruct", log, tune_vit=True
        )
        if cfg.focus_minutes or cfg.focus_steps:
            focus = focus_dialogues(seeds, scenes, cfg.focus_task)
            log(f"focus stage: {len(focus)} {cfg.focus_task} questions alone at lr {cfg.focus_lr:g}, all patches")
            stats["focus"] = lm_stage(
                model,
                tok,
                feats,
                masks,
                focus,
                budget("focus"),
                replace(cfg, lm_lr=cfg.focus_lr, keep_start=1.0, keep_hold=0.0),
                "focus",
                log,
            )
    stats["total_minutes"] = (time.time() - t0) / 60
    model.to("cpu").save_pretrained(out, safe_serialization=True)
    processor = LlavaProcessor(
        image_processor=proc,
        tokenizer=tok,
        patch_size=cfg.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    processor.save_pretrained(out)
    (out / "training.json").write_text(json.dumps({"config": cfg.to_dict(), "stats": stats}, indent=2))
    log(f"saved {out} after {stats['total_minutes']:.1f} min")


if __name__ == "__main__":
    typer.run(main)
