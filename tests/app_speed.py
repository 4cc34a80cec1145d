"""What a user clicking in the app gets, against the same run from the CLI: `make bench-app`.

    python tests/app_speed.py [--root DIR] [--label NAME] [--repeats 2] [--json-out FILE]

Drives the real app (`streamlit run app.py` as `make run` starts it, from --root, default this
checkout) in Debian's headless chromium and measures, on one configuration:

- the first page: seconds from opening the first session after the server started until the Run
  button and the first plot are painted (timed inside the page), and as Playwright saw them;
  then the same for a second session;
- the server's CPU use with one tab open and no run going (psutil, the server process only);
- the run: seconds from the click on Run to its result on screen, with the tab open and watching,
  and the server's CPU during it; and the same configuration from the CLI (`python -m core run
  ... --no-store`): the process's wall time and the engine's own total;
- beside one busy process (a Python busy loop): the CLI run again, and the app's run;
- the worker's OpenMP threading (wait policy, spin count, threads), alone and beside the busy
  process, as CLI runs with each setting in the environment.

Every figure lands in --json-out (default tests/artifacts/app_speed_<label>.json); the summary is
printed. Not a test: pytest does not collect it. Run it on a quiet machine; it says the load average.
Point --root at an older checkout (git worktree add /tmp/before <commit>) to measure "before".
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# The configuration of the measurement: a full fine-tuning run of about 15 s from the CLI here.
CONFIG = {"task": "r8", "size": 128, "strategy": "full", "epochs": 2, "eval_size": 500, "general_size": 200}
BUSY_LOOP = "while True: pass"
THREADING = {          # name -> environment for the training process
    "default (libgomp spins, then sleeps)": {},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "GOMP_SPINCOUNT=10000 (spin briefly)": {"GOMP_SPINCOUNT": "10000"},
    "one thread": {"OMP_NUM_THREADS": "1"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_flags(seed: int) -> list[str]:
    flags = []
    for name, value in {**CONFIG, "seed": seed}.items():
        flags += ["--" + name.replace("_", "-"), str(value)]
    return flags


def query(seed: int) -> str:
    return "&".join(f"{k}={v}" for k, v in {**CONFIG, "seed": seed}.items() if k != "task")


def cli_run(root: Path, home: str, seed: int, extra_env: dict | None = None) -> dict:
    """One CLI run in a fresh process: its wall time and the engine's own total."""
    env = {**os.environ, "FTLAB_HOME": home, "HF_HUB_OFFLINE": "1", **(extra_env or {})}
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "core", "run", *cli_flags(seed), "--no-store", "--json"],
                         cwd=root, env=env, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - t
    result = json.loads(out)
    return {"wall_s": round(wall, 2), "engine_total_s": round(result["timings"]["total"], 2),
            "timings": {k: round(v, 2) for k, v in result["timings"].items()},
            "in_domain_acc": result["in_domain_acc"], "estimate": result.get("estimate") or {}}


class Busy:
    """One process that keeps a core busy, as another program on the machine would."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
        time.sleep(1)
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


class Server:
    """`streamlit run app.py` from the checkout, as `make run` starts it (its .streamlit/config.toml
    applies); only the port and the lab's data folder are set here."""

    def __init__(self, root: Path, home: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "FTLAB_HOME": home, "HF_HUB_OFFLINE": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless",
                                      "true", "--server.port", str(self.port)],
                                     cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 90
        while True:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("streamlit did not start")
            time.sleep(0.2)
        import psutil

        self.ps = psutil.Process(self.proc.pid)

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system          # the server alone: not the worker (a child) nor the browser

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


RUN_BUTTON = re.compile(r"Run$")


