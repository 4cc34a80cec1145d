"""The app in a real browser: `streamlit run app.py` in a subprocess, driven by Debian's chromium
through Playwright's Python package (no browser download: executable_path=/usr/bin/chromium).

Needs: apt-get install -y chromium; pip install playwright (the python package only).
Screenshots (1280x800, and 1920x1080 in presenter mode) and measured times go to tests/artifacts/,
which git ignores.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from live_server import CHROMIUM, chromium, running_server
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
TINY = "size=16&strategy=feature-extraction&epochs=1&max_length=32&eval_size=50&general_size=50"
RESULT_TIMEOUT_MS = 240_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="Debian chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)"),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright python package is not installed")


HOMES = {}     # server URL -> its lab folder (the CLI run beside it shares its caches)


@pytest.fixture(scope="module")
def server():
    """A fresh server with its own empty run store; the URL to open."""
    with running_server("ftlab-browser-") as (url, home):
        HOMES[url] = home
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def run_button(page):
    return page.locator(".st-key-run button")


def stop_button(page):
    return page.locator("[class*='st-key-stop_'] button")


def open_page(browser, url: str, viewport=(1280, 800)):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.goto(url)
    run_button(page).wait_for(timeout=120_000)
    return page


def wait_until_warm(page, url: str, timeout=120.0):
    """Reload until the sidebar no longer says the worker is warming up."""
    deadline = time.time() + timeout
    while page.get_by_text("Worker warming up").count():
        assert time.time() < deadline, "the worker never became ready"
        time.sleep(2)
        page.goto(url)
        run_button(page).wait_for(timeout=60_000)


def wait_rendered(page):
    """Until no placeholder is left (Plotly's bundle loads lazily with the first chart and keeps a
    busy CPU's browser occupied for seconds: not what a click-to-progress time should measure)."""
    page.wait_for_function("document.querySelectorAll('[data-testid=stSkeleton]').length === 0",
                           polling=200, timeout=60_000)
    page.wait_for_timeout(1000)


def record_latency(name: str, seconds: float):
    """Latencies are measured, not asserted (no timed tests): they land in tests/artifacts/latency.json."""
    import json

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "latency.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = round(seconds, 2)
    path.write_text(json.dumps(data, indent=1))
    print(f"{name}: {seconds:.2f} s")


def shot(page, name: str):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


FIND_TRACE = """(name) => {
    for (const plot of document.querySelectorAll('.js-plotly-plot')) {
        for (const t of (plot.data || [])) { if (t.name === name) return true; }
    }
    return false;
}"""


def tradeoff_points(page, trace_name: str) -> list:
    page.wait_for_function(FIND_TRACE, arg=trace_name, polling=250, timeout=60_000)
    return page.evaluate("""(name) => {
        for (const plot of document.querySelectorAll('.js-plotly-plot')) {
            for (const t of (plot.data || [])) {
                if (t.name === name) return t.x.map((x, i) => [x, t.y[i]]);
            }
        }
        return [];
    }""", trace_name)


def test_run_shows_progress_fast_and_lands_on_the_plot(server, browser):
    url = f"{server}/?{TINY}"
    page = open_page(browser, url)
    wait_until_warm(page, url)
    wait_rendered(page)
    run_button(page).click()
    clicked = time.time()
    try:
        # the stage row ("loading → tokenizing → ...") shows once the worker reported progress
        page.wait_for_function("document.body.innerText.includes('evaluating → general')",
                               polling=100, timeout=10_000)
    finally:
        shot(page, "lab_after_click")
    record_latency("browser_first_progress_after_run_s", time.time() - clicked)
    page.locator('[data-testid="stMetricLabel"]', has_text="In-domain accuracy").first.wait_for(
        timeout=RESULT_TIMEOUT_MS)
    points = tradeoff_points(page, "strategy: feature-extraction")
    assert len(points) == 1
    shot(page, "lab_result")


def test_page_switch_keeps_the_run_and_stop_ends_it(server, browser):
    url = f"{server}/?size=64&epochs=20&max_length=32&eval_size=50&general_size=50"   # full fine-tuning
    page = open_page(browser, url)
    run_button(page).click()
    page.locator('[data-testid="stProgress"]', has_text="epoch").first.wait_for(timeout=120_000)
    shot(page, "lab_running")
    page.get_by_role("link", name="Compare").click()
    page.get_by_text("Compare runs").wait_for(timeout=30_000)
    shot(page, "compare")
    page.get_by_role("link", name="Learn").click()
    page.get_by_text("Catastrophic forgetting", exact=True).wait_for(timeout=30_000)
    shot(page, "learn")
    page.get_by_role("link", name="Lab").click()
    page.locator('[data-testid="stProgress"]').wait_for(timeout=30_000)   # still running after the trip
    stop_button(page).click()
    clicked = time.time()
    page.get_by_text("The run ended before it finished").wait_for(timeout=30_000)
    record_latency("browser_stop_shown_after_click_s", time.time() - clicked)
    shot(page, "lab_stopped")


def test_two_pages_share_one_server_and_queue(server, browser):
    first = open_page(browser, f"{server}/?{TINY}&seed=1")
    second = open_page(browser, f"{server}/?{TINY}&seed=2")
    run_button(first).click()
    run_button(second).click()
    queued = second.get_by_text("Queued, position 1")
    try:
        queued.wait_for(timeout=5_000)
        shot(second, "second_session_queued")
    except playwright_api.TimeoutError:
        pass      # the first run finished before the second page polled: nothing to see, still fine
    for page in (first, second):
        page.locator('[data-testid="stMetricLabel"]', has_text="In-domain accuracy").first.wait_for(
            timeout=RESULT_TIMEOUT_MS)
    # Both clicks land within a second, so either run may go first: the page whose run finished first
    # drew the plot before the other run existed. After both, a fresh load shows both runs.
    second.reload()
    wait_rendered(second)
    second.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    second.wait_for_function("""(name) => [...document.querySelectorAll('.js-plotly-plot')].some(
        p => (p.data || []).some(t => t.name === name && t.x.length >= 2))""",
                             arg="strategy: feature-extraction", polling=500, timeout=60_000)
    assert len(tradeoff_points(second, "strategy: feature-extraction")) >= 2


def font_px(page, selector: str) -> float:
    return page.evaluate("(sel) => parseFloat(getComputedStyle(document.querySelector(sel)).fontSize)", selector)


def inside_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    view = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= view["height"] \
        and box["x"] + box["width"] <= view["width"]


def test_run_button_visible_without_scrolling_in_both_modes(server, browser):
    for size in ((1280, 800), (1920, 1080)):
        for presenter in ("", "&presenter=1"):
            page = open_page(browser, f"{server}/?{TINY}{presenter}", viewport=size)
            assert inside_viewport(page, run_button(page)), (size, presenter)
            page.close()


def top_inside_viewport(page, locator) -> bool:
    """The element starts on the first screen (a plot taller than what is left of it may run on)."""
    box = locator.bounding_box()
    return box is not None and 0 <= box["y"] < page.viewport_size["height"] - 100


def test_presenter_mode_at_1920x1080_before_during_and_after_a_run(server, browser):
    """What a room sees on a projector: screenshots before, while running and after, the sizes that
    make them readable, and what the first screen holds at each stage (bounding boxes, no scrolling):
    Run; then Stop, the running panel and its live curves; then the result's cards and the trade-off
    plot. The speaker's sidebar: the whole strategy list in view, no select box cutting its text."""
    url = f"{server}/?size=64&strategy=full&epochs=3&max_length=32&eval_size=100&general_size=50&seed=5&presenter=1"
    page = open_page(browser, url, viewport=(1920, 1080))
    wait_until_warm(page, url)
    wait_rendered(page)
    assert page.get_by_text("Advanced").count() == 0
    for option in page.locator('[data-testid="stSidebar"] [role="radiogroup"] label').all():
        assert inside_viewport(page, option), option.inner_text()          # every strategy, one line each
    for select in page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"] input').all():
        assert select.evaluate("(e) => e.scrollWidth <= e.clientWidth + 1"), select.input_value()   # uncut text
    assert not page.locator('[data-testid="stHeader"]').is_visible()            # Streamlit's chrome
    assert page.locator('[data-testid="stAppDeployButton"]').count() == 0 or \
        not page.locator('[data-testid="stAppDeployButton"]').is_visible()
    assert inside_viewport(page, run_button(page))
    assert font_px(page, ".st-key-run button p") >= 28
    shot(page, "presenter_1920_before")
    run_button(page).click()
    page.locator('[data-testid="stProgress"]', has_text="epoch").first.wait_for(timeout=120_000)
    assert inside_viewport(page, stop_button(page))
    assert page.evaluate("window.onbeforeunload === null")          # no leave prompt: a reload ends no run
    assert page.get_by_text("Training Full fine-tuning on Reuters R8 news topics · n=64").count() >= 1
    assert inside_viewport(page, page.locator('[data-testid="stProgress"]').first)
    assert inside_viewport(page, run_button(page))
    live = page.locator(".st-key-live_curves .js-plotly-plot")
    try:       # the live curves come with the first epoch's general estimate: on the first screen, Stop too
        live.wait_for(timeout=120_000)
        page.wait_for_timeout(500)
        if stop_button(page).count():             # still running (a fast machine may be done by now)
            assert inside_viewport(page, stop_button(page))
            assert inside_viewport(page, live)
            assert inside_viewport(page, page.locator(".st-key-live_tradeoff .js-plotly-plot"))
            shot(page, "presenter_1920_running_curves")
    except playwright_api.TimeoutError:
        pass      # the run ended before its curves were drawn here: the result's checks below still run
    shot(page, "presenter_1920_running")
    page.locator('[data-testid="stMetricLabel"]', has_text="In-domain accuracy").first.wait_for(
        timeout=RESULT_TIMEOUT_MS)
    wait_rendered(page)
    assert font_px(page, '[data-testid="stMetricValue"] p') >= 56          # the number itself
    assert font_px(page, '[data-testid="stMetricLabel"] p') >= 22
    assert page.locator("[role=switch]").first.is_checked()              # still presenter mode after reruns
    layout = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(p => ({
        font: p.layout.font && p.layout.font.size, names: p.data.map(t => t.name)}))""")
    assert layout and all(fig["font"] >= 20 for fig in layout)                  # every plot, projector-sized
    assert any("train acc" in fig["names"] for fig in layout)                     # the curves stay
    assert any("this run, per epoch" in fig["names"] for fig in layout)           # its path, forgetting as it went
    assert page.evaluate("window.onbeforeunload === null")
    assert run_button(page).is_enabled()                                          # ready for the next run
    assert inside_viewport(page, run_button(page))
    for card in page.locator('[data-testid="stMetric"]').all():                   # every card on the first screen
        assert inside_viewport(page, card), card.inner_text()
    assert top_inside_viewport(page, page.locator(".st-key-tradeoff .js-plotly-plot"))   # the plot right under them
    shot(page, "presenter_1920_after")
    page.locator(".js-plotly-plot").last.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    shot(page, "presenter_1920_after_tradeoff")


def cli_seconds(config: dict, home: str) -> float:
    flags = [x for k, v in config.items() for x in ("--" + k.replace("_", "-"), str(v))]
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "core", "run", *flags, "--no-store", "--quiet"], cwd=ROOT, check=True,
                   env={**os.environ, "FTLAB_HOME": home, "HF_HUB_OFFLINE": "1"}, capture_output=True)
    return time.perf_counter() - t


def test_the_same_run_from_the_app_and_from_the_cli(server, browser):
    """Both times land in tests/artifacts/latency.json (measured, not asserted: no timed tests;
    `make bench-app` measures the full comparison for docs/PERFORMANCE.md)."""
    config = {"size": 32, "strategy": "full", "epochs": 1, "max_length": 64, "eval_size": 100,
              "general_size": 50, "seed": 9}
    url = f"{server}/?" + "&".join(f"{k}={v}" for k, v in config.items())
    page = open_page(browser, url)
    wait_until_warm(page, url)
    wait_rendered(page)
    run_button(page).click()
    t = time.perf_counter()
    page.get_by_text("Result: full, n=32, seed 9").first.wait_for(timeout=RESULT_TIMEOUT_MS)
    app_s = time.perf_counter() - t
    cli_s = cli_seconds({"task": "r8", **config}, HOMES[server])    # same caches, no store: a real run
    record_latency("same_run_app_click_to_result_s", app_s)
    record_latency("same_run_cli_process_s", cli_s)
    record_latency("same_run_app_over_cli", app_s / cli_s)


def test_a_wise_ft_run_draws_its_curve_and_its_slider_rescores_without_training(server, browser):
    """One WiSE-FT training: its curve on the trade-off plot (a = 0 ... 1), then another mix scored
    from the kept weights by the slider's button; presenter screenshots of both."""
    url = f"{server}/?size=16&strategy=wise-ft&epochs=1&max_length=32&eval_size=50&general_size=50&seed=3&presenter=1"
    page = open_page(browser, url, viewport=(1920, 1080))
    wait_until_warm(page, url)
    run_button(page).click()
    page.get_by_text("Result: wise-ft, n=16, seed 3").first.wait_for(timeout=RESULT_TIMEOUT_MS)
    wait_rendered(page)
    curve = tradeoff_points(page, "WiSE-FT curve (a = 0 … 1)")
    assert len(curve) == 5
    assert page.get_by_text("At a = 0.5").count() >= 1                # the run's own mix, from its curve
    page.locator(".js-plotly-plot").last.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    shot(page, "presenter_1920_wise_ft_curve")
    thumb = page.locator("[aria-label^='Mixing a']").last
    thumb.focus()
    thumb.press("ArrowLeft")                                           # one step: a = 0.45, not scored yet
    button = page.locator(".st-key-wise_rescore button")
    button.wait_for(timeout=30_000)
    assert "evaluation only" in button.inner_text()
    button.click()
    page.get_by_text("Result: wise-ft, n=16, seed 3").first.wait_for(timeout=RESULT_TIMEOUT_MS)
    page.wait_for_function(FIND_TRACE, arg="strategy: wise-ft", polling=250, timeout=RESULT_TIMEOUT_MS)
    page.wait_for_function("""() => [...document.querySelectorAll('.js-plotly-plot')].some(p =>
        (p.data || []).some(t => t.name === 'strategy: wise-ft' && t.x.length === 2))""", polling=250,
                           timeout=RESULT_TIMEOUT_MS)
    assert page.get_by_text("At a = 0.45").count() >= 1
    wait_rendered(page)
    shot(page, "presenter_1920_wise_ft_rescored")


def test_own_data_uploaded_runs_twice_and_its_link_restores_it(server, browser, tmp_path):
    """A CSV the lab has never seen: uploaded, its columns picked, feature extraction and LoRA run on
    it, both on the plot; the page's link opened in a fresh browser context gives the same setup."""
    rows = ["comment,mood"] + [f"\"{w} service, visit {i}\",{m}" for m, w in (("happy", "great"), ("sad", "poor"))
                               for i in range(40)]
    path = tmp_path / "moods.csv"
    path.write_text("\n".join(rows) + "\n")
    url = f"{server}/?size=16&strategy=feature-extraction&epochs=1&max_length=32&eval_size=50&general_size=50&seed=4"
    page = open_page(browser, url, viewport=(1920, 1080))
    wait_until_warm(page, url)
    page.get_by_text("Your own data").click()
    page.locator("input[type=file]").set_input_files(str(path))
    page.get_by_text("Classes: happy 40, sad 40").wait_for(timeout=30_000)
    shot(page, "own_data_preview")
    page.locator(".st-key-upload_use button").click()
    page.wait_for_function("location.search.includes('task=upload')", polling=200, timeout=30_000)
    for strategy, label in (("feature-extraction", None), ("lora", "LoRA (low-rank adapters)")):
        if label:
            page.get_by_text(label, exact=True).click()
            page.wait_for_function("location.search.includes('strategy=lora')", polling=200, timeout=30_000)
        run_button(page).click()
        page.get_by_text(f"Result: {strategy}, n=16, seed 4").first.wait_for(timeout=RESULT_TIMEOUT_MS)
        assert len(tradeoff_points(page, f"strategy: {strategy}")) == 1
    wait_rendered(page)
    shot(page, "own_data_two_runs")
    link = page.url
    assert "upload%3A" in link or "upload:" in link
    assert "moods" not in link and "/tmp" not in link                  # a hash, never a name or a path
    fresh = browser.new_context(viewport={"width": 1920, "height": 1080})
    other = fresh.new_page()
    other.goto(link)
    run_button(other).wait_for(timeout=120_000)
    other.get_by_text("LoRA (low-rank adapters) on moods.csv (your data), n=16").first.wait_for(timeout=30_000)
    shot(other, "own_data_link_in_a_fresh_browser")
    # Compare names the upload by its file too (the filter's tag and the pair pickers), never by its hash
    other.get_by_role("link", name="Compare").click()
    other.get_by_text("moods.csv", exact=True).first.wait_for(timeout=60_000)      # the task filter's tag
    picker = other.locator(".st-key-cmp_pair_a input")                              # its value, not its text
    picker.wait_for(timeout=60_000)
    picker.click()                     # the module's other runs (R8) come first: type to find the upload's
    picker.fill("moods")
    option = other.get_by_role("option").first
    option.wait_for(timeout=30_000)
    assert re.match(r"moods\.csv · (feature-extraction|lora) · n=16", option.inner_text()), option.inner_text()
    picker.press("Escape")
    wait_rendered(other)
    shot(other, "own_data_in_compare")
    assert "upload:" not in other.locator("body").inner_text()
    fresh.close()


def test_a_run_with_no_change_sits_on_the_pretrained_line_of_a_readable_plot(server, browser):
    """Issue 23: on a task whose only run is feature extraction, the x axis zoomed to 75.50416665 ...
    75.504167 and drew the point left of the pre-trained line. Now the point is on the line, both axes
    span several points, and the caption under the plot says what is drawn."""
    url = f"{server}/?{TINY}&task=sms-spam&presenter=1"          # no preset gallery on this task
    page = open_page(browser, url, viewport=(1920, 1080))
    wait_until_warm(page, url)
    wait_rendered(page)
    run_button(page).click()
    page.locator('[data-testid="stMetricLabel"]', has_text="In-domain accuracy").first.wait_for(
        timeout=RESULT_TIMEOUT_MS)
    (point,) = tradeoff_points(page, "strategy: feature-extraction")
    layout = page.evaluate("""() => {
        for (const plot of document.querySelectorAll('.js-plotly-plot')) {
            if ((plot.data || []).some(t => t.name === 'strategy: feature-extraction'))
                return {x: plot.layout.xaxis.range, y: plot.layout.yaxis.range,
                        lines: (plot.layout.shapes || []).map(s => s.x0)};
        }
    }""")
    from core.plots import MIN_SPAN_GENERAL, MIN_SPAN_IN_DOMAIN

    assert layout["lines"] == [point[0]]                            # on the pre-trained line, to the last bit
    assert layout["x"][1] - layout["x"][0] >= MIN_SPAN_GENERAL and layout["x"][0] < point[0] < layout["x"][1]
    assert layout["y"][1] - layout["y"][0] >= MIN_SPAN_IN_DOMAIN
    page.get_by_text("Bars are 95 % intervals").first.wait_for(timeout=30_000)
    page.locator(".js-plotly-plot").last.scroll_into_view_if_needed()
    shot(page, "presenter_1920_no_change_on_the_line")
