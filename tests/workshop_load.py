"""A workshop on one server, driven: N browser sessions queue tiny runs on one `streamlit run app.py`.

    .venv/bin/python tests/workshop_load.py                      # 20 sessions; figures into docs/
    .venv/bin/python tests/workshop_load.py --sessions 3 --greedy-runs 3 --max-queued 3 --no-write

What it does, against a server of its own (a fresh FTLAB_HOME, its queue capped by FTLAB_MAX_QUEUED):
1. one "greedy" browser opens the Lab and queues --greedy-runs runs (each from a link with its own seed),
   and its first run starts;
2. then the other --sessions - 1 browsers at once each queue one run; some meet the queue's cap;
3. every browser then reloads its Lab every --reload-every-s seconds until its runs have landed in the
   store, or its page shows them ended (its message is kept), or --deadline-s is up.
Each browser is a Playwright context (its own cookies: its own owner of runs) in one Debian chromium.

Measured: every page's draw time (the link opened -> the Run button on screen; and -> the whole page,
the trade-off heading, drawn), p50/p95 over all loads; the order the runs started in (one worker, so
the store's landing order), by session; the queue-full message; every run's outcome. Only measured
figures are written: docs/perf/workshop_load.json and the "A workshop on one server" section of
docs/PERFORMANCE.md. tests/test_workshop.py runs a small version (no timing assertions).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
CHROMIUM = "/usr/bin/chromium"
TINY = "task=r8&strategy=feature-extraction&size=16&epochs=1&max_length=32&eval_size=50&general_size=50"
PAGE_TIMEOUT_MS = 180_000
DOC_START, DOC_END = "<!-- workshop_load:start -->", "<!-- workshop_load:end -->"

# What the page says about this browser's runs, read from its text (see pages/lab.py's job panel).
PAGE_STATE = """() => {
  const text = document.body.innerText;
  const more = text.match(/(\\d+) more run\\(s\\) from this browser/);
  const panel = text.includes('Queued, position') || !!document.querySelector('[data-testid=stProgress]');
  const alerts = [...document.querySelectorAll('[data-testid=stAlert]')].map(a => a.innerText.trim());
  return {live: panel ? 1 + (more ? +more[1] : 0) : 0, full: text.includes('Queue full'), alerts};
}"""


def seed_of(session: int, k: int) -> int:
    return 1000 + 100 * session + k


def session_of(seed: int) -> int:
    return (seed - 1000) // 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: str, port: int, max_queued: int) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "FTLAB_HOME": home, "HF_HUB_OFFLINE": "1", "FTLAB_MAX_QUEUED": str(max_queued)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError("streamlit did not start")
        time.sleep(0.3)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class Landed:
    """The runs in the server's store: seed -> when it landed (read at most every 2 s)."""

    def __init__(self, home: str):
        from core.store import RunStore

        self.store, self.read_at, self.seen = RunStore(Path(home) / "runs.sqlite"), 0.0, {}

    def get(self) -> dict:
        if time.time() - self.read_at > 2:
            try:
                self.seen = {r.seed: r.created_at for r in self.store.list(all_versions=True)}
            except Exception:      # noqa: BLE001 - not created yet, or being written: read again later
                pass
            self.read_at = time.time()
        return self.seen


