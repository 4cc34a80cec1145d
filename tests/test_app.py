"""The app, headless: every page through streamlit.testing.v1.AppTest.

AppTest has no frontend, so `run_every` never fires by itself: `finish()` calls `at.run()` until
the job ends. All AppTests in this process share one JobManager (st.cache_resource is
per-process), exactly as browser sessions share one on a server. conftest.py points FTLAB_HOME
at a temporary folder before anything here is imported.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TINY_WIDGETS = {"cfg_epochs": 1, "cfg_max_length": 32, "cfg_eval_size": 50, "cfg_general_size": 50}
TINY_QUERY = {"size": "16", "strategy": "feature-extraction", "epochs": "1", "max_length": "32",
              "eval_size": "50", "general_size": "50"}


def new_app(query: dict | None = None, charts_at_once: bool = True) -> AppTest:
    """`charts_at_once`: as if the browser had already asked for the charts (AppTest runs no
    browser timers; test_first_run_holds_the_charts_back covers that path)."""
    at = AppTest.from_file(APP, default_timeout=120)
    if charts_at_once:
        at.session_state["charts_ready"] = True
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def manager():
    from pages import ui

    return ui.job_manager()


def wait_warm(timeout=90.0):
    deadline = time.time() + timeout
    while not manager().is_warm():
        assert time.time() < deadline, "the job manager's worker never became ready"
        time.sleep(0.2)


def jobs_of(at):
    return [manager().get(j) for j in at.session_state["jobs"]] if "jobs" in at.session_state else []


def finish(at: AppTest, timeout=240.0) -> AppTest:
    """Rerun (as run_every would) until every job of this session has ended."""
    deadline = time.time() + timeout
    while any(not j.finished for j in jobs_of(at)):
        assert time.time() < deadline, "the run did not finish in time"
        time.sleep(0.5)
        at.run()
    return at.run()


def plotly_data(at: AppTest, index: int = -1) -> list[dict]:
    charts = at.get("plotly_chart")
    assert charts, "no plotly chart on the page"
    return json.loads(charts[index].proto.spec)["data"]


def assert_no_exception(at: AppTest):
    assert not at.exception, [e.value for e in at.exception]


# ---------------------------------------------------------------------------- fast: rendering and config


def test_lab_renders_controls_card_and_counts():
    at = new_app()
    assert_no_exception(at)
    strategy = at.sidebar.radio(key="cfg_strategy")
    assert set(strategy.options) >= {"Feature extraction (frozen encoder)", "Full fine-tuning",
                                     "LoRA (low-rank adapters)", "BitFit (biases only)"}
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "finance news" in captions and "labels" in captions          # the data card
    assert "trainable parameters" in " ".join(strategy.proto.captions)
    assert at.sidebar.select_slider(key="cfg_size").options[0] == "16"
    assert at.button(key="run").label == "Run"


def test_config_goes_into_the_url_and_back():
    at = new_app(TINY_QUERY)
    assert_no_exception(at)
    assert at.sidebar.radio(key="cfg_strategy").value == "feature-extraction"
    assert at.number_input(key="cfg_epochs").value == 1
    at.number_input(key="cfg_max_length").set_value(48).run()
    assert at.query_params["max_length"] == ["48"] or at.query_params["max_length"] == "48"
    assert "task" not in at.query_params          # defaults stay out of the link


def test_bad_link_values_give_a_clear_error_and_defaults():
    at = new_app({"lr": "fast", "epochs": "0"})
    assert_no_exception(at)
    errors = " ".join(e.value for e in at.error)
    assert "lr='fast'" in errors and "epochs must be in [1, 1000]" in errors
    assert at.sidebar.radio(key="cfg_strategy").value == "full"       # the defaults


def test_a_hostile_link_is_refused_field_by_field_and_the_lab_still_runs():
    at = new_app({"strategy": "lora", "lora_targets": "foo", "task": "csv:/etc/passwd", "model": "/tmp",
                  "size": "-5", "freeze_layers": "7"})
    assert_no_exception(at)
    errors = " ".join(e.value for e in at.error)
    for name in ("lora_targets='foo'", "task='csv:/etc/passwd'", "model='/tmp'", "size='-5'"):
        assert name in errors, name
    assert at.session_state["lab_cfg"]["task"] == "r8" and at.session_state["lab_cfg"]["model"] == "minilm"
    assert at.sidebar.radio(key="cfg_strategy").value == "lora"          # the good part of the link kept
    assert not at.button(key="run").disabled


def test_the_learn_page_queues_only_what_a_link_may_name():
    at = new_app({"task": "csv:/etc/passwd"})
    at.switch_page("pages/learn.py").run()
    at.button(key="learn_0").click().run()
    assert_no_exception(at)
    jobs = jobs_of(at)
    assert jobs and all(j.config.task == "r8" for j in jobs)
    for j in jobs:
        manager().stop(j.id)


def test_more_layers_than_the_model_has_disables_run_with_a_message():
    at = new_app()
    at.number_input(key="cfg_freeze_layers").set_value(7).run()
    assert any("has 6 layers" in e.value for e in at.error)
    assert at.button(key="run").disabled


def test_out_of_range_value_is_a_message_and_run_is_disabled():
    at = new_app()
    at.number_input(key="cfg_lr").set_value(5.0).run()
    assert_no_exception(at)
    assert any("learning rate must be in (0, 1)" in e.value for e in at.error)
    assert at.button(key="run").disabled


def test_presenter_mode_hides_advanced_controls():
    at = new_app({"presenter": "1"})
    assert_no_exception(at)
    assert at.sidebar.toggle(key="presenter").value is True
    assert not [e for e in at.sidebar.number_input]       # the advanced expander is gone
    assert at.query_params.get("presenter") in (["1"], "1")


def test_learn_page_queues_a_comparison_and_opens_the_lab():
    at = new_app()
    at.switch_page("pages/learn.py").run()
    assert_no_exception(at)
    assert len(at.get("button")) >= 5
    assert "Catastrophic forgetting" in [h.value for h in at.subheader]
    at.button(key="learn_3").click().run()            # LoRA, full, LoRA at a lower rate: three runs
    assert_no_exception(at)
    ids = at.session_state["jobs"]
    assert len(ids) == 3
    assert at.sidebar.radio(key="cfg_strategy").value == "lora"      # the Lab, set to the last run
    for job_id in ids:                                  # not needed further: free the worker
        manager().stop(job_id)
    for job_id in ids:
        assert manager().wait(job_id, timeout=30).finished


def sidebar_is_runnable(at: AppTest):
    """The Lab after whatever happened: a valid setup whose every shown number is a real value."""
    from core.config import RunConfig

    cfg = RunConfig.from_dict(at.session_state["lab_cfg"])
    resolved = cfg.resolved()                                      # raises if it cannot run
    # Run is enabled, or waits only for the long-run confirmation (a whole training set; WiSE-FT's curve)
    assert not at.button(key="run").disabled or any(c.key == "confirm_long_run" for c in at.checkbox)
    for box in at.number_input:
        name = box.key.removeprefix("cfg_")
        assert box.value == at.session_state["lab_cfg"][name], name         # widget and config agree
        if name in ("max_length", "lora_r", "lora_alpha", "general_size", "eval_size", "epochs", "batch_size"):
            assert box.value is None or box.value > 0, (name, box.value)
    for name in ("max_length", "lora_r", "eval_size", "general_size"):
        assert at.query_params.get(name) not in (["0"], "0"), name
    return resolved


LESSONS = 12      # pages/learn.py: the five ideas, "pushing it too far", a topic per remedy, the lean


def test_the_learn_page_has_a_button_per_lesson():
    at = new_app()
    at.switch_page("pages/learn.py").run()
    assert_no_exception(at)
    assert [b.key for b in at.button if b.key.startswith("learn_")] == [f"learn_{i}" for i in range(LESSONS)]
    titles = [h.value for h in at.subheader]
    for remedy in ("LP-FT", "L2-SP", "WiSE-FT", "best epoch", "zero-shot"):
        assert any(remedy in t for t in titles), remedy


def test_learn_quotes_what_the_presets_hold_not_typed_figures(tmp_path, monkeypatch):
    """A lesson's figures are read from the preset files when the page is drawn: the same presets with
    LoRA's n=256 runs 12.3 points worse on the general benchmark make the LoRA lesson say -12.3."""
    import shutil

    from pages import ui

    for path in (ROOT / "assets" / "presets").glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    doc = json.loads((tmp_path / "r8.json").read_text())
    for r in doc["runs"]:
        if r["strategy"] == "lora" and r["size"] == 256:
            r["general"]["score"] = r["pretrained_general"]["score"] - 0.123
    (tmp_path / "r8.json").write_text(json.dumps(doc))
    monkeypatch.setenv("FTLAB_PRESETS", str(tmp_path))
    ui.presets.clear()
    try:
        at = new_app()
        at.switch_page("pages/learn.py").run()
        assert_no_exception(at)
        lora = next(m.value for m in at.markdown if m.value.startswith("LoRA leaves the pre-trained weights"))
        assert "forgot as much as full fine-tuning (-12.3 against -2.9 points" in lora
        assert not any("–" in m.value for m in at.markdown if len(m.value) > 300)   # every figure found
    finally:
        ui.presets.clear()


