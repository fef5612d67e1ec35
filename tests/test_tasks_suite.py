"""The generated suite: deterministic scenes, answers that match the scene, disjoint splits."""

from __future__ import annotations

import hashlib
import inspect
import itertools
import random
import re
from pathlib import Path

import numpy as np
import pytest

from flowcut.errors import FlowcutError
from flowcut.tasks.suite.build import (
    DEFAULT_N_TEST,
    TEST_SEED0,
    build_suite,
    default_root,
    iter_train_samples,
    load_suite_task,
    split_seed,
)
from flowcut.tasks.suite.scene import COLOURS, POPULAR, Scene, caption, make_scene, object_mask, render
from flowcut.tasks.suite.tasks import PROMPT_SUFFIX, TASKS, make_sample, make_samples, text_seed

SEEDS = range(300)


def _pixel_hash(image) -> str:
    return hashlib.sha1(image.tobytes()).hexdigest()


def _obj(scene: Scene, colour: str, shape: str):
    found = [o for o in scene.objects if o.colour == colour and o.shape == shape]
    return found[0] if found else None


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_sample(task: str) -> None:
    a, b = make_samples(task, 123), make_samples(task, 123)
    for x, y in zip(a, b, strict=True):
        assert x["image"].tobytes() == y["image"].tobytes()
        assert {k: v for k, v in x.items() if k != "image"} == {k: v for k, v in y.items() if k != "image"}


def test_scene_is_a_function_of_the_seed() -> None:
    img1, s1 = render(7)
    random.seed(99)  # global state must not matter
    np.random.seed(99)
    img2, s2 = render(7)
    assert img1.tobytes() == img2.tobytes() and s1 == s2 == make_scene(7)
    assert img1.size == (336, 336) and render(8)[0].tobytes() != img1.tobytes()


