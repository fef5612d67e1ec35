"""How fast a fresh mini LM learns the suite's questions when the scene is told in words: the text stage alone.

    PYTHONPATH=. .venv/bin/python scripts/mini_text.py MINUTES [--set name=value ...] [--threads 2] [--steps N] [--only TASK] [--by-kind] [--then MINUTES:LR] [--checkpoint PATH]

Trains the projector-less LM of ``flowcut.mini.train.build_llava`` with
``flowcut.mini.text_stage`` for MINUTES on 20,000 train scenes (seeds 200,000+), each
scene's raster caption standing where the image tokens go, then prints the held-out accuracy
per task (300 test scenes, one question per sequence, the whole answer teacher-forced; up
to 200 questions per task). The scene's facts are all in the LM's context here, so this
measures the LM's own part (finding what the question asks in its context) with perfect
perception, at a fraction of an image step's cost. ``--set`` overrides ``MiniConfig`` fields
(e.g. ``turns=3``, ``lm_width=128 --set lm_mlp=344``, ``lm_lr=3e-4``).
"""

from __future__ import annotations

import argparse
import random
from dataclasses import replace

import torch
from transformers import AutoTokenizer, LlavaForConditionalGeneration

from flowcut.mini import train as T
from flowcut.mini.clip import Budget
from flowcut.mini.config import MiniConfig
from flowcut.mini.text_stage import text_batch, text_stage
from flowcut.mini.tokenizer import train_tokenizer
from flowcut.tasks.suite import tasks as suite_tasks
from flowcut.tasks.suite.scene import caption, make_scene

TEST = 10_000_000


@torch.no_grad()
def held_out(model, tok, n: int = 300, kinds: dict | None = None) -> dict[str, float]:
    """Accuracy per task on the first ``n`` test scenes told in words; per-kind hits go into ``kinds`` if given."""
    scenes, out = [make_scene(TEST + i) for i in range(n)], {}
    model.eval()
    for task, make in suite_tasks._MAKERS.items():
        rows = []
        for i, sc in enumerate(scenes):
            if task != "textvqa" or sc.text is not None:
                s = make(TEST + i, None, sc, random.Random(i))
                s = s[0] if isinstance(s, list) else s
                rows.append((i, [(s["prompt"], s["answer"])], s.get("kind", s.get("category", ""))))
        hits = []
        for k in range(0, min(len(rows), 200), 8):
            chunk = rows[k : k + 8]
            emb, pos, lab, att = text_batch(model, tok, scenes, [r[:2] for r in chunk], random.Random(k))
            logits = model(inputs_embeds=emb, position_ids=pos, attention_mask=att).logits
            for b in range(len(lab)):
                at = (lab[b] != -100).nonzero()[:, 0][:-1]  # the answer's tokens, not its </s>
                hits.append(bool(logits[b, at - 1].argmax(-1).eq(lab[b, at]).all()))
                if kinds is not None:
                    kinds.setdefault(f"{task}/{chunk[b][2]}", []).append(hits[-1])
        out[task] = 100 * sum(hits) / len(hits)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("minutes", type=float)
    ap.add_argument("--set", action="append", help="override a MiniConfig field, name=value")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--steps",
        type=int,
        help="train exactly this many steps instead (MINUTES is ignored): runs beside other work stay comparable",
    )
    ap.add_argument(
        "--captions",
        action="store_true",
        help="add a caption-copy row per scene (long answers, which outweigh the questions' in the loss)",
    )
    ap.add_argument(
        "--only",
        choices=list(suite_tasks.TASKS),
        help="train on this task's questions alone (four variants a scene, one a sequence): can the LM learn it at all?",
    )
    ap.add_argument("--by-kind", action="store_true", help="print held-out accuracy per question kind as well")
    ap.add_argument(
        "--checkpoint",
        help="score this saved checkpoint's LM (e.g. a text stage alone from flowcut.mini.train) instead of training",
    )
    ap.add_argument(
        "--then",
        metavar="MINUTES:LR",
        help="a second phase on the same rows, its own warm-up and cosine to peak LR (a late low-rate phase)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.checkpoint:
        model = LlavaForConditionalGeneration.from_pretrained(args.checkpoint)
        tok = AutoTokenizer.from_pretrained(args.checkpoint)
        return report(model, tok, None, args.by_kind)
    cfg = MiniConfig().with_overrides(args.set or [])
    torch.manual_seed(cfg.seed)  # the LM's init; the rows and their order stay seeded apart
    tok = train_tokenizer(T.corpus(2000), cfg.vocab_size, cfg.split_punctuation)
    model = T.build_llava(cfg, tok, T.build_vision(cfg))  # the ViT is never run here
    rng = random.Random(2)
    told, rows = T.text_rows(cfg, cfg.text_scenes, rng)
    if args.only:  # the training script's focus phase, on the text stage's scenes
        rows = T.focus_dialogues(list(range(200_000, 200_000 + len(told))), told, args.only)
    if args.captions:
        rows += [(i, [(T.CAPTION_Q, caption(sc, rng))]) for i, sc in enumerate(told)]
    stats = text_stage(model, tok, told, rows, Budget(args.minutes, args.steps), cfg, print)
    if args.then:
        minutes, _, lr = args.then.partition(":")
        first = stats["steps"]
        stats = text_stage(model, tok, told, rows, Budget(float(minutes), None), replace(cfg, lm_lr=float(lr)), print)
        stats["steps"] += first
    report(
        model, tok, f"{stats['steps']} steps of {cfg.text_batch}, final loss {stats['final_loss']:.3f}; ", args.by_kind
    )


def report(model, tok, head: str | None, by_kind: bool) -> None:
    """Print the held-out accuracy per task (and per kind with ``by_kind``) after ``head``."""
    kinds: dict[str, list[bool]] = {}
    acc = held_out(model, tok, kinds=kinds)
    if by_kind:
        print(
            "by kind: " + ", ".join(f"{k} {100 * sum(v) / len(v):.0f} (n={len(v)})" for k, v in sorted(kinds.items()))
        )
    print(
        (head or "")
        + "held-out "
        + " ".join(f"{t} {a:.1f}" for t, a in acc.items())
        + f"; mean {sum(acc.values()) / len(acc):.1f}"
    )


if __name__ == "__main__":
    main()
