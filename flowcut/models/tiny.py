"""Tiny random-weight instances of the real model classes, built in memory (no download).

For tests and for trying the library without weights: the real ``transformers`` classes
with small configs, a word-level tokenizer over a small vocabulary, and the real image
processors. The geometry is LLaVA-1.5's where it matters for pruning (a 336 px CLIP tower
with patch 14: 576 patches), only narrow.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIAL = [
    "<pad>",
    "<s>",
    "</s>",
    "<unk>",
    "<image>",
    "<|vision_start|>",
    "<|image_pad|>",
    "<|vision_end|>",
    "<|im_start|>",
    "<|im_end|>",
]
WORDS = (
    "user assistant what is the colour shape of this image a an there in on left right top bottom yes no "
    "red green blue yellow circle square triangle how many one two three four five text say inst"
).split()


def tiny_tokenizer(words: list[str] | None = None) -> PreTrainedTokenizerFast:
    """A word-level tokenizer: special tokens, single characters and ``words``."""
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,:?!'\"()[]/-\n")
    vocab: dict[str, int] = {}
    for tok in SPECIAL + chars + [w for w in (words or WORDS) if len(w) > 1]:
        vocab.setdefault(tok, len(vocab))
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    specials = "|".join(re.escape(s) for s in SPECIAL)
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(re.compile(f"({specials})").pattern, "isolated"), pre_tokenizers.Whitespace()]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=SPECIAL[4:],
    )
    fast.padding_side = "left"
    return fast


class Bundle:
    """What ``AutoProcessor`` would give: an image processor and a tokenizer."""

    def __init__(self, image_processor: Any, tokenizer: PreTrainedTokenizerFast) -> None:
        self.image_processor, self.tokenizer = image_processor, tokenizer


def _text(tok: PreTrainedTokenizerFast, **kw: Any) -> dict[str, Any]:
    base = dict(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return {**base, **kw}


def _clip(size: int) -> dict[str, Any]:
    return dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=6,
        num_attention_heads=4,
        image_size=size,
        patch_size=14,
        projection_dim=32,
    )


def tiny_model(model_type: str, seed: int = 0, llm_layers: int = 32, size: int = 336) -> tuple[Any, Bundle]:
    """(model, processor) of a tiny random ``model_type``: llava, llava_next or qwen2_vl.

    32 decoder layers like the 7B models, so that LLM-side methods can reach small budgets
    as a layer average (a 4-layer LLM cannot average 64 of 576 tokens).
    """
    from transformers import (
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    torch.manual_seed(seed)
    tok = tiny_tokenizer()
    image_id = tok.convert_tokens_to_ids("<image>")
    crop = {"height": size, "width": size}
    model: Any
    if model_type == "llava":
        cfg = LlavaConfig(
            vision_config=dict(model_type="clip_vision_model", **_clip(size)),
            text_config=dict(model_type="llama", **_text(tok, num_hidden_layers=llm_layers)),
            image_token_id=image_id,
            vision_feature_layer=-2,
            vision_feature_select_strategy="default",
        )
        model = LlavaForConditionalGeneration(cfg)
        ip = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size=crop)
    elif model_type == "llava_next":
        pins = [[size, 2 * size], [2 * size, size], [2 * size, 2 * size]]
        cfg = LlavaNextConfig(
            vision_config=dict(model_type="clip_vision_model", **_clip(size)),
            text_config=dict(model_type="llama", **_text(tok, num_hidden_layers=llm_layers)),
            image_token_id=image_id,
            image_grid_pinpoints=pins,
            vision_feature_layer=-2,
            vision_feature_select_strategy="default",
        )
        model = LlavaNextForConditionalGeneration(cfg)
        ip = LlavaNextImageProcessorPil(size={"shortest_edge": size}, crop_size=crop, image_grid_pinpoints=pins)
    elif model_type == "qwen2_vl":
        text = _text(
            tok,
            num_hidden_layers=llm_layers,
            rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
        )
        cfg = Qwen2VLConfig(
            text_config=dict(model_type="qwen2_vl_text", **text),
            vision_config=dict(
                depth=4,
                embed_dim=32,
                hidden_size=64,
                num_heads=4,
                mlp_ratio=2,
                patch_size=14,
                spatial_merge_size=2,
                temporal_patch_size=2,
                in_channels=3,
            ),
            image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
            vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
            vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"),
        )
        model = Qwen2VLForConditionalGeneration(cfg)
        ip = Qwen2VLImageProcessorPil(min_pixels=size * size, max_pixels=size * size)
    else:
        from ..errors import FlowcutError

        raise FlowcutError("model_type", f"unknown model type {model_type!r}", "llava, llava_next, qwen2_vl")
    return model.eval(), Bundle(ip, tok)
