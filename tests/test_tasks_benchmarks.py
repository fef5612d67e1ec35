"""Benchmark loaders on tiny fixtures, parsers, and metrics against hand-computed values."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from flowcut.errors import FlowcutError
from flowcut.tasks.metrics import (
    exact_match,
    mc_accuracy,
    mmbench_circular_accuracy,
    mme_scores,
    pope_by_category,
    pope_metrics,
    textvqa_accuracy,
    vqa_accuracy,
    vqav2_accuracy,
)
from flowcut.tasks.parsers import PARSERS, get_parser, mmbench_letter, mme_otter, sqa_letter, yesno_extract
from flowcut.tasks.registry import BENCHMARKS, load_benchmark, load_examples, score, to_example
from flowcut.tasks.suite.build import build_suite
from flowcut.tasks.suite.tasks import TASKS
from flowcut.tasks.vqa_norm import normalize_answer

DATA = Path(__file__).parent / "data"
REAL = ["pope", "gqa", "mme", "scienceqa_img", "mmbench_en_dev", "textvqa_val", "vqav2_val"]
LMMS, EXTRACT = "lmms-eval-v2", "extract-yesno-v2"


def fixture(name: str) -> list:
    return load_examples(name, path=DATA / f"{name}.parquet")


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    return buf.getvalue()


# --- registry and loaders ---------------------------------------------------------------


def test_registry_names() -> None:
    assert set(REAL) | {f"suite_{t}" for t in TASKS} == set(BENCHMARKS)
    for spec in BENCHMARKS.values():
        assert spec.parser in PARSERS and spec.split in spec.splits
        with pytest.raises(dataclasses.FrozenInstanceError):
            spec.split = "x"  # type: ignore[misc]


@pytest.mark.parametrize("name", REAL)
def test_loader_on_fixture(name: str) -> None:
    ds = load_benchmark(name, path=DATA / f"{name}.parquet")
    examples = fixture(name)
    assert len(examples) == len(ds) >= 2
    good = [e for e in examples if e.error is None]
    assert good and all(e.image is not None and e.image.size == (32, 32) and e.prompt for e in good)
    assert len(load_benchmark(name, path=DATA / f"{name}.parquet", limit=1)) == 1


def test_loader_prompts_follow_lmms_eval() -> None:
    pope = fixture("pope")[0]
    assert pope.prompt == "Is there a dog in the image?\nAnswer the question using a single word or phrase."
    mme = fixture("mme")[0]
    assert mme.prompt == "Is there a train in this image?\nAnswer the question using a single word or phrase."
    assert mme.question.endswith(" Please answer yes or no.")
    sqa = fixture("scienceqa_img")
    assert sqa[0].reference == "B" and sqa[0].prompt.startswith("Context: Hint: look at the fur.\nWhich animal")
    assert sqa[1].prompt == ("Which color is the square?\nA. red\nB. green\nC. blue\n"
                             "Answer with the option's letter from the given choices directly.")  # fmt: skip
    mmb = fixture("mmbench_en_dev")
    assert mmb[2].options == {"A": "square", "B": "circle", "C": "star"}  # the None option is dropped
    assert mmb[2].prompt.startswith("The image shows one shape. Which shape is shown? There are several options:\nA.")
    assert mmb[0].prompt.endswith("D. black\n\nAnswer with the option's letter from the given choices directly.")
    assert fixture("textvqa_val")[0].prompt.startswith("What is written on the sign?\n")  # capitalised
    assert fixture("vqav2_val")[1].reference == ["2", "2", "two", "two", "3", "3", "3", "3", "3", "3"]


def test_prompt_whitespace_and_empty_options_as_lmms_eval_leaves_them() -> None:
    """Edge rows built from the fixtures' own rows: lmms-eval's doc_to_text, not a tidier version of it."""
    rows = {
        n: pq.read_table(DATA / f"{n}.parquet").to_pylist()[0]
        for n in ("mme", "textvqa_val", "scienceqa_img", "mmbench_en_dev")
    }
    # MME strips first, then drops the suffix: a double space before it leaves one space
    mme = to_example(BENCHMARKS["mme"], rows["mme"] | {"question": " Is it red?  Please answer yes or no. "}, 0)
    assert mme.prompt.startswith("Is it red? \nAnswer")
    # TextVQA capitalises the question as stored, without stripping it
    tv = to_example(BENCHMARKS["textvqa_val"], rows["textvqa_val"] | {"question": "what is it? "}, 0)
    assert tv.prompt.startswith("What is it? \nAnswer")
    # ScienceQA: a whitespace hint is a context (``if context``); MMBench: an empty hint still adds its space,
    # and an empty option is dropped as create_options_prompt drops it
    sqa = to_example(BENCHMARKS["scienceqa_img"], rows["scienceqa_img"] | {"hint": " "}, 0)
    assert sqa.prompt.startswith("Context:  \n")
    mmb = to_example(BENCHMARKS["mmbench_en_dev"], rows["mmbench_en_dev"] | {"hint": "", "D": ""}, 0)
    assert (
        mmb.prompt.startswith(" What is the main color?")
        and "D." not in mmb.prompt
        and list(mmb.options) == ["A", "B", "C"]
    )


def test_fixture_errors_become_errored_examples() -> None:
    gqa = {e.id: e for e in fixture("gqa")}
    assert gqa["201"].error is None and gqa["201"].image.getpixel((0, 0)) == (200, 30, 30)  # joined on imageId
    assert gqa["203"].error == "image: missing" and gqa["203"].image is None
    bad = fixture("textvqa_val")[1]
    assert bad.image is None and "cannot decode" in bad.error


def test_unknown_benchmark_and_split() -> None:
    with pytest.raises(FlowcutError, match=r"unknown benchmark 'popee'.*allowed: \['gqa'"):
        load_benchmark("popee")
    with pytest.raises(FlowcutError, match=r"unknown split 'val' for pope \(allowed: \['test'\]\)"):
        load_benchmark("pope", split="val")
    with pytest.raises(FlowcutError, match="no such file"):
        load_benchmark("pope", path=DATA / "missing.parquet")
    # ScienceQA-IMG on the hub has validation and test only
    with pytest.raises(
        FlowcutError, match=r"unknown split 'train' for scienceqa_img \(allowed: \['test', 'validation'\]\)"
    ):
        load_benchmark("scienceqa_img", split="train")


@pytest.mark.parametrize(
    ("name", "row", "reason"),
    [
        ("pope", {"question": "Is there a dog?", "answer": "yes", "image": None}, "image: missing"),
        ("pope", {"question": "Is there a dog?", "answer": "yes", "image": {"bytes": b"xx", "path": None}},
         "cannot decode"),
        ("pope", {"question": "  ", "answer": "yes", "image": {"bytes": _png(), "path": None}}, "empty question"),
        ("pope", {"question": "Is there a dog?", "answer": "maybe", "image": {"bytes": _png(), "path": None}},
         "unknown answer format"),
        ("scienceqa_img", {"question": "Which?", "choices": ["a", "b"], "answer": 2, "image": None},
         "unknown answer format"),
        ("mmbench_en_dev", {"index": 1, "question": "Which?", "A": "x", "B": "y", "answer": "C", "image": None},
         "unknown answer format"),
        ("vqav2_val", {"question": "What?", "answers": [], "image": None}, "unknown answer format"),
    ],
)  # fmt: skip
def test_bad_rows_are_errored_not_raised(name: str, row: dict, reason: str) -> None:
    ex = to_example(BENCHMARKS[name], row, 0)
    assert ex.error is not None and reason in ex.error and ex.image is None


# --- parsers ------------------------------------------------------------------------------


def test_pope_parser_difference() -> None:
    examples = fixture("pope")  # answers yes, no, yes, no
    outputs = ["Yes.", "no", "yes", "No."]
    lmms, extract = score("pope", examples, outputs), score("pope", examples, outputs, parser=EXTRACT)
    # lmms-eval: "yes." != "yes" and "no." != "no": 2 of 4 right; VLMEvalKit-style extraction: 4 of 4
    assert lmms["accuracy"] == 0.5 and lmms["parser"] == LMMS
    assert extract["accuracy"] == 1.0 and extract["parser"] == EXTRACT
    assert get_parser(LMMS)("pope", "Yes.") == "yes." and get_parser(EXTRACT)("pope", "Yes.") == "yes"


def test_yes_no_rules() -> None:
    assert [mme_otter(t, {}) for t in ["Yes.", " NO", "y", "x", "No, there is none", "Nope", "Maybe"]] == [
        "yes", "no", "yes", "other", "no", "no", "other",
    ]  # fmt: skip
    assert [yesno_extract(t, {}) for t in ["Yes.", "no!", "Yes, but no", "Nope", "It is, yes"]] == [
        "yes", "no", "other", "other", "yes",
    ]  # fmt: skip


def test_option_rules() -> None:
    opts = {"A": "square", "B": "circle", "C": "star"}
    assert mmbench_letter("B", opts) == "B"
    assert mmbench_letter("The answer is (C).", opts) == "C"
    assert mmbench_letter("B. circle", opts) == "B"
    assert mmbench_letter("It is a circle", opts) == "B"  # no letter: the one option text inside the answer
    assert mmbench_letter("A circle or a square", opts) == ""  # two option texts: nothing inferred
    assert sqa_letter("B. dog", {}) == "B" and sqa_letter("B", {}) == "B" and sqa_letter("b. dog", {}) == "b. dog"
    # lmms-eval-v2: every output stripped first (lmms-eval strips all outputs), and ScienceQA's
    # one-character answers in any case, as sqa_process_results compares pred.lower() with the target
    v1, v2 = get_parser("lmms-eval-v1"), get_parser("lmms-eval-v2")
    assert [v2("letter-sqa", t) for t in ("b", " B\n", "B. dog", "b. dog", "(B)")] == ["B", "B", "B", "b. dog", "(B)"]
    assert [v1("letter-sqa", t) for t in ("b", " B\n")] == ["b", " B\n"]  # a version never changes
    assert v2("short", " left\n") == "left" and v1("short", " left\n") == " left\n"
    assert v2("mme", " Yes.") == v1("mme", " Yes.") == "yes" and v2("letter-mmbench", " (C) ", opts) == "C"
    assert get_parser("extract-yesno-v2")("pope", " Yes, there is.") == "yes"
    with pytest.raises(FlowcutError, match="parser"):
        get_parser("vlmevalkit-v9")
    with pytest.raises(FlowcutError, match="answer style"):
        get_parser()("caption", "x")


# --- metrics (expected values worked out by hand in the comments) ----------------------------


def test_pope_metrics_by_hand() -> None:
    refs = ["yes", "yes", "yes", "no", "no", "no"]
    preds = ["yes", "yes", "no", "yes", "no", "yes."]
    m = pope_metrics(preds, refs)
    # right: 1 1 0 0 1 0 -> 3/6. TP = 2 (rows 0, 1), FP = 1 (row 3; "yes." is not "yes"), FN = 1 (row 2)
    # precision = 2/3, recall = 2/3, F1 = 2 * (4/9) / (4/3) = 2/3; gt yes 3/6; predicted "yes" 3/6
    assert m["accuracy"] == 0.5 and m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3) and m["yes_ratio"] == 0.5 and m["pred_yes_ratio"] == 0.5
    by = pope_by_category(preds, refs, ["random"] * 3 + ["popular"] * 3)
    # random: refs yes yes yes, preds yes yes no -> acc 2/3, precision 2/2, recall 2/3
    assert by["random"]["accuracy"] == pytest.approx(2 / 3) and by["random"]["precision"] == 1.0
    # popular: refs no no no, preds yes no yes. -> acc 1/3, TP 0 -> precision 0, recall 0 (no positives), F1 0
    assert by["popular"]["accuracy"] == pytest.approx(1 / 3) and by["popular"]["f1"] == 0.0
    assert by["all"] == m


def test_mme_scores_by_hand() -> None:
    refs = ["Yes", "No", "Yes", "No", "Yes", "No"]
    preds = ["yes", "no", "yes", "yes", "no", "yes"]
    cats = ["existence"] * 4 + ["code_reasoning"] * 2
    qids = ["a", "a", "b", "b", "c", "c"]
    s = mme_scores(preds, refs, cats, qids)
    # existence: image a 2/2 right (acc 100, acc+ 100), image b 1/2 (acc 50, acc+ 0)
    # -> acc 75, acc+ 50, score 125 = the perception total; code_reasoning: image c 0/2 -> 0 = cognition
    assert s["categories"]["existence"] == {"acc": 75.0, "acc_plus": 50.0, "score": 125.0}
    assert s["perception"] == 125.0 and s["cognition"] == 0.0
    with pytest.raises(FlowcutError, match="pair"):
        mme_scores(preds[:3], refs[:3], cats[:3], qids[:3])  # image b has one question only


def test_mme_acc_plus_through_score() -> None:
    examples = fixture("mme")  # existence pair (Yes, No) and code_reasoning pair (Yes, No)
    r = score("mme", examples, ["Yes", "No", "Yes", "Yes"])
    # existence both right: 100 + 100 = 200; code_reasoning one of two: acc 50 + acc+ 0 = 50
    assert r["perception"] == 200.0 and r["cognition"] == 50.0 and r["code_reasoning/acc_plus"] == 0.0


def test_vqa_soft_accuracy_by_hand() -> None:
    answers = ["2", "2"] + ["3"] * 8
    # both sides are processed: "two" -> "2". Leave-one-out over the 10 answers:
    # dropping a "2" leaves one "2": min(1, 1/3) = 1/3 (twice); dropping a "3" leaves two: 2/3 (8 times)
    # mean = (2 * 1/3 + 8 * 2/3) / 10 = 18/30 = 0.6
    assert vqav2_accuracy("two", answers) == pytest.approx(0.6)
    assert textvqa_accuracy("Two.", answers) == pytest.approx(0.6)
    # lmms-eval since 2025-07 processes the answers even when all ten agree (the official vqaEval.py,
    # and lmms-eval before, did not, and scored these 0): "Red" -> "red", "two" -> "2", "the dog" -> "dog"
    assert vqav2_accuracy("red", ["Red"] * 10) == 1.0 and textvqa_accuracy("red", ["Red"] * 10) == 1.0
    assert vqav2_accuracy("two", ["two"] * 10) == 1.0 and vqav2_accuracy("dog", ["the dog"] * 10) == 1.0
    # "?" becomes a space on both sides; the lone "x" answer is left out of 1 of the 10 subsets only
    assert vqav2_accuracy("a?b", ["a b"] * 9 + ["x"]) == 1.0
    assert vqav2_accuracy(" 2\n", ["2"] * 2 + ["3"] * 8) == pytest.approx(0.6)  # whitespace cleaned
    sign = ["stop"] * 9 + ["stop sign"]
    # "stop sign" appears once: dropping a "stop" leaves it once (1/3, 9 times); dropping it leaves 0 -> 9/3/10
    assert textvqa_accuracy("Stop sign", sign) == pytest.approx(0.3)
    assert vqa_accuracy(["two", "stop"], [answers, sign], textvqa=True) == pytest.approx((0.6 + 1.0) / 2)


def test_vqa_normalisation() -> None:
    assert normalize_answer("The Two dogs!") == "2 dogs"
    assert normalize_answer("dont") == "don't" and normalize_answer("1,000") == "1000"
    assert normalize_answer("3.5") == "3.5" and normalize_answer("end.") == "end"


def test_exact_and_choice_metrics_by_hand() -> None:
    # "Red" ~ "red" (case), "yes." ~ "yes" (punctuation), " cup" != "cup" (no strip), left != right -> 2/4
    assert exact_match(["Red", "yes.", " cup", "left"], ["red", "yes", "cup", "right"]) == 0.5
    assert mc_accuracy(["A", "B", "", "D"], ["A", "C", "C", "D"]) == 0.5
    # question 7 and its rotation 1000007 both right -> hit; question 9 wrong -> miss: 1/2 circular, 2/3 single
    assert mmbench_circular_accuracy(["A", "D", "A"], ["A", "D", "B"], [7, 1000007, 9]) == 0.5
    assert mmbench_circular_accuracy(["A", "A", "B"], ["A", "D", "B"], [7, 1000007, 9]) == 0.5  # rotation wrong
    r = score("mmbench_en_dev", fixture("mmbench_en_dev"), ["A", "The answer is D.", "circle"])
    assert r["accuracy"] == 1.0 and r["accuracy_single"] == 1.0


def test_score_skips_errored_rows() -> None:
    examples = fixture("textvqa_val")  # row 2 has undecodable image bytes
    r = score("textvqa_val", examples, ["STOP", "12"])
    assert r["n"] == 1 and r["n_errors"] == 1 and r["accuracy"] == 1.0
    gqa = score("gqa", fixture("gqa"), ["Red", "yes", "cup"])
    assert gqa["n"] == 2 and gqa["exact_match"] == 1.0
    with pytest.raises(FlowcutError, match="outputs"):
        score("gqa", fixture("gqa"), ["red"])


# --- the suite through the same registry ----------------------------------------------------


@pytest.fixture(scope="module")
def suite_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("suite")
    build_suite(root, n_test=12, progress=False)
    return root


@pytest.mark.parametrize("task", TASKS)
def test_suite_benchmarks_score_their_own_answers(task: str, suite_root: Path) -> None:
    name = f"suite_{task}"
    rows = load_benchmark(name, path=suite_root)
    examples = load_examples(name, path=suite_root)
    assert all(e.error is None for e in examples)
    assert [e.prompt for e in examples] == rows["prompt"]  # the prompt the model was trained with
    result = score(name, examples, rows["answer"])
    headline = {"pope": "accuracy", "gqa": "exact_match", "count": "exact_match", "mme": "perception",
                "mcq": "accuracy", "textvqa": "accuracy"}[task]  # fmt: skip
    # MME: 4 perception categories at most, each 100 + 100 when every answer is right
    perfect = 200.0 * len({e.meta["category"] for e in examples}) if task == "mme" else 1.0
    assert result[headline] == pytest.approx(perfect)
    with pytest.raises(FlowcutError, match="split"):
        load_benchmark(name, split="validation")


def test_example_ids_are_unique_even_where_mme_pairs_share_a_question_id() -> None:
    from flowcut.tasks.registry import load_examples

    exs = load_examples("mme", path=Path(__file__).parent / "data" / "mme.parquet")
    ids = [e.id for e in exs]
    assert len(set(ids)) == len(ids)
    assert len({e.meta["pair"] for e in exs}) < len(exs), "pairs still share their pair key for acc+"


def test_undecoded_loading_checks_bytes_and_keeps_them() -> None:
    """decode=False (the service's driver): same ids and errors, bytes kept, pixels left to the actors."""
    for name in ("textvqa_val", "gqa", "pope"):
        decoded = fixture(name)
        lazy = load_examples(name, path=DATA / f"{name}.parquet", decode=False)
        assert [(e.id, e.error) for e in lazy] == [(e.id, e.error) for e in decoded]
        for a, b in zip(lazy, decoded, strict=True):
            if b.error is None and a.image_bytes is not None:
                assert a.image is None
                assert Image.open(io.BytesIO(a.image_bytes)).convert("RGB").tobytes() == b.image.tobytes()
    assert "cannot decode" in (
        load_examples("textvqa_val", path=DATA / "textvqa_val.parquet", decode=False)[1].error or ""
    )


@pytest.mark.parametrize("cut", ["truncated", "checksum"])
def test_check_image_rejects_broken_png_without_decoding(cut: str) -> None:
    from flowcut.images import check_image

    raw = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(raw, format="PNG")
    good = raw.getvalue()
    check_image(good)
    i = good.index(b"IDAT") + 8
    bad = good[: len(good) // 2] if cut == "truncated" else good[:i] + bytes([good[i] ^ 0xFF]) + good[i + 1 :]
    with pytest.raises(FlowcutError, match=r"^image: cannot decode uploaded bytes as an image \("):
        check_image(bad)
