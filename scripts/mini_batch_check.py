"""Does a sample's answer depend on its batch-mates? The first N samples of a suite task, answered
in batches of 8, in batches of 8 shifted by 3 (other neighbours, other padding) and one at a time.

    PYTHONPATH=. .venv/bin/python scripts/mini_batch_check.py suite_gqa sparsevlm@64,flowcut@64:orig 200 [checkpoint]

Prints, per method and batching, the accuracy and the samples whose answer differs from batches of
8. A sweep shards samples over actors however Ray Data cuts the blocks, so any difference here
is a difference between a sweep and its rerun.
"""

from __future__ import annotations

import sys

from mini_quick_eval import method_at  # this folder is on sys.path when a script here runs

from flowcut.models import load
from flowcut.tasks.registry import get_spec, load_examples
from jobs.scoring import sample_score

BATCHINGS = [(8, 0), (8, 3), (1, 0)]  # (batch size, size of the first batch, 0 = a full one)


def answers(adapter, examples: list, m: str, batch: int, first: int) -> dict[str, str]:
    method, budget, adapter.positions = method_at(m)
    cuts = sorted({0, *range(first or batch, len(examples), batch), len(examples)})
    out = {}
    for a, z in zip(cuts, cuts[1:]):
        chunk = examples[a:z]
        texts = adapter.generate([e.image for e in chunk], [e.prompt for e in chunk], method, budget, max_new_tokens=4)
        out.update({e.id: o.text for e, o in zip(chunk, texts, strict=True)})
    return out


def main(bench: str, methods: list[str], n: int, checkpoint: str) -> None:
    adapter = load(checkpoint)
    examples = [e for e in load_examples(bench, limit=n) if e.error is None]
    spec = get_spec(bench)
    for m in methods:
        runs = {k: answers(adapter, examples, m, *k) for k in BATCHINGS}
        base = runs[BATCHINGS[0]]
        for (batch, first), got in runs.items():
            acc = sum(sample_score(spec, None, e, got[e.id])[0] for e in examples) / len(examples)
            diff = [f"{i}: {base[i]!r} -> {got[i]!r}" for i in base if got[i] != base[i]]
            print(f"{bench} {m} batch {batch} first {first or batch}: acc {100 * acc:.1f}, "
                  f"{len(diff)} differ {diff[:3]}", flush=True)  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__.strip().splitlines()[3].strip())
    main(sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]),
         sys.argv[4] if len(sys.argv) > 4 else "flowcut/mini/checkpoint")  # fmt: skip