@pytest.mark.parametrize("lesson", range(LESSONS))
def test_every_learn_button_leaves_a_valid_runnable_lab(lesson):
    """A Learn button queues its runs and sets the Lab to the last; the sidebar then holds that
    setup, valid and runnable, through a trip to Learn and back and presenter mode on and off."""
    at = new_app()
    at.switch_page("pages/learn.py").run()
    at.button(key=f"learn_{lesson}").click().run()
    assert_no_exception(at)
    ids = list(at.session_state["jobs"])
    for job_id in ids:                          # only the configuration matters here: free the worker
        manager().stop(job_id)
    last = manager().get(ids[-1]).config
    resolved = sidebar_is_runnable(at)
    assert resolved.strategy == last.resolved().strategy and resolved.size == last.size
    assert at.sidebar.radio(key="cfg_strategy").value == resolved.strategy
    at.switch_page("pages/learn.py").run()
    at.switch_page("pages/lab.py").run()
    at.session_state["presenter_on"] = True       # the Advanced widgets go away...
    at.run()
    at.session_state["presenter_on"] = False      # ...and come back with the same values
    at.run()
    assert_no_exception(at)
    assert sidebar_is_runnable(at) == resolved
    for job_id in ids:
        assert manager().wait(job_id, timeout=60).finished


