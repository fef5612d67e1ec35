"""Write the generated suite to disk as HF datasets, load it back, and stream training samples.

Seed rule (train and test never share a scene, since a scene is a function of its seed):
test sample ``i`` uses scene seed ``TEST_SEED0 + i``; train sample ``i`` uses seed ``i`` and
must stay below ``TEST_SEED0`` (``split_seed``). textvqa walks forward to the next seed with text (see
``tasks.text_seed``), which stays inside the same range for any realistic size.

Storage: one ``DatasetDict`` per task under ``<out>/<task>/`` written with ``save_to_disk``
(Arrow files, memory-mapped on load, no HF cache involved), images as ``datasets.Image()``
holding PNG bytes. ``n_test`` counts scenes, so mme holds ``2 * n_test`` rows (its yes/no pairs).

    python -m flowcut.tasks.suite.build --out data/suite --n-test 500
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import datasets
import typer
from tqdm import tqdm

from ...errors import FlowcutError
from .tasks import TASKS, Sample, make_samples

TEST_SEED0 = 10_000_000  # test seeds start here; train seeds are 0 .. TEST_SEED0 - 1
DEFAULT_N_TEST = 500  # per task: enough for +-2.2 % standard error on a 50 % accuracy
SPLITS = ("test", "train")


def split_seed(split: str, i: int) -> int:
    """Scene seed of sample ``i`` of ``split``: test ``TEST_SEED0 + i``, train ``i`` (below ``TEST_SEED0``)."""
    if split not in SPLITS:
        raise FlowcutError("split", f"unknown split {split!r}", sorted(SPLITS))
    if not 0 <= i < TEST_SEED0:
        raise FlowcutError("sample index", f"{i} is outside [0, {TEST_SEED0})")
    return TEST_SEED0 + i if split == "test" else i


def default_root() -> Path:
    """Where the suite lives unless told: ``$FLOWCUT_SUITE_DIR`` or ``data/suite``."""
    return Path(os.environ.get("FLOWCUT_SUITE_DIR", "data/suite"))


def suite_fingerprint(task: str, root: Path | None = None) -> str | None:
    """The ``datasets`` fingerprint of a built task's test split (a hash of its rows), None when unbuilt.

    Job ids include it, so a store never resumes or ranks results of another build of the suite.
    """
    try:
        state = json.loads((Path(root or default_root()) / task / "test" / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return state.get("_fingerprint")


def _png(sample: Sample) -> Sample:
    buf = io.BytesIO()
    sample["image"].save(buf, format="PNG")
    return sample | {"image": {"bytes": buf.getvalue(), "path": None}}


def _features(row: Sample) -> datasets.Features:
    def feature(v: Any) -> Any:
        if isinstance(v, list):
            return datasets.Sequence(feature(v[0]))
        return datasets.Value({bool: "bool", int: "int64", str: "string"}[type(v)])

    return datasets.Features({k: datasets.Image() if k == "image" else feature(v) for k, v in row.items()})


def _rows(task: str, seeds: Iterator[int], n: int, bar: tqdm | None) -> list[Sample]:
    """Samples from the first ``n`` distinct scenes (textvqa's forward walk can repeat one)."""
    rows: list[Sample] = []
    used: set[int] = set()
    for seed in seeds:
        if len(used) == n:
            break
        samples = make_samples(task, seed)
        if samples[0]["seed"] in used:
            continue
        used.add(samples[0]["seed"])
        rows += [_png(s) for s in samples]
        if bar is not None:
            bar.update()
    return rows


def build_suite(
    out_dir: Path, n_test: int = DEFAULT_N_TEST, n_train: int = 0, progress: bool = True
) -> dict[str, Path]:
    """Generate every task and save it.

    Args:
        out_dir: parent folder; task ``t`` goes to ``out_dir / t``.
        n_test: scenes per task in the "test" split.
        n_train: scenes per task in the "train" split (omitted when 0).

    Returns:
        Task name -> folder of its saved ``DatasetDict``.
    """
    out_dir = Path(out_dir)
    paths = {}
    # a log file gets a line every 10 s, a terminal a live bar
    bar = tqdm(total=len(TASKS) * (n_test + n_train), desc="suite", disable=not progress,
               mininterval=0.2 if sys.stderr.isatty() else 10.0)  # fmt: skip
    for task in TASKS:
        splits = {"test": _rows(task, (split_seed("test", i) for i in range(TEST_SEED0)), n_test, bar)}
        if n_train:
            splits["train"] = _rows(task, (split_seed("train", i) for i in range(TEST_SEED0)), n_train, bar)
        dd = datasets.DatasetDict(
            {k: datasets.Dataset.from_list(v, features=_features(v[0])) for k, v in splits.items()}
        )
        paths[task] = out_dir / task
        dd.save_to_disk(str(paths[task]))
    bar.close()
    return paths


def load_suite_task(task: str, split: str, root: Path | None = None) -> datasets.Dataset:
    """One split of one task as written by ``build_suite`` (images decode to PIL on access)."""
    if task not in TASKS:
        raise FlowcutError("task", f"unknown suite task {task!r}", sorted(TASKS))
    path = Path(root or default_root()) / task
    if not path.exists():
        raise FlowcutError("suite", f"{path} not found; run python -m flowcut.tasks.suite.build --out {path.parent}")
    dd = datasets.load_from_disk(str(path))
    if split not in dd:
        raise FlowcutError("split", f"{task} has no split {split!r}", sorted(dd))
    return dd[split]


def iter_train_samples(seed0: int = 0, tasks: Sequence[str] = TASKS) -> Iterator[Sample]:
    """An endless stream of train samples: for seed ``seed0``, ``seed0 + 1``, ... one sample per task.

    mme contributes its yes/no pair as two consecutive samples; a textvqa scene already used
    (the forward walk of ``text_seed``) is skipped. Stops with a FlowcutError at ``TEST_SEED0``.
    """
    last_text = -1
    for i in range(seed0, TEST_SEED0 + 1):
        seed = split_seed("train", i)
        for task in tasks:
            samples = make_samples(task, seed)
            if task == "textvqa":
                if samples[0]["seed"] <= last_text:
                    continue
                last_text = samples[0]["seed"]
                if last_text >= TEST_SEED0:
                    raise FlowcutError("train seed", "textvqa walked into the test range")
            yield from samples


def main(
    out: Path = typer.Option(Path("data/suite"), help="output folder, one DatasetDict per task"),
    n_test: int = typer.Option(DEFAULT_N_TEST, help="test scenes per task"),
    n_train: int = typer.Option(0, help="train scenes per task (0: no train split)"),
) -> None:
    """Build the generated benchmark suite."""
    datasets.disable_progress_bars()  # one tqdm bar for the whole build, not one per saved split
    for task, path in build_suite(out, n_test, n_train).items():
        typer.echo(f"{task}: {path}")


if __name__ == "__main__":
    typer.run(main)
