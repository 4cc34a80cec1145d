"""Runs and sweeps: the server's job manager and Ray dispatcher, this browser's id, its jobs and sweeps,
and each run's one time estimate."""
from __future__ import annotations

import re
import uuid

import streamlit as st

from core.config import RunConfig
from core.fmt import pct, pts
from core import estimate as estimates
from core.estimate import RunEstimate, rates_from
from core.jobs import JobManager
from core.store import RunStore, stored_result
from core.weights import WeightStore

from .lookups import task_info
from .messages import ICON_ERROR, duration, since

# ---------------------------------------------------------------------------- jobs


@st.cache_resource
def job_manager() -> JobManager:
    """One per server process, shared by every session: it trains one job at a time in a worker
    process and queues the rest. Created on the first page load so the worker is warm (torch
    imported, model loaded) by the time anyone clicks Run. The server itself never imports torch
    for a page: it needs the cores less than the worker does."""
    return JobManager(warm_after_s=3.0)


# A run belongs to the browser that asked for it, not to its tab: a reload or a closed tab ends no
# run, and the browser's next page finds its runs (running, queued or finished) again. The browser's
# id is random (128 bits: not guessable by the rest of a workshop's room), made by the server and kept
# in a cookie by a line of script; every later session reads it back from the request's cookies
# (st.context.cookies). A browser that keeps no cookies gets a new id per session, as before.
BROWSER_COOKIE = "ftlab_browser"
BROWSER_COOKIE_DAYS = 30
_BROWSER_ID = re.compile(r"[0-9a-f]{32}")


def browser_id_from(cookie) -> str | None:
    """The browser id a cookie carries, if it is one this server could have made (anything else is ignored)."""
    return cookie if isinstance(cookie, str) and _BROWSER_ID.fullmatch(cookie) else None


def session_owner() -> str:
    """The owner of this session's runs: this browser's id (from its cookie), or a new one."""
    owner = st.session_state.get("owner")
    if owner is None:
        try:
            sent = browser_id_from(st.context.cookies.get(BROWSER_COOKIE))
        except Exception:        # noqa: BLE001 - no request context (a bare script): a new id
            sent = None
        owner = sent or uuid.uuid4().hex
        st.session_state["owner"] = owner
        st.session_state["owner_in_cookie"] = sent is not None
    return owner


def remember_browser() -> None:
    """Until the browser has sent its id back, a script stores it in the cookie (the last element of
    the page, so that it moves nothing above it; a session that read the cookie draws nothing)."""
    owner = session_owner()
    if st.session_state.get("owner_in_cookie"):
        return
    st.html(f"<script>document.cookie = '{BROWSER_COOKIE}={owner}; path=/; "
            f"max-age={BROWSER_COOKIE_DAYS * 86400}; SameSite=Lax';</script>", unsafe_allow_javascript=True)


def submit(cfg: RunConfig, rescoring: bool = False) -> str:
    """Queue a run for this session (answered at once if the store has it); raises ConfigError
    at once for a bad value. `rescoring`: it evaluates kept weights only (its estimate is shorter)."""
    estimate = run_estimate(cfg, rescoring)
    job_id = job_manager().submit(cfg, owner=session_owner(), estimate_s=estimate)   # kept on the job
    st.session_state.setdefault("jobs", []).append(job_id)
    return job_id


@st.cache_resource
def ray_dispatcher():
    """The server's sweeps on Ray when whoever started it set FTLAB_RAY_ADDRESS (`local` or a
    cluster's head); None otherwise, and the local job manager runs every queued run."""
    from core.ray_sweep import RayDispatcher, configured

    setting = configured()
    return None if setting is None else RayDispatcher(**setting)


def queue_runs(configs: list, title: str) -> str:
    """Several runs at once (a Learn lesson, Compare's sweep): as one sweep on Ray when the server has
    it, else each on the local job manager. Returns "ray" or "local"; ConfigError/QueueFull at once."""
    dispatcher = ray_dispatcher()
    if dispatcher is not None:
        sweep_id = dispatcher.submit(configs, owner=session_owner(), title=title)
        st.session_state.setdefault("sweeps", []).append(sweep_id)
        return "ray"
    ids = job_manager().submit_all(configs, owner=session_owner(),        # all or nothing against the queue cap
                                   estimates=[run_estimate(c) for c in configs])
    st.session_state.setdefault("jobs", []).extend(ids)
    return "local"


