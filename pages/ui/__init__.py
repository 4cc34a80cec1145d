"""Streamlit glue shared by app.py and the pages: the navigation, the job manager, this session's jobs,
the Lab's configuration and its widgets, cached look-ups, the URL, messages and the presenter style. Core
does the work; this file only connects it to st.

A package (pages/ui/__init__.py), not a module beside the pages: Streamlit's legacy discovery offers
every pages/*.py file as a page (see enter_page), and this is not one.

Every session-state key the app uses is declared in SESSION_KEYS below, with what it holds
(tests/test_app.py checks that no page uses one that is not).
"""
from __future__ import annotations

import re
import runpy
import time
import uuid
from dataclasses import fields
from pathlib import Path

import streamlit as st

from core.config import FIELD_TYPES, ConfigError, RunConfig  # noqa: F401  (FIELD_TYPES: for the pages)
from core.data import TASKS, load_task, log_sizes
from core.errors import QueueFull
from core.fmt import pct, pts
from core import estimate as estimates
from core.estimate import LONG_RUN_S, RunEstimate, rates_from  # LONG_RUN_S: a run estimated longer asks first
from core.jobs import FAILED, STOPPED, JobManager
from core.param_counts import ParamCounter
from core.presets import load_presets
from core.store import RunStore, stored_result
from core.weights import WeightStore
from core.uploads import display_name, known_uploads
from core.urlstate import config_from_query, config_to_query, shipped_tasks

IN_DOMAIN_TASKS = shipped_tasks()
# Every st.session_state key of the app, with what it holds. A key ending in "*" is a family (a prefix).
SESSION_KEYS = {
    "lab_cfg": "THE Lab configuration (RunConfig.to_dict()): widgets, URL and Learn buttons all read and "
               "write this one dict, never each other",
    "cfg_*": "the Lab's config widgets, one per RunConfig field (WIDGET_PREFIX), written from lab_cfg (bind)",
    "url_errors": "problems found in the link this session was opened with; shown until dismissed, the setup "
                  "changed or a run queued (show_link_problems)",
    "link_runs_before": "how many runs this browser had queued when the link was opened (a later one drops "
                        "the link's messages)",
    "owner": "this browser's id (the ftlab_browser cookie; see session_owner)",
    "owner_in_cookie": "the id came from the cookie (no script needed to write it)",
    "jobs": "ids of the jobs this browser submitted to this server, oldest first (refreshed from the job "
            "manager by session_jobs: a reloaded page finds its runs again)",
    "sweeps": "ids of this browser's sweeps on Ray",
    "sweeps_seen": "each sweep's progress as last drawn (a change redraws the panel)",
    "sweep_drawn": "the sweep panel was drawn by the last run of its fragment",
    "page_shown": "the URL path of the page the last run drew (a different one starts at the top)",
    "_via_app": "NAV_MARK: set by app.py just before it runs the page; the page takes it (enter_page)",
    "presenter_on": "presenter mode (advanced controls hidden, everything larger)",
    "presenter": "the presenter toggle's own key, written from presenter_on on every run (app.py)",
    "charts_ready": "the browser has painted the first page: charts are drawn inline from now on (painted)",
    "charts_waiting": "the first page held its charts back for the browser's timer",
    "charts_armed": "the charts' fragment has run once inline; its next run comes from the browser's timer",
    "_live_fig": "the running panel's live figures, kept between the fragment's runs (pages/lab.py)",
    "_warming_shown": "the warming-up caption is on the page (pages/lab.py)",
    "_counts_learned": "the task whose stored parameter counts were read into the strategy list (pages/lab.py)",
    "_shown_*": "per job: the progress fraction last drawn, so a bar never goes backwards (pages/lab.py)",
    "cmp_delete": "Compare's delete button (its click is consumed once, pages/compare.py)",
}
WIDGET_PREFIX = "cfg_"     # the Lab's config widgets are keyed cfg_<RunConfig field>
FIELD_DEFAULTS = {f.name: f.default for f in fields(RunConfig)}
# Fields where None means the strategy's default: an emptied box keeps None (others take FIELD_DEFAULTS).
OPTIONAL_NUMBERS = {"lr", "head_lr", "epochs", "batch_size", "dropout"}