# Recorded inside the page: when the Run button and the first plot are first in the document, then
# painted (the frame after, via two animation frames), in ms from the start of the navigation.
# Playwright's own wait adds its polling over the DevTools protocol, which lags most while the page
# is busy (plotly's script loading), so both are reported.
SEEN_SCRIPT = """
window.__seen = {};
const mark = (name) => { window.__seen[name] = performance.now();
  requestAnimationFrame(() => requestAnimationFrame(() => { window.__seen[name + '_painted'] = performance.now(); })); };
new MutationObserver(() => {
  if (!window.__seen.button && [...document.querySelectorAll('button')].some(b => /Run$/.test(b.innerText.trim())))
    mark('button');
  if (!window.__seen.plot && document.querySelector('.js-plotly-plot')) mark('plot');
}).observe(document, {subtree: true, childList: true});
"""


def open_lab(browser, url: str, viewport=(1280, 800)):
    """Seconds to the Run button and to the first plot: on screen (measured in the page) and as
    Playwright first saw them."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.add_init_script(SEEN_SCRIPT)
    t = time.perf_counter()
    page.goto(url)
    page.get_by_role("button", name=RUN_BUTTON).first.wait_for(timeout=120_000)
    to_button = time.perf_counter() - t
    page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
    to_plot = time.perf_counter() - t
    page.wait_for_function("window.__seen.plot_painted !== undefined && window.__seen.button_painted !== undefined")
    seen = page.evaluate("window.__seen")
    return page, {"button_s": round(seen["button_painted"] / 1000, 2), "plot_s": round(seen["plot_painted"] / 1000, 2),
                  "button_seen_by_playwright_s": round(to_button, 2), "plot_seen_by_playwright_s": round(to_plot, 2)}


def wait_warm(page, url: str, timeout=180.0):
    deadline = time.time() + timeout
    while page.get_by_text("warming up").count():
        if time.time() > deadline:
            raise RuntimeError("the worker never became ready")
        time.sleep(2)
        page.goto(url)
        page.get_by_role("button", name=RUN_BUTTON).first.wait_for(timeout=60_000)


def app_run(page, server: Server, seed: int) -> dict:
    """Click Run on a page opened at this seed's link; seconds to its result on screen."""
    page.wait_for_timeout(1500)
    cpu0 = server.cpu_s()
    t = time.perf_counter()
    page.get_by_role("button", name=RUN_BUTTON).first.click()
    page.get_by_text(re.compile(rf"Result: full.*seed {seed}\b")).first.wait_for(timeout=900_000)
    wall = time.perf_counter() - t
    cpu = server.cpu_s() - cpu0
    return {"click_to_result_s": round(wall, 2), "server_cpu_s": round(cpu, 2),
            "server_cpu_share": round(cpu / wall, 3)}


def count_parameters_once(root: Path, home: str, timeout: float = 240.0) -> None:
    """One server start that stays up until the Lab's trainable-parameter counts are on disk, as
    they are after a lab's first minutes on a machine (the measured starts are killed within
    seconds, before a count could finish, and would otherwise each count again)."""
    from playwright.sync_api import sync_playwright

    server = Server(root, home)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = open_lab(browser, f"{server.url}/?{query(1)}")[0]
            deadline = time.time() + timeout
            while page.get_by_text("counting trainable parameters").count():
                if time.time() > deadline:
                    raise RuntimeError("the parameter counts never arrived")
                time.sleep(1)
            browser.close()
    finally:
        server.close()


def first_pages(root: Path, home: str) -> dict:
    """A fresh server and browser: the first session after the start, then a second one."""
    from playwright.sync_api import sync_playwright

    server = Server(root, home)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            first = open_lab(browser, f"{server.url}/?{query(1)}")[1]
            second = open_lab(browser, f"{server.url}/?{query(1)}")[1]
            browser.close()
    finally:
        server.close()
    return {**{f"first_session_to_{k}": v for k, v in first.items()},
            **{f"second_session_to_{k}": v for k, v in second.items()}}


def cpu_name() -> str:
    """The host's CPU model (figures from two hosts do not compare), as the bench names it; imported
    only once the measurements are done (core.bench imports torch)."""
    sys.path.insert(0, str(HERE))
    from core.bench.harness import cpu_model

    return cpu_model()