def test_an_emptied_number_box_means_the_default():
    at = new_app()
    at.number_input(key="cfg_lr").set_value(None).run()             # optional: the strategy's default
    at.number_input(key="cfg_max_length").set_value(None).run()     # required: the field's default
    assert_no_exception(at)
    assert at.session_state["lab_cfg"]["lr"] is None and at.session_state["lab_cfg"]["max_length"] == 128
    assert at.number_input(key="cfg_max_length").value == 128
    assert not at.error and not at.button(key="run").disabled
    sidebar_is_runnable(at)


def test_a_stored_configuration_is_answered_at_once():
    """No worker, no wait: the result is on the page in the same rerun, and says where it came from."""
    import dataclasses

    from core.presets import load_presets
    from core.store import RunStore, stored_result
    from core.config import RunConfig
    from core.data import load_task
    from core.model_registry import model_identity

    cfg = RunConfig(task="r8", strategy="lora", size=64, seed=7)
    preset = next(r for p in load_presets()[0] for r in p.runs if r.strategy == "lora")
    key = cfg.resolved().key(model_identity(cfg.model), load_task(cfg.task).identity())
    RunStore().put(dataclasses.replace(preset, key=key, seed=7, size=64, cached=False))
    assert stored_result(RunStore(), cfg).key == key
    at = new_app({"strategy": "lora", "size": "64", "seed": "7"})
    at.button(key="run").click().run()
    assert_no_exception(at)
    job = jobs_of(at)[-1]
    assert job.state == "done" and job.result.cached
    assert any("answered from the run store" in h.value for h in at.subheader)
    cards = {m.label: m for m in at.metric}
    assert cards["Time"].value == "stored" and "the run itself took" in cards["Time"].proto.delta
    RunStore().delete([key])


def test_a_long_run_asks_before_it_starts():
    at = new_app({"task": "clothing", "size": "all", "strategy": "full"})
    assert_no_exception(at)
    assert any("This run will take about" in w.value for w in at.warning)
    assert at.button(key="run").disabled
    at.checkbox(key="confirm_long_run").check().run()
    assert not at.button(key="run").disabled


def test_the_run_button_comes_before_everything_else_on_the_page():
    """In the main area right under the title (the sidebar can be long): visible without scrolling."""
    at = new_app()
    main = [e for e in at.main]
    first_button = next(i for i, e in enumerate(at.main.get("button")) if e.key == "run")
    assert first_button == 0
    assert not at.sidebar.get("button")


