#!/usr/bin/env bash
# Issue 12's mini LLaVA trained further on a lent GPU, as one device call (the device tool's `run`):
#
#     bash benchmarks/gpu_train.sh [--set name=value ...]    # checkpoint into $OUT/ckpt, ~8 min
#
# The LM stages only: stage (a) renders 32 scenes a step on the CPU, so it gains little from a GPU,
# and the shipped ViT stands in for it (--vision-from, as the shipped checkpoint's own two-run
# recipe). The minutes are the GPU's: the step counts they buy are recorded in training.json.
# On the CPU the LM stages got 3,851 instruction steps (AVX-512) or ~1,800 (AVX2) in 42-55 min;
# whether several times that many from a fresh LM help is what this run is for (a few hundred
# more on the shipped LM did not: flowcut/mini/NOTES.md, "More steps for the shipped LM").
# The checkpoint (~20 MB) comes back under $OUT/ckpt; score it on this side:
#     PYTHONPATH=. .venv/bin/python scripts/mini_quick_eval.py 100 none,random@64,flowcut@64 <files_at>/ckpt --by-category
# transformers 5.24.0 as a carried wheel, as for gpu.sh (read its header).
# Smoke test without a GPU: DEVICE=cpu bash benchmarks/gpu_train.sh --scale 0.002
set -uo pipefail
OUT=${OUT:-/tmp/gpu-train}
cd "$(dirname "$0")/.."
source benchmarks/_device_env.sh
timeout "${LIMIT_S:-500}" $PY -m flowcut.mini.train --device "$DEVICE" --out "$OUT/ckpt" \
    --vision-from flowcut/mini/checkpoint \
    --set caption_minutes="${CAPTION_MIN:-1}" --set instruct_minutes="${INSTRUCT_MIN:-6}" "$@" 2>&1 | tee "$OUT/train.txt"
