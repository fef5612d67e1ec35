"""Which grounding questions a fresh mini LM learns, and how fast: the diagnostic behind the README's mini notes.

    PYTHONPATH=. .venv/bin/python scripts/mini_ladder.py RUNG SECONDS [--tokens full|object] [--threads 1]

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
  xattn   not the LM: a one-layer cross-attention classifier whose query is a learned
          (colour, shape) embedding, on the pope rung, to show what the features allow

``--tokens object`` feeds only the patches that overlap an object or the text box (their
grid positions kept); ``full`` feeds all 576, as at evaluation.
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
from flowcut.mini.config import MiniConfig
from flowcut.tasks.suite.scene import COLOURS, SHAPES, Scene, object_mask
from flowcut.tasks.suite.tasks import _pope

HELD_OUT = 50_000


def cached(checkpoint: str, path: Path) -> dict:
    if path.exists():
        return torch.load(path, weights_only=False)
    model = LlavaForConditionalGeneration.from_pretrained(checkpoint)
    proc = T.image_processor(MiniConfig())
    train_f, train_s, _ = T.cache_features(model, proc, list(range(1500)))
    test_f, test_s, _ = T.cache_features(model, proc, list(range(HELD_OUT, HELD_OUT + 300)))
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
    s = _pope(seed, None, scene, random.Random(f"pope:{seed}"))
    return s["prompt"], s["answer"]


def usable(rung: str, scenes: list[Scene]) -> list[int]:
    return [i for i, sc in enumerate(scenes) if rung not in ("one", "where") or len(sc.objects) == 1]


def lm_batch(model, tok, feats, scenes, idx: list[int], base: int, rung: str, tokens: str):
    """One question per scene through the training script's own batch builder (dropped patches keep positions)."""
    if tokens == "object":
        masks = torch.stack([torch.from_numpy(object_mask(scenes[i]).reshape(-1)) for i in idx])
    else:
        masks = torch.ones(len(idx), feats.shape[1], dtype=torch.bool)
    # rows k of feats[idx] / masks belong to scene idx[k]
    chunk = [(k, [question(rung, base + i, scenes[i])]) for k, i in enumerate(idx)]
    emb, pos, labels, mask = T.dialogue_batch(model, tok, feats[idx], masks, chunk, 0.0, torch.Generator().manual_seed(0))
    return emb, labels, mask, pos


def run_lm(data: dict, checkpoint: str, rung: str, tokens: str, seconds: float) -> tuple[int, float]:
    tok = AutoTokenizer.from_pretrained(checkpoint)
    tower = LlavaForConditionalGeneration.from_pretrained(checkpoint).model.vision_tower
    model = T.build_llava(MiniConfig(), tok, tower)
    params = [p for n, p in model.named_parameters() if not n.startswith("model.vision_tower")]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    (feats, scenes), rng = data["train"], random.Random(0)
    pool, start, step = usable(rung, scenes), time.time(), 0
    while time.time() - start < seconds:
        emb, labels, mask, pos = lm_batch(model, tok, feats, scenes, [rng.choice(pool) for _ in range(8)], 0, rung, tokens)
        loss = model(inputs_embeds=emb, attention_mask=mask, position_ids=pos, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
    model.eval()
    (feats, scenes), hits = data["test"], []
    with torch.no_grad():
        test = usable(rung, scenes)[:200]
        for k in range(0, len(test), 8):
            emb, labels, mask, pos = lm_batch(model, tok, feats, scenes, test[k : k + 8], HELD_OUT, rung, tokens)
            logits = model(inputs_embeds=emb, attention_mask=mask, position_ids=pos).logits
            for b in range(len(labels)):
                at = (labels[b] != -100).nonzero()[:, 0]
                at = at if rung == "where" else at[:1]  # the whole answer, or its first token
                hits.append(bool(logits[b, at - 1].argmax(-1).eq(labels[b, at]).all()))
    return step, sum(hits) / len(hits)


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
    ap.add_argument("rung", choices=["one", "where", "exists", "pope", "xattn"])
    ap.add_argument("seconds", type=float)
    ap.add_argument("--tokens", choices=["full", "object"], default="full")
    ap.add_argument("--checkpoint", default="flowcut/mini/checkpoint")
    ap.add_argument("--threads", type=int, default=1)
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
        steps, acc = run_lm(data, args.checkpoint, args.rung, args.tokens, args.seconds)
        print(f"lm {args.rung} ({args.tokens} tokens): {steps} steps of 8, held-out accuracy {100 * acc:.1f}%")


if __name__ == "__main__":
    main()
