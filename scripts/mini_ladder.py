"""Which grounding questions a fresh mini LM learns, and how fast: the diagnostic behind flowcut/mini/NOTES.md.

    PYTHONPATH=. .venv/bin/python scripts/mini_ladder.py RUNG SECONDS [--tokens full|object] [--threads 1]
        [--text SECONDS] [--symbolic SECONDS] [--lr 1e-3] [--set name=value ...] [--curve STEPS] [--turns 1]

Takes the ViT of a mini checkpoint, caches its features for 1,500 train scenes and 300
held-out ones (seeds 50,000+; cached in /tmp per checkpoint), then trains a fresh projector + LM built by
``flowcut.mini.train.build_llava`` on one rung for SECONDS of wall time and prints the
held-out accuracy of the first answer token (teacher-forced, one question per sequence).

Rungs, easiest first:
  one     scenes with one object: "What colour is the object?" (no lookup: find the object)
  exists  "Is there a <colour> object in the image?" (compare the question with every object)
  where   scenes with one object: "Where is the object?" ("top left"...: the patches must say
          where they are, or the LM must work it out from its rotary positions); scored on the
          whole answer, not its first token
  pope    the suite's POPE question: a colour *and* a shape, bound to one object
  mix     the suite's own questions of its five tasks that need no reading (pope, gqa, count,
          mme, mcq; one per sequence, task by seed), whole answer scored, accuracy per task
  xattn   not the LM: a one-layer cross-attention classifier whose query is a learned
          (colour, shape) embedding, on the pope rung, to show what the features allow

``--tokens object`` feeds only the patches that overlap an object or the text box (their
grid positions kept); ``full`` feeds all 576, as at evaluation. ``--symbolic S`` first trains
the LM for S seconds on symbolic scenes (one token per object, the sum of its words'
embeddings, at its centre patch): how fast the LM learns a rung when perception is perfect.
``--text S`` first runs the training script's text stage for S seconds (the questions over
scenes told in words; no caption rows). ``--set`` overrides a ``MiniConfig`` field of the fresh LM (e.g. ``lm_rope_theta=1000000``),
``--curve N`` prints held-out accuracy every N steps, ``--turns N`` trains on N questions per
sequence (multi-turn, as the training script does; held-out scoring still asks one).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlavaForConditionalGeneration

from flowcut.mini import train as T
from flowcut.mini.clip import Budget
from flowcut.mini.config import MiniConfig
from flowcut.mini.text_stage import text_stage
from flowcut.tasks.suite.scene import COLOURS, PATCH, SHAPES, SIZE, Scene, make_scene, object_mask
from flowcut.tasks.suite.tasks import _MAKERS, _pope

HELD_OUT = 50_000
MIX = ("pope", "gqa", "count", "mme", "mcq")  # the suite's tasks a symbolic scene can answer (no text)
WHOLE = ("where", "mix")  # rungs scored on the whole answer, not its first token


def mix_task(seed: int) -> str:
    """The task of the ``mix`` rung's question for ``seed``."""
    return MIX[seed % len(MIX)]


def cached(checkpoint: str, path: Path) -> dict:
    if path.exists():
        return torch.load(path, weights_only=False)
    model = LlavaForConditionalGeneration.from_pretrained(checkpoint)
    proc = T.image_processor(MiniConfig())
    train_f, train_s = T.cache_features(model, proc, list(range(1500)))
    test_f, test_s = T.cache_features(model, proc, list(range(HELD_OUT, HELD_OUT + 300)))
    out = {"train": (train_f, train_s), "test": (test_f, test_s)}
    torch.save(out, path)
    return out


