#!/usr/bin/env bash
# The main command: set up .venv if needed, then run the default evaluation sweep on the
# embedded default (the mini LLaVA on the generated suite: every method at 64/128/192
# tokens) through the SQL queue and a local Ray, into results/flowcut.db, and print the
# summary table and the dashboard's address. Re-running reuses every finished job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
STORE=${FLOWCUT_STORE:-sqlite:///results/flowcut.db}
.venv/bin/python -m jobs run jobs/specs/default.yaml --store "$STORE" "$@"
echo
echo "Dashboard: .venv/bin/streamlit run dashboard/app.py -- --store $STORE"
echo "           then open http://localhost:8501"
