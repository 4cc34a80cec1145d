"""Getting around: every page by its own link on a freshly started server, only the lab's pages in the
navigation, a link's refused values still said while the page settles, and a Learn button that lands
on the Lab's top.

The AppTests run anywhere. The browser tests start their own server for each test (a deep link must be
the FIRST page that server ever serves: Streamlit's legacy discovery of pages/ applies until then) and
drive Debian's chromium through Playwright, like tests/test_browser.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
from live_server import CHROMIUM, chromium, running_server
ARTIFACTS = ROOT / "tests" / "artifacts"
PAGES = {"compare": "Compare runs", "learn": "Learn"}          # URL path -> the page's own title
HOSTILE = "csv:/etc/passwd"



def browser_test(fn):
    for mark in (pytest.mark.slow, pytest.mark.browser,
                 pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason="Debian chromium is not installed at /usr/bin/chromium")):
        fn = mark(fn)
    return fn


def assert_no_exception(at: AppTest):
    assert not at.exception, [e.value for e in at.exception]


def link_errors(at: AppTest) -> str:
    return " ".join(e.value for e in at.error)


# ---------------------------------------------------------------------------- AppTest


@pytest.mark.parametrize("path", sorted(PAGES))
def test_a_page_opened_first_by_its_link_runs_through_the_app(path):
    """AppTest starts every run in Streamlit's legacy mode, as a fresh server does: the page ran without
    app.py (no lab_cfg) until it learned to go through it."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(f"pages/{path}.py").run()                         # the very first run is the deep link
    assert_no_exception(at)
    assert [t.value for t in at.title] == [PAGES[path]]
    assert "lab_cfg" in at.session_state                              # app.py's session set-up ran
    at.run()                                                          # and it stays on that page
    assert_no_exception(at)
    assert [t.value for t in at.title] == [PAGES[path]]


def test_a_refused_link_value_stays_until_dismissed():
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["charts_ready"] = True
    at.query_params["task"] = HOSTILE
    at.run()
    assert f"task={HOSTILE!r}" in link_errors(at)
    at.run().run()                                                    # the page's own follow-up reruns
    assert f"task={HOSTILE!r}" in link_errors(at)
    at.button(key="dismiss_link_problems").click().run()
    assert f"task={HOSTILE!r}" not in link_errors(at)
    assert_no_exception(at)


def test_a_refused_link_value_stays_for_a_browser_that_already_has_runs():
    """The browser's earlier runs, found again by this page, are not a run queued since the link."""
    import uuid

    from core.config import RunConfig
    from pages import ui

    owner = uuid.uuid4().hex
    ui.job_manager().submit(RunConfig(task="r8", size=16, epochs=1, max_length=32, eval_size=50, general_size=50,
                                      strategy="feature-extraction", seed=813), owner=owner)
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["charts_ready"] = True
    at.session_state["owner"], at.session_state["owner_in_cookie"] = owner, True
    at.query_params["task"] = HOSTILE
    at.run().run().run()
    assert at.session_state["jobs"]                                   # the earlier run is this page's
    assert f"task={HOSTILE!r}" in link_errors(at)                     # and the link's message stays
    assert_no_exception(at)


def test_a_refused_link_value_goes_when_the_setup_changes():
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["charts_ready"] = True
    at.query_params["model"] = "/tmp"
    at.run()
    assert "model='/tmp'" in link_errors(at)
    at.number_input(key="cfg_max_length").set_value(48).run()
    assert "model='/tmp'" not in link_errors(at)


def test_a_refused_link_value_goes_when_a_run_is_queued():
    from pages import ui

    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["charts_ready"] = True
    for k, v in {"size": "16", "strategy": "feature-extraction", "epochs": "1", "max_length": "32",
                 "eval_size": "50", "general_size": "50", "lr": "fast"}.items():
        at.query_params[k] = v
    at.run()
    assert "lr='fast'" in link_errors(at)
    at.button(key="run").click().run()
    assert_no_exception(at)
    assert "lr='fast'" not in link_errors(at)
    for job_id in at.session_state["jobs"]:          # only the message matters here: free the worker
        ui.job_manager().stop(job_id)


