"""The Compare page on stored preset runs, no training: the readable table, the per-task change
plot and the offline HTML downloads. conftest.py points FTLAB_HOME at a temporary folder before
anything here is imported; the fixture below empties that shared store for this module and puts
back what was there afterwards (tests/test_app.py's runs), so neither module sees the other's.
"""
from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import stats
from core.fmt import pct_value, pts

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PRESET = ROOT / "assets" / "presets" / "r8.json"
DEFAULT_LABELS = ["Task", "Strategy", "Train size", "Seed", "In-domain acc.", "In-domain 95 %", "General (fixed)", "Δ general",
                  "± (95 %)", "Δ general (refit)"]


def preset_runs():
    from core.training import RunResult

    return [RunResult.from_dict(d) for d in json.loads(PRESET.read_text())["runs"]]


@pytest.fixture(scope="module")
def stored():
    """Five R8 runs at n=256: full x 3 seeds (a mean with an sd), LoRA and feature extraction x 1."""
    from core.store import RunStore

    store = RunStore()
    before = store.list()
    store.delete([r.key for r in before])
    picks = {("full", 0), ("full", 1), ("full", 2), ("lora", 0), ("feature-extraction", 0)}
    runs = [r for r in preset_runs() if r.size == 256 and (r.strategy, r.seed) in picks]
    assert len(runs) == 5
    for r in runs:
        store.put(r)
    yield runs
    store.delete([r.key for r in runs])
    for r in before:
        store.put(r)


def compare_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def columns(at: AppTest) -> tuple[list[str], dict]:
    """(shown column names, their column config as the frontend gets it)."""
    table = at.dataframe[0]
    return list(table.value.columns), json.loads(table.proto.columns)


def change(run, task: str, probe: str) -> float:
    return 100 * (run.general["per_task"][task][probe] - run.pretrained_general["per_task"][task][probe])


# ---------------------------------------------------------------------------- the page


def test_table_labels_percentages_and_more_columns(stored):
    at = compare_page()
    names, config = columns(at)
    assert [config[c]["label"] for c in names] == DEFAULT_LABELS       # fewer columns: fits 1280 px
    assert all(config[c].get("help") for c in names)
    assert config["in_domain_acc"]["type_config"]["format"] == "%.1f %%"
    assert config["general_delta"]["type_config"]["format"] == "%+.1f pts"
    value = at.dataframe[0].value
    # rounded as the Lab rounds (core.fmt): the table's printf then prints the Lab's digits
    assert sorted(value["in_domain_acc"]) == sorted(pct_value(r.in_domain_acc) for r in stored)
    assert sorted(value["general_delta"]) == sorted(pct_value(r.general_delta) for r in stored)
    wilson = [stats.accuracy_interval(r.in_domain_acc, r.n_eval) for r in stored]
    assert sorted(value["in_domain_ci"]) == sorted(f"{pct_value(w['low']):.1f} – {pct_value(w['high']):.1f}"
                                                   for w in wilson)

    at.multiselect(key="cmp_columns").select("train_acc").select("key").run()
    names, config = columns(at)
    assert names == ["task", "strategy", "size", "seed", "in_domain_acc", "in_domain_ci", "train_acc", "general",
                     "general_delta", "general_delta_ci95", "general_delta_refit", "key"]   # display order kept
    assert config["train_acc"]["label"] == "Train acc." and config["key"]["label"] == "Key"
    value = at.dataframe[0].value
    assert sorted(value["train_acc"]) == sorted(pct_value(r.train_acc) for r in stored)
    assert set(value["key"]) == {r.key for r in stored}


