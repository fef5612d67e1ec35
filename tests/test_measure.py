"""The FLOP formulas in flowcut.measure against PyTorch's own count of the same modules."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaModel

from flowcut.measure import llm_layer_flops, vit_layer_flops


def counted(module: torch.nn.Module, **inputs: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(**inputs)
    return counter.get_total_flops()


def test_llama_layer_flops_are_what_torch_counts() -> None:
    # GQA (2 key/value heads of 4) and SwiGLU: 2 * n * (2 d^2 + 2 d d_kv + 3 d m) + 4 n^2 d per layer
    cfg = LlamaConfig(hidden_size=64, intermediate_size=172, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=32, attn_implementation="eager")  # fmt: skip
    model = LlamaModel(cfg).eval()
    n, d_kv = 10, 2 * 16
    expected = 2 * llm_layer_flops(n, n, 64, d_kv, 172)
    assert counted(model, inputs_embeds=torch.randn(1, n, 64)) == expected


def test_vit_layer_flops_are_what_torch_counts() -> None:
    # 4 d^2 + 2 d m linear terms and the two attention matmuls, over [CLS] + patches
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           image_size=28, patch_size=14, attn_implementation="eager")  # fmt: skip
    model = CLIPVisionModel(cfg).eval()
    n = 1 + (28 // 14) ** 2
    patch_embed = 2 * 4 * 3 * 14 * 14 * 32  # the conv stem: 4 patches of 3 x 14 x 14 pixels into 32
    assert counted(model, pixel_values=torch.randn(1, 3, 28, 28)) == 2 * vit_layer_flops(n, 32, 64) + patch_embed
