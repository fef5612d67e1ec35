"""The benchmark registry: real lmms-lab datasets and the generated suite, as plain specs.

Paths, splits, prompts and answer handling follow lmms-eval's task YAMLs for LLaVA-1.5
(``lmms_eval/tasks/<task>/*.yaml``, the ``default`` prompt kwargs). Since its commit 4be7ee0e
(2026-07-30) lmms-eval reads the same datasets from ``lmms-lab-encoder/<name>`` (a storage
move, same configs, splits and columns); the ``lmms-lab`` ids stay the default here, and
``path="lmms-lab-encoder/POPE"`` (any benchmark's name) reads the moved copy. Suite tasks use the
same columns and templates as the benchmark each imitates, so one scorer serves both.

    ds = load_benchmark("pope", limit=100)                        # lmms-lab/POPE, split "test"
    ds = load_benchmark("pope", path="tests/data/pope.parquet")   # same schema, local file
    examples = load_examples("suite_count")                       # the suite built under data/suite
    result = score("pope", examples, model_outputs)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FlowcutError
from .metrics import exact_match, mc_accuracy, mmbench_circular_accuracy, mme_scores, pope_by_category, vqa_accuracy
from .parsers import get_parser
from .spec import BenchmarkSpec, Example, to_example

if TYPE_CHECKING:
    import datasets

__all__ = ["BENCHMARKS", "BenchmarkSpec", "Example", "load_benchmark", "load_examples", "score", "to_example"]

SHORT = "{question}\nAnswer the question using a single word or phrase."  # lmms-eval default post_prompt
LETTER = "\nAnswer with the option's letter from the given choices directly."
SUITE_SPLITS = ("test", "train")


def _pope(preds: Sequence[str], exs: Sequence[Example]) -> dict[str, float]:
    cats = [str(e.meta.get("category") or "all") for e in exs]
    res = pope_by_category(preds, [str(e.reference) for e in exs], cats)
    out = dict(res.pop("all"))
    out |= {f"{cat}/{k}": v for cat, m in res.items() for k, v in m.items()}
    return out


def _mme(preds: Sequence[str], exs: Sequence[Example]) -> dict[str, float]:
    res = mme_scores(preds, [str(e.reference) for e in exs], [str(e.meta["category"]) for e in exs],
                     [str(e.meta["pair"]) for e in exs])  # fmt: skip
    out = {"perception": float(res["perception"]), "cognition": float(res["cognition"])}  # type: ignore[arg-type]
    for cat, m in res["categories"].items():  # type: ignore[attr-defined]
        out |= {f"{cat}/{k}": v for k, v in m.items()}
    return out


def _exact(preds: Sequence[str], exs: Sequence[Example]) -> dict[str, float]:
    return {"exact_match": exact_match(preds, [str(e.reference) for e in exs])}


def _vqav2(preds: Sequence[str], exs: Sequence[Example]) -> dict[str, float]:
    return {"accuracy": vqa_accuracy(preds, [list(e.reference or []) for e in exs])}


def _textvqa(preds: Sequence[str], exs: Sequence[Example]) -> dict[str, float]:
    return {"accuracy": vqa_accuracy(preds, [list(e.reference or []) for e in exs], textvqa=True)}


def _mc(preds: Sequence[str], exs: Sequence[Example]) -> dict[str, float]:
    return {"accuracy": mc_accuracy(preds, [str(e.reference) for e in exs])}


def _mmbench(preds: Sequence[str], exs: Sequence[Example]) -> dict[str, float]:
    refs = [str(e.reference) for e in exs]
    circular = mmbench_circular_accuracy(preds, refs, [int(e.meta["index"]) for e in exs])
    return {"accuracy": circular, "accuracy_single": mc_accuracy(preds, refs)}


_YESNO: dict[str, Any] = dict(
    question="question", answer="answer", id="question_id", prompt=SHORT, answer_format="yesno", strip_question=True
)
_MME: dict[str, Any] = dict(_YESNO, style="mme", metric=_mme, category="category", strip=" Please answer yes or no.")
_VQA: dict[str, Any] = dict(
    question="question", answer="answers", id="question_id", answer_format="answers", style="vqa"
)
_SUITE: dict[str, Any] = dict(split="test", splits=SUITE_SPLITS)

_SPECS = [
    BenchmarkSpec(name="pope", path="lmms-lab/POPE", split="test", splits=("test",), **_YESNO, style="pope",
                  metric=_pope, category="category"),
    BenchmarkSpec(name="gqa", path="lmms-lab/GQA", config="testdev_balanced_instructions", split="testdev",
                  splits=("testdev",), question="question", answer="answer", id="id", prompt=SHORT,
                  answer_format="text", style="short", metric=_exact,
                  images_config="testdev_balanced_images", image_key="imageId"),
    BenchmarkSpec(name="mme", path="lmms-lab/MME", split="test", splits=("test",), **_MME),
    BenchmarkSpec(name="scienceqa_img", path="lmms-lab/ScienceQA", config="ScienceQA-IMG", split="test",
                  splits=("test", "validation"), question="question", answer="answer", id=None,
                  prompt="{context}{question}\n{options}" + LETTER, answer_format="choice-index",
                  style="letter-sqa", metric=_mc, category="category", choices="choices"),
    # lmms-eval: f"{hint} {question} {options_prompt}", then "\n" + a post_prompt that itself opens with "\n"
    BenchmarkSpec(name="mmbench_en_dev", path="lmms-lab/MMBench", config="en", split="dev", splits=("dev", "test"),
                  question="question", answer="answer", id="index",
                  prompt="{hint}{question} There are several options:\n{options}\n" + LETTER,
                  answer_format="letter", style="letter-mmbench", metric=_mmbench, category="category",
                  option_letters="ABCD"),
    BenchmarkSpec(name="textvqa_val", path="lmms-lab/textvqa", split="validation",
                  splits=("validation", "test", "train"), **_VQA, prompt=SHORT.replace("{question}", "{Question}"),
                  metric=_textvqa),
    BenchmarkSpec(name="vqav2_val", path="lmms-lab/VQAv2", split="validation", splits=("validation", "testdev", "test"),
                  **_VQA, prompt=SHORT, metric=_vqav2),
    # the generated suite (flowcut.tasks.suite): each prompt equals the sample's "prompt" column
    BenchmarkSpec(name="suite_pope", path="suite:pope", **_SUITE, **_YESNO, style="pope", metric=_pope,
                  category="category"),
    BenchmarkSpec(name="suite_gqa", path="suite:gqa", **_SUITE, question="question", answer="answer",
                  id="question_id", prompt=SHORT, answer_format="text", style="short", metric=_exact, category="kind"),
    BenchmarkSpec(name="suite_count", path="suite:count", **_SUITE, question="question", answer="answer",
                  id="question_id", prompt=SHORT, answer_format="text", style="short", metric=_exact, category="kind"),
    BenchmarkSpec(name="suite_mme", path="suite:mme", **_SUITE, **_MME),
    # no circular rotations in the suite: plain accuracy over the option letters
    BenchmarkSpec(name="suite_mcq", path="suite:mcq", **_SUITE, question="question", answer="answer", id="index",
                  prompt="{question}\n{options}" + LETTER, answer_format="letter", style="letter-mmbench",
                  metric=_mc, category="category", option_letters="ABCD"),
    BenchmarkSpec(name="suite_textvqa", path="suite:textvqa", **_SUITE, **_VQA, prompt=SHORT, metric=_textvqa),
]  # fmt: skip
BENCHMARKS: dict[str, BenchmarkSpec] = {s.name: s for s in _SPECS}


def get_spec(name: str) -> BenchmarkSpec:
    """The spec registered as ``name``; unknown names are a FlowcutError listing the known ones."""
    if name not in BENCHMARKS:
        raise FlowcutError("benchmark", f"unknown benchmark {name!r}", sorted(BENCHMARKS))
    return BENCHMARKS[name]


def _read_parquet(path: Path) -> datasets.Dataset:
    # pyarrow straight into memory: no HF cache files; the "huggingface" schema metadata restores Image features
    import datasets
    import pyarrow.parquet as pq

    if not path.exists():
        raise FlowcutError("path", f"no such file: {path}")
    return datasets.Dataset(datasets.table.InMemoryTable(pq.read_table(path)))


def local_files(name: str, path: str | Path) -> list[Path]:
    """The files benchmark ``name`` reads from a local ``path`` override, [] for a hub id: what pins a job to them.

    Resolved as ``_open`` resolves the override: a parquet file (with GQA's ``<stem>_images.parquet``
    beside it), a saved dataset's folder, a suite root's folder of this task, or a folder that
    ``load_dataset`` reads whole. Hidden entries (``.git``, ``.cache``) and the ``cache-*`` files
    that ``datasets`` may add on its own are left out; symlinked folders are followed.
    """
    source = Path(path)
    if source.is_file():
        side = source.with_name(source.stem + "_images.parquet")
        return [source, side] if source.suffix == ".parquet" and side.is_file() else [source]
    if not source.is_dir():
        return []
    spec = get_spec(name)
    saved = (source / "dataset_dict.json").exists() or (source / "state.json").exists()
    if not saved and spec.path.startswith("suite:") and (source / spec.path.removeprefix("suite:")).is_dir():
        source = source / spec.path.removeprefix("suite:")
    out = []
    for top, dirs, files in os.walk(source, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out += [Path(top) / f for f in files if not f.startswith((".", "cache-"))]
    return out


def _open(spec: BenchmarkSpec, split: str, path: str | Path | None) -> datasets.Dataset:
    import datasets

    from .suite.build import load_suite_task

    source = Path(path) if path is not None else None
    if source is not None and source.suffix == ".parquet":
        return _read_parquet(source)
    if source is not None and (source / "dataset_dict.json").exists():
        return datasets.load_from_disk(str(source))[split]
    if source is not None and (source / "state.json").exists():
        return datasets.load_from_disk(str(source))
    if spec.path.startswith("suite:"):
        return load_suite_task(spec.path.removeprefix("suite:"), split, source)
    return datasets.load_dataset(str(source or spec.path), spec.config, split=split)


def _join_images(spec: BenchmarkSpec, ds: datasets.Dataset, split: str, path: str | Path | None) -> datasets.Dataset:
    """GQA: attach the image of each question from the images config (``<stem>_images.parquet`` beside a local file)."""
    import datasets

    if path is not None and Path(path).suffix == ".parquet":
        side = Path(path).with_name(Path(path).stem + "_images.parquet")
        images = _read_parquet(side) if side.exists() else None
    else:
        images = datasets.load_dataset(str(path or spec.path), spec.images_config, split=split)
    lookup = {}
    if images is not None:
        images = images.cast_column("image", datasets.Image(decode=False))
        lookup = dict(zip(images["id"], images["image"], strict=True))
    column = [lookup.get(k) for k in ds[spec.image_key]]  # a missing image becomes an errored example
    return ds.add_column(spec.image, column, feature=datasets.Image(decode=False))


def load_benchmark(
    name: str, split: str | None = None, path: str | Path | None = None, limit: int | None = None
) -> datasets.Dataset:
    """The rows of a benchmark split, images left undecoded (``to_example`` decodes and catches failures).

    Args:
        name: a key of ``BENCHMARKS``.
        split: one of the spec's ``splits``; default the spec's ``split``.
        path: override of the dataset location: a ``.parquet`` file, a ``save_to_disk`` folder,
            a suite root, or another HF dataset id with the same schema.
        limit: keep the first ``limit`` rows.
    """
    import datasets  # here, not at the top: an evaluation actor needs the specs, not the loaders

    spec = get_spec(name)
    split = split or spec.split
    if split not in spec.splits:
        raise FlowcutError("benchmark", f"unknown split {split!r} for {name}", sorted(spec.splits))
    ds = _open(spec, split, path)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    if spec.images_config and spec.image not in ds.column_names:
        ds = _join_images(spec, ds, split, path)
    if isinstance(ds.features.get(spec.image), datasets.Image):
        ds = ds.cast_column(spec.image, datasets.Image(decode=False))
    return ds


def load_examples(name: str, split: str | None = None, path: str | Path | None = None,
                  limit: int | None = None, decode: bool = True) -> list[Example]:  # fmt: skip
    """``load_benchmark`` then ``to_example`` on every row (errored rows included, with ``error`` set).

    ``decode=False``: images stay encoded in ``image_bytes``, checked but not decoded (the service's
    driver: its actors decode them).
    """
    spec = get_spec(name)
    rows = load_benchmark(name, split, path, limit)
    examples = [to_example(spec, row, i, decode) for i, row in enumerate(rows)]
    # results are keyed by (job, sample id): ids must be unique, but MME's two questions per
    # image share their question_id, so later repeats get "#<k>" (stable for a given dataset)
    seen: dict[str, int] = {}
    for ex in examples:
        k = seen.get(ex.id, 0)
        seen[ex.id] = k + 1
        if k:
            ex.id = f"{ex.id}#{k}"
    return examples


def score(
    name: str, examples: Sequence[Example], outputs: Sequence[str], parser: str | None = None
) -> dict[str, object]:
    """Parse raw model outputs and compute the benchmark's metrics over the usable examples.

    Args:
        outputs: one raw model text per example (ignored where ``example.error`` is set).
        parser: ``name-version`` key; default the spec's.

    Returns:
        The metric values plus ``n`` (scored), ``n_errors`` (skipped rows) and ``parser`` (its key).
    """
    spec = get_spec(name)
    if len(examples) != len(outputs):
        raise FlowcutError("outputs", f"{len(outputs)} outputs for {len(examples)} examples")
    p = get_parser(parser or spec.parser)
    kept = [(e, o) for e, o in zip(examples, outputs, strict=True) if e.error is None]
    preds = [p(spec.style, o, e.options) for e, o in kept]
    result: dict[str, object] = dict(spec.metric(preds, [e for e, _ in kept]))
    return result | {"n": len(kept), "n_errors": len(examples) - len(kept), "parser": p.key}
