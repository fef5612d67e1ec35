"""A benchmark as data (``BenchmarkSpec``) and one dataset row as a model input (``Example``).

``to_example`` never raises on a bad row: a missing or undecodable image, an empty question
or an answer in an unknown format becomes an ``Example`` with ``error`` set, so one broken
row is reported and skipped instead of stopping a run of thousands.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ..errors import FlowcutError
from ..images import check_image, open_image, read_bytes
from .parsers import DEFAULT_PARSER

ANSWER_FORMATS = ("yesno", "text", "answers", "letter", "choice-index")


@dataclass
class Example:
    """One question ready for a model.

    Attributes:
        id: the row's id column (or its position where the dataset has none).
        image: RGB image, or None when ``error`` is set.
        question: the question column as stored.
        reference: the answer to score against: a string, or the list of human answers (VQA).
        error: why the row cannot be used ("image: missing", ...), or None.
        prompt: the full model text built from the spec's template.
        options: option letter -> text for multiple choice, else empty.
        meta: what metrics group by: ``category``, ``index`` (MMBench), ``pair`` (MME image id).
        image_bytes: the row's encoded image as stored (PNG, JPEG...), when it came as bytes: the
            service ships these to its actors instead of re-encoding ``image``.
    """

    id: str
    image: Image.Image | None
    question: str
    reference: str | list[str] | None
    error: str | None = None
    prompt: str = ""
    options: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    image_bytes: bytes | None = None


Metric = Callable[[Sequence[str], Sequence[Example]], dict[str, float]]


@dataclass(frozen=True)
class BenchmarkSpec:
    """How to load, prompt, parse and score one benchmark.

    Attributes:
        name: registry key.
        path: HF dataset id (``load_dataset(path, config, split=...)``) or ``"suite:<task>"``.
        split: default split; ``splits`` lists those accepted.
        question, answer, id: column names (``id`` None: the row position is the id).
        prompt: ``str.format`` template over ``question``, ``Question`` (capitalised, as
            lmms-eval's TextVQA does), ``options`` ("A. x" lines), ``hint`` (MMBench's
            "<hint> " prefix) and ``context`` (ScienceQA's "Context: <hint>\\n").
        answer_format: how the answer column is checked and turned into a reference (``ANSWER_FORMATS``).
        style: the parser rule to apply (``parsers.STYLES``); ``parser`` the default ``name-version``.
        metric: ``(parsed predictions, examples) -> {name: value}``.
        config: HF config name (lmms-eval's ``dataset_name``).
        category: column grouped by in the metric, if any.
        strip: text removed from the question before prompting (MME's " Please answer yes or no.").
        strip_question: strip the question's whitespace first (lmms-eval's POPE and MME do; the others do not).
        option_letters: columns holding the options (MMBench "ABCD"); ``choices``: a list column (ScienceQA).
        images_config, image_key: GQA keeps images in a second config, joined on ``image_key`` = its ``id``.
    """

    name: str
    path: str
    split: str
    splits: tuple[str, ...]
    question: str
    answer: str
    id: str | None
    prompt: str
    answer_format: str
    style: str
    metric: Metric = field(repr=False, compare=False)
    parser: str = DEFAULT_PARSER
    config: str | None = None
    image: str = "image"
    category: str | None = None
    strip: str = ""
    strip_question: bool = False
    option_letters: str = ""
    choices: str | None = None
    images_config: str | None = None
    image_key: str | None = None


class _BadRow(Exception):
    """A row problem that becomes ``Example.error``."""


def _present(value: object) -> bool:
    # MMBench stores missing hints and options as None, NaN or the string "nan"
    if value is None or value == "nan":
        return False
    return not (isinstance(value, float) and math.isnan(value))


def _options(spec: BenchmarkSpec, row: Mapping[str, Any]) -> dict[str, str]:
    if spec.option_letters:
        # lmms-eval's create_options_prompt also drops an empty option (``if row_data[cand]``)
        return {k: str(row[k]) for k in spec.option_letters if k in row and row[k] != "" and _present(row[k])}
    if spec.choices:
        choices = row.get(spec.choices)
        if not isinstance(choices, list) or len(choices) < 2:
            raise _BadRow(f"{spec.choices}: expected a list of at least 2 options, got {choices!r}")
        return {chr(ord("A") + i): str(c) for i, c in enumerate(choices)}
    return {}


def _reference(spec: BenchmarkSpec, value: object, options: dict[str, str]) -> str | list[str]:
    fmt = spec.answer_format
    if fmt == "yesno" and isinstance(value, str) and value.lower().strip().replace(".", "") in ("yes", "no"):
        return value
    if fmt == "text" and isinstance(value, str) and value.strip():
        return value
    if fmt == "letter" and isinstance(value, str) and value in options:
        return value
    if fmt == "choice-index" and isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(options):
        return chr(ord("A") + value)
    if fmt == "answers" and isinstance(value, list) and value:
        # VQAv2 stores {"answer", "answer_confidence", "answer_id"} dicts, TextVQA plain strings
        answers = [a.get("answer") if isinstance(a, dict) else a for a in value]
        if all(isinstance(a, str) for a in answers):
            return [str(a) for a in answers]
    raise _BadRow(f"{spec.answer}: unknown answer format for {fmt!r}: {value!r:.80}")


def _image(value: object, decode: bool = True) -> tuple[Image.Image | None, bytes | None]:
    """The decoded RGB image, and the row's encoded bytes when it stored them.

    ``decode=False``: encoded bytes (stored, or read from the row's path) are only checked
    (``check_image``) and the image comes back None; an already decoded image is kept.
    """
    if value is None:
        raise _BadRow("image: missing")
    try:
        if isinstance(value, Image.Image):
            return value.convert("RGB"), None
        if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
            raw = value.get("bytes")
            if not decode:
                if not isinstance(raw, bytes):
                    raw = read_bytes(value["path"])
                check_image(raw)
                return None, raw
            return open_image(raw or value["path"]), raw if isinstance(raw, bytes) else None
    except FlowcutError as err:
        raise _BadRow(str(err)) from None
    except OSError as err:  # a PIL image whose data fails on load
        raise _BadRow(f"image: cannot decode ({type(err).__name__})") from None
    raise _BadRow(f"image: unsupported value {type(value).__name__}")


def to_example(spec: BenchmarkSpec, row: Mapping[str, Any], position: int | None = None,
               decode: bool = True) -> Example:  # fmt: skip
    """Turn one dataset row into an ``Example``; problems go to ``error``, never raised.

    Args:
        position: the row's index, used as id when the dataset has no id column.
        decode: False leaves ``image`` None where the row has encoded bytes (``image_bytes``
            then holds them, checked but not decoded): for the service, whose actors decode.
    """
    rid = str(row.get(spec.id) if spec.id else position)
    question = row.get(spec.question)
    meta: dict[str, Any] = {"category": row.get(spec.category)} if spec.category else {}
    if spec.option_letters:
        meta["index"] = row.get(spec.id) if spec.id else position  # MMBench CircularEval groups on it
    if spec.strip:
        meta["pair"] = rid  # MME: both questions of an image share the id
    ex = Example(rid, None, question if isinstance(question, str) else "", None, meta=meta)
    try:
        if not isinstance(question, str) or not question.strip():
            raise _BadRow(f"{spec.question}: empty question")
        ex.options = _options(spec, row)
        ex.reference = _reference(spec, row.get(spec.answer), ex.options)
        ex.prompt = spec.prompt.format(**_fields(spec, question, ex.options, row.get("hint")))
        ex.image, ex.image_bytes = _image(row.get(spec.image), decode)
    except _BadRow as err:
        ex.error, ex.image = str(err), None
    return ex


def _fields(spec: BenchmarkSpec, question: str, options: dict[str, str], hint: object) -> dict[str, str]:
    # whitespace as lmms-eval's doc_to_text leaves it: POPE and MME strip the question (MME before
    # dropping its suffix), the others use it as stored
    q = question.strip() if spec.strip_question else question
    if spec.strip:
        q = q.replace(spec.strip, "")
    return {
        "question": q,
        "Question": q.capitalize(),
        "options": "\n".join(f"{k}. {v}" for k, v in options.items()),
        "hint": f"{hint} " if _present(hint) else "",  # MMBench: any hint but None / NaN / "nan", "" too
        "context": f"Context: {hint}\n" if isinstance(hint, str) and hint else "",  # ScienceQA: ``if context``
    }
