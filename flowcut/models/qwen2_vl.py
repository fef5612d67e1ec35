"""Qwen2-VL (``Qwen2VLForConditionalGeneration``): a ViT with no [CLS], a 2x2 merger, M-RoPE.

Methods score with the mean query as the relay (FlowCut's rule for towers without [CLS])
and keep whole 2x2 merge groups, i.e. merged tokens; ``budget`` counts merged tokens, the
ones the LLM sees. Kept tokens keep their original M-RoPE positions, which carry the 2D grid
location: the full prompt goes to ``generate`` and the dropped visual tokens are removed
before decoder layer 0 (:class:`~flowcut.models.llm_prune.DecoderPruner`). Images of one
batch are encoded one at a time (their grids may differ) and must give the same number of
visual tokens; the adapter resizes nothing on its own.
"""

from __future__ import annotations

import torch
from PIL import Image
from torch import nn

from ..errors import FlowcutError
from ..measure import vit_layer_flops
from ..methods import Method
from .base import Prepared, VLMAdapter
from .tower import run_qwen2_vl


class Qwen2VLAdapter(VLMAdapter):
    model_type = "qwen2_vl"
    rope_1d = False  # multimodal rotary ids: LLM-side cuts keep the original positions
    template = (
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{question}<|im_end|>\n<|im_start|>assistant\n"
    )

    @property
    def image_token_id(self) -> int:
        return int(self.model.config.image_token_id)

    def grid(self, image: Image.Image) -> torch.Tensor:
        return self.processor.image_processor(image, return_tensors="pt")["image_grid_thw"]

    def visual_tokens(self, image: Image.Image) -> int:
        return int(self.grid(image).prod()) // self.model.config.vision_config.spatial_merge_size**2

    def prepare(self, images: list[Image.Image], questions: list[str], method: Method, budget: int) -> Prepared:
        out = self.processor.image_processor(images, return_tensors="pt")
        grids = out["image_grid_thw"]
        merge = self.model.config.vision_config.spatial_merge_size**2
        counts = [int(g.prod()) // merge for g in grids]
        if len(set(counts)) > 1:
            raise FlowcutError("images", f"a Qwen2-VL batch needs equal visual token counts, got {counts}")
        pixels = out["pixel_values"].to(self.device, self.model.dtype)
        visual = self.model.model.visual
        from transformers.models.qwen2_vl.modeling_qwen2_vl import apply_rotary_pos_emb_vision

        vc = self.model.config.vision_config
        full, kept, flops, scores, start = [], [], [], [], 0
        # the merger (LayerNorm + a 2-layer MLP) runs on every merge group, before any selection
        merger = sum(2.0 * m.in_features * m.out_features for m in visual.merger.modules() if isinstance(m, nn.Linear))
        for b, g in enumerate(grids):
            n_patch = int(g.prod())
            res = run_qwen2_vl(
                visual, pixels[start : start + n_patch], g[None], method, budget, apply_rotary_pos_emb_vision
            )
            start += n_patch
            feats = torch.zeros(counts[b], res.tokens.shape[-1], dtype=res.tokens.dtype, device=self.device)
            if res.tokens.shape[1] != res.indices.shape[1]:
                raise FlowcutError(
                    "method", f"{method.name} builds new tokens, which Qwen2-VL cannot place on its grid"
                )
            feats[res.indices[0]] = res.tokens[0]
            full.append(feats)
            kept.append([res.indices[0]])
            if res.importance is not None:
                scores.append(res.importance[0])
            flops.append(
                sum(vit_layer_flops(n, vc.embed_dim, int(vc.embed_dim * vc.mlp_ratio)) for n in res.layer_tokens)
                + merger * counts[b]
            )
        ids = []
        for q, n in zip(questions, counts):
            row = self.tokenizer(self.template.format(question=q)).input_ids
            at = row.index(self.image_token_id)
            ids.append(row[:at] + [self.image_token_id] * n + row[at + 1 :])
        prep = self.embed_with_images(ids, full, self.image_token_id)
        drop = prep.visual.clone()
        for b, k in enumerate(kept):
            cols = prep.visual[b].nonzero().flatten()[k[0]]
            drop[b, cols] = False
        prep.drop = drop if bool(drop.any()) else None
        pad_id = self.tokenizer.pad_token_id or 0
        input_ids = torch.where(prep.attention_mask.bool(), 0, pad_id)
        width = prep.attention_mask.shape[1]
        for b, row in enumerate(ids):
            input_ids[b, width - len(row) :] = torch.tensor(row)
        prep.extra = {
            "input_ids": input_ids.to(self.device),
            "image_grid_thw": grids.to(self.device),
            "mm_token_type_ids": prep.visual.int(),
        }
        prep.kept = kept
        side = [(int(g[1]) // 2, int(g[2]) // 2) for g in grids]
        prep.grids = [[s] for s in side]
        prep.vision_flops = flops
        prep.labels, prep.patches_per_crop = [torch.arange(n) for n in counts], counts[0]
        prep.patch_scores = scores if len(scores) == len(images) else []
        return prep
