"""Sweeps on Ray (core/ray_sweep.py): a real local Ray with two workers, driven through the CLI as a
user would; results land in the run store, Ctrl-C loses no finished run and a rerun resumes."""
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT

pytest.importorskip("ray", reason="ray is not installed (pip install -r requirements.txt)")
pytestmark = pytest.mark.slow

SWEEP = ["-m", "core", "sweep", "--task", "r8", "--sizes", "16", "--strategies", "feature-extraction", "full",
         "--seeds", "20", "21", "--epochs", "1", "--max-length", "32", "--eval-size", "50", "--general-size", "50",
         "--quiet"]
LOCAL = ["--ray", "--workers", "2"]


def cli(store, *extra, **kw):
    return subprocess.Popen([sys.executable, "-m", "core", "--store", str(store), *SWEEP[2:], *LOCAL, *extra], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, **kw)


def test_a_local_two_worker_sweep_fills_the_store_survives_ctrl_c_and_resumes(tmp_path):
    from core.store import RunStore

    store = tmp_path / "runs.sqlite"
    first = cli(store, start_new_session=True)
    deadline = time.time() + 400
    while not (store.exists() and RunStore(store).list()):
        assert first.poll() is None, first.stdout.read()
        assert time.time() < deadline, "no run landed"
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGINT)                       # Ctrl-C in the terminal: the whole group
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 130 and "stopped" in out, out
    kept = {r.key for r in RunStore(store).list()}
    assert 1 <= len(kept) < 4                                # what finished is there, the rest was cancelled

    again = cli(store)
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out
    assert out.count("already stored") == len(kept)         # resumed: the stored runs were not run again
    runs = RunStore(store).list()
    assert sorted((r.strategy, r.seed) for r in runs) == [("feature-extraction", 20), ("feature-extraction", 21),
                                                          ("full", 20), ("full", 21)]
    assert "| full | 16 | 2 |" in out and "| feature-extraction | 16 | 2 |" in out      # the sweep's table


def test_an_unreachable_cluster_is_a_clear_error_at_once(tmp_path):
    t = time.time()
    proc = subprocess.run([sys.executable, "-m", "core", "--store", str(tmp_path / "r.sqlite"), *SWEEP[2:],
                           "--ray", "127.0.0.1:1"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 2 and "cannot reach a Ray cluster at 127.0.0.1:1" in proc.stderr
    assert time.time() - t < 60                              # not Ray's own minutes of retries
