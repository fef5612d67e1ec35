"""Versioned answer parsers: raw model text -> the answer the metric compares.

The parser is part of the result. lmms-eval compares POPE answers as exact strings after
``lower().strip()`` (``lmms_eval/tasks/pope/utils.py``), so "Yes." is wrong there, while
VLMEvalKit extracts yes/no from the words first (``YOrN_Extraction``), so "Yes." is right;
the same outputs get different POPE scores. Each parser therefore carries a name and a
version that are recorded with every score, and a parser's behaviour never changes under
an existing key: a change is a new version.

A parser maps an answer *style* (set per benchmark in ``registry.BENCHMARKS``) to a rule:

- ``pope``: yes/no compared exactly (lmms-eval POPE).
- ``mme``: yes/no by lmms-eval's ``parse_pred_ans`` (from Otter): "yes"/"no"/"other".
- ``short``: the raw text; GQA's metric ignores case and punctuation itself.
- ``vqa``: the raw text; the VQA metrics apply the EvalAI normalisation themselves.
- ``letter-sqa``: lmms-eval ScienceQA: the text, or its first letter when it reads "X. ...".
- ``letter-mmbench``: lmms-eval MMBench's ``can_infer`` (option letter, else option text);
  "" when neither matches, where lmms-eval would go on to ask a GPT judge (we do not).

Versions of ``lmms-eval``: v1 applied the rules to the raw text. v2 (the default) strips every
output first, as lmms-eval's ``Task.process_results`` caller does for all tasks, and takes a
one-character ScienceQA answer in any case ("b" is B), as ``sqa_process_results`` compares
``pred.lower()`` with the lower-cased target. On outputs our adapters return (already
stripped) the two differ only in that lower-case letter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..errors import FlowcutError
from .vqa_norm import process_punctuation

Options = Mapping[str, str]
Rule = Callable[[str, Options], str]
STYLES = ("pope", "mme", "short", "vqa", "letter-sqa", "letter-mmbench")


def pope_exact(text: str, options: Options) -> str:
    """lmms-eval POPE: ``pred.lower().strip()``; punctuation is kept, so "Yes." stays "yes."."""
    return text.lower().strip()


def mme_otter(text: str, options: Options) -> str:
    """lmms-eval MME ``parse_pred_ans``: periods dropped, then yes/no, y/n, or yes/no in the first 4 chars."""
    pred = text.lower().strip().replace(".", "")
    if pred in ("yes", "no"):
        return pred
    if len(pred) == 1:
        return {"y": "yes", "n": "no"}.get(pred, "other")
    head = pred[:4]
    return "yes" if "yes" in head else "no" if "no" in head else "other"


def yesno_extract(text: str, options: Options) -> str:
    """VLMEvalKit ``YOrN_Extraction``: "yes" if the words hold yes and not no, and vice versa, else "other"."""
    words = process_punctuation(text.lower()).split()
    has_yes, has_no = "yes" in words, "no" in words
    return "yes" if has_yes and not has_no else "no" if has_no and not has_yes else "other"


def raw(text: str, options: Options) -> str:
    """The text unchanged: the metric owns the normalisation."""
    return text


def sqa_letter(text: str, options: Options) -> str:
    """lmms-eval ScienceQA: "A" stays "A"; "B. a dog" -> "B"; anything else stays and will not match."""
    if len(text) >= 2 and text[0].isupper() and text[1] == ".":
        return text[0]
    return text


def sqa_letter_any_case(text: str, options: Options) -> str:
    """lmms-eval ScienceQA as it compares: a one-character answer is its letter in any case ("b" -> "B")."""
    return text.upper() if len(text) == 1 else sqa_letter(text, options)


def _stripped(rule: Rule) -> Rule:
    def run(text: str, options: Options) -> str:
        return rule(text.strip(), options)

    run.__doc__ = f"{rule.__name__} on the stripped text"
    return run


_OPTION_WRAPS = (("", "."), ("", ","), ("", ":"), ("", ")"), ("", ")."), ("(", ")"), ("(", ")."), (":", ""),
                 (":", ","), (":", "."), (":", ")"), (":", ")."))  # fmt: skip


def mmbench_letter(text: str, options: Options) -> str:
    """lmms-eval MMBench ``can_infer``: one option letter among the words, else one option text inside the answer.

    Letters are looked for among A-E (``num_choice=5``) as lmms-eval does; a lone "A" in a
    long answer is skipped as a likely article. Returns "" when nothing is inferred.
    """
    letters = "ABCDE"
    words = [w.strip() for w in text.split()]

    def found(prefix: str = "", suffix: str = "") -> list[str]:
        return [c for c in letters if prefix + c + suffix in words]

    bare = found()
    if len(bare) == 1 and not ("A" in words and len(words) > 3):
        return bare[0]
    for prefix, suffix in _OPTION_WRAPS:
        if len(hit := found(prefix, suffix)) == 1:
            return hit[0]
    lowered = text.lower()
    texts = [k for k, v in options.items() if str(v).lower() in lowered]
    return texts[0] if len(texts) == 1 else ""


@dataclass(frozen=True)
class Parser:
    """A named, versioned set of rules, one per answer style.

    Attributes:
        name, version: recorded with results; ``key`` is ``f"{name}-{version}"``.
        rules: style -> rule ``(text, options) -> parsed answer``.
    """

    name: str
    version: str
    rules: Mapping[str, Rule] = field(repr=False)

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"

    def __call__(self, style: str, text: str, options: Options | None = None) -> str:
        """Parse one raw model output for a benchmark whose answers have ``style``."""
        if style not in self.rules:
            raise FlowcutError("answer style", f"{self.key} has no rule for {style!r}", sorted(self.rules))
        return self.rules[style](text, options or {})


_LMMS_EVAL: dict[str, Rule] = {
    "pope": pope_exact,
    "mme": mme_otter,
    "short": raw,
    "vqa": raw,
    "letter-sqa": sqa_letter,
    "letter-mmbench": mmbench_letter,
}

_LMMS_EVAL_V2: dict[str, Rule] = {
    style: _stripped(rule) for style, rule in (_LMMS_EVAL | {"letter-sqa": sqa_letter_any_case}).items()
}
_YESNO = {"pope": yesno_extract, "mme": yesno_extract}

PARSERS: dict[str, Parser] = {
    p.key: p
    for p in (
        Parser("lmms-eval", "v1", _LMMS_EVAL),
        Parser("lmms-eval", "v2", _LMMS_EVAL_V2),
        # VLMEvalKit-style: yes/no extracted from the words for both yes/no benchmarks, the rest as lmms-eval
        Parser("extract-yesno", "v1", _LMMS_EVAL | _YESNO),
        Parser("extract-yesno", "v2", _LMMS_EVAL_V2 | _YESNO),
    )
}
DEFAULT_PARSER = "lmms-eval-v2"


def get_parser(key: str = DEFAULT_PARSER) -> Parser:
    """A parser by ``name-version`` key; unknown keys are a FlowcutError listing the known ones."""
    if key not in PARSERS:
        raise FlowcutError("parser", f"unknown parser {key!r}", sorted(PARSERS))
    return PARSERS[key]
