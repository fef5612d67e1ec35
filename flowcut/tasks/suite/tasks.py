"""Question-answer samples over generated scenes, one generator per task, in the real benchmarks' columns.

Each task mirrors the columns of the lmms-lab dataset it imitates (POPE, GQA, MME, MMBench,
TextVQA) so that the same loaders and metrics score both. Every sample is a function of
``(task, seed)``; the question's randomness comes from ``random.Random`` seeded with the
task name and the seed, so the scene (seed only) is shared across tasks while questions differ.

Every sample dict carries, besides the benchmark's own columns: ``task``, ``seed`` (the
scene seed: ``render(sample["seed"])`` rebuilds the image and its facts), ``image`` (PIL),
``question``, ``answer`` and ``prompt`` (the full text the model sees, with the options for
mcq and the lmms-eval instruction from ``PROMPT_SUFFIX``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from ...errors import FlowcutError
from .scene import COLOURS, COLS, POPULAR, ROWS, SHAPES, Obj, Scene, make_scene, render

TASKS = ("pope", "gqa", "count", "mme", "mcq", "textvqa")

_SHORT = "\nAnswer the question using a single word or phrase."  # LLaVA-1.5's lmms-eval post_prompt
PROMPT_SUFFIX = {
    "pope": _SHORT,
    "gqa": _SHORT,
    "count": _SHORT,
    "mme": _SHORT,
    "mcq": "\nAnswer with the option's letter from the given choices directly.",
    "textvqa": _SHORT,
}
POPE_CATEGORIES = ("random", "popular", "adversarial")
MME_CATEGORIES = ("existence", "count", "position", "color")  # MME's own spelling and names
MME_SUFFIX = " Please answer yes or no."  # part of MME's questions; lmms-eval swaps it for the post_prompt
_NUM_WORDS = ("zero", "one", "two", "three", "four", "five", "six")
PLACES = tuple(f"{r} {c}" for r in ROWS for c in COLS)
MCQ_SHAPES = (*SHAPES, "star")  # "star" is never drawn: a fourth option that is always wrong
MCQ_COUNTS = tuple(str(k) for k in range(6))  # count options: scenes hold 1-5 objects, so 0 is a fair wrong one
LETTERS = "ABCD"


def show_options(options: list[str]) -> str:
    """MMBench's option lines, lettered from A, as they follow the question in an MCQ prompt."""
    return "".join(f"\n{k}. {v}" for k, v in zip(LETTERS, options, strict=True))


Sample = dict[str, Any]


def _rng(task: str, seed: int) -> random.Random:
    # a string seed hashes with SHA-512 inside random.seed: stable across runs, unlike hash()
    return random.Random(f"{task}:{seed}")


def _base(task: str, seed: int, image: Any, question: str, answer: str) -> Sample:
    return {"task": task, "seed": seed, "image": image, "question": question, "answer": answer,
            "prompt": question + PROMPT_SUFFIX[task]}  # fmt: skip


def _present(scene: Scene) -> set[tuple[str, str]]:
    return {(o.colour, o.shape) for o in scene.objects}


def pope_negative(scene: Scene, category: str, rng: random.Random) -> tuple[str, str]:
    """An absent (colour, shape) picked as POPE's negative sampling ``category`` says.

    random: any absent combo. popular: the absent combo earliest in ``POPULAR`` (the suite's
    most frequent objects). adversarial: an absent combo sharing a colour or a shape with a
    present object (always exists: a scene holds at most 5 of the 12 combos).
    """
    present = _present(scene)
    absent = [c for c in POPULAR if c not in present]
    if category == "popular":
        return absent[0]
    if category == "adversarial":
        colours, shapes = {c for c, _ in present}, {s for _, s in present}
        absent = [(c, s) for c, s in absent if c in colours or s in shapes]
    return rng.choice(absent)


