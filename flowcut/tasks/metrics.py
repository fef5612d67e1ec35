"""Benchmark metrics as pure functions over parsed predictions, computed the way lmms-eval computes them.

References (EvolvingLMMs-Lab/lmms-eval, ``lmms_eval/tasks/``): ``pope/utils.py``,
``mme/utils.py``, ``vqav2/utils.py``, ``textvqa/utils.py``, ``gqa/gqa.yaml`` (HF-evaluate
exact match with ``ignore_case`` and ``ignore_punctuation``), ``scienceqa/utils.py``,
``mmbench/mmbench_evals.py`` (CircularEval over ``index % 1e6``). Scales follow lmms-eval's
aggregations: fractions in [0, 1], except MME, whose scores are points (acc% + acc+%);
MMBench, which lmms-eval reports x 100, stays a fraction here like the other accuracies.

Predictions come from ``parsers``; references are the dataset's answer column.
"""

from __future__ import annotations

import string
from collections import defaultdict
from collections.abc import Sequence

from ..errors import FlowcutError
from .vqa_norm import normalize_answer, process_digit_article, process_punctuation

# lmms-eval mme/utils.py eval_type_dict; anything not in PERCEPTION is scored as cognition, as there
MME_PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork",
                  "OCR")  # fmt: skip
MME_COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0  # empty input scores 0, where lmms-eval would divide by 0


def _check(*columns: Sequence[object]) -> None:
    if len({len(c) for c in columns}) > 1:
        raise FlowcutError("metric inputs", f"lengths differ: {[len(c) for c in columns]}")