def test_failure_messages_are_clear():
    """Each failure kind renders as one message, never a traceback (a stand-in job, no training)."""
    def script():
        import streamlit as st

        from pages import ui
        from core.jobs import FAILED, STOPPED, Job
        from core.config import RunConfig

        for state, kind, msg in [(FAILED, "ModelError", "model 'x/y' is not in the registry"),
                                 (FAILED, "RunError", "out of memory on cuda at batch size 64"),
                                 (FAILED, "DataError", "task 'r8' has 5285 training examples"),
                                 (FAILED, "ConfigError", "seed must be a non-negative integer"),
                                 (STOPPED, "RunStopped", "stopped by the user")]:
            ui.show_job_outcome(Job("j", RunConfig(), "", state=state, error=msg, error_kind=kind))

    at = AppTest.from_function(script).run()
    assert_no_exception(at)
    texts = [e.value for e in at.error]
    assert texts[0].startswith("**The model could not be loaded.**")
    assert texts[1].startswith("**Out of memory.**")
    assert texts[2].startswith("**The data could not be used.**")
    assert texts[3].startswith("**This configuration cannot run.**")
    assert at.warning[0].value.startswith("Stopped")


# ---------------------------------------------------------------------------- slow: real runs


@pytest.mark.slow
def test_tiny_run_end_to_end_with_cards_and_plot():
    at = new_app(TINY_QUERY)
    wait_warm()
    at.button(key="run").click().run()
    clicked = time.time()
    job = jobs_of(at)[0]
    while job.state == "queued":                 # the warm worker takes the job (latency measured in
        assert time.time() - clicked < 120, "the job never left the queue"   # the browser test, not here)
        time.sleep(0.05)
    finish(at)
    assert_no_exception(at)
    assert job.state == "done", job.error
    assert any(c.value == job.result.majority_lean_text() for c in at.caption)      # the lean on the commonest label
    labels = [m.label for m in at.metric]
    for want in ("In-domain accuracy", "Train accuracy", "General score (fixed probe)",
                 "General score (refit probe)", "Time", "Device", "Trainable parameters"):
        assert want in labels
    cards = {m.label: m for m in at.metric}
    from pages import ui

    assert cards["Trainable parameters"].value == ui.count_text(job.result.trainable_params)   # fits the card
    assert (ui.count_text(22_716_296), ui.count_text(36_864), ui.count_text(3_080)) == ("22.7 M", "36.9 k", "3,080")
    assert "overfitting gap" in cards["Train accuracy"].proto.delta
    trace = [t for t in plotly_data(at) if t.get("name") == "strategy: feature-extraction"][0]
    points = list(zip(trace["x"], trace["y"]))
    want = (100 * job.result.general["score"], 100 * job.result.in_domain_acc)
    assert any(abs(x - want[0]) < 1e-6 and abs(y - want[1]) < 1e-6 for x, y in points)


@pytest.mark.slow
def test_page_switch_keeps_the_run_and_stop_ends_it():
    at = new_app({**TINY_QUERY, "strategy": "full", "size": "64", "epochs": "20"})
    wait_warm()
    at.button(key="run").click().run()
    job = jobs_of(at)[0]
    deadline = time.time() + 60
    while job.progress.get("stage") != "training":
        assert time.time() < deadline
        time.sleep(0.2)
    at.switch_page("pages/compare.py").run()
    assert_no_exception(at)
    at.switch_page("pages/lab.py").run()
    assert not job.finished                               # the switch did not touch it
    assert at.get("progress"), "the running job is shown again after coming back"
    stop = [b for b in at.button if b.label == "Stop"][0]
    stop.click().run()
    clicked = time.time()
    manager().wait(job.id, timeout=30)
    # The loop checks for Stop before every step; a worker that misses it is killed after
    # core.jobs.KILL_AFTER_S (1 s). How long it took is printed, not asserted (no timed tests).
    assert job.state == "stopped"
    print(f"stopped {time.time() - clicked:.2f} s after the click")
    at.run()
    assert any(w.value.startswith("Stopped") for w in at.warning)


