"""The one module pages get data from: the store URL, a cached ``Store``, cached reads and the papers' figures.

Every read goes through ``jobs.store`` (no SQL here). Results are cached for ``RESULTS_TTL_S``, the
queue for ``JOBS_TTL_S`` (the Jobs page is live); all caches are keyed by the store URL.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
import streamlit as st
from sqlalchemy.engine import make_url

from jobs.store import Store

from . import samples, tables

DEFAULT_STORE = "sqlite:///results/flowcut.db"  # where jobs/specs/default.yaml writes
PAPER_CSV = Path(__file__).resolve().parent / "data" / "paper-results.csv"
RESULTS_TTL_S = 30  # a running sweep adds rows every few seconds; half a minute stale is fine for tables
JOBS_TTL_S = 2  # under the Jobs page's refresh period, so every refresh reads the queue anew


def store_url(argv: list[str] | None = None) -> str:
    """``--store URL`` after ``streamlit run dashboard/app.py --``, else ``$FLOWCUT_STORE``, else ``DEFAULT_STORE``."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--store")
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return args.store or os.environ.get("FLOWCUT_STORE") or DEFAULT_STORE


def display_url(url: str | None = None) -> str:
    """The URL without its password."""
    return make_url(url or store_url()).render_as_string(hide_password=True)


def missing_file(url: str | None = None) -> str | None:
    """The SQLite file the URL names when it does not exist yet (opening it would create it), else None."""
    u = make_url(url or store_url())
    if u.get_backend_name() != "sqlite" or u.database in (None, "", ":memory:") or u.database.startswith("file:"):
        return None
    return None if Path(u.database).exists() else u.database


@st.cache_resource(show_spinner=False)
def _store(url: str) -> Store:
    return Store(url)


@st.cache_data(ttl=RESULTS_TTL_S, show_spinner="Reading results...")
def _results(url: str, finished_only: bool) -> pd.DataFrame:
    res = _store(url).results_frame()
    return res[res["status"] == "succeeded"].reset_index(drop=True) if finished_only else res


def results(finished_only: bool = True) -> pd.DataFrame:
    """Result rows joined with their jobs (``Store.results_frame``, no ``extra``); ``finished_only``:
    of succeeded jobs only (a running job's first samples are not its accuracy)."""
    return _results(store_url(), finished_only)


@st.cache_data(ttl=RESULTS_TTL_S, show_spinner=False)
def _accuracy(url: str, finished_only: bool) -> pd.DataFrame:
    return tables.job_accuracy(_results(url, finished_only))


def accuracy(finished_only: bool = True) -> pd.DataFrame:
    """Accuracy and mean costs per model x method x budget x benchmark (``tables.job_accuracy``)."""
    return _accuracy(store_url(), finished_only)


@st.cache_data(ttl=RESULTS_TTL_S, show_spinner="Bootstrapping...")
def _accuracy_intervals(url: str, finished_only: bool) -> pd.DataFrame:
    return tables.accuracy_intervals(_results(url, finished_only))


def accuracy_intervals(finished_only: bool = True) -> pd.DataFrame:
    """Bootstrap intervals of every accuracy (``tables.accuracy_intervals``)."""
    return _accuracy_intervals(store_url(), finished_only)


@st.cache_data(ttl=RESULTS_TTL_S, show_spinner="Bootstrapping...")
def _difference_intervals(url: str, finished_only: bool, model: str, a: str, b: str, budget: int) -> pd.DataFrame:
    return tables.difference_intervals(_results(url, finished_only), model, a, b, budget)


def difference_intervals(model: str, a: str, b: str, budget: int, finished_only: bool = True) -> pd.DataFrame:
    """Per benchmark, the paired bootstrap interval of method ``a`` minus ``b`` (``tables.difference_intervals``)."""
    return _difference_intervals(store_url(), finished_only, model, a, b, budget)


@st.cache_data(ttl=JOBS_TTL_S, show_spinner=False)
def _jobs(url: str) -> pd.DataFrame:
    return _store(url).jobs_frame()


def jobs() -> pd.DataFrame:
    """Every job with its progress (``Store.jobs_frame``)."""
    return _jobs(store_url())


@st.cache_data(ttl=JOBS_TTL_S, show_spinner=False)
def _status_counts(url: str) -> dict[str, int]:
    return _store(url).status_counts()


def status_counts() -> dict[str, int]:
    """Jobs per status, every status present."""
    return _status_counts(store_url())


@st.cache_data(ttl=RESULTS_TTL_S, show_spinner="Reading samples...")
def _sample_rows(url: str, job_ids: tuple[str, ...]) -> pd.DataFrame:
    return _store(url).results_frame(job_ids=list(job_ids), with_extra=True)


def sample_rows(job_ids: list[str]) -> pd.DataFrame:
    """Result rows of these jobs with ``extra`` (kept patches, grids, meta)."""
    return _sample_rows(store_url(), tuple(sorted(job_ids)))


@st.cache_data(show_spinner=False)
def paper() -> pd.DataFrame:
    """The papers' figures for the benchmarks we run (``tables.paper_long`` of ``PAPER_CSV``)."""
    return tables.paper_long(pd.read_csv(PAPER_CSV, dtype={"visual_tokens": str}))


@st.cache_data(max_entries=512, show_spinner=False)
def sample_view(benchmark: str, sample_id: str, reference: str, allow_download: bool = False) -> samples.SampleView:
    """The question and image of one sample (``samples.find_sample``); ``reference`` as JSON text."""
    return samples.find_sample(benchmark, sample_id, reference, allow_download)