# ---------------------------------------------------------------------------- navigation
# Streamlit (1.67) has two ways to find an app's pages. The old one, for an app with a `pages/` folder
# beside its main script, lists every pages/*.py file and runs the one the URL names *instead of* the main
# script; the new one, st.navigation, is what app.py uses. Which one applies is one flag for the whole
# server process: it starts on "old" when pages/ exists and turns to "new" the first time any session
# calls st.navigation. So on a freshly started server, a link to /compare or /learn opened before anyone
# opened / ran the page without app.py (no session set-up: "no attribute lab_cfg") and the sidebar listed
# the raw files. The page files stay in pages/, so every page starts with enter_page(): in a run that did
# not come through app.py it runs app.py there and then, which switches the server to st.navigation for
# good and draws this same page in full, and the outer run stops. (Not a rerun: a rerun would drop the
# click that started this run. AppTest starts every run the old way, so its page switches take this path.)
APP_SCRIPT = Path(__file__).resolve().parents[2] / "app.py"
NAV_MARK = "_via_app"        # set by app.py just before it runs the page; the page takes it


def navigation():
    """The lab's pages, as st.navigation's page (app.py runs it)."""
    return st.navigation([
        st.Page("pages/lab.py", title="Lab", icon=":material/science:", default=True),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
        st.Page("pages/learn.py", title="Learn", icon=":material/school:"),
    ])


# The browser keeps the main area's scroll offset when the page changes (a Learn button, a sidebar link):
# the new page lands scrolled down as far as its own height allows, and scroll anchoring then follows its
# content further down as its plots arrive. Three of the eleven Learn buttons landed on a Lab with the
# Run bar out of view. A page that replaces another starts at the top (the element takes no room: a
# script's empty element would still push the page down by one gap until the next rerun).
TO_TOP = """<style>[data-testid="stElementContainer"]:has(script.to-top) { display: none; }</style>
<script class="to-top">document.querySelector('[data-testid="stMain"]')?.scrollTo(0, 0);</script>"""


def run_page(page) -> None:
    """app.py's last line: run the page the URL names, marked as having come through app.py."""
    st.session_state[NAV_MARK] = True
    shown = st.session_state.get("page_shown")
    if shown is not None and shown != page.url_path:
        st.html(TO_TOP, unsafe_allow_javascript=True)
    st.session_state["page_shown"] = page.url_path
    page.run()


def enter_page() -> None:
    """The first line of every page: a run that Streamlit started without app.py (its legacy discovery
    of pages/, on a fresh server) goes through app.py, to the same page (a page's id is its URL path
    either way), with the same link and the same clicks."""
    if st.session_state.pop(NAV_MARK, False):
        return
    runpy.run_path(str(APP_SCRIPT))     # the session's set-up, st.navigation, and this page in full
    st.stop()                           # drawn by app.py just now: nothing left for this run to do


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


def count_text(n: int) -> str:
    """A parameter count that fits a metric card: 22.7 M, 36.9 k, 296."""
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e4 else f"{n:,}"


def lab_tasks() -> list[str]:
    """The tasks the Lab offers: the shipped ones, then what was uploaded to this server (newest first)."""
    return IN_DOMAIN_TASKS + known_uploads()


def task_title(name: str) -> str:
    if name in TASKS:
        return TASKS[name].title
    if name.startswith("upload:"):         # the file's name (core.uploads.display_name), never the hash alone

        return f"{display_name(name)} (your data)"
    try:
        return f"{task_info(name)['card']['title']} (your data)"
    except Exception:     # noqa: BLE001 - a title never stops a page
        return name


def weights_kept(training_key: str | None) -> bool:
    """Whether a run's fine-tuned weights are still kept beside the store (WiSE-FT re-scoring)."""
    return bool(training_key) and WeightStore.beside(store()).has(training_key)


# ---------------------------------------------------------------------------- cached look-ups


