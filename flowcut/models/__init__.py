"""Model adapters over the unmodified transformers VLM classes, and how to load them."""

from __future__ import annotations

from typing import Any

from ..errors import FlowcutError
from .base import SampleOutput, VLMAdapter
from .llava import LlavaAdapter
from .llava_next import LlavaNextAdapter
from .qwen2_vl import Qwen2VLAdapter

ADAPTERS: dict[str, type[VLMAdapter]] = {
    cls.model_type: cls for cls in (LlavaAdapter, LlavaNextAdapter, Qwen2VLAdapter)
}


def adapt(model: Any, processor: Any) -> VLMAdapter:
    """Wrap a loaded model in the adapter for its ``config.model_type``."""
    kind = getattr(model.config, "model_type", None)
    if kind not in ADAPTERS:
        raise FlowcutError("model_type", f"unsupported model type {kind!r}", sorted(ADAPTERS))
    return ADAPTERS[kind](model, processor)


def load(name_or_path: str, device: str = "cpu", dtype: str = "auto", revision: str | None = None) -> VLMAdapter:
    """Load a checkpoint the way any llava-hf / Qwen checkpoint loads, or a ``tiny-<type>`` model.

    ``tiny-llava``, ``tiny-llava_next`` and ``tiny-qwen2_vl`` build random tiny models in
    memory; anything else goes to ``from_pretrained`` (a hub name or a local folder), at
    ``revision`` (a hub commit, branch or tag) when given.
    """
    if name_or_path.startswith("tiny-"):
        from .tiny import tiny_model

        model, proc = tiny_model(name_or_path[len("tiny-") :])
        return adapt(model.to(device), proc)
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    try:
        config = AutoConfig.from_pretrained(name_or_path, revision=revision)
    except (OSError, ValueError) as err:
        at = f" at revision {revision}" if revision else ""
        raise FlowcutError("model", f"cannot load {name_or_path!r}{at}: {str(err).splitlines()[0]}") from None
    if config.model_type not in ADAPTERS:
        raise FlowcutError("model_type", f"unsupported model type {config.model_type!r}", sorted(ADAPTERS))
    torch_dtype = getattr(torch, dtype) if dtype != "auto" else "auto"
    model = AutoModelForImageTextToText.from_pretrained(name_or_path, dtype=torch_dtype, revision=revision)
    return adapt(model.to(device), AutoProcessor.from_pretrained(name_or_path, revision=revision))


__all__ = ["ADAPTERS", "SampleOutput", "VLMAdapter", "adapt", "load"]
