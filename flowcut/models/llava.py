"""LLaVA-1.5 (``LlavaForConditionalGeneration``): CLIP tower, MLP projector, Llama.

Vision-side methods run in our loop over the CLIP layers (:mod:`.tower`); the kept tokens
are projected and placed in the prompt, so the LLM sees ``budget`` visual tokens with
re-packed positions, as the reference implementations of FlowCut, VisionZip and VisPruner
feed LLaVA. ``positions = "original"`` instead keeps each kept patch at its own place in the
576-token span and drops the rest before decoder layer 0 (as Qwen2-VL's adapter does), for
methods whose tokens are kept patches (no merged tokens): the mini model was trained with
dropped background patches keeping their positions. LLM-side methods get all 576 tokens and
cut inside the decoder.
"""

from __future__ import annotations

import torch
from PIL import Image
from torch import Tensor

from ..errors import FlowcutError
from ..measure import vit_layer_flops
from ..methods import Method
from .base import Prepared, VLMAdapter
from .tower import TowerResult, cat_or_none, run_clip


class LlavaAdapter(VLMAdapter):
    model_type = "llava"
    template = "USER: <image>\n{question} ASSISTANT:"
    positions = "repack"  # or "original" (module docstring)

    @property
    def image_token_id(self) -> int:
        return int(self.model.config.image_token_id)

    @property
    def patches_per_crop(self) -> int:
        vc = self.model.config.vision_config
        return (vc.image_size // vc.patch_size) ** 2

    def visual_tokens(self, image: Image.Image) -> int:
        return self.patches_per_crop

    def prompt_ids(self, question: str, n_image_tokens: int) -> list[int]:
        """Token ids of the prompt with the one image placeholder expanded to ``n`` tokens."""
        ids = self.tokenizer(self.template.format(question=question)).input_ids
        at = ids.index(self.image_token_id)
        return ids[:at] + [self.image_token_id] * n_image_tokens + ids[at + 1 :]

    def encode_crops(
        self, pixels: Tensor, method: Method, budget: int, valid: Tensor | None = None, one_image: bool = False
    ) -> TowerResult:
        """Run the tower on [B, 3, S, S] crops sharing one budget.

        A ``per_image`` method gets one crop at a time, unless ``one_image`` says that all
        the crops belong to one image (LLaVA-NeXT): then they run as one batch.
        """
        cfg = self.model.config
        tower = self.model.model.vision_tower
        vm = getattr(tower, "vision_model", tower)  # transformers 5 flattened CLIPVisionModel
        if getattr(method, "per_image", False) and pixels.shape[0] > 1 and not one_image:
            parts = [
                run_clip(
                    vm,
                    pixels[i : i + 1],
                    cfg.vision_feature_layer,
                    method,
                    budget,
                    None if valid is None else valid[i : i + 1],
                )
                for i in range(len(pixels))
            ]
            return TowerResult(
                tokens=torch.cat([p.tokens for p in parts]),
                indices=torch.cat([p.indices for p in parts]),
                layer_tokens=[sum(x) for x in zip(*(p.layer_tokens for p in parts))],
                importance=cat_or_none([p.importance for p in parts]),
                row_layer_tokens=[p.layer_tokens for p in parts],
            )
        res = run_clip(vm, pixels, cfg.vision_feature_layer, method, budget, valid)
        res.layer_tokens = [n * pixels.shape[0] for n in res.layer_tokens]
        return res

    def _flops(self, layer_tokens: list[int], n_tokens: int) -> float:
        """Tower FLOPs of one crop whose layers ran on ``layer_tokens``, plus the projector on ``n_tokens``."""
        vc = self.model.config.vision_config
        text_d = self.text_model.config.hidden_size
        per = sum(vit_layer_flops(n, vc.hidden_size, vc.intermediate_size) for n in layer_tokens)
        return per + 2.0 * n_tokens * (vc.hidden_size * text_d + text_d * text_d)

    def tower_flops(self, res: TowerResult, n_crops: int) -> float:
        """Vision tower + projector FLOPs per crop of ``res`` (their mean, if the crops pruned differently)."""
        return self._flops([n // n_crops for n in res.layer_tokens], res.tokens.shape[1])

    def row_tower_flops(self, res: TowerResult) -> list[float]:
        """Vision tower + projector FLOPs of each row of ``res``: its own where the rows ran apart."""
        if res.row_layer_tokens is None:
            return [self.tower_flops(res, res.tokens.shape[0])] * res.tokens.shape[0]
        return [self._flops(counts, res.tokens.shape[1]) for counts in res.row_layer_tokens]

    def prepare(self, images: list[Image.Image], questions: list[str], method: Method, budget: int) -> Prepared:
        ip = self.processor.image_processor
        pixels = ip(images, return_tensors="pt")["pixel_values"].to(self.device, self.model.dtype)
        res = self.encode_crops(pixels, method, budget)
        feats = self.model.model.multi_modal_projector(res.tokens)
        n = self.patches_per_crop
        if self.positions not in ("repack", "original"):
            raise FlowcutError("positions", f"unknown mode {self.positions!r}", ["original", "repack"])
        if self.positions == "original" and feats.shape[1] < n:
            if res.indices.shape[1] != feats.shape[1]:
                raise FlowcutError("positions", f"'original' needs one token per kept patch; {method.name} merges tokens",
                                   "repack")  # fmt: skip
            # every patch slot in place, the kept ones filled; the rest leave before decoder layer 0
            full = feats.new_zeros(feats.shape[0], n, feats.shape[2])
            full.scatter_(1, res.indices[..., None].expand_as(feats), feats)
            gone = torch.ones(feats.shape[0], n, dtype=torch.bool, device=feats.device)
            gone.scatter_(1, res.indices, False)
            prep = self.embed_with_images([self.prompt_ids(q, n) for q in questions], list(full), self.image_token_id)
            prep.drop = torch.zeros_like(prep.visual)
            prep.drop[prep.visual] = gone.flatten()
        else:
            ids = [self.prompt_ids(q, feats.shape[1]) for q in questions]
            prep = self.embed_with_images(ids, list(feats), self.image_token_id)
        side = int(round(n**0.5))
        prep.kept = [[res.indices[i]] for i in range(len(images))]
        prep.grids = [[(side, side)] for _ in images]
        prep.vision_flops = self.row_tower_flops(res)
        if prep.drop is not None:  # the prompt holds every patch slot, in grid order
            prep.labels = [torch.arange(n) for _ in images]
        else:
            pad = res.tokens.shape[1] - res.indices.shape[1]
            prep.labels = [
                torch.cat([res.indices[i].cpu(), torch.full((max(pad, 0),), -1)]) for i in range(len(images))
            ]
        prep.patches_per_crop = self.patches_per_crop
        if res.importance is not None:
            prep.patch_scores = list(res.importance)
        return prep
