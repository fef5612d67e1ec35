#!/usr/bin/env bash
# The main command: set up .venv if needed, then run the main job on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m flowcut demo "$@"
