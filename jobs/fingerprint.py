"""Revisions of local files: what pins a checkpoint folder or a dataset override to its contents.

A job's id must change when the files it reads change, or a re-submitted spec would resume (and
rank) old results as if they were the new files'. Hashing a 14 GB checkpoint whole would take a
minute on every expansion, so a large file is sampled instead. A safetensors file is sampled per
tensor (its header, and the start, middle and end of every tensor's bytes): a fine-tune that
touches only the projector changes the projector's samples, however small it is beside the LM.
Any other large file contributes its size and evenly spaced samples.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

WHOLE = 64 << 20  # files up to this size are hashed whole
SAMPLES, SAMPLE = 32, 1 << 20  # larger ones: this many evenly spaced reads of this size
TENSOR_SAMPLE = 4096  # bytes read at the start, middle and end of each tensor of a large safetensors file


def files_revision(files: Iterable[Path], root: Path) -> str:
    """8 hex digits over ``files``' names (relative to ``root``), sizes and contents.

    Cached per (name, size, mtime) of every file, so an unchanged set is stat-ed, not read.
    """
    stats = []
    for f in sorted(files):
        st = f.stat()
        stats.append((f.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    return _revision(root.resolve(), tuple(stats))


@lru_cache(maxsize=256)
def _revision(root: Path, stats: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for name, size, _ in stats:
        h.update(f"{name}\0{size}\0".encode())
        with open(root / name, "rb") as f:
            if size <= WHOLE:
                h.update(f.read())
                continue
            for chunk in _tensor_samples(f, size) if name.endswith(".safetensors") else _even_samples(f, size):
                h.update(chunk)
    return h.hexdigest()[:8]


def _even_samples(f, size: int) -> Iterator[bytes]:  # noqa: ANN001 - a binary file
    for k in range(SAMPLES):
        f.seek((size - SAMPLE) * k // (SAMPLES - 1), os.SEEK_SET)
        yield f.read(SAMPLE)


def _tensor_samples(f, size: int) -> Iterator[bytes]:  # noqa: ANN001 - a binary file
    """The header, then three windows of every tensor; evenly spaced samples if the header does not parse."""
    try:
        (n,) = struct.unpack("<Q", f.read(8))
        header = f.read(n) if 8 + n <= size else b""
        spans = sorted(v["data_offsets"] for k, v in json.loads(header).items() if k != "__metadata__")
    except (struct.error, ValueError, TypeError, KeyError, AttributeError):
        yield from _even_samples(f, size)
        return
    yield header
    for begin, end in spans:
        length = end - begin
        for at in sorted({0, max(0, length // 2 - TENSOR_SAMPLE // 2), max(0, length - TENSOR_SAMPLE)}):
            f.seek(8 + n + begin + at, os.SEEK_SET)
            yield f.read(min(TENSOR_SAMPLE, length))


def clear_cache() -> None:
    """Forget cached revisions (a file rewritten within the file system's mtime resolution)."""
    _revision.cache_clear()
