"""Per-sample scores from raw outputs, with the parser recorded, so stored outputs can be re-scored."""

from __future__ import annotations

from flowcut.tasks.metrics import exact_match, mme_reference, vqa_accuracy
from flowcut.tasks.parsers import get_parser
from flowcut.tasks.spec import BenchmarkSpec, Example


def sample_score(spec: BenchmarkSpec, parser_key: str | None, ex: Example, output: str) -> tuple[float, str, str]:
    """(score in [0, 1], parsed answer, parser key) of one raw model output.

    Yes/no, letters and short answers score 1 when the parsed answer equals the reference
    (the benchmark-level metrics, e.g. POPE F1 or MME acc+, are aggregated from these rows);
    VQA-style answers get the soft accuracy against the human answers.
    """
    parser = get_parser(parser_key or spec.parser)
    parsed = parser(spec.style, output, ex.options)
    if spec.style == "vqa":
        refs = list(ex.reference or [])
        return (
            vqa_accuracy([parsed], [refs], textvqa="textvqa" in spec.name),
            parsed,
            parser.key,
        )
    if spec.style == "short":
        return exact_match([parsed], [str(ex.reference)]), parsed, parser.key
    if spec.style.startswith("letter"):  # exactly, as the benchmark's own metric (mc_accuracy) compares
        return float(parsed == str(ex.reference)), parsed, parser.key
    if spec.style == "mme":  # as mme_scores reads the answer column: "Yes." is "yes"
        return float(parsed == mme_reference(str(ex.reference))), parsed, parser.key
    return float(parsed == str(ex.reference).strip().lower() or parsed == str(ex.reference)), parsed, parser.key