@pytest.mark.slow
def test_two_sessions_run_one_after_the_other():
    first = new_app(TINY_QUERY)
    second = new_app({**TINY_QUERY, "seed": "1"})
    wait_warm()
    first.button(key="run").click().run()
    second.button(key="run").click().run()
    a, b = jobs_of(first)[0], jobs_of(second)[0]
    if not a.finished and b.state == "queued":
        second.run()
        assert any("Queued, position 1" in i.value for i in second.info)
    finish(first)
    finish(second)
    assert a.state == b.state == "done"
    assert b.started_at >= a.finished_at - 0.5             # one at a time
    assert_no_exception(first)
    assert_no_exception(second)


@pytest.mark.slow
def test_compare_page_table_plots_export_and_delete():
    at = new_app(TINY_QUERY)
    wait_warm()
    at.button(key="run").click().run()
    finish(at)
    at.switch_page("pages/compare.py").run()
    assert_no_exception(at)
    assert at.dataframe, "the runs table"
    names = {t.get("name") for t in plotly_data(at, 0)}
    assert "strategy: feature-extraction" in names
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert titles[:3] == ["Learning vs forgetting", "In-domain accuracy vs training-set size (mean ± sd over seeds)",
                          "General benchmark per task: change against the pre-trained encoder (points)"]
    # with two runs of one task stored with their per-class counts: the paired per-class change too
    assert titles[3:] in ([], ["Recall per class, A − B (points)"])
    assert len(at.get("download_button")) == len(titles) + 2      # every plot as HTML, CSV, JSON
    before = len(at.dataframe[0].value)
    from pages import ui

    at.multiselect(key="cmp_delete").select(ui.store().list()[0].key).run()
    at.button(key="cmp_delete_button").click().run()
    assert_no_exception(at)
    after = len(at.dataframe[0].value) if at.dataframe else 0
    assert after == before - 1


@pytest.mark.slow
def test_hub_model_offline_is_a_clear_message(monkeypatch):
    monkeypatch.setenv("FTLAB_MODELS", "nobody/no-such-model")      # offered by whoever started the server
    at = new_app({**TINY_QUERY, "model": "nobody/no-such-model"})
    assert at.session_state["lab_cfg"]["model"] == "nobody/no-such-model"
    wait_warm()
    at.button(key="run").click().run()
    finish(at)
    assert_no_exception(at)
    assert any(e.value.startswith("**The model could not be loaded.**") for e in at.error)


def test_first_run_holds_the_charts_back_until_the_browser_asks():
    # The first run of a session draws no chart (plotly's script would hold the page back) but a
    # placeholder and a fragment whose browser-side timer asks for the rerun that draws them.
    at = new_app({"task": "r8"}, charts_at_once=False)
    assert not at.get("plotly_chart")
    assert any("Drawing the plot" in c.value for c in at.caption)
    assert at.session_state["charts_armed"] is True and "charts_ready" not in at.session_state
    at.session_state["charts_ready"] = True      # what the fragment's timed run sets before its rerun
    at.run()
    assert plotly_data(at) and not any("Drawing the plot" in c.value for c in at.caption)


def test_a_page_with_no_chart_still_asks_for_the_rerun_that_draws_the_held_back_widgets():
    # A task with no stored run and no presets draws no chart; the Advanced settings it held back
    # from the first paint must still come (before, the placeholder stayed until the next click).
    at = new_app({"task": "clothing", "size": "16"}, charts_at_once=False)
    assert not at.get("plotly_chart") and any("Loading the advanced settings" in c.value for c in at.caption)
    assert at.session_state["charts_armed"] is True and "charts_ready" not in at.session_state
    at.session_state["charts_ready"] = True
    at.run()
    assert not any("Loading the advanced settings" in c.value for c in at.caption)
    assert at.number_input(key="cfg_seed") is not None


@pytest.mark.parametrize("strategy, knob_label", [("lp-ft", "Head-only epochs"), ("l2-sp", "L2-SP alpha"),
                                                  ("wise-ft", "WiSE-FT mixing"), ("full", "Keep the best epoch")])
def test_a_strategy_s_declared_knobs_become_the_lab_s_widgets(strategy, knob_label):
    at = new_app({"strategy": strategy})
    assert_no_exception(at)
    labels = [w.label for w in list(at.number_input) + list(at.checkbox)]
    assert knob_label in labels, labels
    at_zero = new_app({"strategy": "zero-shot"})
    assert_no_exception(at_zero)
    assert "Epochs" not in [w.label for w in at_zero.number_input]     # zero-shot has no training knobs


