"""FlowCut dashboard: leaderboard, trade-offs, the job queue, per-sample results and their uncertainty.

    streamlit run dashboard/app.py -- --store sqlite:///results/flowcut.db   # or FLOWCUT_STORE=URL

Read-only over the store (``jobs.store``); every page reads through ``dashboard.queries``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# ``streamlit run`` puts only dashboard/ on sys.path; the pages import ``dashboard.*`` from the repo root
ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import streamlit as st  # noqa: E402

from dashboard import queries  # noqa: E402

st.set_page_config(page_title="FlowCut results", layout="wide")
PAGES = [
    st.Page("pages/leaderboard.py", title="Leaderboard", default=True),
    st.Page("pages/tradeoffs.py", title="Trade-offs"),
    st.Page("pages/jobs.py", title="Jobs"),
    st.Page("pages/samples.py", title="Samples"),
    st.Page("pages/uncertainty.py", title="Uncertainty"),
]
page = st.navigation(PAGES)
st.sidebar.caption(f"store: `{queries.display_url()}`")
page.run()