def finish_first_page_only(args, out) -> int:
    """--only-first-page: replace the first-page figures of an earlier run's JSON, rewrite the section."""
    path = args.json_out
    earlier = json.loads(path.read_text())
    ab = earlier.get("first_page_ab")
    if ab and "head" not in ab:     # the other half of that pair, measured beside it: kept, not replaced
        ab["head"], ab["head_measured"] = earlier["first_page"], earlier.get("first_page_measured", "")
    earlier["first_page"], earlier["first_page_runs"] = out["first_page"], out["first_page_runs"]
    earlier["first_page_measured"] = f"{out['commit']}, {out['date']}, on {cpu_name()}"
    path.write_text(json.dumps(earlier, indent=1))
    if args.doc:
        before = json.loads(args.before.read_text()) if args.before and args.before.exists() else None
        write_section(args.doc, report(before, earlier))
    print(f"updated the first-page figures in {path}")
    return 0


def idle_cpu(server: Server, seconds=20.0) -> float:
    cpu0, t = server.cpu_s(), time.perf_counter()
    time.sleep(seconds)
    return round((server.cpu_s() - cpu0) / (time.perf_counter() - t), 3)


def median(xs):
    return round(statistics.median(xs), 2)


SECTION = "app-speed"


def first_page(d: dict, key: str, old_key: str | None = None, bold: bool = False) -> str:
    """A first-page figure; `old_key` is its name in JSON written before the in-page measurement."""
    fp = d["first_page"]
    value = fp.get(key, fp.get(old_key) if old_key else None)
    if value is None or (old_key is None and "first_session_to_button_s" not in fp):
        return "–"   # an old JSON's plot time was Playwright's, not the painted one
    return f"**{value:.2f}**" if bold else f"{value:.2f}"


