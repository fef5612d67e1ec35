#!/usr/bin/env bash
# Issue 11's GPU run, items 1, 2 and 6 on the full architectures in fp16, as one command for a
# lent device machine (the device tool's `run`; it has python3 with CUDA torch + transformers):
#
#     bash benchmarks/gpu.sh            # every table into $OUT (default /tmp/gpu-bench), ~5 min
#
# The code is written against transformers 5.24.0; the device image had 5.17 when last read.
# To run with 5.24.0, fetch its wheel here first and carry it (run(..., carry=[".whl"])):
#     echo /.whl/ >> .git/info/exclude
#     python3 -m pip download --no-deps --only-binary=:all: -d .whl transformers==5.24.0
#
# Smoke test of this script without a GPU (tiny widths): DEVICE=cpu EXTRA=--tiny bash benchmarks/gpu.sh
#
# Sized for a 10-minute call: each script has its own timeout, so one that fails or hangs
# still leaves the others' tables. Paste the tables into BENCHMARKS.md beside the CPU ones.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-bench}
EXTRA=${EXTRA:-}
cd "$(dirname "$0")"
source ./_device_env.sh
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__,
      torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')" 2>&1 | tee "$OUT/env.txt"
# item 1: every method at 64/128/192 and 160/320/640, full depth, fp16 (--dtype auto on cuda)
timeout 300 $PY prefill_speedup.py --device "$DEVICE" --depth 32 --repeats 5 $EXTRA 2>&1 | tee "$OUT/prefill_speedup.txt"
# item 2: each method's added time on the vision tower at 576 tokens
timeout 90 $PY selection_overhead.py --device "$DEVICE" --repeats 21 $EXTRA 2>&1 | tee "$OUT/selection_overhead.txt"
# item 6: KV cache and CUDA peak memory per sample, full depth
timeout 150 $PY memory.py --device "$DEVICE" --depth 32 $EXTRA 2>&1 | tee "$OUT/memory.txt"
