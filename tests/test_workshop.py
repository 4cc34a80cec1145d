"""Runs that outlive their tab, and a room on one server.

A run belongs to the browser (an id the server makes and a cookie keeps), not to the page: a reload
or a second session of the same browser finds its runs running, queued or finished, with the reason
for any that ended early. In AppTest a session's browser id is set in its session state (AppTest has
no cookies); in Chromium the cookie itself is used. The last test drives a small workshop through
tests/workshop_load.py (no timing assertions; the full one writes docs/PERFORMANCE.md).
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
from live_server import CHROMIUM, chromium, running_server
ARTIFACTS = ROOT / "tests" / "artifacts"          # git ignores it
TINY_QUERY = {"size": "16", "strategy": "feature-extraction", "epochs": "1", "max_length": "32",
              "eval_size": "50", "general_size": "50"}


def browser_session(owner: str, query: dict | None = None) -> AppTest:
    """A page of the browser whose cookie carries `owner` (as session_owner would have read it)."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["charts_ready"] = True
    at.session_state["owner"] = owner
    at.session_state["owner_in_cookie"] = True
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def manager():
    from pages import ui

    return ui.job_manager()


def test_a_browser_id_is_made_once_and_only_a_well_formed_cookie_is_believed():
    from pages import ui

    at = AppTest.from_file(APP, default_timeout=120).run()
    owner = at.session_state["owner"]
    assert ui.browser_id_from(owner) == owner and not at.session_state["owner_in_cookie"]
    scripts = [h.proto.body for h in at.get("html") if ui.BROWSER_COOKIE in h.proto.body]
    assert len(scripts) == 1 and f"{ui.BROWSER_COOKIE}={owner};" in scripts[0]     # the cookie is written
    at.run()
    assert at.session_state["owner"] == owner                                      # one id per session
    assert ui.browser_id_from("x" * 32) is None and ui.browser_id_from("abc") is None
    assert ui.browser_id_from(None) is None and ui.browser_id_from(uuid.uuid4().hex)


def test_a_session_whose_cookie_was_read_writes_no_cookie_script():
    from pages import ui

    at = browser_session(uuid.uuid4().hex)
    assert not [h for h in at.get("html") if ui.BROWSER_COOKIE in h.proto.body]


def test_the_next_page_of_a_browser_says_why_its_run_was_stopped():
    """A run stopped (here before it started) says so on the browser's next page, with its reason."""
    from core.config import RunConfig

    owner = uuid.uuid4().hex
    job = manager().submit(RunConfig(**{**TINY, "seed": 811}, strategy="feature-extraction"), owner=owner)
    manager().stop(job)
    assert manager().get(job).state == "stopped"
    at = browser_session(owner, TINY_QUERY)
    assert not at.exception
    assert job in at.session_state["jobs"]
    assert any(w.value.startswith("Stopped by the user (before it started).") for w in at.warning), [w.value for w in at.warning]
    other = browser_session(uuid.uuid4().hex, TINY_QUERY)                # another browser sees nothing of it
    assert job not in other.session_state["jobs"] and not other.warning


def test_a_worker_killed_by_a_signal_is_named_on_the_page():
    """What show_job_outcome makes of the manager's words for a SIGKILL without memory evidence."""
    def script():
        from core.config import RunConfig
        from core.jobs import FAILED, Job, death_cause
        from pages import ui

        cause = death_cause(-9, {"machine": 0}, {"machine": 0})
        ui.show_job_outcome(Job("j", RunConfig(), "", state=FAILED, error=cause["message"],
                                error_kind=cause["kind"], signal=cause["signal"]))
        oom = death_cause(-9, {"machine": 0}, {"machine": 1})
        ui.show_job_outcome(Job("k", RunConfig(), "", state=FAILED, error=oom["message"],
                                error_kind=oom["kind"], signal=oom["signal"]))

    at = AppTest.from_function(script).run()
    killed, oom = [e.value for e in at.error]
    assert killed.startswith("**The training process was ended by SIGKILL.**") and "out of memory" not in killed.lower()
    assert oom.startswith("**Out of memory.**")


