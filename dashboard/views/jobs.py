"""Jobs: the queue live: counts per status, running jobs' progress, failed jobs with their errors, attempts."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from dashboard import queries, ui

REFRESH = timedelta(seconds=5)  # the queue's heartbeat is ~10 s: refreshing faster shows nothing new

st.title("Jobs")
ui.require_jobs()
live = st.toggle(f"live (refresh every {REFRESH.seconds} s)", value=True, key="jobs_live")
JOB = {
    "id": st.column_config.TextColumn("job", width="small"),
    "budget": st.column_config.NumberColumn("budget", format="%d", help="0 = all tokens"),
    "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
    "heartbeat_at": st.column_config.DatetimeColumn("heartbeat (UTC)", format="HH:mm:ss"),
    "last_error": st.column_config.TextColumn("last error", width="large"),
}
COORDS = ["id", "model", "method", "budget", "benchmark"]


@st.fragment(run_every=REFRESH if live else None)
def queue() -> None:
    counts = queries.status_counts()
    for col, (status, n) in zip(st.columns(len(counts)), counts.items()):
        col.metric(status, n)
    jobs = queries.jobs()
    jobs = jobs.assign(progress=(jobs["done"] / jobs["total_samples"]).clip(upper=1.0))

    running = jobs[jobs["status"] == "running"]
    st.subheader(f"Running ({len(running)})")
    cols = [*COORDS, "progress", "done", "total_samples", "errors", "attempts", "lease_owner", "heartbeat_at"]
    if running.empty:
        st.caption("Nothing is running.")
    else:
        st.dataframe(running[cols], column_config=JOB, hide_index=True, key="jobs_running")

    failed = jobs[jobs["status"] == "failed"]
    st.subheader(f"Failed ({len(failed)})")
    if failed.empty:
        st.caption("No failed jobs.")
    else:
        cols = [*COORDS, "attempts", "max_attempts", "done", "errors", "last_error"]
        st.dataframe(failed[cols], column_config=JOB, hide_index=True, key="jobs_failed")

    st.subheader("All jobs")
    cols = [*COORDS, "status", "attempts", "max_attempts", "progress", "done", "total_samples", "errors", "last_error"]
    st.dataframe(jobs[cols], column_config=JOB, hide_index=True, key="jobs_all")


queue()