def assert_valid(scene: Scene) -> None:
    from flowcut.tasks.suite.scene import SIDE, cell_of

    assert 1 <= len(scene.objects) <= 5
    cells = [(o.row, o.col) for o in scene.objects]
    combos = [(o.colour, o.shape) for o in scene.objects]
    assert len(set(cells)) == len(cells) and len(set(combos)) == len(combos)
    if scene.text_box is not None:
        assert cell_of(scene.text_box) not in cells
        assert scene.text.isdigit() or scene.text.isalpha()
        r, c = cell_of(scene.text_box)
        x0, y0, x1, y1 = scene.text_box
        assert c * 112 + 4 <= x0 and x1 <= (c + 1) * 112 - 4 and r * 112 + 4 <= y0 and y1 <= (r + 1) * 112 - 4
    for o in scene.objects:
        x0, y0, x1, y1 = o.box
        assert (o.row, o.col) == ((y0 + y1) // 2 // 112, (x0 + x1) // 2 // 112)
        assert o.col * 112 + 4 <= x0 and x1 <= (o.col + 1) * 112 - 4, o
        assert o.row * 112 + 4 <= y0 and y1 <= (o.row + 1) * 112 - 4, o
        assert abs(x1 - x0 - SIDE[o.size]) <= 3 and x1 - x0 == y1 - y0


@pytest.mark.parametrize("seed", range(40))
def test_scene_invariants(seed: int) -> None:
    assert_valid(make_scene(seed))


@pytest.mark.parametrize("seed", range(60))
def test_edit_changes_one_fact(seed: int) -> None:
    from flowcut.tasks.suite.scene import EDITS, edit

    scene, rng = make_scene(seed), random.Random(seed)
    image = render(seed)[0]
    for kind in EDITS:
        new = edit(scene, kind, rng)
        if new is None:
            continue
        assert_valid(new)
        facts = lambda sc: [(o.shape, o.colour, o.size, o.row, o.col) for o in sc.objects] + [sc.text]  # noqa: E731
        changed = [a != b for a, b in zip(facts(scene), facts(new), strict=True)]
        assert sum(changed) == (2 if kind == "swap" else 1), (kind, scene, new)
        # same background and clutter: every changed pixel lies in an object or text box of either scene
        diff = np.abs(np.asarray(render(seed, new)[0], np.int16) - np.asarray(image, np.int16)).sum(-1) > 0
        boxes = np.zeros_like(diff)
        for sc in (scene, new):
            for x0, y0, x1, y1 in [o.box for o in sc.objects] + [sc.text_box] * (sc.text_box is not None):
                boxes[y0:y1, x0:x1] = True
        assert diff.any() and not (diff & ~boxes).any(), kind
    assert make_scene(seed) == scene  # edits copy, never mutate
    with pytest.raises(ValueError, match="unknown edit 'blur'"):
        edit(scene, "blur", rng)


def test_caption_and_mask() -> None:
    scene = next(make_scene(s) for s in itertools.count() if make_scene(s).text and len(make_scene(s).objects) > 1)
    text = caption(scene, random.Random(0))
    for o in scene.objects:
        assert f"{o.name} " in text and o.where in text
    assert f" {scene.text} is written at {scene.text_where}." in text
    mask = object_mask(scene)
    assert mask.shape == (24, 24) and mask.dtype == bool
    for x0, y0, x1, y1 in [o.box for o in scene.objects] + [scene.text_box]:
        assert mask[(y0 + y1) // 2 // 14, (x0 + x1) // 2 // 14]
        assert mask[y0 // 14, x0 // 14] and mask[(y1 - 1) // 14, (x1 - 1) // 14]
    covered = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in [o.box for o in scene.objects] + [scene.text_box])
    assert mask.sum() * 14 * 14 < covered + 4 * 14 * 336  # no more than the boxes plus a border of patches


def test_prompts_carry_lmms_eval_suffixes() -> None:
    assert PROMPT_SUFFIX["pope"] == "\nAnswer the question using a single word or phrase."
    assert PROMPT_SUFFIX["mcq"] == "\nAnswer with the option's letter from the given choices directly."
    for task in TASKS:
        assert make_samples(task, 5)[0]["prompt"].endswith(PROMPT_SUFFIX[task])


def test_pope_answers_and_negative_categories() -> None:
    seen = {"yes": 0, "no": 0}
    for seed in SEEDS:
        s, scene = make_sample("pope", seed), make_scene(seed)
        colour, shape = re.fullmatch(r"Is there a (\w+) (\w+) in the image\?", s["question"]).groups()
        present = {(o.colour, o.shape) for o in scene.objects}
        assert (s["answer"] == "yes") == ((colour, shape) in present)
        seen[s["answer"]] += 1
        if s["answer"] == "no" and s["category"] == "popular":
            assert (colour, shape) == next(c for c in POPULAR if c not in present)
        if s["answer"] == "no" and s["category"] == "adversarial":
            assert any(colour == c or shape == sh for c, sh in present)
        assert {"question_id", "question", "answer", "image", "category", "image_source"} <= set(s)
    assert seen["yes"] == seen["no"]  # balanced by construction (seed parity)


def test_gqa_answers_match_scene() -> None:
    kinds = set()
    for seed in SEEDS:
        s, scene = make_sample("gqa", seed), make_scene(seed)
        q, a = s["question"], s["answer"]
        kinds.add(s["kind"])
        if m := re.fullmatch(r"What colour is the (\w+) (\w+)\?", q):
            (o,) = [o for o in scene.objects if (o.size, o.shape) == m.groups()]
            assert a == o.colour
        elif m := re.fullmatch(r"What shape is the (\w+) object\?", q):
            (o,) = [o for o in scene.objects if o.colour == m[1]]
            assert a == o.shape
        elif m := re.fullmatch(r"Where is the (\w+) (\w+)\?", q):
            assert a == _obj(scene, m[1], m[2]).where
        else:
            m = re.fullmatch(r"Is the (\w+) (\w+) left or right of the (\w+) (\w+)\?", q)
            o, p = _obj(scene, m[1], m[2]), _obj(scene, m[3], m[4])
            assert a == ("left" if o.col < p.col else "right") and o.col != p.col
    assert kinds == {"colour", "shape", "position", "relation"}


def test_count_answers_match_scene() -> None:
    answers = set()
    for seed in SEEDS:
        s, scene = make_sample("count", seed), make_scene(seed)
        if m := re.fullmatch(r"How many (\w+)s are there\?", s["question"]):
            n = sum(o.shape == m[1] for o in scene.objects)
        else:
            m = re.fullmatch(r"How many (\w+) objects are there\?", s["question"])
            n = sum(o.colour == m[1] for o in scene.objects)
        assert s["answer"] == str(n)
        answers.add(s["answer"])
    assert {"0", "1", "2"} <= answers


def test_mme_pairs_one_yes_one_no() -> None:
    words = ["zero", "one", "two", "three", "four", "five", "six"]
    for seed in SEEDS:
        pair, scene = make_sample("mme", seed), make_scene(seed)
        assert isinstance(pair, list) and [p["answer"] for p in pair] == ["Yes", "No"]
        assert pair[0]["question_id"] == pair[1]["question_id"] and pair[0]["category"] == pair[1]["category"]
        for p in pair:
            q, truth = p["question"].removesuffix(" Please answer yes or no."), p["answer"] == "Yes"
            if m := re.fullmatch(r"Is there a (\w+) (\w+) in this image\?", q):
                assert (_obj(scene, m[1], m[2]) is not None) == truth
            elif m := re.fullmatch(r"Is there a total of (\w+) (\w+?)s? in the image\?", q):
                assert (sum(o.shape == m[2] for o in scene.objects) == words.index(m[1])) == truth
            elif m := re.fullmatch(r"Is the (\w+) (\w+) at the (\w+ \w+) of the image\?", q):
                assert (_obj(scene, m[1], m[2]).where == m[3]) == truth
            else:
                m = re.fullmatch(r"Is the (\w+) at the (\w+ \w+) (\w+)\?", q)
                (o,) = [o for o in scene.objects if o.where == m[2]]
                assert o.shape == m[1] and (o.colour == m[3]) == truth


def test_mcq_answer_letter_is_right() -> None:
    for seed in SEEDS:
        s, scene = make_sample("mcq", seed), make_scene(seed)
        options = [s[k] for k in "ABCD"]
        assert len(set(options)) == 4 and s["answer"] in "ABCD"
        right, q = s[s["answer"]], s["question"]
        if m := re.fullmatch(r"What colour is the (\w+) at the (\w+ \w+)\?", q):
            (o,) = [o for o in scene.objects if o.where == m[2]]
            assert right == o.colour and o.shape == m[1]
        elif m := re.fullmatch(r"What shape is the (\w+) object at the (\w+ \w+)\?", q):
            (o,) = [o for o in scene.objects if o.where == m[2]]
            assert right == o.shape and o.colour == m[1]
        elif m := re.fullmatch(r"Where is the (\w+) (\w+)\?", q):
            assert right == _obj(scene, m[1], m[2]).where
        else:
            m = re.fullmatch(r"How many (\w+)s are there\?", q)
            assert right == str(sum(o.shape == m[1] for o in scene.objects))
        assert all(f"\n{k}. {s[k]}" in s["prompt"] for k in "ABCD")


def test_textvqa_reads_the_scene_text() -> None:
    for seed in range(100):
        s = make_sample("textvqa", seed)
        scene = make_scene(s["seed"])
        assert s["seed"] == text_seed(seed) >= seed and scene.text == s["answer"]
        assert s["answers"] == [s["answer"]] * 10
        assert s["question"] == ("What number is shown?" if s["answer"].isdigit() else "What is written in the image?")


def test_unknown_task() -> None:
    with pytest.raises(FlowcutError, match="task"):
        make_sample("vqa", 0)


def test_seed_rules_and_disjoint_images() -> None:
    assert split_seed("test", 0) == TEST_SEED0 and split_seed("train", TEST_SEED0 - 1) == TEST_SEED0 - 1
    with pytest.raises(FlowcutError):
        split_seed("train", TEST_SEED0)
    # all test scenes of a default build (textvqa walks at most ~2x further) vs a sample of train scenes
    test = {_pixel_hash(render(split_seed("test", i))[0]) for i in range(2 * DEFAULT_N_TEST)}
    train = {_pixel_hash(render(split_seed("train", i))[0]) for i in range(2000)}
    assert len(test) == 2 * DEFAULT_N_TEST and len(train) == 2000 and not test & train


def test_default_build_size() -> None:
    assert inspect.signature(build_suite).parameters["n_test"].default >= 500 and DEFAULT_N_TEST >= 500


def test_build_and_load(tmp_path: Path) -> None:
    paths = build_suite(tmp_path, n_test=6, n_train=4, progress=False)
    assert set(paths) == set(TASKS)
    for task in TASKS:
        test, train = load_suite_task(task, "test", tmp_path), load_suite_task(task, "train", tmp_path)
        per_scene = 2 if task == "mme" else 1
        assert len(test) == 6 * per_scene and len(train) == 4 * per_scene
        assert min(test["seed"]) >= TEST_SEED0 > max(train["seed"])
        assert len(set(test["seed"])) == 6  # textvqa's forward walk does not repeat a scene
        row = test[0]
        assert row["image"].size == (336, 336) and row["answer"]
        assert row["image"].tobytes() == render(row["seed"])[0].tobytes()
    with pytest.raises(FlowcutError, match="split"):
        load_suite_task("pope", "val", tmp_path)
    with pytest.raises(FlowcutError, match="not found"):
        load_suite_task("pope", "test", tmp_path / "nowhere")


def test_committed_suite_is_what_the_generator_makes(tmp_path: Path) -> None:
    # data/suite is committed so a fresh clone needs no build, and ensure_suite only builds a
    # missing task: a generator change that is not rebuilt and committed would be scored on stale scenes
    root = default_root()
    if not all((root / t).exists() for t in TASKS):
        pytest.skip(f"no built suite under {root}")
    build_suite(tmp_path, n_test=8, progress=False)
    for task in TASKS:
        fresh, kept = load_suite_task(task, "test", tmp_path), load_suite_task(task, "test", root)
        assert len(kept) == DEFAULT_N_TEST * (2 if task == "mme" else 1), task
        for new, old in zip(fresh, kept, strict=False):
            assert {k: v for k, v in new.items() if k != "image"} == {k: v for k, v in old.items() if k != "image"}, (
                task
            )
            assert new["image"].tobytes() == old["image"].tobytes(), task


def test_train_stream() -> None:
    stream = list(itertools.islice(iter_train_samples(0), 200))
    assert {s["task"] for s in stream} == set(TASKS)
    assert all(s["seed"] < TEST_SEED0 for s in stream)
    text_seeds = [s["seed"] for s in stream if s["task"] == "textvqa"]
    assert len(text_seeds) == len(set(text_seeds)) > 0
    assert [s["task"] for s in stream[:7]] == ["pope", "gqa", "count", "mme", "mme", "mcq", "textvqa"]
    assert all(isinstance(s["answer"], str) and s["answer"] for s in stream)
    assert all(c in COLOURS for c, _ in POPULAR)
