"""The VQA answer normalisation (the EvalAI processor) that VQAv2 and TextVQA scores depend on.

Follows the official VQA evaluation (Antol et al. 2015; ``vqaEval.py`` of
GT-Vision-Lab/VQA) as ported to EvalAI / MMF and used by lmms-eval
(``lmms_eval/tasks/_task_utils/vqa_eval_metric.py``), quirks included, because a
"fixed" normaliser gives different numbers:

- the period regex reads ``(?!<=\\d)`` (a mistyped look-behind), so it only checks that the
  period is not followed by a digit;
- ``re.sub``'s fourth positional argument is the *count*, and the reference passes
  ``re.UNICODE`` (32) there, so at most 32 periods are stripped;
- whether a punctuation mark is deleted or turned into a space depends on the *input* text.
"""

from __future__ import annotations

import re
from itertools import combinations

PUNCTUATIONS = (
    ";",
    "/",
    "[",
    "]",
    '"',
    "{",
    "}",
    "(",
    ")",
    "=",
    "+",
    "\\",
    "_",
    "-",
    ">",
    "<",
    "@",
    "`",
    ",",
    "?",
    "!",
)
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # sic: see the module docstring
COMMA_STRIP = re.compile(r"(?<=\d)(\,)+(?=\d)")
ARTICLES = frozenset({"a", "an", "the"})
NUMBER_MAP = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip

# The contracted forms the VQA table restores. Its keys are each form with one apostrophe
# dropped (``couldnt've`` and ``couldn'tve`` -> ``couldn't've``, never ``couldntve``).
_CONTRACTED = """
ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've hasn't haven't
he'd he'd've he's how'd how'll how's I'd've I'm I've isn't it'd it'd've it'll ma'am mightn't mightn't've
might've mustn't must've needn't not've o'clock oughtn't 'ow's'at shan't she'd've should've shouldn't
shouldn't've somebody'd've somebody'll somebody's someone'd someone'd've someone'll someone's
something'd something'd've something'll that's there'd there'd've there're there's they'd they'd've
they'll they're they've 'twas wasn't we'd've we've weren't what'll what're what's what've when's where'd
where's where've who'd who'd've who'll who's who've why'll why're why's won't would've wouldn't
wouldn't've y'all y'all'll y'all'd've you'd you'd've you'll you're you've
""".split()


def _contractions() -> dict[str, str]:
    table = {}
    for form in _CONTRACTED:
        marks = [i for i, ch in enumerate(form) if ch == "'"]
        for (i,) in combinations(marks, 1):
            table[form[:i] + form[i + 1 :]] = form
    table["somebody'd"] = "somebodyd"  # sic: the one reversed entry of the reference table
    return table


CONTRACTIONS = _contractions()


def process_punctuation(text: str) -> str:
    """Drop or space out punctuation, then strip periods not followed by a digit."""
    out = text
    comma_in_number = COMMA_STRIP.search(text) is not None
    for p in PUNCTUATIONS:
        if p + " " in text or " " + p in text or comma_in_number:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return PERIOD_STRIP.sub("", out, re.UNICODE)  # sic: count=32, as the reference passes it


def process_digit_article(text: str) -> str:
    """Number words to digits, articles dropped, apostrophe-less contractions restored."""
    words = [NUMBER_MAP.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def normalize_answer(answer: str) -> str:
    """The full EvalAI processing of one answer (what lmms-eval applies to every prediction)."""
    text = answer.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(text))