# ---------------------------------------------------------------------------- a real browser


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def shot(page, name: str):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def nav_titles(page) -> list[str]:
    """The sidebar navigation's entries as a reader sees them (an entry's text starts with its icon's name)."""
    return page.locator('[data-testid="stSidebarNav"] a').evaluate_all(
        "links => links.map(a => a.innerText.split('\\n').pop().trim())")


def settled(page, seconds: float = 3.0):
    """Until the page's running indicator has been gone for `seconds` (reruns included)."""
    page.wait_for_function("document.querySelectorAll('[data-testid=stSkeleton]').length === 0",
                           polling=200, timeout=60_000)
    page.wait_for_timeout(seconds * 1000)


@browser_test
@pytest.mark.parametrize("path", sorted(PAGES))
def test_a_deep_link_is_the_first_page_a_fresh_server_serves(browser, path):
    """A speaker's bookmark after a restart: /compare or /learn before anyone opened /."""
    with running_server("ftlab-nav-") as (url, _):
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{url}/{path}")
        page.locator("h1", has_text=PAGES[path]).wait_for(timeout=120_000)
        settled(page)
        shot(page, f"deep_link_{path}_first")
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.locator("h1").first.inner_text() == PAGES[path]       # its own content, not the Lab
        assert nav_titles(page) == ["Lab", "Compare", "Learn"]
        assert page.url.rstrip("/").endswith(f"/{path}")
        page.close()


@browser_test
def test_the_glue_module_is_not_a_page(browser):
    with running_server("ftlab-nav-") as (url, _):
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{url}/ui")
        page.locator(".st-key-run button").wait_for(timeout=120_000)      # the Lab, not a blank page
        assert page.get_by_text("Page not found").count() == 1             # and Streamlit says why
        settled(page, 1.0)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert nav_titles(page) == ["Lab", "Compare", "Learn"]
        page.close()


@pytest.fixture(scope="module")
def server():
    with running_server("ftlab-nav-") as (url, _):
        yield url


@browser_test
def test_a_refused_link_value_is_still_said_after_the_page_has_settled(browser, server):
    """It showed at 1.0 s and was gone at 1.5 s: the page's own follow-up rerun (the charts) took it."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{server}/?task={HOSTILE}&size=64")
    message = page.get_by_text(f"the link's task='{HOSTILE}' is not one of the lab's tasks")
    message.wait_for(timeout=120_000)
    settled(page)                       # the reruns after the first paint have come and gone
    assert message.is_visible()
    page.wait_for_timeout(3000)
    assert message.is_visible()
    assert page.get_by_text("n=64").count() >= 1                      # the rest of the link applied
    shot(page, "link_refused_still_said")
    page.locator(".st-key-dismiss_link_problems button").click()
    message.wait_for(state="detached", timeout=30_000)
    page.close()


@browser_test
def test_a_learn_button_far_down_lands_on_the_lab_s_top(browser, server):
    """The browser kept the Learn page's scroll offset: the Lab landed as far down as its height allowed
    (a low window makes every Lab taller than the view). One lesson with one run, stopped at once."""
    page = browser.new_page(viewport={"width": 1280, "height": 560})
    page.goto(f"{server}/learn")
    button = page.locator(".st-key-learn_8 button")                   # WiSE-FT: one run
    button.wait_for(timeout=120_000)
    settled(page, 1.0)
    button.scroll_into_view_if_needed()
    assert page.evaluate("document.querySelector('[data-testid=stMain]').scrollTop") > 1000
    button.click()
    stop = page.locator("[class*='st-key-stop_'] button")
    stop.wait_for(timeout=60_000)                                     # on the Lab, its run queued or starting
    page.wait_for_timeout(3000)                                       # its plots arrive; nothing moves it down
    shot(page, "learn_button_landed")
    assert page.evaluate("document.querySelector('[data-testid=stMain]').scrollTop") == 0
    run = page.locator(".st-key-run button").bounding_box()
    assert run is not None and 0 <= run["y"] and run["y"] + run["height"] <= 560
    stop.click()
    page.get_by_text("The run ended before it finished").wait_for(timeout=60_000)
    page.close()