def session_sweeps() -> list:
    dispatcher = ray_dispatcher()
    if dispatcher is None:
        return []
    return dispatcher.sweeps_of(session_owner())     # the browser's: a reload finds its sweeps again


def sweep_panel() -> None:
    """This session's sweeps on Ray: one progress bar each, a line per run as it lands, Stop; the page
    reruns when a run lands so its plots and tables take it in."""
    sweeps = session_sweeps()
    if not sweeps:
        return

    @st.fragment(run_every=1.0 if any(not s.finished for s in sweeps) else None)   # no polling once all ended
    def panel():
        sweeps = session_sweeps()
        seen = st.session_state.setdefault("sweeps_seen", {})
        changed = any(seen.get(s.id) != (len(s.landed), s.state) for s in sweeps)
        for s in sweeps:
            seen[s.id] = (len(s.landed), s.state)
        if changed and st.session_state.pop("sweep_drawn", False):
            st.rerun()                          # a run landed: the whole page draws it
        st.session_state["sweep_drawn"] = True
        for s in reversed(sweeps):
            if s.finished and since(s.finished_at) > 600:
                continue                        # an old sweep's lines are in Compare by now
            with st.container(border=True):
                where = ray_dispatcher().where
                n = len(s.landed)
                head = {"starting": f"Starting {where}…", "running": f"On {where}",
                        "done": "Done", "stopped": "Stopped", "failed": "Failed"}[s.state]
                st.progress(n / max(1, s.total), text=f"**{head}**: {s.title}, {n} of {s.total} runs stored "
                                                       f"· {duration(since(s.started_at))} so far")
                for label, r in s.landed[-8:]:
                    cached = " (already stored)" if getattr(r, "cached", False) else ""
                    st.caption(f"{r.strategy} · n={r.size} · seed {r.seed}: in-domain {pct(r.in_domain_acc)}, "
                               f"general {pts(r.general_delta)}{cached}")
                if s.error:
                    st.error(f"**The sweep could not finish.** {s.error}", icon=ICON_ERROR)
                if not s.finished and st.button("Stop the sweep", key=f"stop_{s.id}", icon=":material/stop:"):
                    ray_dispatcher().stop(s.id)

    panel()


def session_jobs() -> list:
    """This browser's jobs on this server, oldest first, those an earlier page of it started included."""
    jobs = job_manager().jobs_of(session_owner())
    st.session_state["jobs"] = [j.id for j in jobs]
    return jobs


def store() -> RunStore:
    return RunStore()    # cheap: a path and a schema check; $FTLAB_HOME decides where








def weights_kept(training_key: str | None) -> bool:
    """Whether a run's fine-tuned weights are still kept beside the store (WiSE-FT re-scoring)."""
    return bool(training_key) and WeightStore.beside(store()).has(training_key)


@st.cache_data(ttl=30, show_spinner=False)
def _rates(device: str = "cpu"):
    # timings stay valid across result versions; before any run here, the reference rates scaled to this
    # host by the speeds its warm worker measured (core.estimate.host_rates)
    return rates_from(list(reversed(RunStore().list(all_versions=True))), device, defaults=estimates.host_rates())


def run_estimate(cfg: RunConfig, rescoring: bool = False):
    """The run's one time estimate (core.estimate.RunEstimate), before it starts: what the Run bar
    announces, what submit hands the job, what the panel counts down and the card compares with.
    `rescoring`: only an evaluation of kept fine-tuned weights (WiSE-FT at another mix)."""
    try:
        info = task_info(cfg.task)
        stored = stored_result(store(), cfg) is not None
    except Exception:     # noqa: BLE001 - an estimate never stops a run; the run says what is wrong
        return RunEstimate(None)
    manager = job_manager()
    # Counted from the click, worker start included, only when nothing is ahead of it: a run that waits
    # behind others starts on a worker that warmed meanwhile (its wait is announced apart, as the wait).
    warm = manager.is_warm() or manager.running_job() is not None or manager.queue_length() > 0
    return estimates.run_estimate(cfg, info, _rates(), stored=stored, stored_runs=store().list(task=cfg.task), worker_warm=warm,
                rescoring=rescoring)


def estimate_seconds(cfg: RunConfig, rescoring: bool = False) -> float | None:
    """The whole run's wall time on this machine, before it starts (None: cannot say)."""
    return run_estimate(cfg, rescoring).total_s


def job_estimate(job):
    """The estimate a job was announced with (kept on the job: the same after a reload)."""
    return job.estimate()
