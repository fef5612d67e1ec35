"""What the model benchmarks share: 7B-geometry random models, the bound, FLOPs at full depth.

The geometries are LLaVA-1.5-7B and LLaVA-NeXT-7B (llava-hf configs): a CLIP ViT-L/14-336
tower (1024 wide, 24 layers, 16 heads, MLP 4096, 336 px: 576 patches per crop, feature
layer -2 so 23 layers run), the 2-layer GELU projector, and a Llama-7B-wide decoder (4096
wide, 32 heads, SwiGLU 11008, vocabulary 32064). Weights are random, built in memory like
``flowcut/models/tiny.py`` (word-level tokenizer, the real PIL image processors); only the
decoder depth is cut (``depth`` of 32 layers) so that a CPU can run it. ``tiny=True``
shrinks every width for smoke tests (token counts stay those of the real geometry).
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from flowcut.methods import LLMMethod, Method, make_method  # noqa: E402
from flowcut.methods.base import Selection, VisionMethod, VisionTrace  # noqa: E402
from flowcut.models.llava import LlavaAdapter  # noqa: E402
from flowcut.models.llava_next import LlavaNextAdapter  # noqa: E402
from flowcut.models.tiny import WORDS, Bundle, tiny_tokenizer  # noqa: E402

PAPER_DEPTH = 32  # Vicuna-7B decoder layers
LLM_METHODS = ("fastv", "pdrop", "sparsevlm", "vflowopt")  # cut inside the decoder
# LLaVA-1.5's conversation template (vicuna_v1) and a POPE question: ~60 text tokens, which
# puts the unpruned full-depth prefill at FlowCut Table 5's 8.82 TFLOPs
SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. The assistant gives "
          "helpful, detailed, and polite answers to the human's questions.")  # fmt: skip
QUESTION = "Is there a dog in the image?\nAnswer the question using a single word or phrase."
# llava-v1.6 pinpoints: a 672 x 672 image picks 672 x 672, a 2 x 2 grid + the base image = 5 crops
PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]


class Llava15(LlavaAdapter):
    template = SYSTEM + " USER: <image>\n{question} ASSISTANT:"


class LlavaNext(LlavaNextAdapter):
    template = SYSTEM + " USER: <image>\n{question} ASSISTANT:"


@dataclass
class Bound(VisionMethod):
    """The bound: K evenly spaced patches per crop, no scoring at all.

    It goes through the same adapter as every method (full tower, projector, prompt
    layout), so "ratio vs bound" isolates the selection logic. Evenly spaced rather than
    the first K so that LLaVA-NeXT's row newlines come out as for a spread-out selection.
    """

    name = "bound"

    def select(self, trace: VisionTrace, budget: int) -> Selection:
        b, n = trace.feats.shape[:2]
        idx = torch.linspace(0, n - 1, budget).round().long().to(trace.feats.device)
        return Selection(indices=idx.expand(b, budget))


def method(name: str) -> Method:
    """A registered method (LLM-side ones keep exactly K after their cut: a shallow decoder
    cannot reach the papers' layer-average budgets), or the bound."""
    if name == "bound":
        return Bound()
    return make_method(name, budget_mode="after_prune") if name in LLM_METHODS else make_method(name)


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def add_model_args(ap: Any, shared: bool = True) -> None:
    """The build options the model scripts share: ``--device``, ``--dtype`` and (``shared``) ``--shared-layers``."""
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the GPU run: full depth, fp16)")
    ap.add_argument("--dtype", default="auto", choices=("auto", *DTYPES),
                    help="auto: fp16 on CUDA; on a CPU bf16 where it has native bf16 matmuls (AVX512-BF16 / AMX), "
                         "else fp32")  # fmt: skip
    if shared:
        ap.add_argument("--shared-layers", action="store_true",
                        help="build one decoder layer and repeat its weights --depth times (full depth in CPU memory)")  # fmt: skip


def pick_dtype(name: str = "auto", device: str = "cpu") -> torch.dtype:
    """``float32`` / ``bfloat16`` / ``float16``, or ``auto``: fp16 on CUDA (the papers' dtype),
    else bf16 where the CPU multiplies it natively, else fp32.

    Why auto: with AVX512-BF16 or AMX, bf16 matmuls at these shapes ran ~3.7x faster than fp32;
    on an AVX2-only CPU they ran 6.5x *slower* (10 against 65 GFLOP/s, 640x4096 @ 4096x11008).
    """
    if name != "auto":
        return DTYPES[name]
    if device.startswith("cuda"):
        return torch.float16
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    return torch.bfloat16 if ("avx512_bf16" in flags or "amx_bf16" in flags) else torch.float32


def share_layers(adapter: LlavaAdapter, depth: int) -> None:
    """Grow the decoder to ``depth`` layers that all hold layer 0's weights.

    Why: LLaVA's full 32-layer decoder is 6.5 B parameters (26 GB in fp32, over this
    machine's memory), but with random weights nothing depends on the layers being
    different. Each added layer is its own module (its own ``layer_idx``, so its own KV-cache
    slot and pruning hooks) whose parameters are layer 0's tensors, so every layer runs the
    same matmuls on the same shapes, and re-reads a layer's worth of weights from memory
    (~0.8 GB in fp32, far over any CPU cache), as the full model would.
    """
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    lm = adapter.text_model
    cfg, first = lm.config, lm.layers[0]
    shared = dict(first.named_parameters())
    for i in range(len(lm.layers), depth):
        with torch.device("meta"):
            layer = LlamaDecoderLayer(cfg, i)
        for name in list(dict(layer.named_parameters())):
            owner, _, leaf = name.rpartition(".")
            layer.get_submodule(owner)._parameters[leaf] = shared[name]
        lm.layers.append(layer.train(first.training))
    cfg.num_hidden_layers = depth
    if getattr(cfg, "layer_types", None):
        cfg.layer_types = [cfg.layer_types[0]] * depth


