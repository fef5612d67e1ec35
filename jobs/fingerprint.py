"""Revisions of local files: what pins a checkpoint folder or a dataset override to its contents.

A job's id must change when the files it reads change, or a re-submitted spec would resume (and
rank) old results as if they were the new files'. Hashing a 14 GB checkpoint whole would take a
minute on every expansion, so a large file contributes its size and evenly spaced samples:
retraining or re-exporting changes the bytes everywhere, hence the samples too.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

WHOLE = 64 << 20  # files up to this size are hashed whole
SAMPLES, SAMPLE = 32, 1 << 20  # larger ones: this many evenly spaced reads of this size


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
            for k in range(SAMPLES):
                f.seek((size - SAMPLE) * k // (SAMPLES - 1), os.SEEK_SET)
                h.update(f.read(SAMPLE))
    return h.hexdigest()[:8]


def clear_cache() -> None:
    """Forget cached revisions (a file rewritten within the file system's mtime resolution)."""
    _revision.cache_clear()