def report(before: dict | None, after: dict) -> str:
    """The section of docs/PERFORMANCE.md this script owns (core bench keeps it when it rewrites)."""
    def col(d, f):
        return "–" if d is None else f(d)

    rows = [
        ("CLI run, process wall (s)", lambda d: f"{d['summary']['cli_wall_s']:.1f}"),
        ("CLI run, the engine's own total (s)", lambda d: f"{d['summary']['cli_engine_s']:.1f}"),
        ("app: click on Run to the result on screen (s)", lambda d: f"{d['summary']['app_click_to_result_s']:.1f}"),
        ("**app / CLI wall** (goal ≤ 1.25)", lambda d: f"**{d['summary']['app_over_cli_wall']:.2f}**"),
        ("app / CLI engine total", lambda d: f"{d['summary']['app_over_cli_engine']:.2f}"),
        ("server CPU during the app's run (share of one core)", lambda d: f"{d['summary']['server_cpu_share_during_run']:.2f}"),
        ("server CPU per poll of the running panel (ms; the panel polls every 0.5 s)",
         lambda d: f"{1000 * statistics.median(r['server_cpu_s'] / (r['click_to_result_s'] / 0.5) for r in d['app']):.0f}"),
        ("server CPU, one tab open, no run (share of one core)", lambda d: f"{d['server_cpu_idle_one_tab']:.3f}"),
        ("**app beside one busy process / alone** (goal ≤ 2.5)", lambda d: f"**{d['summary']['app_busy_over_alone']:.2f}**"),
        ("CLI beside one busy process / alone", lambda d: f"{d['summary']['cli_busy_over_alone']:.2f}"),
        ("CLI run: time-left estimate when training started / after a quarter of it / real total (s)",
         lambda d: " / ".join(f"{d['cli'][0]['estimate'].get(k, float('nan')):.1f}"
                              for k in ("before_training_s", "early_training_s", "actual_s"))
         if d["cli"][0].get("estimate") else "–"),
        ("**first session after a start: Run button painted** (s, measured in the page; median of the starts) "
         "(goal < 2)", lambda d: first_page(d, "first_session_to_button_s", bold=True)),
        ("first session: Run button as Playwright saw it (s; the only measure before)",
         lambda d: first_page(d, "first_session_to_button_seen_by_playwright_s", "first_session_to_run_button_s")),
        ("first session: first plot painted (s)", lambda d: first_page(d, "first_session_to_plot_s")),
        ("second session: Run button painted (s)", lambda d: first_page(d, "second_session_to_button_s")),
    ]
    cfg = ", ".join(f"{k} {v}" for k, v in after["config"].items())
    lines = [f"<!-- kept:{SECTION} -->", "## The app against the CLI", "",
             f"Made by `make bench-app` (`python tests/app_speed.py`), which drives the real app in headless chromium "
             f"(one tab open and watching) and runs the same configuration from the CLI ({cfg}; median of "
             f"{len(after['app'])} runs each, caches warm). Do not edit by hand: rerun the script.", "",
             f"| | before ({col(before, lambda d: d['commit'])}, {col(before, lambda d: d['date'])}) "
             f"| after ({after['commit']}, {after['date']}) |", "|---|---|---|"]
    lines += [f"| {name} | {col(before, f)} | {f(after)} |" for name, f in rows]
    if after.get("first_page_measured"):
        lines += ["", f"The after column's first-page rows were measured again later (--only-first-page, "
                      f"{after['first_page_measured']}, {len(after['first_page_runs'])} fresh server starts)."]
    ab = after.get("first_page_ab")
    if ab:
        fp, base = ab.get("head", after["first_page"]), ab["base"]
        lines += ["", f"The same first-page measurement of the commit before the second pass ({ab['base_commit']}, "
                      f"{ab['base_runs']} starts, the same hour): Run button painted {base['first_session_to_button_s']:.2f} s "
                      f"for the first session and {base['second_session_to_button_s']:.2f} s for the second, against "
                      f"{fp['first_session_to_button_s']:.2f} s and {fp['second_session_to_button_s']:.2f} s for the "
                      f"commit after it ({ab.get('head_measured') or 'the after column'}). "
                      "This machine's figures drift by a few tenths of a second over an hour, so compare within a row "
                      "of measurements, not across sessions."]
    lines += ["", "Where the server's time went, and what changed (the rows above measure the effect):", "",
              "- **With a tab open and no run**, the server used a whole core: Streamlit's file watcher walked "
              "the repository's `.venv/` (about 51,000 files) on every inotify overflow. `.streamlit/config.toml` "
              "now turns file watching off (and serves localhost only, without usage statistics).",
              "- **During a run**, a py-spy profile of the server (a one-off, 15 s) put 79 % of its samples in "
              "`gc.collect(2)`, which Streamlit runs after every script run, each 0.5 s poll of the running panel "
              "included; with torch imported for the parameter counts, a full collection took about 300 ms. "
              "`runner.postScriptGC = false`, and torch's objects are frozen out of collection (`gc.freeze`). "
              "The poll itself re-sends the progress and reuses the live-curves figure until an epoch is added.",
              "- **The worker** then had both cores to itself; the threading table below chose how it shares "
              "them: two threads while nothing else runs, one while the other processes use more than 0.6 of a "
              "core (`core.threads.ThreadGovernor`" + passive_note(after) + "). Before, the app's "
              "run alone was already slowed by the server's own core, so its busy/alone ratio compared two slow runs.",
              "- **The first page** no longer imports torch or loads the model (parameter counts come from a "
              "child process at nice 19 and a file under the lab's folder; no warm worker starts while a page "
              "is being drawn), and a registered task is read from a JSON copy instead of being split again (the split's "
              "scikit-learn import alone took about a second). Timed in the page (a MutationObserver), the "
              "Run button was in the document about 0.5 s after the server had sent it and only with the "
              "trade-off plot: the browser held the page back while it loaded plotly's script. A session's "
              "first run now draws the page without its charts, and a fragment whose timer runs in the browser "
              "(so only once the page is on screen) asks for the rerun that draws them, about a second later; "
              "plotly is not imported on the server for that first run. What is left is mostly the browser "
              "loading and drawing Streamlit's page on the same 2 cores (a bare one-button Streamlit page takes "
              "1.2 s to show its button here); the script's own first run takes about 0.6 s. Playwright's own "
              "wait lags the page by up to a second while plotly loads, so the painted time is the one to read. "
              "The second session opens while the first worker and the parameter counts start beside it.",
              "- **The first page, second pass** (one-off diagnostics, not kept as scripts: websocket frame "
              "times, a Chromium trace of the page, py-spy on the server): the Run button's message reached "
              "the browser well before the button entered the document, which happened only after the charts' "
              "rerun: the fragment's timer starts when it is mounted, not when the page is painted, so that "
              "rerun (and plotly's script, the page's longest task) overtook the first paint. The timer is "
              "0.3 s now (it was 0.1 s), and the Advanced settings (a dozen number boxes), the upload box and "
              "the preset picker come with the charts (`ui.painted`). A warm worker (importing torch and "
              "transformers takes seconds of a core) starts only `warm_after_s` after the last page began "
              "drawing, at most 10 s late (`JobManager.postpone_warmup`), and the parameter counts are built "
              "in a child process at nice 19: in a thread of the server, their torch import held Python's "
              "lock while a second tab's page ran. The measured starts run on a data folder whose counts "
              "were made once before (`count_parameters_once`). Start to start the figure varies by a few "
              "tenths of a second on this machine, so it is a median of several starts.",
              "", "Load average (1 min) at start / end: before "
              + col(before, lambda d: f"{d['load_start'][0]:.2f} / {d['load_end'][0]:.2f}")
              + f", after {after['load_start'][0]:.2f} / {after['load_end'][0]:.2f}."]
    if after.get("threading"):
        lines += ["", "### Worker threading", "",
                  "The same CLI run with each OpenMP setting in its environment, alone and beside one busy process "
                  "(a Python busy loop), the engine's own total in seconds:", "",
                  "| setting | alone | beside a busy process | slowdown |", "|---|---|---|---|"]
        lines += [f"| {name} | {t['alone_s']:.1f} | {t['busy_s']:.1f} | {t['slowdown']:.2f}x |"
                  for name, t in after["threading"].items()]
    lines += ["", "<!-- /kept -->"]
    return "\n".join(lines)