def build(geometry: str, depth: int = 2, dtype: torch.dtype = torch.bfloat16, tiny: bool = False,
          seed: int = 0, shared: bool = False, device: str = "cpu") -> tuple[LlavaAdapter, Image.Image]:  # fmt: skip
    """(adapter, image) for ``llava15`` (576 patches) or ``next`` (5 crops, 2880 patches).

    ``shared``: build one decoder layer and grow it to ``depth`` with ``share_layers``.
    ``device``: where the weights are created (``cuda``: drawn on the GPU, not copied there).
    """
    from transformers import (
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

    torch.manual_seed(seed)
    tok = tiny_tokenizer(WORDS + re.findall(r"\w+", SYSTEM + " " + QUESTION))
    vision: dict[str, Any] = dict(model_type="clip_vision_model", hidden_size=1024, intermediate_size=4096,
                                  num_hidden_layers=24, num_attention_heads=16, image_size=336, patch_size=14,
                                  projection_dim=768)  # fmt: skip
    text: dict[str, Any] = dict(model_type="llama", vocab_size=32064, hidden_size=4096, intermediate_size=11008,
                                num_hidden_layers=1 if shared else depth, num_attention_heads=32, num_key_value_heads=32,
                                max_position_embeddings=4096, rms_norm_eps=1e-5, pad_token_id=tok.pad_token_id,
                                bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)  # fmt: skip
    if tiny:
        vision |= dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, projection_dim=32)
        text |= dict(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_attention_heads=4,
                     num_key_value_heads=4)  # fmt: skip
    common = dict(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
                  vision_feature_layer=-2, vision_feature_select_strategy="default")  # fmt: skip
    crop = {"height": 336, "width": 336}
    if geometry == "llava15":
        with torch.device(device):
            model = LlavaForConditionalGeneration._from_config(LlavaConfig(**common), dtype=dtype)
        ip = CLIPImageProcessorPil(size={"shortest_edge": 336}, crop_size=crop)
        adapter: LlavaAdapter = Llava15(model.eval(), Bundle(ip, tok))
        side = 336
    elif geometry == "next":
        cfg = LlavaNextConfig(**common, image_grid_pinpoints=PINPOINTS)
        with torch.device(device):
            model = LlavaNextForConditionalGeneration._from_config(cfg, dtype=dtype)
        ip = LlavaNextImageProcessorPil(size={"shortest_edge": 336}, crop_size=crop, image_grid_pinpoints=PINPOINTS)
        adapter = LlavaNext(model.eval(), Bundle(ip, tok))
        side = 672
    else:
        raise SystemExit(f"unknown geometry {geometry!r} (llava15, next)")
    if shared:
        share_layers(adapter, depth)
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
    return adapter, image


def text_tokens(adapter: LlavaAdapter) -> int:
    """Prompt tokens that are not visual (system prompt, question, template)."""
    return len(adapter.prompt_ids(QUESTION, 0))


def per_layer_visual(m: Method, budget: int, n_visual: int, num_layers: int) -> list[int]:
    """Visual tokens each of ``num_layers`` decoder layers runs on (the DecoderPruner's count)."""
    if not isinstance(m, LLMMethod):
        return [n_visual] * num_layers
    cuts = {s.layer: s.keep for s in m.schedule(budget, num_layers, n_visual)}
    out, count = [], n_visual
    for layer in range(num_layers):
        count = min(count, cuts.get(layer, count))
        out.append(count)
    return out


def full_depth_prefill_flops(adapter: LlavaAdapter, m: Method, budget: int, cost: Any, n_new: int,
                             num_layers: int = PAPER_DEPTH) -> float:  # fmt: skip
    """Prefill FLOPs of the same sample on the full-depth decoder (vision part as measured)."""
    sched = cost.llm_layer_visual_tokens
    n_vis = sched[0]
    prompt = text_tokens(adapter) + n_vis
    llm_here = adapter._llm_flops(prompt, sched, n_vis, n_new)[0]
    vision = cost.prefill_flops - llm_here
    full = adapter._llm_flops(prompt, per_layer_visual(m, budget, n_vis, num_layers), n_vis, n_new)[0]
    return vision + full


def median(xs: list[float]) -> float:
    return statistics.median(xs)


class Timer:
    """Accumulated wall seconds of a callable, for wrapping a method's own entry points."""

    def __init__(self) -> None:
        self.s = 0.0

    def wrap(self, fn: Any) -> Any:
        def timed(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.s += time.perf_counter() - t0

        return timed


def machine() -> str:
    import os
    import platform

    import transformers

    cpu = "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if torch.cuda.is_available():
        cpu += f" | {torch.cuda.get_device_name()}"
    return (f"{platform.node()} | nproc {os.cpu_count()} | {cpu} | torch {torch.__version__} "
            f"({torch.get_num_threads()} threads) | transformers {transformers.__version__} | "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | load {os.getloadavg()[0]:.2f}")  # fmt: skip


__all__ = [
    "DTYPES",
    "Bound",
    "LlavaAdapter",
    "LlavaNextAdapter",
    "add_model_args",
    "build",
    "pick_dtype",
    "machine",
    "method",
    "median",
    "share_layers",
]
