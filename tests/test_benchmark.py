"""The general benchmark: a reference that does not depend on the process or the host's bf16
kernels, settings that are part of every key, scoring in fp32 whatever the run trains in."""
import json
import os
import shutil
import subprocess
import sys

from conftest import HOME, ROOT
from core.config import RunConfig

REFERENCE_SCRIPT = """
import copy, json, sys
sys.path.insert(0, sys.argv[1])
from core.benchmark import GeneralBenchmark
from core.model_registry import model_identity
from core.models import load_base, pick_device
tokenizer, base = load_base("minilm")
bench = GeneralBenchmark(model_identity("minilm"), tokenizer, pick_device("cpu"), None, 50)
_, ref = bench.reference(base)
again = bench.score(copy.deepcopy(base), base, True)    # encoded anew, as a changed encoder would be
print(json.dumps({"score": ref.score, "correct": {k: v["correct"] for k, v in ref.per_task.items()},
                  "again": {k: v["correct"] for k, v in again.per_task.items()}}))
"""


def _reference_in_a_fresh_process(tmp_path, name: str, threads: int) -> dict:
    home = tmp_path / name
    # the built tasks are copied (building them is slow and not what is tested); no feature or
    # probe cache: each process computes the reference itself
    from core.data import TASKS, load_task

    for task in TASKS:
        load_task(task)
    shutil.copytree(HOME / "cache" / "tasks", home / "cache" / "tasks")
    env = {**os.environ, "FTLAB_HOME": str(home), "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", REFERENCE_SCRIPT, str(ROOT)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_two_processes_score_the_pretrained_reference_identically(tmp_path):
    a = _reference_in_a_fresh_process(tmp_path, "a", threads=2)
    b = _reference_in_a_fresh_process(tmp_path, "b", threads=1)
    assert a["correct"].keys() == b["correct"].keys() and len(a["correct"]) == 4
    assert a["correct"] == b["correct"], "some sentence was scored differently"
    assert a["score"] == b["score"]
    # the pre-trained weights encoded anew score exactly the reference: why WiSE-FT at a = 0 (the
    # pre-trained encoder, exactly) takes the reference instead of a benchmark of its own
    assert a["again"] == a["correct"] and b["again"] == b["correct"]


def test_the_benchmark_settings_are_part_of_the_key(monkeypatch):
    import core.benchmark as benchmark

    cfg = RunConfig().resolved()
    before = cfg.key("m", "d")
    real = benchmark.PROBE_C
    monkeypatch.setattr(benchmark, "PROBE_C", real * 10)          # another probe: another key
    assert cfg.key("m", "d") != before
    monkeypatch.setattr(benchmark, "PROBE_C", real)
    assert cfg.key("m", "d") == before


def test_a_bf16_run_is_scored_in_fp32_and_says_so(tiny):
    from core.training import run

    r = run(tiny)
    assert r.benchmark["precision"] == "fp32" and r.benchmark["tasks"] == ["20ng", "cr", "trec6", "rt"]
    assert r.benchmark["version"] >= 2


def test_every_shipped_preset_was_measured_against_one_reference():
    # The presets were made on two hosts (one with bf16 kernels, one without): the fp32 reference must
    # judge every general sentence alike there, or the plot would draw them against different lines.
    from core.presets import load_presets

    presets, problems = load_presets()
    assert not problems and presets
    references = {json.dumps({task: s["correct"] for task, s in r.pretrained_general["per_task"].items()},
                             sort_keys=True) for p in presets for r in p.runs}
    assert len(references) == 1
    assert all(json.loads(next(iter(references))).values())       # per-sentence outcomes, not missing ones
