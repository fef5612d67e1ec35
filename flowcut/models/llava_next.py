"""LLaVA-NeXT (``LlavaNextForConditionalGeneration``): AnyRes crops, unpad, row newlines.

The budget is per image and is spread evenly over its crops (base image + grid crops),
as the papers count LLaVA-NeXT budgets (e.g. 160 = 32 x 5); a remainder goes to the first
crops. A crop's patches that the model's unpadding discards (the padded margin of grid
crops) are never candidates, so the unpruned count is the model's own patch count (not
crops x 576) and every image sends exactly ``budget`` patch tokens. Each crop is pruned
on its own; the kept tokens are laid out the way the model's ``pack_image_features`` lays
out all of them (we run it on position labels to learn that order), and a row's newline
token survives iff its row keeps a patch, so the unpruned case is the model's own input.
"""

from __future__ import annotations

import torch
from PIL import Image
from torch import Tensor

from ..errors import FlowcutError
from ..methods import Method
from .base import Prepared
from .llava import LlavaAdapter


def crop_budgets(budget: int, capacity: list[int]) -> list[int]:
    """Split a per-image budget over crops: equal shares, remainder to the first crops;
    a crop with fewer valid patches than its share passes the excess on."""
    shares = [0] * len(capacity)
    left, open_ = budget, [i for i, c in enumerate(capacity) if c > 0]
    while left > 0 and open_:
        base, rem = divmod(left, len(open_))
        for rank, i in enumerate(open_):
            add = min(base + (rank < rem), capacity[i] - shares[i])
            shares[i] += add
            left -= add
        open_ = [i for i in open_ if shares[i] < capacity[i]]
    return shares


class LlavaNextAdapter(LlavaAdapter):
    model_type = "llava_next"
    template = "[INST] <image>\n{question} [/INST]"

    def n_crops(self, image: Image.Image) -> int:
        from transformers.models.llava_next.modeling_llava_next import image_size_to_num_patches

        cfg = self.model.config
        return int(
            image_size_to_num_patches(
                (image.height, image.width), cfg.image_grid_pinpoints, cfg.vision_config.image_size
            )
        )

    def visual_tokens(self, image: Image.Image) -> int:
        seq = self.layout(self.n_crops(image), torch.tensor([image.height, image.width]))
        return int((seq >= 0).sum())

    def valid_patches(self, n_crops: int, size: Tensor) -> Tensor:
        """[n_crops, N] bool: patches that survive the model's unpadding."""
        seq = self.layout(n_crops, size)
        valid = torch.zeros(n_crops * self.patches_per_crop, dtype=torch.bool)
        valid[seq[seq >= 0]] = True
        return valid.view(n_crops, -1)

    def layout(self, n_crops: int, size: Tensor) -> Tensor:
        """[L] packed order of one image: crop * N + patch for patches, -1 for newlines."""
        n = self.patches_per_crop
        labels = torch.arange(n_crops * n, dtype=torch.float32).view(n_crops, n, 1)
        seq, _ = self.model.model.pack_image_features(
            [labels], size[None], vision_feature_select_strategy="default", image_newline=torch.tensor([-1.0])
        )
        return seq[0][:, 0].long()

    def prepare(self, images: list[Image.Image], questions: list[str], method: Method, budget: int) -> Prepared:
        out = self.processor.image_processor(images, return_tensors="pt")
        pixels = out["pixel_values"].to(self.device, self.model.dtype)
        sizes = out["image_sizes"]
        n = self.patches_per_crop
        counts = [self.n_crops(img) for img in images]
        if budget < max(counts):
            raise FlowcutError("budget", f"{budget} leaves a crop with no token", f"{max(counts)}..")
        valid = [self.valid_patches(c, sizes[b]) for b, c in enumerate(counts)]
        # crops that share a budget run together through the tower; for a method whose kept
        # set must not depend on other images (per_image), only crops of the same image do,
        # as the reference runs one image's crops as one batch
        per_image = getattr(method, "per_image", False)
        jobs: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for b in range(len(counts)):
            for j, share in enumerate(crop_budgets(budget, valid[b].sum(1).tolist())):
                jobs.setdefault((share, b if per_image else -1), []).append((b, j))
        kept: dict[tuple[int, int], Tensor] = {}
        toks: dict[tuple[int, int], Tensor] = {}
        scores: dict[tuple[int, int], Tensor] = {}
        flops = [0.0] * len(images)
        for (share, _), members in jobs.items():
            crops = torch.stack([pixels[b, j] for b, j in members])
            mask = torch.stack([valid[b][j] for b, j in members]).to(self.device)
            res = self.encode_crops(crops, method, share, mask, one_image=per_image)
            proj = self.model.model.multi_modal_projector(res.tokens)
            per_crop = self.tower_flops(res, len(members))
            for row, key in enumerate(members):
                kept[key], toks[key] = res.indices[row], proj[row]
                flops[key[0]] += per_crop
                if res.importance is not None:
                    scores[key] = res.importance[row]
        feats, ids, kept_out, labels = [], [], [], []
        newline = self.model.model.image_newline
        for b, c in enumerate(counts):
            if any(toks[(b, j)].shape[0] != kept[(b, j)].shape[0] for j in range(c)):
                # the method built its own tokens (VisionZip, VFlowOpt): crop blocks in crop
                # order, no unpad and no newlines, as VisionZip's reference feeds LLaVA-NeXT
                feats.append(torch.cat([toks[(b, j)] for j in range(c)]))
                labels.append(torch.full((feats[-1].shape[0],), -1))
                ids.append(self.prompt_ids(questions[b], feats[-1].shape[0]))
                kept_out.append([kept[(b, j)] for j in range(c)])
                continue
            seq = self.layout(c, sizes[b])
            chosen = torch.zeros(c * n, dtype=torch.bool)
            for j in range(c):
                chosen[j * n + kept[(b, j)].cpu()] = True
            keep_seq, row_has = [], False
            for lab in seq.tolist():
                if lab < 0:
                    if row_has:
                        keep_seq.append(-1)
                    row_has = False
                elif chosen[lab]:
                    keep_seq.append(lab)
                    row_has = True
            rows = []
            for lab in keep_seq:
                if lab < 0:
                    rows.append(newline.to(self.model.dtype))
                else:
                    j, p = divmod(lab, n)
                    pos = int((kept[(b, j)] == p).nonzero()[0])
                    rows.append(toks[(b, j)][pos])
            feats.append(torch.stack(rows))
            labels.append(torch.tensor(keep_seq))
            ids.append(self.prompt_ids(questions[b], len(rows)))
            kept_out.append([kept[(b, j)] for j in range(c)])
        prep = self.embed_with_images(ids, feats, self.image_token_id)
        side = int(round(n**0.5))
        prep.kept = kept_out
        prep.grids = [[(side, side)] * c for c in counts]
        prep.vision_flops = flops
        prep.labels, prep.patches_per_crop = labels, n
        if scores:
            prep.patch_scores = [torch.cat([scores[(b, j)] for j in range(c)]) for b, c in enumerate(counts)]
        return prep
