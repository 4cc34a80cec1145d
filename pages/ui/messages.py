"""Messages: a link's refused values, a run's outcome, a bad value; durations in words."""
from __future__ import annotations

import time

import streamlit as st

from core.config import ConfigError
from core.errors import QueueFull
from core.jobs import FAILED, STOPPED

# ---------------------------------------------------------------------------- messages


FAILURE_TITLES = {
    "ConfigError": "This configuration cannot run",
    "DataError": "The data could not be used",
    "ModelError": "The model could not be loaded",
    "RunError": "The run could not finish",
    "OutOfMemoryError": "Out of memory",
    "WorkerDied": "The training process ended unexpectedly",
    "WorkerKilled": "The training process was ended by a signal",     # show_job_outcome names the signal
}
ICON_ERROR, ICON_WARNING, ICON_STOPPED, ICON_LINK = (":material/block:", ":material/warning:",
                                                     ":material/stop_circle:", ":material/link_off:")






def show_job_outcome(job) -> None:
    """A finished job that did not succeed, as one clear message that says why (never a traceback);
    the job manager keeps it, so the browser's next page (a reload) says it again."""
    if job.state == STOPPED:
        why = job.error or "stopped"
        after = ("It never started, so nothing was stored." if job.started_at is None else
                 "The run ended before it finished, so nothing was stored.")
        st.warning(f"{why[:1].upper() + why[1:]}. {after}", icon=ICON_STOPPED)
    elif job.state == FAILED:
        title = FAILURE_TITLES.get(job.error_kind, "The run failed")
        if job.error_kind == "WorkerKilled" and job.signal:
            title = f"The training process was ended by {job.signal}"
        if job.error and job.error.lower().startswith("out of memory"):    # the worker's own words, on evidence
            title = "Out of memory"
        st.error(f"**{title}.** {job.error}", icon=ICON_ERROR)


def show_config_error(err: ConfigError) -> None:
    title = "Queue full" if isinstance(err, QueueFull) else "This configuration cannot run"
    st.error(f"**{title}.** {err}", icon=ICON_ERROR)


def duration(seconds: float | None) -> str:
    """'45 s', '3 min', '1 h 30 min': how a person says a wait."""
    if seconds is None:
        return "an unknown time"
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{int(seconds // 3600)} h {round(seconds % 3600 / 60)} min"


def since(t: float | None) -> float:
    return 0.0 if t is None else max(0.0, time.time() - t)
