#!/usr/bin/env bash
# Issue 12's mini LLaVA trained further on a lent GPU, as one device call (the device tool's `run`):
#
#     bash benchmarks/gpu_train.sh [--set name=value ...]    # checkpoint into $OUT/ckpt, ~8 min
#     run(command="bash benchmarks/gpu_train.sh", timeout_s=590)
#
# The LM stages only: stage (a) renders 32 scenes a step on the CPU, so it gains little from a GPU,
# and the shipped ViT stands in for it (--vision-from, as the shipped checkpoint's own two-run
# recipe). Every LM stage's minutes are set here, text stage included: MiniConfig's defaults are
# the CPU recipe (20 + 5 + 38 min), which would run past the call's limit and save nothing.
# GPU minutes: text 1.5, feature cache ~2 (rendering 6,000 scenes on one CPU core), caption 0.5,
# instructions 4; the step counts they buy are recorded in training.json (the CPU recipe's:
# 5,765 / 1,129 / 7,220 steps). The checkpoint (~20 MB) comes back under $OUT/ckpt; score it here:
#     PYTHONPATH=. .venv/bin/python scripts/mini_quick_eval.py 500 none,random@64 <files_at>/ckpt --by-category
# transformers 5.24.0 as a carried wheel, as for gpu.sh (read its header).
# Smoke test without a GPU: DEVICE=cpu bash benchmarks/gpu_train.sh --scale 0.002
# (tests/test_mini_train.py::test_gpu_train_script_sets_every_lm_stage runs it).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-train}
cd "$(dirname "$0")/.."
source benchmarks/_device_env.sh
timeout "${LIMIT_S:-560}" $PY -m flowcut.mini.train --device "$DEVICE" --out "$OUT/ckpt" \
    --vision-from flowcut/mini/checkpoint --set text_minutes="${TEXT_MIN:-1.5}" \
    --set caption_minutes="${CAPTION_MIN:-0.5}" --set instruct_minutes="${INSTRUCT_MIN:-4}" \
    --set focus_minutes=0 "$@" 2>&1 | tee "$OUT/train.txt"