@st.cache_data(show_spinner=False)
def task_info(name: str) -> dict:
    """The data card, two examples, the log-spaced sizes and the text lengths; a DataError propagates."""
    task = load_task(name)
    return {"card": task.card(), "examples": task.examples(2), "sizes": log_sizes(task),
            "num_labels": task.num_labels, "n_train": len(task.train_texts), "n_val": len(task.val_texts),
            "n_test": len(task.test_texts), "sample": task.train_texts[:: max(1, len(task.train_texts) // 256)]}


@st.cache_resource
def param_counter() -> ParamCounter:
    """Trainable-parameter counts, kept on disk and computed in a background thread: the first
    page never waits for torch or the model."""
    return ParamCounter(delay_s=3.0)


@st.cache_resource(ttl=60)
def presets():
    """(presets, problems) from assets/presets; re-read a minute later so a new file shows up."""
    return load_presets()


def preset_runs(task: str | None = None, names=None) -> list:
    """Preset runs measured the way this code measures (an older benchmark's are not comparable)."""
    found, _ = presets()
    return [r for p in found if names is None or p.name in names for r in p.runs
            if (task is None or r.task == task) and r.current]


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


# ---------------------------------------------------------------------------- the Lab's configuration


def init_session() -> None:
    """On a session's first run, read the configuration and presenter mode from the link."""
    if "lab_cfg" in st.session_state:
        return
    job_manager().postpone_warmup()      # this session's first page and its charts come before torch
    param_counter().postpone()
    params = st.query_params.to_dict()
    cfg, errors = config_from_query(params)
    st.session_state.lab_cfg = cfg.to_dict()
    st.session_state.url_errors = errors
    st.session_state.presenter_on = params.get("presenter") in ("1", "true", "yes")


def presenter() -> bool:
    return bool(st.session_state.get("presenter_on"))


def take_presenter() -> None:
    st.session_state.presenter_on = bool(st.session_state.get("presenter"))


def lab_config() -> RunConfig:
    return RunConfig.from_dict(st.session_state.lab_cfg)


def set_lab_config(cfg: RunConfig) -> None:
    """Replace the Lab's configuration (e.g. from the Learn page); the widgets show it on their next run."""
    st.session_state.lab_cfg = cfg.to_dict()
    drop_link_problems()         # a new setup: what the link asked for no longer matters


def set_field(name: str, value) -> None:
    st.session_state.lab_cfg = {**st.session_state.lab_cfg, name: value}


def _take(name: str, empty, convert) -> None:
    """on_change of the widget for field `name`: its value goes into lab_cfg. An emptied number box
    is `empty` (None, which a strategy default fills, or the field's own default)."""
    drop_link_problems()         # the user changed the setup: the link's refusals are behind them
    value = st.session_state.get(WIDGET_PREFIX + name)
    if value is None:
        value = empty
    if isinstance(value, (list, tuple)):
        value = list(value)
    set_field(name, convert(value) if convert else value)


def bind(name: str, shown=None, convert=None) -> dict:
    """Keyword arguments that tie a widget to lab_cfg[name]: its state is written from lab_cfg before
    it renders (so nothing else can leave a stale or half-cleared value in it) and read back into
    lab_cfg when the user changes it. `shown` is the value in the widget's form where that differs
    from the field's, and `convert` turns the widget's value back into the field's."""
    value = st.session_state.lab_cfg.get(name) if shown is None else shown
    st.session_state[WIDGET_PREFIX + name] = list(value) if isinstance(value, tuple) else value
    empty = None if FIELD_DEFAULTS.get(name) is None or name in OPTIONAL_NUMBERS else FIELD_DEFAULTS[name]
    return {"key": WIDGET_PREFIX + name, "on_change": _take, "args": (name, empty, convert)}



def sync_query(cfg: RunConfig | None = None) -> None:
    """Write the setup into the URL: only fields that differ from the defaults, plus presenter."""
    params = config_to_query(cfg) if cfg is not None else {}
    if presenter():
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
    "WorkerKilled": "The training process was ended by a signal",     # show_job_outcome names the signal
}
ICON_ERROR, ICON_WARNING, ICON_STOPPED, ICON_LINK = (":material/block:", ":material/warning:",
                                                     ":material/stop_circle:", ":material/link_off:")


def drop_link_problems(shown=None) -> None:
    """Forget the link's problems; `shown`, the placeholder show_link_problems drew them in, is cleared
    too (a Run click that queued its run takes them off the page it is drawing)."""
    st.session_state.pop("url_errors", None)
    if shown is not None:
        shown.empty()


def show_link_problems():
    """What the link asked for and did not get, one line each, with a Dismiss button. They stay on every
    rerun (the page's own follow-up reruns came within half a second and took them away, leaving the
    defaults without a reason) until dismissed, the setup is changed, or a run is queued (the Lab's Run
    clears them through the placeholder this returns; None when nothing was shown)."""
    # A run queued since the link was read: the browser's earlier runs, found again by a reload, do not
    # count, and neither does a click on Run that was refused (a bad value, a full queue).
    queued = len(session_jobs()) + len(session_sweeps())
    if queued > st.session_state.setdefault("link_runs_before", queued):
        drop_link_problems()
    errors = st.session_state.get("url_errors")
    if not errors:
        return None
    shown = st.empty()
    with shown.container():
        for msg in errors:
            st.error(msg, icon=ICON_LINK)
        st.button("Dismiss", key="dismiss_link_problems", icon=":material/close:", type="tertiary",
                  on_click=drop_link_problems)
    return shown


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


# ---------------------------------------------------------------------------- chrome and presenter mode

# Always: Streamlit's own running indicator and its Stop (which stops the page's script, not the
# run) would only confuse; the toolbar's developer items are off in .streamlit/config.toml.
BASE_CSS = """
<style>
[data-testid="stStatusWidget"], [data-testid="stAppDeployButton"], [data-testid="stMainMenu"] { display: none; }
</style>
"""

# A projector at the back of a room, on one 1920x1080 screen: numbers, buttons and plots several times
# their desk size, with the Run bar, the running panel and Stop, or a result's cards and the trade-off
# plot, inside the first screen (tests/test_browser.py measures them). Spacing is what gives way: the
# gaps between elements, the title, the metric cards (a compact row, still ~58 px numbers). The
# sidebar is the speaker's, not the room's: wider (no select box cuts its text), in desk-size type.
PRESENTER_SIDEBAR_PX = 440
PRESENTER_CSS = """
<style>
[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"] { display: none; }
html, body, [data-testid="stAppViewContainer"] { font-size: 1.3rem; }
[data-testid="stMainBlockContainer"] { padding-top: 1rem; padding-bottom: 2rem; }
[data-testid="stMainBlockContainer"] [data-testid="stVerticalBlock"] { gap: 0.5rem; }
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMain"] [data-testid="stMarkdownContainer"] li { font-size: 1.35rem; }
[data-testid="stMain"] [data-testid="stCaptionContainer"],
[data-testid="stMain"] [data-testid="stCaptionContainer"] p { font-size: 1.1rem; }
[data-testid="stMetricValue"], [data-testid="stMain"] [data-testid="stMetricValue"] [data-testid="stMarkdownContainer"] p {
  font-size: 2.8rem; line-height: 1.1; }
[data-testid="stMain"] [data-testid="stMetricLabel"] [data-testid="stMarkdownContainer"] p { font-size: 1.1rem; }
[data-testid="stMetricLabel"] p, [data-testid="stMetricLabel"] div { white-space: normal; }
[data-testid="stMetricDelta"], [data-testid="stMain"] [data-testid="stMetricDelta"] [data-testid="stMarkdownContainer"] p {
  font-size: 1.0rem; white-space: normal; }
[data-testid="stMain"] h1 { font-size: 2.2rem !important; padding: 0 0 0.2rem 0; }
[data-testid="stMain"] h2, [data-testid="stMain"] h3 { font-size: 1.7rem !important; padding: 0.4rem 0 0.2rem 0; }
[data-testid="stMain"] [data-testid="stHeading"] [data-testid="stMarkdownContainer"] { margin-bottom: 0; }
[data-testid="stMain"] .stButton button, [data-testid="stMain"] .stButton button p {
  font-size: 1.9rem; min-height: 4rem; padding: 0.4rem 1rem; }
[data-testid="stMain"] [data-testid="stProgress"] p { font-size: 1.4rem; }
section[data-testid="stSidebar"] { width: %(w)dpx !important; min-width: %(w)dpx !important; }
section[data-testid="stSidebar"] [data-testid="stSidebarContent"] { font-size: 1rem; }
[data-testid="stSidebar"] label p { font-size: 1.05rem; }
[data-testid="stSidebar"] [data-testid="stMarkdownContainer"] p,
[data-testid="stSidebar"] [data-testid="stCaptionContainer"] p { font-size: 0.9rem; }
[data-testid="stSidebar"] [data-testid="stSelectbox"] input { font-size: 0.95rem; }
[data-testid="stSidebar"] h2 { font-size: 1.4rem !important; padding: 0.2rem 0; }
[data-testid="stSidebarHeader"] { height: 2.5rem; margin-bottom: 0; }
[data-testid="stSidebar"] [data-testid="stVerticalBlock"] { gap: 0.6rem; }
[data-testid="stSidebar"] [role="radiogroup"] label { margin-bottom: 0.1rem; }
[data-testid="stSliderThumbValue"], [data-testid="stSliderTickBarMin"], [data-testid="stSliderTickBarMax"] {
  font-size: 0.95rem; }
</style>
""" % {"w": PRESENTER_SIDEBAR_PX}
# Heights (px) of the Lab's plots in presenter mode, so that a run and its result fit one screen.
PRESENTER_LIVE_PLOT_PX = 400
PRESENTER_TRADEOFF_PX = 470         # under a result's cards
PRESENTER_TRADEOFF_ALONE_PX = 720   # before any result: the plot is the screen


def apply_style() -> None:
    st.html(BASE_CSS)
    if presenter():
        st.html(PRESENTER_CSS)


# ---------------------------------------------------------------------------- charts after the first paint
# Measured (docs/PERFORMANCE.md, first page): the browser holds the page back until plotly's script
# has loaded and parsed, about a second here. So a session's first run draws the page without its
# charts; a fragment whose timer runs in the browser then asks for the rerun that draws them. The
# timer starts when the fragment is mounted, not when the page is painted: at 0.1 s its rerun came
# before the Run button was on screen and held it back to the plot's time; 0.3 s lets it paint first.
def painted(placeholder: str | None = None) -> bool:
    """Whether the page is on screen, so heavy elements may be drawn (True from the rerun that the
    page's last line asks for); before that, shows `placeholder` and makes sure that rerun comes."""
    if st.session_state.get("charts_ready"):
        return True
    st.session_state["charts_waiting"] = True
    if placeholder:
        st.caption(placeholder)
    return False


def chart(make, key: str, placeholder: str = "Drawing the plot…", presenter_height: int | None = None) -> None:
    """`make(plots)` builds the figure from core.plots (imported here, off the first run's path:
    plotly costs a few hundred ms to import); presenter mode enlarges it (to `presenter_height` px)."""
    if not painted(placeholder):
        return
    from core import plots

    fig = make(plots)
    st.plotly_chart(plots.for_presenter(fig, presenter_height) if presenter() else fig, key=key)


def draw_waiting_charts() -> None:
    """The last line of a page that draws charts or other elements held back by `painted()`."""
    if not st.session_state.pop("charts_waiting", False):
        st.session_state["charts_ready"] = True
        return
    st.session_state["charts_armed"] = False

    @st.fragment(run_every=0.3)
    def after_first_paint():
        if st.session_state.get("charts_armed"):     # a run from the browser's timer: the page is shown
            st.session_state["charts_ready"] = True
            job_manager().postpone_warmup()          # plotly's script loads in the browser now: torch after it
            param_counter().start_now()              # the counts (a child at nice 19) need not wait longer
            st.rerun()
        st.session_state["charts_armed"] = True      # the fragment's first run, inline in the script

    after_first_paint()