@pytest.mark.slow
def test_a_run_is_found_again_by_the_browsers_next_session_and_lands():
    """Session one clicks Run and goes away (nothing stops the run); session two of the same browser
    shows it running or finished, and then its result cards."""
    owner = uuid.uuid4().hex
    first = browser_session(owner, {**TINY_QUERY, "seed": "812"})
    first.button(key="run").click().run()
    job_id = first.session_state["jobs"][-1]
    del first                                                   # the tab is gone; the run is not stopped
    second = browser_session(owner, {**TINY_QUERY, "seed": "812"})
    job = manager().get(job_id)
    assert job_id in second.session_state["jobs"] and job.state != "stopped"
    if not job.finished:
        assert second.get("progress") or any("Queued, position" in i.value for i in second.info)
    deadline = time.time() + 240
    while not job.finished:
        assert time.time() < deadline, "the run did not finish"
        time.sleep(0.5)
    assert job.state == "done", job.error
    second.run()
    assert not second.exception
    assert any(m.label == "In-domain accuracy" for m in second.metric)       # its cards on the next page
    assert any("seed 812" in h.value for h in second.subheader)


# ---------------------------------------------------------------------------- in a real browser

@pytest.fixture(scope="module")
def server():
    pytest.importorskip("playwright.sync_api", reason="the playwright python package is not installed")
    with running_server("ftlab-outlive-", env={"FTLAB_MAX_QUEUED": "30"}) as (url, home):
        yield url, home


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Debian chromium at /usr/bin/chromium")
def test_a_reload_mid_run_finds_the_run_and_it_lands(server):
    from core.store import RunStore

    url, home = server
    link = f"{url}/?task=r8&strategy=full&size=64&epochs=3&max_length=32&eval_size=50&general_size=50&seed=813"
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        page.goto(link)
        page.locator(".st-key-run button").wait_for(timeout=120_000)
        page.wait_for_timeout(1500)                     # the page drawn whole: its cookie script ran
        assert any(c["name"] == "ftlab_browser" for c in page.context.cookies())
        page.locator(".st-key-run button").click()
        page.locator("[data-testid=stProgress]").wait_for(timeout=180_000)     # running
        page.reload()                                   # no prompt: nothing is lost by leaving
        page.locator(".st-key-run button").wait_for(timeout=120_000)
        page.wait_for_function(                         # still running, or already finished
            "document.querySelector('[data-testid=stProgress]') || document.body.innerText.includes('Result:')",
            timeout=60_000)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "reload_mid_run.png"))     # looked at by a person, not asserted
        page.get_by_text("Result: full, n=64, seed 813").wait_for(timeout=300_000)   # and it lands
        page.screenshot(path=str(ARTIFACTS / "reload_mid_run_landed.png"))
        assert not page.get_by_text("Stopped").count()
    assert [r.seed for r in RunStore(Path(home) / "runs.sqlite").list(all_versions=True)] == [813]


@pytest.mark.slow
def test_a_small_workshop_every_run_stored_or_refused_and_turns_taken():
    """Three browsers (Streamlit's websocket protocol, a cookie each), one queuing three runs first,
    under a cap of three waiting runs: every run is stored or refused with the queue-full message, no
    browser runs twice in a row while another waits, and every reload while a run was pending showed
    it. (No timing assertions: the figures are what the full run writes to docs/PERFORMANCE.md.)"""
    from workshop_load import run_load

    report = run_load(sessions=3, greedy_runs=3, max_queued=3, deadline_s=600, reload_every_s=8)
    outcomes = [r["outcome"] for r in report["runs"]]
    assert len(outcomes) == 5 and report["queued"] + report["refused"] == 5
    assert all(o == "stored" or o.startswith("refused: Queue full") for o in outcomes), outcomes
    assert all("the server's queue is full" in o for o in outcomes if o.startswith("refused")), outcomes
    assert report["stored"] == report["queued"] >= 3
    assert report["fairness_breaches"] == [], report["fairness_breaches"]
    assert report["draw_s"]["n"] >= 5 and report["reloads_that_found_them"] == report["reloads_with_runs_pending"]
