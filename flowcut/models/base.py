"""What every model adapter shares: prompt building, the pruned ``generate`` and its figures.

An adapter turns (images, questions, method, budget) into what the unmodified
transformers model takes: either ``inputs_embeds`` that already hold only the kept visual
tokens (vision-side methods on LLaVA: positions re-packed as the reference codes do), or the
full prompt plus a drop mask applied before decoder layer 0 (Qwen2-VL, whose M-RoPE
positions encode the 2D grid and so stay the original ones). LLM-side methods then cut
inside the decoder through :class:`~flowcut.models.llm_prune.DecoderPruner`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from torch import Tensor, nn
from transformers import LogitsProcessorList

from ..errors import FlowcutError
from ..measure import Cost, FirstTokenClock, Stopwatch, llm_layer_flops, peak_memory_bytes, reset_peak
from ..methods import LLMMethod, Method
from ..outputs import SampleOutput
from .llm_prune import DecoderPruner, PruningCache


@dataclass
class Prepared:
    """A batch ready for the language model.

    Attributes:
        inputs_embeds: [B, P, D] prompt embeddings (visual tokens already in place).
        attention_mask: [B, P] 1 for real tokens (left padding).
        visual: [B, P] bool, visual positions.
        kept: per sample, per crop: [K] kept patch positions in the original grid.
        grids: per sample, per crop: (rows, cols) of that grid.
        drop: [B, P] bool visual tokens to drop before decoder layer 0, or None.
        extra: model-specific ``generate`` keyword arguments (e.g. Qwen2-VL's input_ids).
        vision_flops: FLOPs spent in the vision tower and projector, per sample.
        labels: per sample, [n_visual] what each visual prompt token is, in prompt order:
            crop * patches_per_crop + patch, or -1 (newline, [CLS], merged token).
        patch_scores: per sample, [crops * patches_per_crop] the vision stage's patch importance
            (``Selection.importance``, indexed like ``labels``); empty when the method gave none.
    """

    inputs_embeds: Tensor
    attention_mask: Tensor
    visual: Tensor
    kept: list[list[Tensor]]
    grids: list[list[tuple[int, int]]]
    drop: Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    vision_flops: list[float] = field(default_factory=list)
    labels: list[Tensor] = field(default_factory=list)
    patches_per_crop: int = 0
    patch_scores: list[Tensor] = field(default_factory=list)

    def vision_scores(self) -> Tensor | None:
        """[B, P] ``patch_scores`` at each visual prompt position (+inf where the label is -1), 0 elsewhere."""
        if not self.patch_scores:
            return None
        out = torch.zeros(self.visual.shape, dtype=torch.float32, device=self.visual.device)
        for b, (lab, scores) in enumerate(zip(self.labels, self.patch_scores, strict=True)):
            lab = lab.to(scores.device)
            vals = torch.where(lab >= 0, scores.float()[lab.clamp_min(0)], float("inf"))
            out[b, self.visual[b]] = vals.to(out.device)
        return out


class VLMAdapter:
    """Base adapter; subclasses implement :meth:`prepare` and :meth:`visual_tokens`."""

    model_type: str = ""
    rope_1d = True  # the text model's rotary positions are one index per token (Qwen2-VL's are not)

    def __init__(self, model: nn.Module, processor: Any) -> None:
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer

    # -- per model ------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def visual_tokens(self, image: Image.Image) -> int:
        """Patch tokens this image gives the unpruned model (the budget's upper bound)."""
        raise NotImplementedError

    def prepare(self, images: list[Image.Image], questions: list[str], method: Method, budget: int) -> Prepared:
        raise NotImplementedError

    @property
    def text_model(self) -> nn.Module:
        return self.model.model.language_model

    # -- shared ---------------------------------------------------------------------------
    def check_budget(self, images: list[Image.Image], method: Method, budget: object) -> int:
        if isinstance(budget, bool) or not isinstance(budget, int):
            raise FlowcutError("budget", f"must be a whole number of visual tokens, got {budget!r}")
        for img in images:
            n = self.visual_tokens(img)
            if not 1 <= budget <= n:
                raise FlowcutError("budget", f"{budget} is outside this image's visual tokens", f"1..{n}")
            if method.name == "none" and budget != n:
                raise FlowcutError("budget", f"method 'none' keeps every token; budget must be {n}", n)
        return budget

    def embed_with_images(self, ids: list[list[int]], feats: list[Tensor], image_id: int) -> Prepared:
        """Left-pad token ids, embed them and put each sample's visual tokens in place.

        Args:
            ids: per sample, token ids with exactly len(feats[i]) image placeholders.
            feats: per sample, [T_i, D] projected visual tokens in prompt order.
        """
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        width = max(len(x) for x in ids)
        dev = self.device
        tok = torch.full((len(ids), width), pad_id, dtype=torch.long, device=dev)
        mask = torch.zeros((len(ids), width), dtype=torch.long, device=dev)
        for i, row in enumerate(ids):
            tok[i, width - len(row) :] = torch.tensor(row, device=dev)
            mask[i, width - len(row) :] = 1
        embeds = self.model.get_input_embeddings()(tok)
        visual = (tok == image_id) & mask.bool()
        flat = torch.cat(feats).to(embeds.dtype)
        embeds = embeds.masked_scatter(visual[..., None].expand_as(embeds), flat)
        return Prepared(inputs_embeds=embeds, attention_mask=mask, visual=visual, kept=[], grids=[])

    @torch.inference_mode()
    def generate(
        self,
        images: list[Image.Image],
        questions: list[str],
        method: Method,
        budget: int,
        max_new_tokens: int = 16,
        min_new_tokens: int = 0,
        return_logits: bool = False,
    ) -> list[SampleOutput] | tuple[list[SampleOutput], Tensor]:
        """Answer ``questions[i]`` about ``images[i]`` with ``method`` at ``budget`` tokens/image.

        Greedy decoding through the model's own ``generate``. Images giving different numbers
        of visual tokens (LLaVA-NeXT grids, Qwen2-VL sizes) run as separate sub-batches.
        Returns per-sample outputs (and, if asked, the [B, V] logits of the first new token).
        """
        if len(images) != len(questions) or not images:
            raise FlowcutError("questions", f"{len(questions)} questions for {len(images)} images")
        if max_new_tokens < 1:
            raise FlowcutError("max_new_tokens", f"must be >= 1, got {max_new_tokens}")
        budget = self.check_budget(images, method, budget)
        groups: dict[int, list[int]] = {}
        for i, img in enumerate(images):
            groups.setdefault(self.visual_tokens(img), []).append(i)
        results: list[SampleOutput | None] = [None] * len(images)
        logits: list[Tensor | None] = [None] * len(images)
        for rows in groups.values():
            outs, first = self._generate_batch(
                [images[i] for i in rows],
                [questions[i] for i in rows],
                method,
                budget,
                max_new_tokens,
                min_new_tokens,
                return_logits,
            )
            for j, i in enumerate(rows):
                results[i] = outs[j]
                logits[i] = first[j] if first is not None else None
        done = [r for r in results if r is not None]
        if return_logits:
            return done, torch.stack([x for x in logits if x is not None])
        return done

    def _generate_batch(
        self,
        images: list[Image.Image],
        questions: list[str],
        method: Method,
        budget: int,
        max_new_tokens: int,
        min_new_tokens: int,
        return_logits: bool,
    ) -> tuple[list[SampleOutput], Tensor | None]:
        dev = self.device
        reset_peak(dev)
        t_start = time.perf_counter()
        vision = Stopwatch(dev)
        with vision():
            prep = self.prepare(images, questions, method, budget)
        n_layers = len(self.text_model.layers)
        stages = []
        if isinstance(method, LLMMethod):
            n_vis = int((prep.visual & (~prep.drop if prep.drop is not None else True))[0].sum())
            stages = method.schedule(budget, n_layers, n_vis)
        raters = None
        if stages and hasattr(method, "text_raters"):
            after = prep.attention_mask.bool() & ~prep.visual
            after &= prep.visual.long().cumsum(1) > 0
            raters = method.text_raters(prep.inputs_embeds, prep.visual, after)
        cfg = self.text_model.config
        cache = PruningCache(config=cfg)
        clock = FirstTokenClock(dev)
        pruner = DecoderPruner(
            self.text_model.layers,
            prep.visual,
            prep.attention_mask.bool(),
            method if isinstance(method, LLMMethod) else None,
            stages,
            prep.drop,
            raters,
            cache,
            prep.vision_scores() if stages else None,
            getattr(self.text_model, "rotary_emb", None) if self.rope_1d else None,
        )
        with pruner:
            out = self.model.generate(
                inputs_embeds=prep.inputs_embeds,
                attention_mask=prep.attention_mask,
                cache=cache,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                min_new_tokens=min_new_tokens,
                logits_processor=LogitsProcessorList([clock]),
                return_dict_in_generate=True,
                output_logits=return_logits,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
                **prep.extra,
            )
        t_end = time.perf_counter()
        seqs = out.sequences
        if "input_ids" in prep.extra:  # generate echoes the prompt when it was given ids
            seqs = seqs[:, prep.extra["input_ids"].shape[1] :]
        texts = self.tokenizer.batch_decode(seqs, skip_special_tokens=True)
        first = clock.first if clock.first is not None else t_end
        prefill_ms = (first - t_start) * 1000 - vision.ms
        total_ms = (t_end - t_start) * 1000
        schedule = pruner.visual_per_layer
        if stages:
            prep.kept = self._kept_after_llm(prep, pruner.layer_keep[n_layers - 1])
        outputs = []
        for b, text in enumerate(texts):
            p_real = int(prep.attention_mask[b].sum())
            n_new = self._answer_length(seqs[b])
            flops = self._llm_flops(p_real, schedule, int(prep.visual[b].sum()), n_new)
            kv_bytes = self._kv_bytes(cache, pruner, prep.attention_mask, b, n_new)
            cost = Cost(
                vision_ms=vision.ms / len(images),
                prefill_ms=prefill_ms / len(images),
                decode_ms=(total_ms - prefill_ms - vision.ms) / len(images),
                total_ms=total_ms / len(images),
                prefill_flops=flops[0] + (prep.vision_flops[b] if prep.vision_flops else 0.0),
                flops=flops[0] + flops[1] + (prep.vision_flops[b] if prep.vision_flops else 0.0),
                kv_cache_bytes=kv_bytes,
                peak_memory_bytes=peak_memory_bytes(dev),
                llm_layer_visual_tokens=list(schedule),
            )
            outputs.append(
                SampleOutput(
                    text=text.strip(), kept=[k.tolist() for k in prep.kept[b]], grids=list(prep.grids[b]), cost=cost
                )
            )
        return outputs, (out.logits[0] if return_logits else None)

    @staticmethod
    def _kept_after_llm(prep: Prepared, alive: Tensor) -> list[list[Tensor]]:
        """Per sample and crop, the patches still alive after the last LLM stage."""
        kept = []
        for b in range(alive.shape[0]):
            vis_pos = prep.visual[b].nonzero().flatten()
            alive_vis = alive[b][prep.visual[b, alive[b]]]
            labels = prep.labels[b][torch.searchsorted(vis_pos, alive_vis)]
            n = prep.patches_per_crop
            kept.append([labels[(labels >= 0) & (labels // n == j)] % n for j in range(len(prep.kept[b]))])
        return kept

    def _answer_length(self, seq: Tensor) -> int:
        """Tokens generated for one row, its EOS included, the padding after it not (a batch runs to its longest)."""
        eos = self.tokenizer.eos_token_id
        ends = (seq == eos).nonzero() if eos is not None else seq.new_zeros(0, 1)
        return int(ends[0, 0]) + 1 if len(ends) else int(seq.shape[0])

    @staticmethod
    def _kv_bytes(cache: PruningCache, pruner: DecoderPruner, mask: Tensor, b: int, n_new: int) -> int:
        """Row ``b``'s share of the KV cache: per layer, the real prompt tokens that layer kept plus
        the row's own cached answer tokens (all but the last), at the layer's bytes per token.
        Padding and the tokens generated after the row's EOS are the batch's, not the sample's."""
        total = 0
        for i, layer in enumerate(cache.layers):
            keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
            if keys is None or values is None:
                continue
            per_token = keys[b, :, 0].numel() * keys.element_size() + values[b, :, 0].numel() * values.element_size()
            kept = pruner.layer_keep.get(i)
            real = mask[b].bool() if kept is None else mask[b].bool()[kept[b]]
            total += per_token * (int(real.sum()) + max(n_new - 1, 0))
        return total

    def _llm_flops(self, prompt: int, schedule: list[int], n_visual: int, n_new: int) -> tuple[float, float]:
        """(prefill, decode) FLOPs of the language model for one sample (see measure.py)."""
        cfg = self.text_model.config
        d = cfg.hidden_size
        d_kv = cfg.num_key_value_heads * getattr(cfg, "head_dim", d // cfg.num_attention_heads)
        m = cfg.intermediate_size
        prefill = decode = 0.0
        for n_vis_l in schedule:
            n = prompt - n_visual + n_vis_l
            prefill += llm_layer_flops(n, n, d, d_kv, m)
            decode += sum(llm_layer_flops(1, n + t + 1, d, d_kv, m) for t in range(n_new - 1))
        vocab = self.model.get_output_embeddings().weight.shape[0]
        return prefill + 2.0 * d * vocab, decode + 2.0 * d * vocab * max(n_new - 1, 0)