def pope_metrics(preds: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """POPE accuracy, precision, recall, F1 and yes ratios (lmms-eval ``pope_aggregate_*``).

    Args:
        preds: parsed predictions; only exactly "yes" / "no" count as positive / negative.
        refs: ground truth "yes" / "no".

    Returns:
        accuracy, precision, recall, f1, ``yes_ratio`` (the share of *ground-truth* yes, as
        lmms-eval's ``pope_yes_ratio`` computes it) and ``pred_yes_ratio`` (the POPE paper's
        share of "yes" predictions).
    """
    _check(preds, refs)
    refs = [r.lower().strip() for r in refs]
    tp = sum(p == "yes" and r == "yes" for p, r in zip(preds, refs, strict=True))
    fp = sum(p == "yes" and r == "no" for p, r in zip(preds, refs, strict=True))
    # a prediction that is neither "yes" nor "no" is no false negative: lmms-eval counts only pred == "no"
    fn = sum(p == "no" and r == "yes" for p, r in zip(preds, refs, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "accuracy": _mean([float(p == r) for p, r in zip(preds, refs, strict=True)]),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "yes_ratio": _mean([float(r == "yes") for r in refs]),
        "pred_yes_ratio": _mean([float(p == "yes") for p in preds]),
    }


def pope_by_category(
    preds: Sequence[str], refs: Sequence[str], categories: Sequence[str]
) -> dict[str, dict[str, float]]:
    """``pope_metrics`` over all rows ("all") and per category (lmms-eval's pope_random / _pop / _adv)."""
    _check(preds, refs, categories)
    out = {"all": pope_metrics(preds, refs)}
    for cat in sorted(set(categories)):
        idx = [i for i, c in enumerate(categories) if c == cat]
        out[cat] = pope_metrics([preds[i] for i in idx], [refs[i] for i in idx])
    return out


def mme_reference(ref: str) -> str:
    """An MME answer as lmms-eval reads it: lower case, stripped, periods dropped ("Yes." is "yes")."""
    return ref.lower().strip().replace(".", "")


def mme_scores(
    preds: Sequence[str], refs: Sequence[str], categories: Sequence[str], question_ids: Sequence[str]
) -> dict[str, object]:
    """MME perception and cognition totals (lmms-eval ``mme_aggregate_results``).

    Per category: acc = mean over images of (right answers / 2) * 100, acc+ = mean over
    images of (both right) * 100, score = acc + acc+; totals sum the category scores.

    Args:
        preds: parsed "yes" / "no" / "other". refs: "Yes" / "No" (periods and case ignored).
        question_ids: the image id each question pair shares.

    Returns:
        ``{"perception": float, "cognition": float, "categories": {cat: {"acc", "acc_plus", "score"}}}``.

    Raises:
        FlowcutError: an image without exactly two questions (MME is scored in pairs).
    """
    _check(preds, refs, categories, question_ids)
    pairs: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for p, r, cat, qid in zip(preds, refs, categories, question_ids, strict=True):
        pairs[cat][qid].append(float(p == mme_reference(r)))
    cats: dict[str, dict[str, float]] = {}
    for cat, by_image in pairs.items():
        bad = [q for q, s in by_image.items() if len(s) != 2]
        if bad:
            raise FlowcutError("mme", f"{len(bad)} images in {cat} lack a question pair, e.g. {bad[0]!r}")
        acc = _mean([sum(s) / 2 * 100 for s in by_image.values()])
        acc_plus = _mean([float(sum(s) == 2) * 100 for s in by_image.values()])
        cats[cat] = {"acc": acc, "acc_plus": acc_plus, "score": acc + acc_plus}
    return {
        "perception": sum(v["score"] for c, v in cats.items() if c in MME_PERCEPTION),
        "cognition": sum(v["score"] for c, v in cats.items() if c not in MME_PERCEPTION),
        "categories": cats,
    }


def _leave_one_out(pred: str, gts: Sequence[str]) -> float:
    # official VQA: for each of the 10 answers, min(1, matches among the other 9 / 3); mean over the 10
    accs = [min(1.0, sum(g == pred for j, g in enumerate(gts) if j != i) / 3) for i in range(len(gts))]
    return _mean(accs)


def _vqav2_clean(text: str) -> str:
    return process_digit_article(process_punctuation(text.replace("\n", " ").replace("\t", " ").strip()))


def vqav2_accuracy(pred: str, answers: Sequence[str]) -> float:
    """VQAv2 soft accuracy of one prediction (lmms-eval ``vqav2_process_results``).

    The prediction and every human answer are whitespace-cleaned, then put through the
    punctuation and digit/article steps, always, as lmms-eval does since its commits b439d829
    (2025-07-16) and 28ea9a11 (2025-08-11); before them it followed the official ``vqaEval.py``,
    which processes the human answers only when they disagree (so "two" scored 0 against ten
    "two"s: the prediction became "2", the answers stayed "two").
    """
    return _leave_one_out(_vqav2_clean(pred), [_vqav2_clean(a) for a in answers])


def textvqa_accuracy(pred: str, answers: Sequence[str]) -> float:
    """TextVQA soft accuracy of one prediction (lmms-eval ``textvqa_process_results``): all answers normalised."""
    return _leave_one_out(normalize_answer(pred), [normalize_answer(a) for a in answers])


def vqa_accuracy(preds: Sequence[str], answers: Sequence[Sequence[str]], textvqa: bool = False) -> float:
    """Mean soft accuracy over questions; ``textvqa`` picks TextVQA's normalisation of the answers."""
    _check(preds, answers)
    one = textvqa_accuracy if textvqa else vqav2_accuracy
    return _mean([one(p, a) for p, a in zip(preds, answers, strict=True)])


_NO_PUNCT = str.maketrans("", "", string.punctuation)


def exact_match(preds: Sequence[str], refs: Sequence[str]) -> float:
    """GQA's exact match: lowercase, ASCII punctuation removed, then equal (no whitespace strip, as HF evaluate)."""
    _check(preds, refs)
    return _mean([float(p.lower().translate(_NO_PUNCT) == r.lower().translate(_NO_PUNCT)) for p, r in zip(preds, refs, strict=True)])  # fmt: skip


def mc_accuracy(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Multiple-choice accuracy: the parsed letter equals the answer letter (ScienceQA's ``exact_match``)."""
    _check(preds, refs)
    return _mean([float(p == r) for p, r in zip(preds, refs, strict=True)])


def mmbench_circular_accuracy(preds: Sequence[str], refs: Sequence[str], indices: Sequence[int]) -> float:
    """MMBench CircularEval: a question (index < 1e6) is a hit only if it and all its rotations (same index % 1e6) are.

    A fraction, as every metric here but MME's; lmms-eval reports it x 100. Unparsed
    predictions ("") count as misses, where lmms-eval's default task asks a GPT judge and its
    ``_static`` variant tries ``extract_mcq_answer``: neither is offline-reproducible.
    """
    _check(preds, refs, indices)
    right: dict[int, bool] = defaultdict(lambda: True)
    for p, r, i in zip(preds, refs, indices, strict=True):
        right[i % 1_000_000] &= p == r
    return _mean([float(right[i]) for i in indices if i < 1_000_000])