class Session:
    def __init__(self, index: int, browser, url: str, landed: Landed, log):
        self.i, self.browser, self.url, self.landed, self.log = index, browser, url, landed, log
        self.draws, self.full_draws, self.queued, self.refused, self.outcomes = [], [], {}, {}, {}
        self.reload_found = []
        self.failed_draws = []     # loads that did not draw within PAGE_TIMEOUT_MS
        self.not_sent = {}         # runs never asked for: their page did not draw     # after a reload with runs pending: whether the page showed them
        self.page = None

    async def open(self, seed: int) -> dict:
        """Open the Lab at this seed's link; the times to the Run button and to the whole page."""
        if self.page is None:
            self.context = await self.browser.new_context(viewport={"width": 1280, "height": 800})
            self.page = await self.context.new_page()
        t0 = time.perf_counter()
        try:
            await self.page.goto(f"{self.url}/?{TINY}&seed={seed}", wait_until="commit", timeout=PAGE_TIMEOUT_MS)
            await self.page.locator(".st-key-run button").wait_for(timeout=PAGE_TIMEOUT_MS)
            self.draws.append(time.perf_counter() - t0)
            await self.page.get_by_text("Trade-off on").first.wait_for(timeout=PAGE_TIMEOUT_MS)
            self.full_draws.append(time.perf_counter() - t0)
            return await self.page.evaluate(PAGE_STATE)
        except Exception as err:     # noqa: BLE001 - a page that never drew is a figure, not the end of the load
            self.failed_draws.append(f"{type(err).__name__} after {time.perf_counter() - t0:.0f} s")
            self.log(f"session {self.i}: the page did not draw ({self.failed_draws[-1]})")
            return None

    async def queue(self, seed: int) -> None:
        state = await self.open(seed)
        if state is None:
            self.not_sent[seed] = "not queued: the page did not draw"
            return
        before = state["live"]
        clicked = time.time()
        await self.page.locator(".st-key-run button").click()
        deadline = time.time() + 60
        while time.time() < deadline:
            state = await self.page.evaluate(PAGE_STATE)
            if state["full"]:
                alert = next((a for a in state["alerts"] if "Queue full" in a), "Queue full")
                self.refused[seed] = " ".join(alert[alert.index("Queue full"):].split())   # without the icon's name
                self.log(f"session {self.i}: seed {seed} refused")
                return
            if state["live"] > before or seed in self.landed.get():
                break
            await asyncio.sleep(0.2)
        self.queued[seed] = clicked     # accepted (or no answer within a minute: its outcome will say)
        self.log(f"session {self.i}: seed {seed} queued")

    def pending(self) -> list:
        landed = self.landed.get()
        return [s for s in self.queued if s not in landed and s not in self.outcomes]

    async def watch(self, until: float, every_s: float) -> None:
        """Reload now and then until this browser's runs have landed or its page says they ended."""
        while self.pending() and time.time() < until:
            await asyncio.sleep(every_s)
            if not self.pending():
                break
            state = await self.open(self.pending()[0])
            if state is None:
                continue
            self.reload_found.append(state["live"] > 0)
            if state["live"] == 0:
                await asyncio.sleep(3)            # landing now? the store is read again, then the page believed
                self.landed.read_at = 0.0
                for seed in self.pending():
                    self.outcomes[seed] = "ended without landing: " + (" | ".join(state["alerts"]) or "(no message)")
        for seed in self.pending():
            self.outcomes[seed] = "not finished by the deadline"

    async def close(self):
        if self.page is not None:
            await self.context.close()


