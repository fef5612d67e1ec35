"""The Ray Data actor: one model per actor; a batch of samples in, each with the ids of the jobs
that need it; one result row per (job, sample) out.

Exceptions from the model become errored rows for that batch (Ray Data does not retry our
own exceptions, and a bad sample must not end the job); undecodable images become errored
rows on their own. The driver writes every row to the store.
"""

from __future__ import annotations

import io
import json
import traceback
from typing import Any

import pandas as pd

from flowcut.errors import FlowcutError
from flowcut.images import open_image
from flowcut.tasks.registry import get_spec
from flowcut.tasks.spec import Example

from .models import load_model
from .scoring import sample_score


def error_row(sample_id: str, reference: Any, error: str) -> dict[str, Any]:
    return {"sample_id": sample_id, "prediction": None, "reference": reference, "score": None, "error": error,
            "parser": None, "parser_version": None, "kept_tokens": 0, "tokens_llm_input": 0, "tokens_layer_avg": 0.0,
            "vision_ms": 0.0, "prefill_ms": 0.0, "decode_ms": 0.0, "total_ms": 0.0, "flops": 0.0, "kv_bytes": 0,
            "peak_memory": 0, "extra": {}}  # fmt: skip


class EvalActor:
    """One model per actor, loaded once; the jobs of a round (same model) share it.

    Args:
        configs: job id -> job config (all with the same ``model``).
    """

    def __init__(self, configs: dict[str, dict[str, Any]], device: str = "cpu", threads: int = 1) -> None:
        self.configs = configs
        first = next(iter(configs.values()))
        self.model = load_model(first["model"], device)
        make = getattr(self.model, "make_method", None)  # only the stand-in brings its own (no torch)
        if make is None:
            import torch

            from flowcut.methods import make_method as make

            # one intra-op thread per reserved CPU: two actors on two cores must not fight over four threads
            torch.set_num_threads(max(1, threads))
        self.methods = {jid: make(c["method"], seed=c["seed"], **c["method_options"]) for jid, c in configs.items()}

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        """One row per sample with the ``job_ids`` that need it -> one result row per (job, sample)."""
        rows: list[dict[str, Any]] = []
        per_job: dict[str, list[tuple[Example, Any]]] = {}
        for rec in batch.to_dict("records"):
            ex = Example(id=rec["sample_id"], image=None, question=rec["question"],
                         reference=json.loads(rec["reference"]), prompt=rec["prompt"],
                         options=json.loads(rec["options"]), meta=json.loads(rec["meta"]))  # fmt: skip
            try:
                image, error = open_image(rec["image"]), None
            except FlowcutError as e:
                image, error = None, str(e)
            for job_id in rec["job_ids"]:
                if error is None:
                    per_job.setdefault(str(job_id), []).append((ex, image))
                else:
                    rows.append(error_row(ex.id, ex.reference, error) | {"job_id": str(job_id)})
        for job_id, good in per_job.items():
            rows += [r | {"job_id": job_id} for r in self._run(job_id, good)]
        return pd.DataFrame(rows)

    def _run(self, job_id: str, good: list[tuple[Example, Any]]) -> list[dict[str, Any]]:
        config, method = self.configs[job_id], self.methods[job_id]
        spec = get_spec(config["benchmark"])
        exs = [e for e, _ in good]
        try:
            if hasattr(self.model, "before_batch"):
                self.model.before_batch([e.id for e in exs])
            budget = config["budget"] or self.model.visual_tokens(good[0][1])
            outs = self.model.generate([im for _, im in good], [e.prompt for e in exs], method, budget,
                                       max_new_tokens=config["max_new_tokens"])  # fmt: skip
        except Exception as e:  # noqa: BLE001 - any model failure becomes errored rows, the job goes on
            reason = f"{type(e).__name__}: {e}".splitlines()[0][:500]
            traceback.print_exc()
            return [error_row(x.id, x.reference, reason) for x in exs]
        rows = []
        for ex, out in zip(exs, outs, strict=True):
            score, parsed, key = sample_score(spec, config["parser"], ex, out.text)
            c = out.cost
            rows.append({
                "sample_id": ex.id, "prediction": out.text, "reference": ex.reference, "score": score, "error": None,
                "parser": key.rsplit("-", 1)[0], "parser_version": key.rsplit("-", 1)[1],
                "kept_tokens": sum(len(k) for k in out.kept), "tokens_llm_input": c.visual_tokens_llm_input,
                "tokens_layer_avg": c.visual_tokens_layer_avg, "vision_ms": c.vision_ms, "prefill_ms": c.prefill_ms,
                "decode_ms": c.decode_ms, "total_ms": c.total_ms, "flops": c.flops, "kv_bytes": c.kv_cache_bytes,
                "peak_memory": c.peak_memory_bytes,
                "extra": {"parsed": parsed, "kept": out.kept, "grids": out.grids, "schedule": c.llm_layer_visual_tokens,
                          "kv_cache_used": c.kv_cache_used, "meta": ex.meta, "options": ex.options},
            })  # fmt: skip
        return rows


def encode_example(ex: Example) -> dict[str, Any]:
    """An Example as the job-independent part of a Ray Data row: image bytes and JSON text travel through Arrow.

    The dataset's own bytes go as they are (the driver checked them, ``load_examples(decode=False)``;
    one that still fails to decode becomes an errored row at the actor); only an image that came
    decoded is encoded, as PNG at zlib level 1: lossless,
    and ~3x faster than PIL's default level 6 (3.3 vs 9.3 ms for a 336 px scene, serial on the
    driver before the pool starts).
    """
    image = ex.image_bytes
    if image is None:
        assert ex.image is not None
        buf = io.BytesIO()
        ex.image.save(buf, format="PNG", compress_level=1)
        image = buf.getvalue()
    return {"sample_id": ex.id, "image": image, "question": ex.question, "prompt": ex.prompt,
            "reference": json.dumps(ex.reference), "options": json.dumps(ex.options),
            "meta": json.dumps(ex.meta, default=str)}  # fmt: skip
