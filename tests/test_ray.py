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

# full fine-tuning for 12 epochs (12 steps, each epoch scored on the validation curve subset): still
# running when the first run lands, so Ctrl-C has something to cancel (with one epoch every run could
# land within the same second as the first). 40 epochs took this test 143 s on an fp32-only CPU.
SWEEP = ["-m", "core", "sweep", "--task", "r8", "--sizes", "16", "--strategies", "feature-extraction", "full:epochs=12",
         "--seeds", "20", "21", "--epochs", "1", "--max-length", "32", "--eval-size", "50", "--general-size", "50",
         "--quiet"]
LOCAL = ["--ray", "--workers", "2"]


def _interruptible():
    # A suite started in the background by a non-interactive shell (`make test &`, nohup) inherits
    # SIGINT ignored, and so would the sweep: Ctrl-C is then what a terminal gives it, restored here.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(store, *extra, **kw):
    return subprocess.Popen([sys.executable, "-m", "core", "--store", str(store), *SWEEP[2:], *LOCAL, *extra], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=_interruptible, **kw)


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
    out, _ = first.communicate(timeout=300)                   # cancelling and Ray's shutdown: slow on a loaded machine
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
    assert "| full:epochs=12 | 16 | 2 |" in out and "| feature-extraction | 16 | 2 |" in out      # the sweep's table


def test_an_unreachable_cluster_is_a_clear_error_at_once(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "core", "--store", str(tmp_path / "r.sqlite"), *SWEEP[2:],
                           "--ray", "127.0.0.1:1"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    # the lab's own check answers (Ray's own retries would take minutes and end in another message);
    # the 120 s above is only a ceiling, so that a hang fails instead of blocking the suite
    assert proc.returncode == 2 and "cannot reach a Ray cluster at 127.0.0.1:1" in proc.stderr
    assert "is its head running" in proc.stderr


# ---------------------------------------------------------------------------- the app's dispatcher

TINY = dict(task="r8", size=16, epochs=1, max_length=32, eval_size=50, general_size=50)


@pytest.fixture
def local_ray():
    import ray

    yield
    ray.shutdown()


def wait_finished(get, timeout=400):
    deadline = time.time() + timeout
    while not get().finished:
        assert time.time() < deadline, "the sweep did not end in time"
        time.sleep(0.5)
    return get()


def test_the_servers_ray_setting_is_read_from_its_environment_only():
    from core.config import ConfigError
    from core.ray_sweep import configured

    assert configured({}) is None and configured({"FTLAB_RAY_ADDRESS": ""}) is None
    assert configured({"FTLAB_RAY_ADDRESS": "local"}) == {"address": None, "workers": 2, "cpus_per_run": 1}
    assert configured({"FTLAB_RAY_ADDRESS": "head:6379", "FTLAB_RAY_WORKERS": "3"})["address"] == "head:6379"
    with pytest.raises(ConfigError, match="whole numbers"):
        configured({"FTLAB_RAY_ADDRESS": "local", "FTLAB_RAY_WORKERS": "two"})


def test_with_ray_configured_the_compare_sweep_and_a_learn_lesson_go_to_ray(monkeypatch, local_ray):
    from streamlit.testing.v1 import AppTest

    from pages import ui
    from core.store import RunStore

    monkeypatch.setenv("FTLAB_RAY_ADDRESS", "local")
    ui.ray_dispatcher.clear()
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.session_state["charts_ready"] = True
        for k, v in {"size": "16", "epochs": "1", "max_length": "32", "eval_size": "50", "general_size": "50",
                     "seed": "42"}.items():
            at.query_params[k] = v
        at.run()
        at.switch_page("pages/compare.py").run()
        at.multiselect(key="sweep_sizes").set_value([16])
        at.multiselect(key="sweep_strategies").set_value(["feature-extraction", "zero-shot"]).run()
        button = at.button(key="sweep_queue")
        assert button.label.startswith("Queue 2 runs")
        button.click().run()
        assert not at.exception and len(at.session_state["sweeps"]) == 1
        dispatcher = ui.ray_dispatcher()
        sweep = wait_finished(lambda: dispatcher.get(at.session_state["sweeps"][0]))
        assert sweep.state == "done", sweep.error
        at.run()
        shown = [e.proto.text for e in at.get("progress")]
        assert any("Done" in t and "2 of 2 runs stored" in t for t in shown), shown
        stored = {(r.strategy, r.seed) for r in RunStore().list(task="r8")}
        assert {("feature-extraction", 42), ("zero-shot", 42)} <= stored
        table = at.dataframe[0].value                      # Compare's own table shows the sweep's runs
        assert {("feature-extraction", 42), ("zero-shot", 42)} <= set(zip(table["strategy"], table["seed"]))
        assert "jobs" not in at.session_state or not at.session_state["jobs"]     # nothing went local
        at.button(key="sweep_queue").click().run()        # the same sweep again: the store answers it
        repeat = wait_finished(lambda: dispatcher.get(at.session_state["sweeps"][1]), timeout=120)
        assert repeat.state == "done" and all(r.cached for _, r in repeat.landed) and len(repeat.landed) == 2

        at.switch_page("pages/learn.py").run()
        at.button(key="learn_0").click().run()           # "Overfitting": one full run, sent to Ray
        assert not at.exception and len(at.session_state["sweeps"]) == 3
        lesson = dispatcher.get(at.session_state["sweeps"][2])
        assert lesson.title == "Overfitting" and lesson.total == 1
        dispatcher.stop(lesson.id)
        assert wait_finished(lambda: dispatcher.get(lesson.id), timeout=120).state == "stopped"
    finally:
        ui.ray_dispatcher.clear()
