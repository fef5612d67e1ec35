"""The per-sample scores the service stores agree with the benchmarks' own metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowcut.tasks.registry import get_spec, load_examples, score
from jobs.scoring import sample_score

DATA = Path(__file__).parents[1] / "data"

# raw outputs per fixture row, with the cases where parsers and metrics disagree most:
# case, stray whitespace, "X." answers, number words, option text instead of a letter
OUTPUTS = {
    "pope": ["yes", "No", " yes\n", "no."],
    "scienceqa_img": ["b", "A. a cat"],
    "mmbench_en_dev": ["A", "The answer is D.", "circle"],
    "gqa": [" Red", "yes."],
    "textvqa_val": ["Stop"],
    "vqav2_val": ["Red ", "two"],
}
HEADLINE = {"pope": "accuracy", "scienceqa_img": "accuracy", "mmbench_en_dev": "accuracy_single",
            "gqa": "exact_match", "textvqa_val": "accuracy", "vqav2_val": "accuracy"}  # fmt: skip


@pytest.mark.parametrize("parser", ["lmms-eval-v1", "lmms-eval-v2"])
@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_sample_scores_average_to_the_benchmark_metric(name: str, parser: str) -> None:
    spec = get_spec(name)
    examples = [e for e in load_examples(name, path=DATA / f"{name}.parquet") if e.error is None]
    outputs = OUTPUTS[name]
    per_sample = [sample_score(spec, parser, e, o)[0] for e, o in zip(examples, outputs, strict=True)]
    metric = score(name, examples, outputs, parser=parser)[HEADLINE[name]]
    assert sum(per_sample) / len(per_sample) == pytest.approx(metric)


def test_v2_reads_what_lmms_eval_reads() -> None:
    """v2 strips and takes a lower-case ScienceQA letter, as lmms-eval does; v1 stays as it was."""
    sqa = get_spec("scienceqa_img")
    first = load_examples("scienceqa_img", path=DATA / "scienceqa_img.parquet")[0]  # answer B
    assert sample_score(sqa, "lmms-eval-v2", first, "b")[:2] == (1.0, "B")
    assert sample_score(sqa, "lmms-eval-v1", first, "b")[:2] == (0.0, "b")
    gqa = get_spec("gqa")
    red = load_examples("gqa", path=DATA / "gqa.parquet")[0]  # answer red
    assert sample_score(gqa, "lmms-eval-v2", red, " Red\n")[0] == 1.0
    assert sample_score(gqa, "lmms-eval-v1", red, " Red\n")[0] == 0.0


def test_mme_reference_with_a_period_scores_as_mme_scores_reads_it() -> None:
    """lmms-eval's MME drops "." from the answer column: "Yes." is a yes, per sample as in the totals."""
    import dataclasses

    spec = get_spec("mme")
    ex = load_examples("mme", path=DATA / "mme.parquet")[0]  # answer Yes
    dotted = dataclasses.replace(ex, reference="Yes.")
    assert sample_score(spec, None, dotted, "Yes")[0] == 1.0
    assert sample_score(spec, None, dotted, "No")[0] == 0.0
    assert (
        score("mme", [dotted, load_examples("mme", path=DATA / "mme.parquet")[1]], ["Yes", "No"])["perception"] == 200.0
    )