def passive_note(d: dict) -> str:
    t = d.get("threading") or {}
    default = next((v for k, v in t.items() if k.startswith("default")), None)
    passive = next((v for k, v in t.items() if "PASSIVE" in k), None)
    if not default or not passive:
        return ""
    return f"; OMP_WAIT_POLICY=PASSIVE made the run alone {passive['alone_s'] / default['alone_s']:.2f}x slower"


def write_section(doc: Path, text: str) -> None:
    old = doc.read_text() if doc.exists() else ""
    begin, end = f"<!-- kept:{SECTION} -->", "<!-- /kept -->"
    if begin in old:
        start = old.index(begin)
        stop = old.index(end, start) + len(end)
        new = old[:start] + text + old[stop:]
    else:
        new = old.rstrip() + "\n\n" + text + "\n"
    doc.write_text(new)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=HERE, help="the checkout whose app and CLI are measured")
    ap.add_argument("--label", default="current")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--skip-threading", action="store_true")
    ap.add_argument("--first-page-repeats", type=int, default=3, help="fresh server starts for the first page")
    ap.add_argument("--only-first-page", action="store_true",
                    help="measure only the first page and put it into the existing --json-out")
    ap.add_argument("--before", type=Path, help="an earlier run's JSON, for the before column")
    ap.add_argument("--doc", type=Path, help="write the before/after section into this markdown file")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    root = args.root.resolve()
    home = tempfile.mkdtemp(prefix="ftlab-appspeed-")
    out = {"label": args.label, "root": str(root), "config": CONFIG, "load_start": os.getloadavg(),
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                    text=True).stdout.strip(), "date": time.strftime("%Y-%m-%d %H:%M")}
    t_all = time.perf_counter()
    print("warming the caches (probes, features) with one CLI run ...", flush=True)
    cli_run(root, home, seed=100)
    count_parameters_once(root, home)
    out["first_page_runs"] = [first_pages(root, home) for _ in range(args.first_page_repeats)]
    out["first_page"] = {k: median([r[k] for r in out["first_page_runs"]]) for k in out["first_page_runs"][0]}
    print("first page (median of", args.first_page_repeats, "server starts):", out["first_page"], flush=True)
    if args.only_first_page:
        return finish_first_page_only(args, out)
    seeds = list(range(1, args.repeats + 1))
    out["cli"] = [cli_run(root, home, s) for s in seeds]
    print("cli:", out["cli"], flush=True)
    server = Server(root, home)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page, _ = open_lab(browser, f"{server.url}/?{query(seeds[0])}")
            wait_warm(page, f"{server.url}/?{query(seeds[0])}")
            out["server_cpu_idle_one_tab"] = idle_cpu(server)
            print("server CPU, one tab, no run:", out["server_cpu_idle_one_tab"], flush=True)
            runs = []
            for seed in seeds:
                page.goto(f"{server.url}/?{query(seed)}")
                wait_warm(page, f"{server.url}/?{query(seed)}")
                runs.append(app_run(page, server, seed))
                print("app:", runs[-1], flush=True)
            out["app"] = runs
            with Busy():
                out["cli_busy"] = cli_run(root, home, seed=50)
                print("cli beside a busy process:", out["cli_busy"], flush=True)
                page.goto(f"{server.url}/?{query(51)}")
                wait_warm(page, f"{server.url}/?{query(51)}")
                out["app_busy"] = app_run(page, server, 51)
                print("app beside a busy process:", out["app_busy"], flush=True)
            browser.close()
    finally:
        server.close()

    if not args.skip_threading:
        threading = {}
        for name, env in THREADING.items():
            alone = cli_run(root, home, 60, env)
            with Busy():
                busy = cli_run(root, home, 61, env)
            threading[name] = {"alone_s": alone["engine_total_s"], "busy_s": busy["engine_total_s"],
                               "slowdown": round(busy["engine_total_s"] / alone["engine_total_s"], 2)}
            print("threading:", name, threading[name], flush=True)
        out["threading"] = threading

    cli_wall = median([r["wall_s"] for r in out["cli"]])
    cli_engine = median([r["engine_total_s"] for r in out["cli"]])
    app = median([r["click_to_result_s"] for r in out["app"]])
    out["summary"] = {
        "cli_wall_s": cli_wall, "cli_engine_s": cli_engine, "app_click_to_result_s": app,
        "app_over_cli_wall": round(app / cli_wall, 2), "app_over_cli_engine": round(app / cli_engine, 2),
        "cli_busy_over_alone": round(out["cli_busy"]["engine_total_s"] / cli_engine, 2),
        "app_busy_over_alone": round(out["app_busy"]["click_to_result_s"] / app, 2),
        "server_cpu_share_during_run": median([r["server_cpu_share"] for r in out["app"]]),
    }
    out["load_end"] = os.getloadavg()
    out["minutes"] = round((time.perf_counter() - t_all) / 60, 1)
    path = args.json_out or HERE / "tests" / "artifacts" / f"app_speed_{args.label}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(json.dumps(out["summary"], indent=1))
    print(f"wrote {path}")
    if args.doc:
        before = json.loads(args.before.read_text()) if args.before and args.before.exists() else None
        write_section(args.doc, report(before, out))
        print(f"wrote the section into {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
