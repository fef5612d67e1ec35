"""What a ``generate`` call returns per sample: the answer, the kept tokens and their cost.

Plain dataclasses, no torch: the evaluation actor and the stand-in model (``jobs.fake``)
build and read them without importing the model stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Cost:
    """Per-sample figures of one call: times are the batch's divided by its size, FLOPs and KV
    bytes the sample's own, peak memory the call's (see ``flowcut.measure``)."""

    vision_ms: float = 0.0
    prefill_ms: float = 0.0
    decode_ms: float = 0.0
    total_ms: float = 0.0
    flops: float = 0.0
    prefill_flops: float = 0.0
    kv_cache_bytes: int = 0
    peak_memory_bytes: int = 0
    kv_cache_used: bool = True
    llm_layer_visual_tokens: list[int] = field(default_factory=list)

    @property
    def visual_tokens_llm_input(self) -> int:
        return self.llm_layer_visual_tokens[0] if self.llm_layer_visual_tokens else 0

    @property
    def visual_tokens_layer_avg(self) -> float:
        sched = self.llm_layer_visual_tokens
        return sum(sched) / len(sched) if sched else 0.0


@dataclass
class SampleOutput:
    """One answered question: the text, what was kept, and what it cost."""

    text: str
    kept: list[list[int]]
    grids: list[tuple[int, int]]
    cost: Cost
