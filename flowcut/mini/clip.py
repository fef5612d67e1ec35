"""Stage (a): CLIP-style contrastive pre-training of the mini ViT on scene captions.

The [CLS] token's final state is the pooled image embedding, as in CLIP (Radford et al.,
2021), so [CLS] must learn to gather the objects the captions name: that is what
FlowCut, VisPruner and VisionZip later read from its attention.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class TextEncoder(nn.Module):
    """A small transformer over caption tokens; the mean of its states is the text embedding."""

    def __init__(self, vocab: int, width: int, layers: int = 2, heads: int = 4, max_len: int = 96) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.pos = nn.Parameter(torch.randn(max_len, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        """[B, L] ids, [B, L] 1/0 mask -> [B, width]."""
        h = self.embed(ids) + self.pos[: ids.shape[1]]
        h = self.encoder(h, src_key_padding_mask=~mask.bool())
        h = self.norm(h)
        m = mask[..., None].to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp_min(1)


class ClipPair(nn.Module):
    """The ViT (a transformers ``CLIPVisionModel``) and the text encoder with their projections."""

    def __init__(self, vision: nn.Module, vocab: int, width: int, embed: int = 128) -> None:
        super().__init__()
        self.vision = vision
        self.text = TextEncoder(vocab, width)
        self.v_proj = nn.Linear(vision.config.hidden_size, embed, bias=False)
        self.t_proj = nn.Linear(width, embed, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def loss(self, pixels: Tensor, ids: Tensor, mask: Tensor) -> Tensor:
        img = F.normalize(self.v_proj(self.vision(pixel_values=pixels).pooler_output), dim=-1)
        txt = F.normalize(self.t_proj(self.text(ids, mask)), dim=-1)
        logits = self.logit_scale.exp().clamp(max=100) * img @ txt.t()
        target = torch.arange(len(img), device=img.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


@dataclass(frozen=True)
class Budget:
    """How long a stage trains: ``minutes`` of wall time, or exactly ``steps`` when given.

    Minutes fit the issue's 90-minute limit on any machine, but a slower CPU then trains a
    different model (fewer steps, a schedule stretched over them); a step count reproduces a
    recorded run's schedule anywhere, however long it takes there.
    """

    minutes: float
    steps: int | None = None

    def frac(self, step: int, start: float) -> float:
        """How far the stage is, 0-1: what the learning-rate decay and the curricula follow."""
        if self.steps is not None:
            return step / self.steps if self.steps > 0 else 1.0
        if self.minutes <= 0:  # a stage switched off (e.g. captions after --lm-from)
            return 1.0
        return (time.time() - start) / (self.minutes * 60)


def cosine_lr(step: int, warmup: int, frac: float, peak: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay over the stage's fraction (``Budget.frac``)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))


def train_clip(pair: ClipPair, batches, budget: Budget, lr: float, log) -> dict:
    """Train for ``budget`` on the device ``pair`` is on; ``batches`` yields (pixels, ids, mask). Returns stats."""
    opt = torch.optim.AdamW(pair.parameters(), lr=lr, weight_decay=0.05)
    start, step, losses = time.time(), 0, []
    device = next(pair.parameters()).device
    pair.train()
    for pixels, ids, mask in batches:
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, 50, budget.frac(step, start), lr)
        loss = pair.loss(pixels.to(device), ids.to(device), mask.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(pair.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 20 == 0:
            log(f"clip step {step} loss {sum(losses[-20:]) / 20:.3f} ({time.time() - start:.0f}s)")
        if budget.frac(step, start) >= 1.0:
            break
    pair.eval()
    return {"steps": step, "final_loss": sum(losses[-20:]) / max(1, len(losses[-20:])), "seconds": time.time() - start}
