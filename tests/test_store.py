"""The run store: put/get/list/delete round trips and the CSV and JSON exports (no training here)."""
import csv
import dataclasses
import time
import io
import json
import sqlite3

import pytest

from core.store import RunStore, to_csv, to_json
from core.result import RunResult

GENERAL = {"score": 0.7, "score_refit": 0.72, "stderr": 0.01,
           "per_task": {"mr": {"fixed": 0.6, "refit": 0.65, "n_test": 50},
                        "rt": {"fixed": 0.8, "refit": 0.79, "n_test": 50}}}


def make_result(key: str, task="r8", strategy="full", created_at=1.0, acc=0.8, **extra) -> RunResult:
    return RunResult(
        key=key, config={"task": task, "strategy": strategy, "lr": 5e-5, "epochs": 3, "model": "minilm"},
        task=task, strategy=strategy, size=64, seed=0, in_domain_acc=acc, in_domain_f1=acc - 0.1, train_acc=0.95,
        general={**GENERAL, "score": 0.65}, pretrained_general=GENERAL,
        curves=[{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_acc": 0.6}],
        device="cpu", precision="bf16", trainable_params=100,
        total_params=1000, n_eval=50, majority_acc=0.5, predicted_classes=4, warnings=["careful"],
        created_at=created_at, **{"timings": {"training": 2.0, "total": 3.0}, **extra})


def test_put_get_round_trip(store):
    r = make_result("k1")
    store.put(r)
    back = store.get("k1")
    assert back is not None and back.to_dict() == r.to_dict()
    assert back.overfit_gap == pytest.approx(0.15) and back.general_delta == pytest.approx(-0.05)
    assert store.get("missing") is None


def test_put_replaces_a_run_with_the_same_key(store):
    store.put(make_result("k1", acc=0.5))
    store.put(make_result("k1", acc=0.9))
    assert [r.in_domain_acc for r in store.list()] == [0.9]


def test_list_filters_and_orders_by_time(store):
    store.put(make_result("b", created_at=2.0))
    store.put(make_result("a", created_at=1.0))
    store.put(make_result("c", task="mr", strategy="lora", created_at=3.0))
    assert [r.key for r in store.list()] == ["a", "b", "c"]
    assert [r.key for r in store.list(task="r8")] == ["a", "b"]
    assert [r.key for r in store.list(strategy="lora")] == ["c"]
    assert store.list(task="r8", strategy="lora") == []


def test_delete_and_clear(store):
    for k in "abc":
        store.put(make_result(k))
    assert store.delete("a") == 1
    assert store.delete(["a", "b", "zzz"]) == 1
    assert [r.key for r in store.list()] == ["c"]
    assert store.clear() == 1 and store.list() == []


def test_the_store_persists_across_instances(tmp_path):
    RunStore(tmp_path / "s.sqlite").put(make_result("k"))
    assert RunStore(tmp_path / "s.sqlite").get("k").key == "k"


def test_a_row_from_an_incompatible_version_is_skipped(store):
    store.put(make_result("good"))
    db = sqlite3.connect(store.path)
    with db:
        db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?)",
                   ("bad", 5.0, "r8", "full", 1, 0, 0.5, 0.5, json.dumps({"key": "bad"})))
    db.close()
    assert [r.key for r in store.list()] == ["good"]


def test_csv_export(store):
    store.put(make_result("a", created_at=1.0))
    store.put(make_result("b", strategy="lora", created_at=2.0, acc=0.7))
    rows = list(csv.DictReader(io.StringIO(to_csv(store.list()))))
    assert [r["key"] for r in rows] == ["a", "b"]
    assert rows[1]["strategy"] == "lora" and float(rows[1]["in_domain_acc"]) == 0.7
    assert float(rows[0]["general_delta"]) == pytest.approx(-0.05)
    assert float(rows[0]["general_mr"]) == 0.6 and float(rows[0]["general_rt_refit"]) == 0.79
    assert float(rows[0]["overfit_gap"]) == pytest.approx(0.15)
    assert to_csv([]).strip() == "key"


def test_json_export_round_trips(store):
    store.put(make_result("a"))
    data = json.loads(to_json(store.list()))
    assert len(data) == 1
    assert RunResult.from_dict(data[0]).to_dict() == make_result("a").to_dict()


def test_runs_of_an_older_measurement_are_listed_only_on_request(tmp_path, monkeypatch):
    import dataclasses

    from core import config
    from core.presets import load_presets
    from core.store import RunStore

    store = RunStore(tmp_path / "runs.sqlite")
    preset = load_presets()[0][0].runs[0]
    assert preset.result_version == config.RESULT_VERSION and preset.current   # the shipped R8 presets: current
    store.put(dataclasses.replace(preset, key="old", result_version=3))
    store.put(dataclasses.replace(preset, key="new", result_version=config.RESULT_VERSION))
    assert [r.key for r in store.list()] == ["new"]
    assert sorted(r.key for r in store.list(all_versions=True)) == ["new", "old"]
    monkeypatch.setattr(config, "COMPARABLE_SINCE", config.RESULT_VERSION + 1)   # a change of measurement
    assert store.list() == [] and len(store.list(all_versions=True)) == 2


WRITER = """
import dataclasses, sys
from core.presets import load_presets
from core.store import RunStore
store, preset = RunStore(sys.argv[1]), load_presets()[0][0].runs[0]
for i in range(100000):
    store.put(dataclasses.replace(preset, key=f"crash-{i}"))
    if i == 20:
        print("writing", flush=True)
"""


def test_the_store_survives_a_writer_killed_mid_write(tmp_path):
    """SIGKILL a process that writes runs as fast as it can: every committed run is still there,
    the file opens, and the next writer works."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import ROOT
    from core.store import RunStore

    path = tmp_path / "runs.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(0.5)                           # well inside the loop: a write is in flight at any moment
    finally:
        os.kill(proc.pid, signal.SIGKILL)         # also when the test fails: never leave the writer running
        proc.wait()
    store = RunStore(path)
    keys = {r.key for r in store.list(all_versions=True)}
    n = len(keys)
    assert n > 20 and keys == {f"crash-{i}" for i in range(n)}     # every one before the kill, none half-written
    store.put(dataclasses.replace(store.get("crash-0"), key="after"))
    assert store.get("after") is not None
