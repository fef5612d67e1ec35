"""File revisions (``jobs.fingerprint``): what a checkpoint folder's or a data override's jobs are pinned to."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from jobs import fingerprint


@pytest.fixture
def small_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files over 1 KiB count as large here, so that a test file is sampled, not hashed whole."""
    monkeypatch.setattr(fingerprint, "WHOLE", 1024)
    monkeypatch.setattr(fingerprint, "SAMPLE", 256)
    monkeypatch.setattr(fingerprint, "TENSOR_SAMPLE", 64)


def revision(path: Path) -> str:
    fingerprint.clear_cache()  # a rewrite within the clock's resolution keeps its mtime
    return fingerprint.files_revision([path], path.parent)


def test_a_fine_tune_of_one_small_tensor_moves_the_revision(tmp_path: Path, small_whole: None) -> None:
    """LLaVA's stage 1 trains the projector alone: a tensor far smaller than the gaps between even samples."""
    g = torch.Generator().manual_seed(0)
    weights = {"lm": torch.randn(64, 1024, generator=g), "projector": torch.randn(4, 4, generator=g)}
    path = tmp_path / "model.safetensors"
    save_file(weights, path)
    base = revision(path)
    save_file(weights | {"projector": weights["projector"] + 1e-3}, path)
    assert revision(path) != base
    tuned = weights["lm"].clone()
    tuned[32, 500] += 1.0  # one weight inside the large tensor, where none of its three windows reads
    save_file(weights | {"lm": tuned}, path)
    assert revision(path) == base  # the price of sampling: a single weight can slip through
    tuned[0, 0] += 1.0  # at a tensor's start
    save_file(weights | {"lm": tuned}, path)
    assert revision(path) != base


def test_other_large_files_are_sampled_evenly(tmp_path: Path, small_whole: None) -> None:
    data = bytes(range(256)) * 400  # 100 KiB, not safetensors: a header that does not parse
    path = tmp_path / "pytorch_model.safetensors"
    path.write_bytes(data)
    base = revision(path)
    path.write_bytes(bytes([data[0] ^ 1]) + data[1:])  # in the first sample
    assert revision(path) != base
    mid = len(data) // 64  # between the first sample (256 bytes at 0) and the second (at ~1/31)
    path.write_bytes(data[:mid] + bytes([data[mid] ^ 1]) + data[mid + 1 :])
    assert revision(path) == base
    path.write_bytes(data[:-1])  # the size
    assert revision(path) != base


def test_names_count_and_an_unchanged_set_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.json").write_text("{}")
    base = revision(tmp_path / "a.json")
    (tmp_path / "a.json").rename(tmp_path / "b.json")
    assert revision(tmp_path / "b.json") != base
    reads = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: reads.append(a[0]) or real_open(*a, **k))
    fingerprint.clear_cache()
    first = fingerprint.files_revision([tmp_path / "b.json"], tmp_path)
    assert fingerprint.files_revision([tmp_path / "b.json"], tmp_path) == first and len(reads) == 1
