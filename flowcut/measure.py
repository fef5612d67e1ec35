"""Every timing, FLOP count and memory figure is taken here, so all methods are measured alike.

FLOPs: 2 per multiply-add, counting the linear layers and the two attention matmuls of every
transformer layer for the tokens it actually processed; for a Llama layer with n tokens,
width d, KV width d_kv (GQA) and SwiGLU width m: 2 * n * (2 d^2 + 2 d d_kv + 3 d m) + 4 * n^2 * d
(prefill, causal mask not discounted), checked against ``torch.utils.flop_counter`` with eager
attention. Decode steps add the same with n = 1 and the cached length as the span, for the
sample's own answer tokens; the LM head once per step. The vision tower (4 d^2 + 2 d m linear
terms, GELU MLP) and the projector are counted too, for the tokens each layer saw.
This is not the papers' unit: FastV, SparseVLM and PDrop count one FLOP per multiply-add
(4 n d^2 + 2 n^2 d + 2 or 3 n d m per layer) and the LLM's prefill only; PDrop's 3.82 TFLOPs
for unpruned LLaVA-1.5-7B is that formula at n = 576. Compare reductions (their ratios agree
within 0.2 points at 64 / 128 / 192 of 576 tokens), not absolute TFLOPs.

Times of a batched call are the batch's, divided by its size: amortised per-sample figures,
not one sample's latency (run a batch of 1 for that). Vision time is all of the adapter's
``prepare`` (image preprocessing, tower, selection, projector, prompt assembly). KV bytes are
the sample's own: the real prompt tokens each layer kept and the sample's own answer tokens.
Peak memory is CUDA's peak allocated since the call's start (weights included) on GPU, and
on CPU the process's RSS high-water mark since it started, which no call can reset.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from transformers import LogitsProcessor

from .outputs import Cost  # noqa: F401 - re-exported: the adapters and their callers import it from here


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Stopwatch:
    """Wall-clock milliseconds of a block, synchronised with the device (CUDA events on GPU)."""

    device: torch.device
    ms: float = 0.0

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if self.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            torch.cuda.synchronize(self.device)
            self.ms += start.elapsed_time(end)
        else:
            t0 = time.perf_counter()
            yield
            self.ms += (time.perf_counter() - t0) * 1000


class FirstTokenClock(LogitsProcessor):
    """Notes the time of ``generate``'s first logits call: the end of prefill."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.first: float | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.first is None:
            _sync(self.device)
            self.first = time.perf_counter()
        return scores


def peak_memory_bytes(device: torch.device) -> int:
    """CUDA peak allocated on GPU; the process RSS high-water mark on CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def llm_layer_flops(n: int, span: int, d: int, d_kv: int, m: int) -> float:
    """FLOPs of one Llama-style decoder layer over ``n`` new tokens attending ``span`` keys."""
    return 2.0 * n * (2 * d * d + 2 * d * d_kv + 3 * d * m) + 4.0 * n * span * d


def vit_layer_flops(n: int, d: int, m: int) -> float:
    """FLOPs of one ViT layer (q, k, v, out projections + 2-matrix MLP) over ``n`` tokens."""
    return 2.0 * n * (4 * d * d + 2 * d * m) + 4.0 * n * n * d