def _pope(seed: int, image: Any, scene: Scene, rng: random.Random) -> Sample:
    # yes/no alternate with the seed and categories cycle every 6 seeds: balanced over any 6 consecutive seeds
    yes = seed % 2 == 0
    category = POPE_CATEGORIES[(seed // 2) % 3]
    colour, shape = rng.choice(sorted(_present(scene))) if yes else pope_negative(scene, category, rng)
    s = _base("pope", seed, image, f"Is there a {colour} {shape} in the image?", "yes" if yes else "no")
    return s | {"question_id": str(seed), "category": category, "image_source": f"suite_{seed}"}


def unique(objs: list[Obj], key: Callable[[Obj], object]) -> list[Obj]:
    """The objects whose ``key`` no other object shares: a question naming it means one object."""
    return [o for o in objs if sum(key(p) == key(o) for p in objs) == 1]


def _gqa(seed: int, image: Any, scene: Scene, rng: random.Random) -> Sample:
    objs = scene.objects
    by_size_shape, by_colour = unique(objs, lambda o: (o.size, o.shape)), unique(objs, lambda o: o.colour)
    pairs = [(a, b) for a in objs for b in objs if a.col != b.col]
    kinds = ["position"] + ["colour"] * bool(by_size_shape) + ["shape"] * bool(by_colour) + ["relation"] * bool(pairs)
    kind = rng.choice(kinds)
    if kind == "colour":
        o = rng.choice(by_size_shape)
        q, a = f"What colour is the {o.size} {o.shape}?", o.colour
    elif kind == "shape":
        o = rng.choice(by_colour)
        q, a = f"What shape is the {o.colour} object?", o.shape
    elif kind == "relation":
        o, p = rng.choice(pairs)
        q = f"Is the {o.colour} {o.shape} left or right of the {p.colour} {p.shape}?"
        a = "left" if o.col < p.col else "right"
    else:
        o = rng.choice(objs)  # colour+shape is unique within a scene, so this names one object
        q, a = f"Where is the {o.colour} {o.shape}?", o.where
    return _base("gqa", seed, image, q, a) | {"question_id": str(seed), "kind": kind}


def _count(seed: int, image: Any, scene: Scene, rng: random.Random) -> Sample:
    # pick the answer first, uniformly among the counts this scene offers, then a target with that count:
    # picking the target first makes "1" the answer ~2/3 of the time
    targets = [("shape", v, sum(o.shape == v for o in scene.objects)) for v in SHAPES]
    targets += [("colour", v, sum(o.colour == v for o in scene.objects)) for v in COLOURS]
    n = rng.choice(sorted({k for _, _, k in targets}))
    kind, target, _ = rng.choice([t for t in targets if t[2] == n])
    q = f"How many {target}s are there?" if kind == "shape" else f"How many {target} objects are there?"
    return _base("count", seed, image, q, str(n)) | {"question_id": str(seed), "kind": kind}


def _mme(seed: int, image: Any, scene: Scene, rng: random.Random) -> list[Sample]:
    category = rng.choice(MME_CATEGORIES)
    o = rng.choice(scene.objects)
    if category == "existence":
        neg = rng.choice([c for c in POPULAR if c not in _present(scene)])
        yes_q, no_q = (f"Is there a {c} {s} in this image?" for c, s in ((o.colour, o.shape), neg))
    elif category == "count":
        n = sum(p.shape == o.shape for p in scene.objects)
        wrong = n + 1 if n == 1 else n + rng.choice((-1, 1))
        yes_q, no_q = (
            f"Is there a total of {_NUM_WORDS[k]} {o.shape}{'s' * (k != 1)} in the image?" for k in (n, wrong)
        )
    elif category == "position":
        other = rng.choice([p for p in PLACES if p != o.where])
        yes_q, no_q = (f"Is the {o.colour} {o.shape} at the {w} of the image?" for w in (o.where, other))
    else:
        other = rng.choice([c for c in COLOURS if c != o.colour])
        yes_q, no_q = (f"Is the {o.shape} at the {o.where} {c}?" for c in (o.colour, other))
    out = []
    for q, a in ((yes_q, "Yes"), (no_q, "No")):
        s = _base("mme", seed, image, q + MME_SUFFIX, a)
        s["prompt"] = q + PROMPT_SUFFIX["mme"]  # lmms-eval drops MME's suffix for the post_prompt
        out.append(s | {"question_id": f"{category}/{seed}.png", "category": category})
    return out


def _mcq(seed: int, image: Any, scene: Scene, rng: random.Random) -> Sample:
    category = rng.choice(("colour", "shape", "position", "count"))
    o = rng.choice(scene.objects)
    if category == "colour":
        q, right, options = f"What colour is the {o.shape} at the {o.where}?", o.colour, list(COLOURS)
    elif category == "shape":
        q, right, options = f"What shape is the {o.colour} object at the {o.where}?", o.shape, list(MCQ_SHAPES)
    elif category == "position":
        right = o.where
        q, options = f"Where is the {o.colour} {o.shape}?", [right, *rng.sample([p for p in PLACES if p != right], 3)]
    else:
        n = sum(p.shape == o.shape for p in scene.objects)
        right, q = str(n), f"How many {o.shape}s are there?"
        options = [right, *rng.sample([k for k in MCQ_COUNTS if k != right], 3)]
    rng.shuffle(options)
    s = _base("mcq", seed, image, q, LETTERS[options.index(right)])
    s["prompt"] = q + show_options(options) + PROMPT_SUFFIX["mcq"]
    return s | {"index": seed, "category": category} | dict(zip(LETTERS, options, strict=True))


def text_seed(seed: int, limit: int = 64) -> int:
    """The first seed at or after ``seed`` whose scene has text (about half do).

    textvqa needs text, and a scene is a function of its seed alone, so the task moves forward
    to the next text-bearing seed; two neighbouring seeds can therefore share a scene, which
    ``build`` skips. ``limit`` bounds the walk (0.5**64: never reached in practice).
    """
    for s in range(seed, seed + limit):
        if make_scene(s).text is not None:
            return s
    raise FlowcutError("seed", f"no scene with text in [{seed}, {seed + limit})")


def _textvqa(seed: int, image: Any, scene: Scene, rng: random.Random) -> Sample:
    text = scene.text
    assert text is not None, "make_sample moves textvqa to a text-bearing seed"
    q = "What number is shown?" if text.isdigit() else "What is written in the image?"
    s = _base("textvqa", seed, image, q, text)
    return s | {"question_id": str(seed), "answers": [text] * 10}  # VQA-style: 10 human answers


_MAKERS: dict[str, Callable[[int, Any, Scene, random.Random], Any]] = {
    "pope": _pope, "gqa": _gqa, "count": _count, "mme": _mme, "mcq": _mcq, "textvqa": _textvqa,
}  # fmt: skip


def make_sample(task: str, seed: int) -> Sample | list[Sample]:
    """One sample of ``task`` over the scene for ``seed``.

    Args:
        task: one of ``TASKS``.
        seed: scene seed (``build.split_seed`` gives the train/test rule).

    Returns:
        A dict; for ``"mme"`` a list of two dicts, the "Yes" question first then the "No" one,
        sharing ``question_id`` so acc+ can pair them. For ``"textvqa"`` the scene seed is
        ``text_seed(seed)`` and the sample's ``seed`` field says which. ``make_samples`` always
        returns a list.
    """
    if task not in _MAKERS:
        raise FlowcutError("task", f"unknown suite task {task!r}", sorted(TASKS))
    if task == "textvqa":
        seed = text_seed(seed)
    image, scene = render(seed)
    return _MAKERS[task](seed, image, scene, _rng(task, seed))


def listed(out: Sample | list[Sample]) -> list[Sample]:
    """A maker's output as a list: the mme pair as it is, any other task's one sample alone."""
    return out if isinstance(out, list) else [out]


def make_samples(task: str, seed: int) -> list[Sample]:
    """``make_sample`` with the mme pair and single samples alike returned as a list."""
    return listed(make_sample(task, seed))