def question(rung: str, seed: int, scene: Scene) -> tuple[str, str]:
    if rung == "one":
        return "What colour is the object?", scene.objects[0].colour
    if rung == "where":
        return "Where is the object?", scene.objects[0].where
    if rung == "exists":
        present, r = sorted({o.colour for o in scene.objects}), random.Random(seed)
        absent = [c for c in COLOURS if c not in present]
        c = r.choice(present) if seed % 2 == 0 or not absent else r.choice(absent)
        return f"Is there a {c} object in the image?", "yes" if c in present else "no"
    if rung == "mix":
        out = _MAKERS[mix_task(seed)](seed, None, scene, random.Random(f"mix:{seed}"))
        s = out[seed // len(MIX) % 2] if isinstance(out, list) else out  # mme: its yes or its no question
        return s["prompt"], s["answer"]
    s = _pope(seed, None, scene, random.Random(f"pope:{seed}"))
    return s["prompt"], s["answer"]


def usable(rung: str, scenes: list[Scene]) -> list[int]:
    return [i for i, sc in enumerate(scenes) if rung not in ("one", "where") or len(sc.objects) == 1]


def scene_tokens(model, tok, scenes: list[Scene]) -> tuple[torch.Tensor, torch.Tensor]:
    """Symbolic image tokens, the scenes as an ideal projector would give them, and which patches hold them.

    One token per object, at its centre patch: the sum of the LM's input embeddings of its
    words ("large red circle"), taken from the current embedding table so that gradients reach
    it. Returns ([n, 576, lm_width] tokens, [n, 576] bool mask of the object centres).
    """
    embed, grid = model.get_input_embeddings(), SIZE // PATCH
    out = torch.zeros(len(scenes), grid * grid, embed.embedding_dim)
    mask = torch.zeros(len(scenes), grid * grid, dtype=torch.bool)
    for i, sc in enumerate(scenes):
        for o in sc.objects:
            at = (o.box[1] + o.box[3]) // 2 // PATCH * grid + (o.box[0] + o.box[2]) // 2 // PATCH
            out[i, at] = embed(torch.tensor(tok(" " + o.name, add_special_tokens=False).input_ids)).sum(0)
            mask[i, at] = True
    return out, mask


def lm_batch(model, tok, feats, scenes, idx: list[int], base: int, rung: str, tokens: str, turns: int = 1):
    """``turns`` questions per scene through the training script's own batch builder (dropped patches keep positions).

    ``feats`` None: symbolic scenes (``scene_tokens``), fed as they are, no projector.
    """

    def ask(i: int) -> list[tuple[str, str]]:  # several questions over one scene: pseudo-seeds (seed, t)
        return [question(rung, (base + i) * turns + t, scenes[i]) for t in range(turns)]

    chunk = [(k, ask(i)) for k, i in enumerate(idx)]  # row k is scene idx[k]
    gen, project = torch.Generator().manual_seed(0), None
    if feats is None:
        local, masks = scene_tokens(model, tok, [scenes[i] for i in idx])
        project = torch.nn.Identity()
    elif tokens == "object":
        local, masks = feats[idx], torch.stack([torch.from_numpy(object_mask(scenes[i]).reshape(-1)) for i in idx])
    else:
        local, masks = feats[idx], torch.ones(len(idx), feats.shape[1], dtype=torch.bool)
    emb, pos, labels, mask = T.dialogue_batch(model, tok, local, masks, chunk, 0.0, gen, project)
    return emb, labels, mask, pos


def fit(model, tok, train: tuple, test: tuple, rung: str, args: argparse.Namespace, seconds: float) -> int:
    """Train projector + LM for ``seconds`` on batches of 8 of ``train`` = (feats or None, scenes); returns the steps.

    With ``args.curve`` prints the accuracy on ``test`` every that many steps.
    """
    params = [p for n, p in model.named_parameters() if not n.startswith("model.vision_tower")]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    (feats, scenes), rng = train, random.Random(0)
    pool, start, step = usable(rung, scenes), time.time(), 0
    model.train()
    while time.time() - start < seconds:
        batch = [rng.choice(pool) for _ in range(8)]
        emb, labels, mask, pos = lm_batch(model, tok, feats, scenes, batch, 0, rung, args.tokens, args.turns)
        loss = model(inputs_embeds=emb, attention_mask=mask, position_ids=pos, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if args.curve and step % args.curve == 0:
            print(f"  step {step}: held-out {100 * score(model, tok, test, rung, args.tokens):.1f}%", flush=True)
            model.train()
    model.eval()
    return step


@torch.no_grad()
def score(model, tok, test: tuple, rung: str, tokens: str) -> float:
    """Held-out accuracy (teacher-forced); the ``mix`` rung also prints it per task."""
    (feats, scenes), hits = test, []
    model.eval()
    rows = usable(rung, scenes)[:200]
    for k in range(0, len(rows), 8):
        emb, labels, mask, pos = lm_batch(model, tok, feats, scenes, rows[k : k + 8], HELD_OUT, rung, tokens)
        logits = model(inputs_embeds=emb, attention_mask=mask, position_ids=pos).logits
        for b in range(len(labels)):
            at = (labels[b] != -100).nonzero()[:, 0]
            at = at if rung in WHOLE else at[:1]  # the whole answer, or its first token
            hits.append(bool(logits[b, at - 1].argmax(-1).eq(labels[b, at]).all()))
    if rung == "mix":
        per = {t: [h for i, h in zip(rows, hits) if mix_task(HELD_OUT + i) == t] for t in MIX}  # as lm_batch seeds
        print("  " + " ".join(f"{t} {100 * sum(v) / len(v):.0f}%" for t, v in per.items() if v), flush=True)
    return sum(hits) / len(hits)


def run_lm(data: dict, args: argparse.Namespace) -> tuple[int, float]:
    tok = AutoTokenizer.from_pretrained(args.checkpoint)
    tower = LlavaForConditionalGeneration.from_pretrained(args.checkpoint).model.vision_tower
    cfg = MiniConfig().with_overrides(args.set or [])
    model = T.build_llava(cfg, tok, tower)
    if args.text:
        # the training script's text stage first: the suite's questions over scenes told in words
        told, rows = T.text_rows(cfg, cfg.text_scenes, random.Random(2))
        stats = text_stage(model, tok, told, rows, Budget(args.text / 60), cfg, lambda _: None)
        print(f"text stage: {stats['steps']} steps of {cfg.text_batch}, loss {stats['final_loss']:.3f}", flush=True)
    if args.symbolic:
        # scenes as words first (seeds 200,000+: facts only, no pixels), then the same LM on the ViT's features
        train, test = (None, [make_scene(200_000 + i) for i in range(20_000)]), (None, data["test"][1])
        steps = fit(model, tok, train, test, args.rung, args, args.symbolic)
        acc = score(model, tok, test, args.rung, args.tokens)
        print(f"symbolic {args.rung}: {steps} steps of 8, held-out accuracy {100 * acc:.1f}%", flush=True)
    steps = fit(model, tok, data["train"], data["test"], args.rung, args, args.seconds)
    return steps, score(model, tok, data["test"], args.rung, args.tokens)


class CrossAttention(torch.nn.Module):
    """One attention read-out: a learned query per (colour, shape) over the projected patches."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = torch.nn.Sequential(torch.nn.LayerNorm(dim), torch.nn.Linear(dim, dim), torch.nn.GELU(),
                                        torch.nn.Linear(dim, dim))  # fmt: skip
        self.query = torch.nn.Embedding(len(COLOURS) * len(SHAPES), dim)
        self.out = torch.nn.Linear(dim, 1)

    def forward(self, feats: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        keys, query = self.proj(feats), self.query(q)
        att = (keys @ query[:, :, None]).squeeze(-1).div(keys.shape[-1] ** 0.5).softmax(-1)
        return self.out((att[..., None] * keys).sum(1) * query).squeeze(-1)


def xattn_batch(feats, scenes, idx: list[int], base: int):
    qs, ys = [], []
    for i in idx:
        text, answer = question("pope", base + i, scenes[i])
        colour, shape = text.split()[3], text.split()[4]
        qs.append(COLOURS.index(colour) * len(SHAPES) + SHAPES.index(shape))
        ys.append(float(answer == "yes"))
    return feats[idx].float(), torch.tensor(qs), torch.tensor(ys)


def run_xattn(data: dict, seconds: float) -> tuple[int, float]:
    torch.manual_seed(0)
    (feats, scenes), rng = data["train"], random.Random(0)
    net = CrossAttention(feats.shape[-1])
    opt, start, step = torch.optim.Adam(net.parameters(), 1e-3), time.time(), 0
    while time.time() - start < seconds:
        x, q, y = xattn_batch(feats, scenes, [rng.randrange(len(scenes)) for _ in range(32)], 0)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x, q), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
    feats, scenes = data["test"]
    with torch.no_grad():
        x, q, y = xattn_batch(feats, scenes, list(range(len(scenes))), HELD_OUT)
        return step, float(((net(x, q) > 0).float() == y).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rung", choices=["one", "where", "exists", "pope", "mix", "xattn"])
    ap.add_argument("seconds", type=float)
    ap.add_argument("--tokens", choices=["full", "object"], default="full")
    ap.add_argument("--checkpoint", default="flowcut/mini/checkpoint")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--symbolic",
        type=float,
        default=0.0,
        help="first train the LM this many seconds on symbolic scenes (scene_tokens)",
    )
    ap.add_argument(
        "--text",
        type=float,
        default=0.0,
        help="first train the LM this many seconds with the text stage (flowcut.mini.text_stage)",
    )
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--turns", type=int, default=1, help="questions per training sequence (scoring asks one)")
    ap.add_argument("--curve", type=int, default=0, help="print held-out accuracy every this many steps")
    ap.add_argument("--set", action="append", help="override a MiniConfig field of the fresh LM, name=value")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # one cache per checkpoint (path and weights' mtime): a shared file would hand a second
    # checkpoint the first one's features without a word
    weights = Path(args.checkpoint).resolve() / "model.safetensors"
    key = hashlib.sha1(f"{weights}:{weights.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    data = cached(args.checkpoint, Path(f"/tmp/flowcut_mini_ladder_{key}.pt"))
    if args.rung == "xattn":
        steps, acc = run_xattn(data, args.seconds)
        print(f"xattn (pope rung, full tokens): {steps} steps of 32, held-out accuracy {100 * acc:.1f}%")
    else:
        steps, acc = run_lm(data, args)
        print(f"lm {args.rung} ({args.tokens} tokens): {steps} steps of 8, held-out accuracy {100 * acc:.1f}%")


if __name__ == "__main__":
    main()
