"""FakeVLM: a stand-in for a model adapter so the queue, Ray pipeline, store and API test in seconds.

Deterministic answers (a function of the question, method and budget), a configurable
delay per sample, and an optional crash on a chosen sample: ``raise`` (the batch errors),
or ``kill`` (SIGKILL of the process holding it, once, marked by a file so the retry lives).

Model names in specs: ``fake`` or ``fake:delay=0.05,crash=<sample_id>,mode=kill,marker=/tmp/x``.

It brings its own stand-in methods (``make_method``): it prunes nothing, so an actor holding
it never imports torch, and a pool of them starts in the time Ray takes, not torch's.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowcut.outputs import Cost, SampleOutput

ANSWERS = ("yes", "no", "red", "blue", "2", "A")


@dataclass(frozen=True)
class FakeMethod:
    """What FakeVLM reads of a method: its name (the spec was validated against the real registry)."""

    name: str


@dataclass
class FakeVLM:
    delay: float = 0.0
    crash: str | None = None
    mode: str = "raise"
    marker: str | None = None
    log: str | None = None  # append every sample id it answers to this file (tests count recomputation)
    patches: int = 576
    model_type: str = "fake"

    @classmethod
    def from_name(cls, name: str) -> FakeVLM:
        """Parse ``fake[:key=value,...]``."""
        opts = dict(kv.split("=", 1) for kv in name.partition(":")[2].split(",") if kv)
        return cls(delay=float(opts.get("delay", 0.0)), crash=opts.get("crash"), mode=opts.get("mode", "raise"),
                   marker=opts.get("marker"), log=opts.get("log"))  # fmt: skip

    def make_method(self, name: str, **_: Any) -> FakeMethod:
        return FakeMethod(name)

    def visual_tokens(self, image: object) -> int:
        return self.patches

    def before_batch(self, sample_ids: list[str]) -> None:
        if self.log:
            with open(self.log, "a") as f:
                f.write("".join(f"{s}\n" for s in sample_ids))
        if self.crash is None or self.crash not in sample_ids:
            return
        if self.mode == "kill":
            if self.marker and Path(self.marker).exists():
                return  # crashed once already: the retried batch goes through
            if self.marker:
                Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError(f"FakeVLM crash on sample {self.crash}")

    def generate(self, images: list, questions: list[str], method: Any, budget: int, max_new_tokens: int = 8,
                 **_: object) -> list[SampleOutput]:  # fmt: skip
        outs = []
        for q in questions:
            time.sleep(self.delay)
            h = int(hashlib.sha256(f"{q}|{method.name}|{budget}".encode()).hexdigest(), 16)
            keep = min(budget or self.patches, self.patches)
            kept = sorted(range(self.patches))[:keep]
            cost = Cost(vision_ms=self.delay * 100, prefill_ms=self.delay * 600, decode_ms=self.delay * 300,
                        total_ms=self.delay * 1000, flops=1e9 * keep, prefill_flops=8e8 * keep, kv_cache_bytes=1024 * keep,
                        peak_memory_bytes=1 << 20, llm_layer_visual_tokens=[keep] * 4)  # fmt: skip
            outs.append(SampleOutput(text=ANSWERS[h % len(ANSWERS)], kept=[kept], grids=[(24, 24)], cost=cost))
        return outs