def test_breakdown_plot_shows_changes_in_points(stored):
    at = compare_page()
    spec = json.loads(at.get("plotly_chart")[2].proto.spec)
    traces = {t["name"]: t for t in spec["data"]}
    assert "pre-trained" not in traces                     # no absolute bars any more
    lora = next(r for r in stored if r.strategy == "lora")
    tasks = list(lora.general["per_task"])
    for probe in ("fixed", "refit"):
        bars = traces[f"lora ({probe})"]
        assert bars["x"] == tasks
        assert bars["y"] == pytest.approx([change(lora, t, probe) for t in tasks], abs=1e-9)
    full = [r for r in stored if r.strategy == "full"]
    bars = traces["full (fixed)"]
    assert bars["y"] == pytest.approx([statistics.fmean(change(r, t, "fixed") for r in full) for t in tasks],
                                      abs=1e-9)
    assert bars["error_y"]["array"] == pytest.approx(
        [statistics.stdev(change(r, t, "fixed") for r in full) for t in tasks], abs=1e-9)
    low, high = spec["layout"]["yaxis"]["range"]
    ys = [y for t in spec["data"] for y in t["y"]]
    assert low < min(ys) <= 0 <= max(ys) < high < 5        # scaled to changes of a few points


def test_plot_downloads_are_deferred_and_self_contained(stored, monkeypatch):
    from plotly.offline import get_plotlyjs
    from streamlit.runtime.media_file_manager import MediaFileManager

    deferred = {}
    register = MediaFileManager.add_deferred

    def recording(self, data_callable, *args, **kwargs):
        file_id = register(self, data_callable, *args, **kwargs)
        deferred[file_id] = data_callable
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", recording)
    at = compare_page()
    buttons = {b.key: b for b in at.get("download_button")}
    # the per-class change between the two paired runs: the presets keep per-class counts
    assert set(buttons) == {"dl_cmp_tradeoff", "dl_cmp_size", "dl_cmp_general", "dl_cmp_per_class", "dl_csv",
                            "dl_json"}
    for key in ("dl_cmp_tradeoff", "dl_cmp_size", "dl_cmp_general", "dl_cmp_per_class"):
        assert buttons[key].proto.deferred_file_id in deferred        # built on a click, not every rerun
    html = deferred[buttons["dl_cmp_general"].proto.deferred_file_id]()
    assert 'src="https://cdn.plot.ly' not in html                      # the old include_plotlyjs="cdn"
    assert get_plotlyjs() in html                                     # the whole bundle: opens offline
    assert "lora (refit)" in html


# ---------------------------------------------------------------------------- the figure alone


def test_general_breakdown_figure_is_change_against_pretrained():
    from core import plots

    base = next(r for r in preset_runs() if r.strategy == "full")
    pre = base.pretrained_general["per_task"]

    def dropped(seed, fixed, refit):
        per_task = {t: {**v, "fixed": v["fixed"] - fixed, "refit": v["refit"] - refit} for t, v in pre.items()}
        return dataclasses.replace(base, seed=seed, general={**base.general, "per_task": per_task})

    runs = [dropped(0, 0.01, 0.004), dropped(1, 0.02, 0.006),
            dataclasses.replace(dropped(0, 0.03, 0.0), strategy="lora")]
    fig = plots.general_breakdown_figure(runs)
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"full (fixed)", "full (refit)", "lora (fixed)", "lora (refit)"}
    n = len(pre)
    assert list(traces["full (fixed)"].y) == pytest.approx([-1.5] * n, abs=1e-9)
    assert list(traces["full (fixed)"].error_y.array) == pytest.approx([statistics.stdev([-1, -2])] * n)
    assert list(traces["full (refit)"].y) == pytest.approx([-0.5] * n, abs=1e-9)
    assert traces["full (refit)"].marker.pattern.shape == "/" and not traces["full (fixed)"].marker.pattern.shape
    assert traces["full (fixed)"].marker.color == plots.colour("full")
    assert traces["lora (fixed)"].marker.color == plots.colour("lora")
    assert not traces["lora (fixed)"].error_y.visible                 # one run: no spread to show
    low, high = fig.layout.yaxis.range
    assert -5 < low < -3.0 and 0 < high < 1                # all changes negative, yet 0 is not the edge
    assert fig.layout.yaxis.zeroline
    assert "change" in fig.layout.title.text and "points" in fig.layout.yaxis.title.text
    assert plots.general_breakdown_figure([]).data == ()


