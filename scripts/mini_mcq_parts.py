"""A multiple-choice question in parts: which step a mini checkpoint fails, per category.

    PYTHONPATH=. .venv/bin/python scripts/mini_mcq_parts.py [checkpoint] [N]

Asks each of the first N suite MCQ test samples (default 160) three ways, all 576 tokens,
greedy: the question alone in GQA's short-answer form, the option lookup over the same
options ("Which option says top left?", answered by the right letter), and the MCQ itself.
A model that names the value (short answer) and maps a value to its letter (lookup) but
fails the MCQ cannot chain the two; one that fails the lookup cannot read the options.
``mcq|short`` is the MCQ's accuracy on the samples whose short answer was right.
"""

from __future__ import annotations

import sys
from collections import defaultdict

from flowcut.methods import make_method
from flowcut.models import load
from flowcut.tasks.registry import get_spec, load_examples
from flowcut.tasks.suite.tasks import PROMPT_SUFFIX, show_options
from jobs.scoring import sample_score


def main(checkpoint: str, n: int) -> None:
    adapter = load(checkpoint)
    examples = [e for e in load_examples("suite_mcq", limit=n) if e.error is None]
    hits: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    spec = get_spec("suite_mcq")  # the lookup has the MCQ's options and letter: both scored as sweeps score MCQ

    def ask(images, prompts) -> list[str]:
        outs = adapter.generate(images, prompts, make_method("none"), 576, max_new_tokens=4)
        return [o.text.strip() for o in outs]

    for i in range(0, len(examples), 8):
        chunk = examples[i : i + 8]
        images = [e.image for e in chunk]
        rights = [e.options[e.reference] for e in chunk]
        options = [show_options(list(e.options.values())) for e in chunk]
        short = ask(images, [e.question + PROMPT_SUFFIX["gqa"] for e in chunk])
        lookup = ask(
            images, [f"Which option says {r}?{o}{PROMPT_SUFFIX['mcq']}" for r, o in zip(rights, options, strict=True)]
        )
        mcq = ask(images, [e.prompt for e in chunk])
        for e, right, s, look, m in zip(chunk, rights, short, lookup, mcq, strict=True):
            h = hits[str(e.meta["category"])]
            named = s.lower().rstrip(".") == right
            h["short"].append(named)
            right_letter = sample_score(spec, None, e, m)[0] == 1.0
            h["lookup"].append(sample_score(spec, None, e, look)[0] == 1.0)
            h["mcq"].append(right_letter)
            if named:
                h["mcq|short"].append(right_letter)
    for category, parts in sorted(hits.items()):
        print(category, " ".join(f"{k}={100 * sum(v) / max(1, len(v)):.0f}% (n={len(v)})" for k, v in parts.items()))


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "flowcut/mini/checkpoint", int(args[1]) if len(args) > 1 else 160)
