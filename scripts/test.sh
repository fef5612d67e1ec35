#!/usr/bin/env bash
# The test command: set up .venv if needed, lint, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check flowcut jobs dashboard cluster benchmarks scripts tests
.venv/bin/ruff format --check flowcut jobs dashboard cluster benchmarks scripts tests
.venv/bin/python -m pytest -q "$@"
