"""FlowCut dashboard: leaderboard, trade-offs, the job queue, per-sample results and their uncertainty.

    streamlit run dashboard/app.py -- --store sqlite:///results/flowcut.db   # or FLOWCUT_STORE=URL

Read-only over the store (``jobs.store``); every page reads through ``dashboard.queries``. The pages live
in ``views/``, not ``pages/``: Streamlit still serves a ``pages/`` folder's files on their own at their
URLs (``/jobs``), bypassing this script and its ``st.navigation``.
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
    st.Page("views/leaderboard.py", title="Leaderboard", default=True),
    st.Page("views/tradeoffs.py", title="Trade-offs"),
    st.Page("views/jobs.py", title="Jobs"),
    st.Page("views/samples.py", title="Samples"),
    st.Page("views/uncertainty.py", title="Uncertainty"),
]
page = st.navigation(PAGES)
st.sidebar.caption(f"store: `{queries.display_url()}`")
page.run()
