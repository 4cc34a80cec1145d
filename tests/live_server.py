"""The app as a person meets it: `streamlit run app.py` from this checkout on a free local port, with a
lab folder of its own, and Debian's chromium to open it. The browser tests, tests/test_workshop.py and
the workshop load script (tests/workshop_load.py) all start it this way.

    with running_server() as (url, home):            # a fresh server nobody has opened yet
        ...
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"       # Debian's (apt-get install chromium): no browser download works offline
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: str, port: int | None = None, env: dict | None = None,
                 timeout_s: float = 90) -> tuple[subprocess.Popen, str]:
    """(process, URL) of a server whose health check answers; `env` adds settings (FTLAB_MAX_QUEUED ...)."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, "FTLAB_HOME": home, "HF_HUB_OFFLINE": "1", **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout_s
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


@contextlib.contextmanager
def running_server(prefix: str = "ftlab-server-", env: dict | None = None):
    """A fresh server with its own empty lab folder (removed afterwards); yields (url, home)."""
    home = tempfile.mkdtemp(prefix=prefix)
    proc, url = start_server(home, env=env)
    try:
        yield url, home
    finally:
        stop_server(proc)
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def chromium():
    """Debian's chromium through Playwright's Python package; yields the browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
