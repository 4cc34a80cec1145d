"""The Lab's result cards read honestly (issue 23): a change inside its interval gets no arrow and no
colour, zero-shot has no 'overfitting gap', macro-F1 and the majority class are said in words, and a
run whose labels had next to no training examples says so before and after. The results come from
the run store (a preset's figures under the config's key), so nothing trains here.
"""
from __future__ import annotations

import dataclasses

import pytest
from streamlit.proto.Metric_pb2 import Metric

MetricColor, MetricDirection = Metric.MetricColor, Metric.MetricDirection

from test_app import assert_no_exception, jobs_of, new_app


def stored_as(query: dict, **changes):
    """A preset run stored under the key the Lab computes for `query` (its Run then answers from the store)."""
    from core.config import RunConfig
    from core.data import load_task
    from core.model_registry import model_identity
    from core.presets import load_presets
    from core.store import RunStore

    cfg = RunConfig.from_dict({k: int(v) if v.isdigit() else v for k, v in query.items()})
    key = cfg.resolved().key(model_identity(cfg.model), load_task(cfg.task).identity())
    preset = next(r for p in load_presets()[0] for r in p.runs if r.strategy == "feature-extraction")
    run = dataclasses.replace(preset, key=key, cached=False, size=cfg.size, seed=cfg.seed or 0,
                              config={**preset.config, **cfg.resolved().to_dict()}, **changes)
    RunStore().put(run)
    return run


def run_from_store(query: dict, **changes):
    run = stored_as(query, **changes)
    at = new_app(query)
    at.button(key="run").click().run()
    assert_no_exception(at)
    assert jobs_of(at)[-1].result.cached
    return at, run


def cards(at):
    return {m.label: m.proto for m in at.metric}


def test_zero_shot_and_an_unchanged_encoder_read_as_no_change():
    query = {"strategy": "zero-shot", "size": "64", "seed": "3"}
    at, run = run_from_store(query, strategy="zero-shot")
    got = cards(at)
    general = got["General score (fixed probe)"]
    assert general.delta.startswith("0.0 ± 0.0 pts")           # neither "+0.0" nor "-0.0"
    assert general.color == MetricColor.GRAY and general.direction == MetricDirection.NONE
    train = got["Train accuracy"]
    assert "overfitting gap" not in train.delta and "nothing trained" in train.delta
    assert train.color == MetricColor.GRAY and train.direction == MetricDirection.NONE


def test_the_headline_says_what_macro_f1_and_the_majority_class_mean():
    query = {"strategy": "feature-extraction", "size": "64", "seed": "4"}
    at, run = run_from_store(query, in_domain_acc=0.84, in_domain_f1=0.333, majority_acc=0.421, confusion=[])
    got = cards(at)
    head = got["In-domain accuracy"]
    assert head.body == "84.0 %" and head.delta == "+41.9 pts vs majority"
    assert head.color == MetricColor.GREEN                       # 0.421 lies far under its interval
    text = " ".join(c.value for c in at.caption)
    assert "Always answering the commonest label scores 42.1 %" in text
    assert "weighs every label equally" in text and "rare ones are missed" in text
    from core.fmt import pct
    from core.stats import accuracy_interval

    wilson = accuracy_interval(0.84, run.n_eval)
    assert wilson["low"] < 0.84 < wilson["high"] and wilson["high"] - wilson["low"] < 0.05     # 2,000 test texts
    assert f"95 %: {pct(wilson['low'])} to {pct(wilson['high'])} over {run.n_eval:,} test texts" in text


def test_a_run_no_better_than_the_majority_class_gets_no_green_arrow():
    query = {"strategy": "feature-extraction", "size": "32", "seed": "5"}
    at, _ = run_from_store(query, in_domain_acc=0.5, majority_acc=0.4975, confusion=[])
    head = cards(at)["In-domain accuracy"]
    assert head.color == MetricColor.GRAY and head.direction == MetricDirection.NONE
    assert "not told apart from that" in " ".join(c.value for c in at.caption)


def test_labels_with_a_handful_of_examples_are_named_before_and_after_the_run():
    from core.data import thin_classes

    want = thin_classes("r8", 16, 6)
    assert want["thin"] >= 1                                     # 16 texts over 8 labels: some get < 5
    query = {"strategy": "feature-extraction", "size": "16", "seed": "6"}
    before = new_app(query)
    assert_no_exception(before)
    line = f"{want['thin']} of 8 labels with fewer than 5 training examples"
    assert any(line in c.value and "At this size" in c.value for c in before.caption)
    at, _ = run_from_store(query)
    assert any(line in c.value and "This run had" in c.value for c in at.caption)
    assert thin_classes("r8", None)["thin"] == 0                 # all of R8: none
    bigger = new_app({**query, "size": "1024"})
    assert not any("training examples**" in c.value for c in bigger.caption)


def test_the_headline_change_against_the_majority_class_carries_its_paired_interval():
    from core.fmt import pct_value, pts

    query = {"strategy": "feature-extraction", "size": "128", "seed": "8"}
    at, run = run_from_store(query)                       # the preset's own figures and confusion matrix
    paired = run.vs_majority()
    assert paired["verdict"] == "distinguishable from zero"
    head = cards(at)["In-domain accuracy"]
    assert head.delta == (f"{pts(run.in_domain_acc - run.majority_acc, unit='')} ± {pct_value(paired['ci95']):.1f} "
                          "pts vs majority")
    assert head.color == MetricColor.GREEN and head.direction == MetricDirection.UP
