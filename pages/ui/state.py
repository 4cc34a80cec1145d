"""The session's state: every key declared (SESSION_KEYS), the Lab's one configuration, its widgets
and the URL."""
from __future__ import annotations

from dataclasses import fields

import streamlit as st

from core.config import RunConfig
from core.urlstate import config_from_query, config_to_query

from .dispatch import job_manager, session_jobs, session_sweeps
from .lookups import param_counter
from .messages import ICON_LINK


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