def test_a_wise_ft_result_draws_its_curve_and_rescores_another_mix_from_kept_weights():
    import dataclasses

    from core.config import RunConfig
    from core.data import load_task
    from core.model_registry import model_identity
    from core.presets import load_presets
    from core.store import RunStore
    from core.weights import WeightStore

    cfg = RunConfig(task="r8", strategy="wise-ft", size=64, seed=7)
    resolved = cfg.resolved()
    model_id, data_id = model_identity(cfg.model), load_task(cfg.task).identity()
    key, training_key = resolved.key(model_id, data_id), resolved.training_key(model_id, data_id)
    preset = next(r for p in load_presets()[0] for r in p.runs if r.strategy == "full")
    pre = preset.pretrained_general["score"]
    curve = [{"alpha": a, "in_domain_acc": 0.6 + 0.3 * a, "general": pre - 0.02 * a, "general_refit": pre}
             for a in (0.0, 0.25, 0.5, 0.75, 1.0)]
    RunStore().put(dataclasses.replace(preset, key=key, strategy="wise-ft", size=64, seed=7, cached=False,
                                       config=resolved.to_dict(), curve=curve, training_key=training_key))
    at = new_app({"strategy": "wise-ft", "size": "64", "seed": "7"})
    if any(c.key == "confirm_long_run" for c in at.checkbox):      # five scorings: long on a slow machine
        at.checkbox(key="confirm_long_run").check().run()
    at.button(key="run").click().run()
    assert_no_exception(at)
    assert any(t["name"].startswith("WiSE-FT curve") for t in plotly_data(at))
    slider = at.slider(key=f"wise_mix_{key}")
    assert slider.value == 0.5 and any("At a = 0.5" in m.value for m in at.markdown)
    slider.set_value(0.3).run()
    assert "trains again" in at.button(key="wise_rescore").label           # no weights kept yet
    weights = WeightStore.beside(RunStore())
    weights.folder.mkdir(parents=True, exist_ok=True)
    weights.path(training_key).write_bytes(b"")                            # present: the button needs no more
    at.run()
    assert "evaluation only" in at.button(key="wise_rescore").label
    at.button(key="wise_rescore").click().run()
    assert_no_exception(at)
    job = jobs_of(at)[-1]
    assert job.config.wise_alpha == 0.3 and at.session_state["lab_cfg"]["wise_alpha"] == 0.3
    manager().stop(job.id)
    assert manager().wait(job.id, timeout=60).finished
    weights.path(training_key).unlink()
    RunStore().delete([key])


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["zero-shot", "l2-sp"])
def test_a_remedy_runs_from_the_lab_and_lands_on_the_plot(strategy):
    """A remedy clicked in the Lab: its cards, its marker on the trade-off plot and, where the encoder
    moved, the paired interval of its general change and how far it moved."""
    at = new_app({**TINY_QUERY, "strategy": strategy, "seed": "11"})
    wait_warm()
    at.button(key="run").click().run()
    finish(at)
    assert_no_exception(at)
    job = jobs_of(at)[-1]
    assert job.state == "done", job.error
    assert any(t.get("name") == f"strategy: {strategy}" for t in plotly_data(at))
    cards = {m.label: m for m in at.metric}
    general = cards["General score (fixed probe)"].proto.delta
    captions = " ".join(c.value for c in at.caption)
    if strategy == "zero-shot":
        assert cards["Trainable parameters"].value == "0" and general.startswith("0.0 ± 0.0")   # no sign: no change
        assert "within noise" in captions
    else:
        assert "±" in general and "weights moved" in captions


def test_own_data_uploaded_in_the_lab_becomes_a_task_whose_link_carries_its_hash():
    import pandas as pd

    rows = [{"comment": f"{w} service, visit {i}", "mood": m} for m, w in (("happy", "great"), ("sad", "poor"))
            for i in range(30)]
    data = pd.DataFrame(rows).to_csv(index=False).encode()
    at = new_app()
    at.sidebar.file_uploader(key="upload_file").set_value(("moods.csv", data, "text/csv")).run()
    assert_no_exception(at)
    assert at.selectbox(key="upload_text").value == "comment" and at.selectbox(key="upload_label").value == "mood"
    assert any("Classes: happy 30, sad 30" in c.value for c in at.caption)
    at.button(key="upload_use").click().run()
    assert_no_exception(at)
    task = at.session_state["lab_cfg"]["task"]
    assert task.startswith("upload:") and at.query_params["task"] in (task, [task])   # the link: a hash, no path
    assert at.sidebar.selectbox(key="cfg_task").value == task
    assert not at.button(key="run").disabled
    # a fresh session opened from that link gets the same data back
    again = new_app({"task": task})
    assert again.session_state["lab_cfg"]["task"] == task and not again.error


