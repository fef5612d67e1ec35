"""The mini LLaVA's architecture and training budget, in one frozen dataclass.

Shapes follow LLaVA-1.5 where the pruning methods look: a CLIP ViT at 336 px with patch
14 (576 patches + [CLS]), features from the second-to-last layer, an MLP projector and a
Llama decoder. Widths are small so that all stages train in <= 90 minutes on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from ..tasks.suite.scene import EDITS
from ..tasks.suite.tasks import TASKS

_AT_LEAST_ONE = (
    "vit_layers",
    "vit_heads",
    "lm_layers",
    "lm_heads",
    "clip_batch",
    "clip_group",
    "lm_batch",
    "turns",
    "text_turns",
    "text_batch",
    "text_scenes",
)


@dataclass(frozen=True)
class MiniConfig:
    seed: int = 0
    # vision tower: LLaVA-1.5's geometry, narrow (CLIP-L is 1024 wide, 24 deep)
    image_size: int = 336
    patch_size: int = 14
    vit_width: int = 128
    vit_layers: int = 6  # features from layer -2 = the 5th: the 6th only serves the CLIP loss
    vit_heads: int = 4
    vit_mlp: int = 512
    # language model: a small Llama; 4 layers keep a 700-token prefill cheap on 2 cores
    lm_width: int = 128  # 256 until 2026-12-02: half the width takes a step in 40% of the time
    lm_layers: int = 4
    lm_heads: int = 4
    lm_mlp: int = 344  # ~ 8/3 x width, Llama's SwiGLU ratio
    # rotary base; Llama's 10,000 turns most of a 64-dim head over the ~600 positions between an
    # image patch and the question, which scrambles content matches (NOTES.md, "perfect perception")
    lm_rope_theta: float = 1000000.0
    vocab_size: int = 600  # BPE over a templated corpus needs few merges
    # newlines and punctuation as tokens of their own (tokenizer.train_tokenizer); off, the BPE
    # merges across them, as for the shipped checkpoint. The runs with them split named fewer
    # places, but so did v18's recipe with another seed (NOTES.md, sessions 23-25): not settled
    split_punctuation: bool = False
    init_std: float = 0.06  # LM + projector weights; see train.build_llava for why not Llama's 0.02
    # training budget (minutes of wall time per stage; each stage also stops at max steps)
    clip_minutes: float = 18.0
    # exact step counts instead of minutes (clip.Budget): the shipped checkpoint's were 523 (clip) and
    # 5,765 / 1,129 / 7,220 (text / caption / instruct) on AVX-512 VMs; an AVX2-only VM runs ~2-3x
    # slower and would train less in the minutes
    clip_steps: int | None = None
    caption_steps: int | None = None
    instruct_steps: int | None = None
    clip_batch: int = 32  # contrastive negatives vs. steps in the time budget (~5 s per 48 images)
    clip_lr: float = 1e-3
    # images per train scene in a stage-(a) batch: the scene and edits of it (train.clip_batches).
    # 4, with vit_pos_std 128**-0.5, was tried once (2026-11-30) and did not help: NOTES.md, "hard negatives"
    clip_group: int = 1
    # the edit kinds a group draws from (scene.EDITS, comma-separated); "text" alone makes every
    # group of a text-bearing scene differ only in its word, a stage (a) that pays for reading;
    # 138 such steps (18 min, AVX2) left the word probe at 7%, chance 5% (NOTES.md, v16)
    clip_edits: str = "shape,colour,size,move,swap,text"
    vit_pos_std: float | None = None  # ViT position-embedding init; None keeps transformers' 0.02
    # fixed (untrained) 2D sin-cos position codes at this std instead: every patch says its cell
    # (probe 100%). The shipped ViT learned its positions in stage (a) and got these in their place
    vit_pos_sincos: float | None = 1.0
    # ViT layers from this index up to the feature layer train in the instruction stage at
    # vit_lr (LLaVA's "low learning rate" option); None keeps the whole ViT frozen after (a)
    vit_tune_from: int | None = None
    vit_lr: float = 2e-4
    # text stage (flowcut.mini.text_stage): the LM alone on the suite's questions over scenes
    # told in words, before any image, as real LLaVAs start from a text-trained LM; 0 = none
    text_minutes: float = 20.0
    text_steps: int | None = None
    text_batch: int = 16
    # most questions in one text-stage sequence; None = ``turns``. Short ones suit the text stage
    # (NOTES.md, "the scene told in words"), long ones the image stages, which pay 576 tokens a sequence
    text_turns: int | None = 3
    text_scenes: int = 20000
    caption_lm: bool = False  # False: the caption stage trains the projector alone (LLaVA's stage 1)
    # the caption stage on the instruction dialogues instead of captions. With caption_lm false and a
    # text stage, the projector alone learns image tokens the text-trained LM answers from: a text
    # stage without caption rows leaves an LM that cannot write captions (caption loss stayed ~4.5)
    caption_qa: bool = True
    cache_images: int = 6000  # distinct train scenes whose frozen ViT features stages 2-3 reuse
    caption_minutes: float = 5.0
    instruct_minutes: float = 38.0
    # background-patch curriculum of the LM stages (train.keep_share): none for the first half
    # of a stage, then growing to all at 80%
    keep_start: float = 0.0
    keep_hold: float = 0.5
    keep_full_at: float = 0.8
    basic_questions: bool = True  # single-lookup training questions beside the suite's (train.basic_qa)
    place_questions: bool = True  # place questions one step at a time (train.place_qa)
    option_questions: bool = False  # value -> option letter drills (train.option_qa)
    # a last phase on one task's questions alone (one a sequence, all patches) at its own low rate:
    # MCQ alone in words learned at 1.5e-4 what 1e-3 left at chance (NOTES.md, "MCQ in words"); 0 = none
    focus_task: str = "mcq"
    focus_minutes: float = 0.0
    focus_steps: int | None = None
    focus_lr: float = 1.5e-4
    lm_batch: int = 8
    lm_lr: float = 1e-3
    # AdamW's second-moment decay in the LM stages (torch's default); 0.95, as LLM pre-training
    # uses, was tried in the text stage (NOTES.md, session 26)
    lm_beta2: float = 0.999
    turns: int = 12  # most questions in one training sequence (multi-turn, as LLaVA's instruct data)

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, pairs: list[str]) -> MiniConfig:
        """A copy with `name=value` overrides (the training CLI's --set); `none` clears an optional field.

        Raises ValueError naming the field when the name is unknown or the value does not parse.
        """
        types = {f.name: str(f.type) for f in fields(self)}
        changes: dict = {}
        for pair in pairs:
            name, sep, raw = pair.partition("=")
            name, raw = name.strip(), raw.strip()
            if not sep or name not in types:
                raise ValueError(f"--set {pair!r}: expected name=value with name one of {', '.join(types)}")
            kind = types[name]
            try:
                if raw.lower() == "none" and "None" in kind:
                    changes[name] = None
                elif kind.startswith("bool"):
                    if raw.lower() not in ("true", "false", "1", "0"):
                        raise ValueError(raw)
                    changes[name] = raw.lower() in ("true", "1")
                elif kind.startswith("str"):
                    changes[name] = raw
                elif kind.startswith("int"):
                    changes[name] = int(raw)
                else:
                    changes[name] = float(raw)
            except ValueError:
                raise ValueError(f"--set {name}: {raw!r} is not a valid {kind}") from None
            if name == "clip_edits" and (bad := [k for k in raw.split(",") if k not in EDITS]):
                raise ValueError(f"--set clip_edits: unknown edit {bad[0]!r}; known: {', '.join(EDITS)}")
            if name == "focus_task" and raw not in TASKS:
                raise ValueError(f"--set focus_task: unknown task {raw!r}; known: {', '.join(TASKS)}")
            if name in _AT_LEAST_ONE and changes[name] is not None and changes[name] < 1:
                raise ValueError(f"--set {name}: must be at least 1, got {raw!r}")
        return replace(self, **changes)
