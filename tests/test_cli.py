"""`python -m core`: list, run --json, runs, export, delete, sweep --out, and bad values (exit 2).

Subprocesses inherit FTLAB_HOME from conftest (shared caches, never the user's store); each
test names its own --store file.
"""
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from core.cli import main
from core.config import ConfigError
from core.store import RunStore

TINY_FLAGS = ["--task", "r8", "--size", "16", "--epochs", "1", "--max-length", "32", "--eval-size", "50",
              "--general-size", "50"]


def cli(*args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=os.environ.copy())
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_list():
    out = cli("list").stdout
    for name in ("minilm", "r8", "sms-spam", "trec6", "feature-extraction", "full", "lora", "bitfit"):
        assert name in out
    data = json.loads(cli("list", "--json").stdout)
    assert set(data) == {"models", "tasks", "strategies"} and "r8" in data["tasks"] and data["tasks"]["20ng"]["general"]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """One tiny run through the CLI, stored in a store of its own."""
    store = tmp_path_factory.mktemp("cli") / "runs.sqlite"
    proc = cli("--store", str(store), "run", *TINY_FLAGS, "--strategy", "fe", "--seed", "31", "--json")
    return store, json.loads(proc.stdout)


def test_run_json(cli_run):
    store, result = cli_run
    assert result["strategy"] == "feature-extraction" and result["size"] == 16 and result["seed"] == 31
    assert 0 <= result["in_domain_acc"] <= 1 and result["n_eval"] == 50 and len(result["curves"]) == 1
    assert result["general"] == result["pretrained_general"] and not result["cached"]
    assert RunStore(store).get(result["key"]) is not None