def test_each_run_is_drawn_against_its_own_pretrained_reference():
    """Runs measured with another general-benchmark size have another pre-trained score: each
    arrow starts at its run's own reference, and each reference gets its own dashed line."""
    import dataclasses

    from core.plots import tradeoff_figure
    from core.presets import load_presets

    a = load_presets()[0][0].runs[0]
    b = dataclasses.replace(a, key="other", config={**a.config, "general_size": 50},
                            pretrained_general={**a.pretrained_general, "score": a.pretrained_general["score"] - 0.05})
    fig = tradeoff_figure([a, b])
    lines = sorted(s.x0 for s in fig.layout.shapes)
    assert lines == pytest.approx(sorted([100 * a.pretrained_general["score"], 100 * b.pretrained_general["score"]]))
    starts = {ann.ax for ann in fig.layout.annotations if ann.showarrow}
    assert starts == {100 * a.pretrained_general["score"], 100 * b.pretrained_general["score"]}
    assert any("general size 50" in (ann.text or "") for ann in fig.layout.annotations)


def test_two_runs_are_compared_paired_with_an_interval_and_a_verdict(stored):
    """Runs stored with per-text outcomes get a paired A − B comparison; the figures are core.stats's."""
    import dataclasses

    import numpy as np

    from core import stats
    from core.store import RunStore

    rng = np.random.default_rng(1)
    base = rng.random(2000) < 0.9
    better = base | (rng.random(2000) < 0.5)             # B's right answers, and about half of its wrong ones
    sentences = {t: rng.random(1000) < 0.7 for t in stored[0].general["per_task"]}

    def with_outcomes(run, key, in_domain, general_flip):
        per_task = {t: {**v, "correct": stats.pack(sentences[t] ^ (rng.random(1000) < general_flip))}
                    for t, v in run.general["per_task"].items()}
        return dataclasses.replace(run, key=key, seed=50 + len(key), test_correct=stats.pack(in_domain),
                                   n_eval=2000, general={**run.general, "per_task": per_task})

    a = with_outcomes(stored[0], "paired-a", better, 0.05)
    b = with_outcomes(stored[0], "paired-b", base, 0.0)
    RunStore().put(a)
    RunStore().put(b)
    try:
        at = compare_page()
        at.selectbox(key="cmp_pair_a").set_value("paired-a").run()
        at.selectbox(key="cmp_pair_b").set_value("paired-b").run()
        assert not at.exception
        cards = {m.label: m for m in at.metric}
        want = stats.in_domain_change(a.test_correct, b.test_correct)
        card = cards["In-domain accuracy, A − B"]
        assert card.value == pts(want['change']) and "distinguishable from zero" in card.proto.delta
        general = stats.general_change(a.general, b.general)
        assert cards["General score (fixed probe), A − B"].value == pts(general['change'])
    finally:
        RunStore().delete(["paired-a", "paired-b"])


def test_compare_keeps_tasks_apart_in_every_plot(stored):
    """Runs of two tasks: the trade-off plot shows one task at a time (a picker), the size plot draws a
    line per task, and the 19.25 % run reads 19.3 % in the table as on the Lab's card."""
    from core.store import RunStore

    other = [dataclasses.replace(r, key=f"sms-{r.key}", task="sms-spam", in_domain_acc=0.1925 + 0.01 * i)
             for i, r in enumerate(stored)]
    for r in other:
        RunStore().put(r)
    try:
        at = compare_page()
        group = at.selectbox(key="cmp_tradeoff_group")
        assert len(group.options) == 2
        tradeoff = json.loads(at.get("plotly_chart")[0].proto.spec)
        xs = [x for t in tradeoff["data"] if t.get("name", "").startswith(("strategy: ", "preset: "))
              for x in t["x"]]
        assert len(xs) == len(stored)                          # one task's runs only
        size = json.loads(at.get("plotly_chart")[1].proto.spec)
        names = {t["name"] for t in size["data"]}
        assert {"r8 · full", "sms-spam · full"} <= names and "full" not in names
        assert "never averaged across tasks" in size["layout"]["title"]["text"]
        assert "95 % intervals" in " ".join(c.value for c in at.caption)
        value = at.dataframe[0].value
        assert 19.3 in list(value["in_domain_acc"]) and 19.2 not in list(value["in_domain_acc"])
        group.select("sms-spam").run()
        assert not at.exception
    finally:
        RunStore().delete([r.key for r in other])
