"""The training loop the mini LLaVA's LM stages share (text, captions, instructions)."""

from __future__ import annotations

import random
import time

import torch

from .clip import Budget, cosine_lr

LM_PARTS = ("model.multi_modal_projector", "model.language_model", "lm_head")  # all but the ViT


def train_only(model, *prefixes: str) -> list:
    """Make the parameters under ``prefixes`` trainable and every other one frozen; returns the trainable ones."""
    for n, p in model.named_parameters():
        p.requires_grad_(n.startswith(prefixes))
    return [p for p in model.parameters() if p.requires_grad]


def lm_group(params: list, cfg) -> dict:
    """The optimiser group of the LM stages' ``params``: ``cfg.lm_lr`` as the peak rate, AdamW's beta2 from the config."""
    return {"params": params, "peak": cfg.lm_lr, "betas": (0.9, cfg.lm_beta2)}


def pad_rows(rows: list[tuple], device) -> tuple:
    """[B, T, D] embeddings, positions, labels and attention mask from (embeddings, positions, labels) rows."""
    width = max(len(r[1]) for r in rows)
    emb = torch.zeros(len(rows), width, rows[0][0].shape[-1], device=device)
    pos = torch.zeros(len(rows), width, dtype=torch.long)
    lab = torch.full((len(rows), width), -100)
    att = torch.zeros(len(rows), width, dtype=torch.long)
    for i, (e, p, lb) in enumerate(rows):
        emb[i, : len(p)], pos[i, : len(p)], lab[i, : len(p)], att[i, : len(p)] = e, p, torch.tensor(lb), 1
    return emb, pos.to(device), lab.to(device), att.to(device)


def fit(model, groups: list[dict], rows: list, batch, budget: Budget, size: int, name: str, log) -> dict:
    """The LM stages' loop: AdamW over ``groups`` (each with its ``peak`` rate, warm-up then cosine)
    on ``size`` random ``rows`` a step, which ``batch(rows, frac)`` turns into (embeddings,
    positions, labels, attention mask, a note for the log)."""
    params = [p for g in groups for p in g["params"]]
    opt = torch.optim.AdamW(groups, lr=groups[0]["peak"], weight_decay=0.0)
    model.train()
    start, step, losses = time.time(), 0, []
    rng = random.Random(f"{name}:0")
    while (frac := budget.frac(step, start)) < 1.0:
        emb, pos, lab, att, note = batch([rows[rng.randrange(len(rows))] for _ in range(size)], frac)
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, 50, frac, g["peak"])
        loss = model(inputs_embeds=emb, position_ids=pos, attention_mask=att, labels=lab).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 25 == 0:
            log(f"{name} step {step} {note} loss {sum(losses[-25:]) / 25:.3f} ({time.time() - start:.0f}s)")
    model.eval()
    return {"steps": step, "final_loss": sum(losses[-25:]) / max(1, len(losses[-25:])), "seconds": time.time() - start}