def test_an_upload_is_named_by_its_file_its_columns_guessed_and_its_rows_counted():
    """A JSON Lines file with the label before the text: the columns come from the content, every row
    is accounted for before "Use this data", and the task box then shows the file's name, not its hash."""
    import pandas as pd

    rows = [{"topic": t, "body": f"{t} story {i}: the market moved as traders weighed the {t} figures today"}
            for i in range(25) for t in ("grain", "ship", "money")]
    rows += [rows[0], {"topic": "grain", "body": ""}]                    # a duplicate and an empty text
    data = pd.DataFrame(rows).to_json(orient="records", lines=True).encode()
    at = new_app()
    at.sidebar.file_uploader(key="upload_file").set_value(("wire-news.jsonl", data, "application/json")).run()
    assert_no_exception(at)
    assert at.selectbox(key="upload_text").value == "body" and at.selectbox(key="upload_label").value == "topic"
    counted = [c.value for c in at.caption if c.value.startswith("77 rows: ")]
    assert counted and "validation (taken from train)" in counted[0], [c.value for c in at.caption]
    assert "2 dropped (1 empty text, 1 duplicate text)" in counted[0]
    at.button(key="upload_use").click().run()
    assert_no_exception(at)
    task = at.session_state["lab_cfg"]["task"]
    assert task.startswith("upload:") and at.query_params["task"] in (task, [task])   # the link keeps the hash
    box = at.sidebar.selectbox(key="cfg_task")
    assert box.value == task and "wire-news.jsonl (your data)" in box.options
    assert not any(task in o for o in box.options)                      # nowhere named by its hash
    assert any("(2 rows dropped)" in c.value for c in at.sidebar.caption)


def test_an_unusable_upload_says_why_and_cannot_be_used():
    at = new_app()
    at.sidebar.file_uploader(key="upload_file").set_value(("x.csv", b"text,label\nonly,one\nmore,one\n", "text/csv")).run()
    assert_no_exception(at)
    assert any("at least two" in e.value for e in at.error)
    assert at.button(key="upload_use").disabled
    at.sidebar.file_uploader(key="upload_file").set_value(("x.csv", b"\x00\x01binary", "text/csv")).run()
    assert any("binary data" in e.value for e in at.error)


def test_every_session_state_key_a_page_uses_is_declared_in_one_place():
    """pages/ui SESSION_KEYS names every key of st.session_state the app reads or writes (a key ending in
    '*' a family); a key used nowhere is not declared either."""
    import re

    from pages import ui

    used = set()
    for path in [ROOT / "app.py", *(ROOT / "pages").rglob("*.py")]:
        text = path.read_text()
        used |= set(re.findall(r"session_state(?:\[|\.get\(|\.setdefault\(|\.pop\()f?[\"']([A-Za-z_]+)", text))
        used |= set(re.findall(r"session_state\.([a-z_]+)\b(?!\()", text))
        for name, prefix in re.findall(r"session_state(?:\[|\.get\(|\.pop\()(?:ui\.)?([A-Z_]+)( \+)?", text):
            used.add(getattr(ui, name) + ("*" if prefix else ""))          # a named constant, or a prefix + a name
    used -= {"get", "pop", "setdefault"}
    declared = set(ui.SESSION_KEYS)
    undeclared = {k for k in used if k not in declared and not any(
        d.endswith("*") and k.startswith(d[:-1]) for d in declared)}
    assert undeclared == set()
    assert {d for d in declared if not any(k == d or (d.endswith("*") and k.startswith(d[:-1])) for k in used)} == set()


def test_the_lab_shows_the_command_line_of_its_setup_but_not_on_a_projector():
    at = new_app({"strategy": "lora", "size": "64", "lr": "0.0003"})
    assert_no_exception(at)
    lines = [c.value for c in at.code]
    assert lines == ["python -m core run --size 64 --strategy lora --lr 0.0003"]
    assert any("--size all" in c.value for c in at.caption)          # the real job: the whole training split
    at = new_app({"strategy": "lora", "presenter": "1"})
    assert [c.value for c in at.code] == []
