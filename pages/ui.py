"""Streamlit glue shared by app.py and the pages: the job manager, this session's jobs, cached
look-ups, the URL, error messages and the presenter style. Core does the work; this file only
connects it to st. Session-state keys used across pages:

    lab_cfg     dict   the Lab's configuration (RunConfig.to_dict()), kept across page switches
    url_errors  list   problems found in the link this session was opened with
    jobs        list   ids of the jobs this session submitted, oldest first
    presenter   bool   presenter mode (advanced controls hidden, larger type)
"""
from __future__ import annotations

import uuid

import streamlit as st

from core.config import ConfigError, RunConfig
from core.data import TASKS, load_task, log_sizes
from core.jobs import FAILED, STOPPED, JobManager
from core.presets import load_presets
from core.store import RunStore
from core.urlstate import config_from_query, config_to_query

IN_DOMAIN_TASKS = [name for name, spec in TASKS.items() if not spec.general]
WIDGET_PREFIX = "cfg_"     # the Lab's config widgets are keyed cfg_<RunConfig field>


# ---------------------------------------------------------------------------- jobs


@st.cache_resource
def job_manager() -> JobManager:
    """One per server process, shared by every session: it trains one job at a time in a worker
    process and queues the rest. Created on the first page load so the worker is warm (torch
    imported, model loaded) by the time anyone clicks Run."""
    return JobManager()


def _release(owner: str) -> None:
    # Runs when a session disconnects (tab closed): stop its running job, drop its queued ones,
    # so nobody's closed tab holds the one worker.
    job_manager().release(owner)


@st.cache_resource(scope="session", on_release=_release)
def session_owner() -> str:
    return uuid.uuid4().hex[:12]


def submit(cfg: RunConfig) -> str:
    """Queue a run for this session; raises ConfigError at once for a bad value."""
    job_id = job_manager().submit(cfg, owner=session_owner())
    st.session_state.setdefault("jobs", []).append(job_id)
    return job_id


def session_jobs() -> list:
    manager = job_manager()
    jobs = [manager.get(j) for j in st.session_state.get("jobs", [])]
    return [j for j in jobs if j is not None]


def store() -> RunStore:
    return RunStore()    # cheap: a path and a schema check; $FTLAB_HOME decides where


# ---------------------------------------------------------------------------- cached look-ups


@st.cache_data(show_spinner=False)
def task_info(name: str) -> dict:
    """The data card, two examples and the log-spaced sizes; a DataError propagates."""
    task = load_task(name)
    return {"card": task.card(), "examples": task.examples(2), "sizes": log_sizes(task),
            "num_labels": task.num_labels}


@st.cache_data(show_spinner="counting trainable parameters...")
def param_count(config: dict, num_labels: int) -> tuple[int, int]:
    """(trainable, total) for a config; built on a CPU copy of the cached base model, not trained."""
    from core.models import trainable_params

    return trainable_params(RunConfig.from_dict(config), num_labels)


@st.cache_resource(ttl=60)
def presets():
    """(presets, problems) from assets/presets; re-read a minute later so a new file shows up."""
    return load_presets()


def preset_runs(task: str | None = None, names=None) -> list:
    found, _ = presets()
    return [r for p in found if names is None or p.name in names for r in p.runs if task is None or r.task == task]


# ---------------------------------------------------------------------------- config and URL


def init_session() -> None:
    """On a session's first run, read the configuration and presenter mode from the link."""
    if "lab_cfg" in st.session_state:
        return
    params = st.query_params.to_dict()
    cfg, errors = config_from_query(params)
    st.session_state.lab_cfg = cfg.to_dict()
    st.session_state.url_errors = errors
    st.session_state.presenter = params.get("presenter") in ("1", "true", "yes")


def lab_config() -> RunConfig:
    return RunConfig.from_dict(st.session_state.lab_cfg)


def set_lab_config(cfg: RunConfig) -> None:
    """Replace the Lab's configuration (e.g. from the Learn page); its widgets re-read it."""
    st.session_state.lab_cfg = cfg.to_dict()
    for key in [k for k in st.session_state if str(k).startswith(WIDGET_PREFIX)]:
        del st.session_state[key]


def sync_query(cfg: RunConfig | None = None) -> None:
    """Write the setup into the URL: only fields that differ from the defaults, plus presenter."""
    params = config_to_query(cfg) if cfg is not None else {}
    if st.session_state.get("presenter"):
        params["presenter"] = "1"
    if params != st.query_params.to_dict():
        st.query_params.from_dict(params)


# ---------------------------------------------------------------------------- messages


FAILURE_TITLES = {
    "ConfigError": "This configuration cannot run",
    "DataError": "The data could not be used",
    "ModelError": "The model could not be loaded",
    "RunError": "The run could not finish",
    "OutOfMemoryError": "Out of memory",
    "WorkerDied": "The training process ended unexpectedly",
}


def show_job_outcome(job) -> None:
    """A finished job that did not succeed, as one clear message (never a traceback)."""
    if job.state == STOPPED:
        st.warning("Stopped: the run was ended before it finished, so nothing was stored.", icon="⏹️")
    elif job.state == FAILED:
        title = FAILURE_TITLES.get(job.error_kind, "The run failed")
        if job.error and "out of memory" in job.error.lower():
            title = "Out of memory"
        st.error(f"**{title}.** {job.error}", icon="🚫")


def show_config_error(err: ConfigError) -> None:
    st.error(f"**This configuration cannot run.** {err}", icon="🚫")


# ---------------------------------------------------------------------------- presenter mode

PRESENTER_CSS = """
<style>
html, body, [data-testid="stAppViewContainer"] { font-size: 1.25rem; }
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 1.3rem; }
[data-testid="stMetricValue"] { font-size: 2.6rem; }
[data-testid="stMetricLabel"] p { font-size: 1.15rem; }
h1 { font-size: 3rem !important; }
</style>
"""


def apply_presenter_style() -> None:
    if st.session_state.get("presenter"):
        st.html(PRESENTER_CSS)