def test_runs_shows_an_upload_by_its_file_name_in_aligned_columns(cli_run, tmp_path, capsys):
    """`core runs` names an upload by its file (not upload:<hash>) and keeps every column in line
    however long the name."""
    import dataclasses

    import pandas as pd

    from core import uploads

    store, result = cli_run
    df = pd.DataFrame({"text": [f"line {i} about {w} things" for i in range(30) for w in ("cats", "dogs")],
                       "label": [w for i in range(30) for w in ("cats", "dogs")]})
    name = uploads.save_upload(df.to_csv(index=False).encode(), "a-rather-long-file-name-of-pet-notes.csv",
                               "text", "label")
    copy = tmp_path / "copy.sqlite"
    original = RunStore(store).get(result["key"])
    RunStore(copy).put(original)
    RunStore(copy).put(dataclasses.replace(original, key="f" * 16, task=name))

    assert main(["--store", str(copy), "runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, rows = lines[0], lines[1:3]
    assert "2 runs in" in lines[3]
    assert any("a-rather-long-file-name-of-pet-notes.csv" in r for r in rows)
    assert not any(name in r for r in rows)                                  # not the hash
    for column in ("strategy", "size", "in-dom", "time"):
        at = header.index(column) + len(column)                               # right end of the header
        for r in rows:                                                        # each value ends (or starts) there
            if column == "strategy":
                assert r[header.index(column):].startswith("feature-extraction"), (header, r)
            else:
                assert r[at - 1] != " " and (at == len(r) or r[at] == " "), (column, header, r)


def test_run_json_carries_the_intervals_the_cards_show(cli_run):
    from core import stats
    from core.training import RunResult

    _, result = cli_run
    got = result["intervals"]
    inside = got["in_domain"]
    assert inside["n"] == 50 and inside["low"] < result["in_domain_acc"] < inside["high"]
    k = round(result["in_domain_acc"] * 50)
    assert (inside["low"], inside["high"]) == pytest.approx(stats.wilson(k, 50))
    general = got["general_change"]                  # feature extraction: the encoder did not move
    assert general["change"] == 0 and general["ci95"] == 0 and general["verdict"] == "within noise"
    majority = got["vs_majority"]                    # paired over the same 50 texts (the confusion matrix)
    assert majority["change"] == pytest.approx(result["in_domain_acc"] - result["majority_acc"])
    assert majority["ci95"] > 0 and majority["verdict"] in ("within noise", "distinguishable from zero")
    assert got["trained"] is True
    lean = got["majority_lean"]                      # the commonest label: predicted share against true share
    assert lean == stats.majority_lean(result["confusion"]) | {"name": lean["name"]}
    again = RunResult.from_dict(result)             # the extra key does not stop the result from loading
    assert again.intervals() == got
    from core.cli import result_table

    assert f"commonest label        It predicted {lean['name']} for" in result_table(again)


def test_runs_export_and_delete(cli_run, tmp_path, capsys):
    store, result = cli_run
    key = result["key"]
    copy = tmp_path / "copy.sqlite"           # work on a copy: the module's store stays as it was
    RunStore(copy).put(RunStore(store).get(key))

    assert main(["--store", str(copy), "runs"]) == 0
    out = capsys.readouterr().out
    assert key in out and "1 runs in" in out
    assert main(["--store", str(copy), "runs", "--json"]) == 0
    assert [r["key"] for r in json.loads(capsys.readouterr().out)] == [key]

    proc = cli("--store", str(copy), "export", "--format", "csv")          # the real entry point, to stdout
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert len(rows) == 1 and rows[0]["key"] == key and rows[0]["strategy"] == "feature-extraction"
    assert float(rows[0]["in_domain_acc"]) == pytest.approx(result["in_domain_acc"])
    out_json = tmp_path / "runs.json"
    assert main(["--store", str(copy), "export", "--format", "json", "--out", str(out_json)]) == 0
    assert json.loads(out_json.read_text())[0]["key"] == key

    assert main(["--store", str(copy), "delete", key]) == 0
    assert "deleted 1 run(s)" in capsys.readouterr().out
    assert RunStore(copy).list() == []


@pytest.mark.parametrize("flags, words", [
    (["--size", "0"], "size must be a positive number"),
    (["--lr", "abc"], "--lr: cannot read 'abc'"),
    (["--task", "nope"], "unknown task 'nope'"),
    (["--strategy", "nope"], "unknown strategy 'nope'"),
    (["--feature-layer", "9", "--strategy", "fe"], "feature layer must be between 1 and 6"),
])
def test_bad_values_exit_2_with_one_error_line(flags, words, tmp_path, capsys):
    store = tmp_path / "runs.sqlite"
    assert main(["--store", str(store), "run", *TINY_FLAGS, *flags, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and words in err and "\n" not in err
    assert RunStore(store).list() == []


def test_bad_value_through_python_m_core(tmp_path):
    proc = cli("--store", str(tmp_path / "s.sqlite"), "run", *TINY_FLAGS, "--size", "0", check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: size must be a positive number")
    assert proc.stdout == ""


def test_sweep_writes_a_markdown_table(tmp_path):
    out, js = tmp_path / "docs" / "sweep.md", tmp_path / "sweep.json"
    flags = [f for f in TINY_FLAGS if f not in ("--size", "16")]
    proc = cli("--store", str(tmp_path / "s.sqlite"), "sweep", *flags, "--sizes", "16", "--strategies", "fe",
               "--seeds", "32", "33", "--quiet", "--title", "Tiny sweep", "--out", str(out), "--json-out", str(js))
    assert "[2/2]" in proc.stdout
    text = out.read_text()
    assert text.startswith("# Tiny sweep\n")
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[0].startswith("| strategy | size | seeds | in-domain test acc |")
    assert set(table[1]) <= set("|-")
    assert len(table) == 3 and table[2].startswith("| feature-extraction | 16 | 2 | ")    # one cell, two seeds
    runs = json.loads(js.read_text())["runs"]
    assert sorted(r["seed"] for r in runs) == [32, 33]
    assert len(RunStore(tmp_path / "s.sqlite").list()) == 2


def test_sweep_arms_give_one_strategy_several_settings_and_a_section_keeps_the_rest(tmp_path, capsys):
    from core.cli import write_doc
    from core.sweeps import parse_arm

    assert parse_arm("l2-sp:l2sp_alpha=100:epochs=5") == ("l2-sp", {"l2sp_alpha": 100.0, "epochs": 5})
    with pytest.raises(ConfigError, match="l2sp_alpah"):
        parse_arm("l2-sp:l2sp_alpah=100")
    doc = tmp_path / "RESULTS.md"
    doc.write_text("# Results\n\nhand-written\n")
    write_doc(doc, "## A\ntable one\n", "a")
    write_doc(doc, "## B\ntable two\n", "b")
    write_doc(doc, "## A\ntable one, again\n", "a")
    text = doc.read_text()
    assert text.startswith("# Results\n\nhand-written\n") and "table one, again" in text and "table one\n" not in text
    assert text.index("table one, again") < text.index("table two")       # a section stays where it was


def test_the_per_class_table_shows_a_strategy_leaning_on_the_majority():
    from core.cli import per_class_table
    from core.result import per_class
    from test_store import make_result

    y = np.array([0] * 6 + [1] * 3 + [2])                       # label a is 60 % of the test texts
    names = ["a", "b", "c"]
    collapsed = make_result("k1", per_class=per_class(y, np.zeros(10, dtype=int), names))
    good = make_result("k2", per_class=per_class(y, y, names))
    table = per_class_table([("full", collapsed), ("feature-extraction", good)]).splitlines()
    assert table[0] == "| strategy | size | seeds | a (6) | b (3) | c (1) | predicted a / true a |"
    assert table[2] == "| full | 64 | 1 | 100 | 0 | 0 | 100.0 % / 60.0 % |"
    assert table[3] == "| feature-extraction | 64 | 1 | 100 | 100 | 100 | 60.0 % / 60.0 % |"
    assert per_class_table([("full", make_result("k3"))]) == ""


def test_the_timing_summary_reads_the_runs_that_trained_the_encoder():
    from core.cli import timing_summary
    from test_store import make_result

    def timed(key, strategy, total, live, general):
        return make_result(key, strategy=strategy, timings={"training": total / 2, "general_live": live,
                                                            "evaluating": 1.0, "general": general, "total": total})

    runs = [timed("k1", "full", 100.0, 5.0, 40.0), timed("k2", "lora", 200.0, 20.0, 60.0),
            timed("k3", "full", 300.0, 3.0, 50.0), timed("k4", "feature-extraction", 10.0, 0.1, 1.0),
            timed("k5", "full", 400.0, 0.0, 50.0)]              # one epoch: no live estimate, still a run
    text = timing_summary(runs)
    assert text.startswith("Time, median over the 4 runs that trained the encoder: 250 s a run")
    assert "general benchmark 50 s" in text
    assert "took 3.0 % of a run (at most 10.0 %)" in text      # 5/100, 20/200, 3/300, 0/400
    assert timing_summary(runs[3:4]) == ""                      # feature extraction trains no encoder


@pytest.mark.parametrize("changes", [
    {},
    {"strategy": "lora", "lora_targets": ("query", "value"), "lr": 3e-4, "size": None},
    {"task": "drug-sentiment", "strategy": "full", "freeze_layers": 2, "layer_lr_decay": 0.8, "seed": 7},
    {"task": "csv:/tmp/my data/reviews.csv", "strategy": "wise-ft", "wise_alpha": 0.75, "precision": "fp32"},
    {"lr": 0.00012345678, "head_lr": 0.1 + 0.2},          # more digits than %g keeps
])
def test_the_command_line_the_lab_shows_runs_the_same_configuration(changes):
    """`command_line` (shown in the Lab) read back by the CLI's own parser: the same RunConfig, so the same
    store key; a path with a space stays one argument."""
    import shlex

    from core.cli import build_parser, command_line, config_from_args
    from core.config import RunConfig

    cfg = RunConfig(**changes)
    line = command_line(cfg)
    assert line.startswith("python -m core run")
    args = build_parser().parse_args(shlex.split(line)[3:])
    assert args.command == "run" and config_from_args(args) == cfg
    assert ("--size all" in line) == (cfg.size is None)
