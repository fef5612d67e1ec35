"""Quick accuracy check of a mini checkpoint on the first N test samples of each suite task.

    PYTHONPATH=. .venv/bin/python scripts/mini_quick_eval.py 40 none,random@64,flowcut@64 [checkpoint] [--by-category] [--json=PATH]

``--by-category`` adds a line per task and method with the accuracy of each question kind
(the task's category column: GQA colour / shape / position / relation, count by colour / shape...).
``--json=PATH`` also writes the accuracies (task -> method -> %, and the sample count) to PATH,
as ``flowcut/mini/checkpoint/metrics.json`` records the shipped checkpoint's.
A ``:orig`` suffix (``random@192:orig``) keeps the kept patches at their original positions
instead of re-packing them (``LlavaAdapter.positions``).

No queue and no store: the adapter's ``generate`` and the service's own scorer, so the
figures match a sweep's on the same samples. Use it between training runs; sweeps are for
the reported tables.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from flowcut.methods import METHODS, LLMMethod, Method, make_method
from flowcut.models import load
from flowcut.tasks.registry import get_spec, load_examples
from jobs.scoring import sample_score

TASKS = ["suite_pope", "suite_gqa", "suite_count", "suite_mme", "suite_mcq", "suite_textvqa"]


def method_at(m: str) -> tuple[Method, int, str]:
    """``name@budget[:orig]`` -> (method, budget, the adapter's ``positions``); no budget = all 576."""
    name, _, rest = m.partition("@")
    b, _, mode = rest.partition(":")
    # the 4-layer LM cannot average 64 over its layers: budget after the last cut, as the specs do
    opts = {"budget_mode": "after_prune"} if issubclass(METHODS[name], LLMMethod) else {}
    return make_method(name, **opts), int(b) if b else 576, "original" if mode == "orig" else "repack"


def main(n: int, methods: list[str], checkpoint: str, by_category: bool = False, out: str | None = None) -> None:
    adapter = load(checkpoint)
    table: dict[str, dict[str, float]] = {}
    for bench in TASKS:
        examples = [e for e in load_examples(bench, limit=n) if e.error is None]
        spec, row = get_spec(bench), [bench]
        for m in methods:
            method, budget, adapter.positions = method_at(m)
            scores = []
            for i in range(0, len(examples), 8):
                chunk = examples[i : i + 8]
                outs = adapter.generate(
                    [e.image for e in chunk], [e.prompt for e in chunk], method, budget, max_new_tokens=4
                )  # fmt: skip
                scores += [sample_score(spec, None, e, o.text)[0] for e, o in zip(chunk, outs, strict=True)]
            acc = 100 * sum(scores) / len(scores)
            table.setdefault(bench, {})[m] = round(acc, 2)
            row.append(f"{m}={acc:.0f}")
            if by_category:
                per = defaultdict(list)
                for e, s in zip(examples, scores, strict=True):
                    per[str(e.meta.get("category") or "all")].append(s)
                cells = [f"{c}={100 * sum(v) / len(v):.0f}% (n={len(v)})" for c, v in sorted(per.items())]
                print(f"  {bench} {m}: " + " ".join(cells), flush=True)
        print(" ".join(row), flush=True)
    if out:
        record = {"checkpoint": checkpoint, "samples_per_task": n, "accuracy": table,
                  "command": "PYTHONPATH=. .venv/bin/python " + " ".join(sys.argv)}  # fmt: skip
        Path(out).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    json_out = next((f.removeprefix("--json=") for f in flags if f.startswith("--json=")), None)
    if len(args) < 2 or {f for f in flags if not f.startswith("--json=")} - {"--by-category"}:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    main(
        int(args[0]),
        args[1].split(","),
        args[2] if len(args) > 2 else "flowcut/mini/checkpoint",
        "--by-category" in flags,
        json_out,
    )