def percentile(values: list, q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


async def drive(url: str, home: str, sessions: int, greedy_runs: int, deadline_s: float, reload_every_s: float,
                log) -> dict:
    from playwright.async_api import async_playwright

    landed = Landed(home)
    started = time.time()
    load = asyncio.create_task(sample_load())
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        people = [Session(i, browser, url, landed, log) for i in range(sessions)]
        try:
            for k in range(greedy_runs):                      # 1. one browser queues many
                await people[0].queue(seed_of(0, k))
            await people[0].page.locator("[data-testid=stProgress]").wait_for(timeout=300_000)   # its first run
            log("session 0: its first run has started")
            await asyncio.gather(*(s.queue(seed_of(s.i, 0)) for s in people[1:]))   # 2. the room, at once
            until = started + deadline_s
            await asyncio.gather(*(s.watch(until, reload_every_s) for s in people))  # 3. until all landed
        finally:
            for s in people:
                await s.close()
            await browser.close()
            load.cancel()
    report = summarize(people, landed, time.time() - started)
    report["load_average_1min"] = {"mean": sum(LOAD) / len(LOAD), "max": max(LOAD)} if LOAD else None
    return report


LOAD = []      # the machine's 1-minute load average every 10 s while it ran: the others' work shows here


async def sample_load():
    while True:
        LOAD.append(os.getloadavg()[0])
        await asyncio.sleep(10)


def summarize(people: list, landed: Landed, took: float) -> dict:
    landed.read_at = 0.0
    stored = landed.get()
    runs = []
    for s in people:
        for seed, clicked in s.queued.items():
            runs.append({"session": s.i, "seed": seed, "queued_at": clicked,
                         "outcome": "stored" if seed in stored else s.outcomes.get(seed, "unknown")})
        for seed, text in s.refused.items():
            runs.append({"session": s.i, "seed": seed, "outcome": "refused: " + text})
        for seed, text in s.not_sent.items():
            runs.append({"session": s.i, "seed": seed, "outcome": text})
    order = [session_of(seed) for seed, _ in sorted(stored.items(), key=lambda kv: kv[1])]
    draws = [d for s in people for d in s.draws]
    full = [d for s in people for d in s.full_draws]
    per_session_p95 = [percentile(s.draws, 0.95) for s in people if s.draws]
    reloads = [f for s in people for f in s.reload_found]
    greedy_ranks = [i for i, who in enumerate(order, start=1) if who == 0]
    others_first = [order.index(i) + 1 for i in sorted(set(order) - {0})]
    return {
        "sessions": len(people), "took_s": round(took, 1),
        "draws_failed": [f for s in people for f in s.failed_draws],
        "draw_s": {"n": len(draws), "p50": percentile(draws, 0.5), "p95": percentile(draws, 0.95),
                   "max": max(draws) if draws else None},
        "full_page_s": {"n": len(full), "p50": percentile(full, 0.5), "p95": percentile(full, 0.95)},
        "per_session_draw_p95_s": {"worst": max(per_session_p95) if per_session_p95 else None,
                                   "median": percentile(per_session_p95, 0.5)},
        "start_order_sessions": order,
        "greedy_ranks": greedy_ranks, "others_first_ranks": others_first,
        "queued": sum(len(s.queued) for s in people), "refused": sum(len(s.refused) for s in people),
        "refusal_example": next((r["outcome"] for r in runs if r["outcome"].startswith("refused")), None),
        "stored": sum(1 for r in runs if r["outcome"] == "stored"),
        "reloads_with_runs_pending": len(reloads), "reloads_that_found_them": sum(reloads),
        "runs": runs,
    }


def fair(report: dict) -> list[str]:
    """Breaches of round-robin in the measured order: a browser that started two runs in a row while
    another browser's run had been waiting since before the first of them landed (one worker: a run
    starts after the one before it lands, so landing times order the starts)."""
    runs = {r["seed"]: r for r in report["runs"] if r["outcome"] == "stored"}
    from_store = sorted(runs.values(), key=lambda r: r["landed_at"]) if all("landed_at" in r for r in runs.values()) else []
    problems = []
    for a, b in zip(from_store, from_store[1:]):
        if a["session"] == b["session"]:
            waiting = [r for r in from_store if r["session"] != a["session"] and r["queued_at"] < a["landed_at"]
                       and r["landed_at"] > b["landed_at"]]
            if waiting:
                problems.append(f"session {a['session']} ran seeds {a['seed']} and {b['seed']} in a row while "
                                f"session {waiting[0]['session']} waited")
    return problems


def add_landing_times(report: dict, home: str) -> None:
    from core.store import RunStore

    when = {r.seed: r.created_at for r in RunStore(Path(home) / "runs.sqlite").list(all_versions=True)}
    for r in report["runs"]:
        if r["seed"] in when:
            r["landed_at"] = when[r["seed"]]


def run_load(sessions: int = 20, greedy_runs: int = 8, max_queued: int = 16, deadline_s: float = 900,
             reload_every_s: float = 15.0, port: int | None = None, log=print) -> dict:
    home = tempfile.mkdtemp(prefix="ftlab-load-")
    proc, url = start_server(home, port or free_port(), max_queued)
    try:
        report = asyncio.run(drive(url, home, sessions, greedy_runs, deadline_s, reload_every_s, log))
    finally:
        stop_server(proc)
    add_landing_times(report, home)
    report["fairness_breaches"] = fair(report)
    report["settings"] = {"sessions": sessions, "greedy_runs": greedy_runs, "max_queued": max_queued,
                          "deadline_s": deadline_s, "reload_every_s": reload_every_s, "run": TINY, "home": home}
    return report


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores ({cpu}), shared with other work while measured"


def section(report: dict) -> str:
    d, f, s = report["draw_s"], report["full_page_s"], report["settings"]
    order = " ".join("G" if who == 0 else str(who) for who in report["start_order_sessions"])
    goal = "met" if d["p95"] is not None and d["p95"] < 3 else "NOT met"
    return f"""{DOC_START}
## A workshop on one server (load script)

`tests/workshop_load.py` (measured {time.strftime('%Y-%m-%d', time.gmtime(report['measured_at']))}, {machine()}):
one `streamlit run app.py` with FTLAB_MAX_QUEUED={s['max_queued']}, {report['sessions']} browser sessions (Playwright
contexts in one Debian chromium, each with its own cookies, so its own owner of runs). Session G queued
{s['greedy_runs']} runs first, then the other {report['sessions'] - 1} queued one each at once; every session then reloaded
its Lab every {s['reload_every_s']:g} s until its runs had landed. Runs: `{s['run']}`, a seed each.
It took {report['took_s'] / 60:.1f} min{load_words(report)}.

| measure | value |
|---|---|
| page draw, link opened -> Run button on screen (all {d['n']} loads; {len(report['draws_failed'])} more not drawn in {PAGE_TIMEOUT_MS // 1000} s) | p50 {d['p50']:.2f} s, p95 **{d['p95']:.2f} s**, max {d['max']:.2f} s |
| whole page drawn (-> the trade-off heading) | p50 {f['p50']:.2f} s, p95 {f['p95']:.2f} s |
| worst session's own p95 (Run button) | {report['per_session_draw_p95_s']['worst']:.2f} s |
| runs queued / refused by the cap / stored | {report['queued']} / {report['refused']} / {report['stored']} |
| reloads while a run was pending that showed it (running or queued) | {report['reloads_that_found_them']} of {report['reloads_with_runs_pending']} |
| round-robin breaches in the start order | {len(report['fairness_breaches'])} |

The 3 s goal at the 95th percentile is {goal} here. Start order by session (G: the greedy one): `{order}`;
G's runs started at ranks {report['greedy_ranks']}, every other session's first at ranks
{report['others_first_ranks']}, so no one waited for all of G's runs. The message a refused click showed:
"{report['refusal_example'] or '(none refused)'}". Every run's outcome is in `docs/perf/workshop_load.json`.
{DOC_END}"""


def load_words(report: dict) -> str:
    load = report.get("load_average_1min")
    if not load:
        return ""
    return (f"; the machine's 1-minute load average was {load['mean']:.1f} on average and {load['max']:.1f} at most "
            f"({os.cpu_count()} cores; the browsers, the server, the worker and other work share them)")


def write_figures(report: dict, json_path: Path, doc_path: Path) -> None:
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    text = doc_path.read_text()
    new = section(report)
    if DOC_START in text:
        text = re.sub(re.escape(DOC_START) + ".*?" + re.escape(DOC_END), lambda _: new, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + new + "\n"
    doc_path.write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--greedy-runs", type=int, default=8)
    ap.add_argument("--max-queued", type=int, default=16, help="the server's FTLAB_MAX_QUEUED")
    ap.add_argument("--deadline-s", type=float, default=900)
    ap.add_argument("--reload-every-s", type=float, default=15)
    ap.add_argument("--port", type=int)
    ap.add_argument("--json", default=str(ROOT / "docs" / "perf" / "workshop_load.json"))
    ap.add_argument("--doc", default=str(ROOT / "docs" / "PERFORMANCE.md"))
    ap.add_argument("--no-write", action="store_true", help="print the figures only")
    a = ap.parse_args(argv)
    t0 = time.time()
    report = run_load(a.sessions, a.greedy_runs, a.max_queued, a.deadline_s, a.reload_every_s, a.port,
                      log=lambda m: print(f"{time.time() - t0:6.1f} s  {m}", flush=True))
    report["measured_at"] = time.time()
    summary = {k: v for k, v in report.items() if k != "runs"}
    print(json.dumps(summary, indent=1))
    if not a.no_write:
        write_figures(report, Path(a.json), Path(a.doc))
        print(f"wrote {a.json} and the section in {a.doc}")
    bad = [r for r in report["runs"] if not (r["outcome"] == "stored" or r["outcome"].startswith("refused"))]
    return 1 if bad or report["fairness_breaches"] else 0


if __name__ == "__main__":
    sys.exit(main())
