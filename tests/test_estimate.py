"""The time-left estimate: work priced at measured rates, corrected by the run's own speed."""
from types import SimpleNamespace

import pytest


from core.config import RunConfig
from core.estimate import (DEFAULT_RATES, LONG_RUN_S, STAGES, Clock, Rates, Work, describe_accuracy, estimate_config,
                           mean_tokens, predict, rates_from)

RATES = Rates(step={"full": 2e-4, "lora": 1e-4}, forward=5e-5, general=1e-3, head_step=1e-3,
              fixed={"loading": 1.0, "tokenizing": 0.5, "training": 0.3, "evaluating": 0.1, "general": 0.4})


def test_predict_prices_each_stage_by_its_work():
    work = Work("full", step_tokens=10_000, forward_tokens=2_000, test_tokens=4_000, general_sentences=800)
    s = predict(work, RATES)
    assert list(s) == list(STAGES)
    assert s["training"] == pytest.approx(0.3 + 10_000 * 2e-4 + 2_000 * 5e-5)
    assert s["evaluating"] == pytest.approx(0.1 + 4_000 * 5e-5)
    assert s["general"] == pytest.approx(0.4 + 800 * 1e-3)
    double = predict(Work("full", step_tokens=20_000, forward_tokens=2_000, test_tokens=4_000,
                          general_sentences=800), RATES)
    assert double["training"] - s["training"] == pytest.approx(10_000 * 2e-4)   # linear in the work


def test_work_of_a_config_counts_epochs_and_the_benchmark():
    w = Work.of("full", True, train_tokens=1000, val_tokens=100, test_tokens=300, epochs=3, batch_size=16,
                n_train=50, general_size=200)
    assert (w.step_tokens, w.forward_tokens, w.test_tokens) == (3000, 3 * 100 + 1000, 300)
    assert w.general_sentences == 4 * 2 * 200
    fe = Work.of("feature-extraction", False, train_tokens=1000, val_tokens=100, test_tokens=300, epochs=30,
                 batch_size=32, n_train=50, general_size=200, uncached_tokens=700)
    assert (fe.step_tokens, fe.forward_tokens, fe.head_steps, fe.general_sentences) == (0, 700, 30 * 2, 0)


def result_at(rates: Rates, work: Work, device="cpu"):
    """A stand-in finished run whose stage times are exactly `rates` applied to `work`."""
    return SimpleNamespace(work=vars(work), timings=predict(work, rates), device=device, cached=False)


def test_rates_are_read_back_from_finished_runs():
    truth = Rates(step={"full": 3e-4, "lora": 1.5e-4}, forward=4e-5, general=2e-3, head_step=2e-3,
                  fixed=dict(DEFAULT_RATES.fixed))
    runs = [result_at(truth, Work("full", 9000, 1500, 4000, 1600)),
            result_at(truth, Work("lora", 5000, 900, 2000, 800)),
            result_at(truth, Work("feature-extraction", head_steps=120))]
    got = rates_from(runs)
    assert got.step["full"] == pytest.approx(3e-4) and got.step["lora"] == pytest.approx(1.5e-4)
    assert got.forward == pytest.approx(4e-5) and got.general == pytest.approx(2e-3)
    assert got.head_step == pytest.approx(2e-3)
    assert got.step["bitfit"] == DEFAULT_RATES.step["bitfit"]        # not measured: the default
    assert "3 run(s)" in got.source
    assert rates_from([]) is DEFAULT_RATES
    assert rates_from(runs, device="cuda") is DEFAULT_RATES          # other devices' runs say nothing here


def test_the_clock_corrects_later_stages_by_the_measured_step_speed():
    plan = {"loading": 0, "tokenizing": 0, "training": 10.0, "evaluating": 4.0, "general": 6.0}
    clock = Clock(plan, steps_s=6.0)               # 6 of training's 10 s are optimiser steps
    assert clock.left("training", 0.0) == pytest.approx(20.0)
    clock.observe_training(0.36, 0.03)             # too few steps to say anything
    assert clock.speed == 1.0
    clock.observe_training(0.6, 0.05)              # twice as slow, but only 5 % of the steps: mostly the plan
    assert 1.0 < clock.speed < 1.5
    clock.observe_training(6.0, 0.5)               # half the steps took 6 s: twice as slow as planned
    assert clock.speed == pytest.approx(2.0)
    assert clock.left("training", 7.0) == pytest.approx(20.0 - 7.0 + 8.0 + 12.0)
    # within a later stage, time passes against its corrected plan: the estimate keeps moving
    assert clock.left("evaluating", 1.0) == pytest.approx(8.0 - 1.0 + 12.0)
    assert clock.left("evaluating", 3.0) < clock.left("evaluating", 1.0)
    assert clock.left("general", 20.0) == 0.0     # overdue: never negative


def test_validation_passes_are_not_extrapolated_from_the_step_count():
    """10 % of the steps in 0.6 s is on plan even though the stage also holds 4 s of validation."""
    clock = Clock({"loading": 0, "tokenizing": 0, "training": 10.0, "evaluating": 0, "general": 0}, steps_s=6.0)
    clock.observe_training(0.6, 0.1)
    assert clock.speed == pytest.approx(1.0) and clock.left("training", 0.6) == pytest.approx(9.4)


def test_mean_tokens_uses_the_models_own_tokenizer():
    from tokenizers import Tokenizer

    from core.model_registry import model_path

    texts = ("a short one", "a somewhat longer sentence about oil prices and wheat exports in 1987")
    tok = Tokenizer.from_file(f"{model_path('minilm')}/tokenizer.json")
    tok.no_padding()                     # the file pads to 128: the run tokenizes without padding
    lengths = [len(tok.encode(t).ids) for t in texts]
    assert mean_tokens("minilm", texts, 128) == pytest.approx(sum(lengths) / 2)
    assert lengths[1] > 8 and mean_tokens("minilm", texts, 8) == pytest.approx((min(8, lengths[0]) + 8) / 2)


def test_a_long_configuration_is_estimated_long_and_a_tiny_one_short():
    info = {"n_train": 20_000, "n_val": 200, "n_test": 4_000, "sample": ("word " * 200,) * 4}
    assert estimate_config(RunConfig(task="r8", size=None, strategy="full", epochs=3), info) > 5 * LONG_RUN_S
    tiny = {"n_train": 5000, "n_val": 200, "n_test": 2000, "sample": ("a few words here",) * 4}
    assert estimate_config(RunConfig(task="r8", size=16, strategy="feature-extraction", eval_size=50,
                                     general_size=50), tiny) < 10
    assert estimate_config(RunConfig(lr=5.0), tiny) is None            # cannot run: no estimate


def test_the_estimates_accuracy_is_said_in_words():
    assert describe_accuracy(41, 44) == "estimated 41 s at the start (7 % under)"
    assert describe_accuracy(50, 40).endswith("(25 % over)")
    assert describe_accuracy(None, 40) == ""


def test_frozen_features_do_not_extrapolate_from_head_steps():
    """A head on frozen features spends its training stage computing features before the first
    step: the share of steps done must not turn that into a huge estimate."""
    plan = {"loading": 0, "tokenizing": 0, "training": 20.0, "evaluating": 0.1, "general": 0.4}
    clock = Clock(plan, steps_s=0.5, steps_measure_training=False)
    clock.observe_training(19.0, 0.05)
    assert clock.speed == 1.0
    assert clock.left("training", 19.0) == pytest.approx(1.0 + 0.5)


# ---------------------------------------------------------------------------- one estimate per run

from core.estimate import (END_S, WORKER_START_S, RunEstimate, cached_rows, features_cached,  # noqa: E402
                           run_estimate)

TINY_INFO = {"n_train": 5000, "n_val": 200, "n_test": 2000, "sample": ("a few words about oil and wheat",) * 4}


def stored_run(**config):
    """A stand-in stored result: only its resolved config matters to features_cached."""
    return SimpleNamespace(config=RunConfig(**config).resolved().to_dict(), work={}, timings={}, cached=False)


def test_the_estimate_counts_the_announced_total_down_then_follows_the_run():
    est = RunEstimate(20.0)
    assert est.left(0.0) == pytest.approx(20.0)                      # at the start: what the Run bar said
    assert est.left(5.0) == pytest.approx(15.0)                      # counted down before the worker reports
    # the worker's own estimate (its exact work, its measured speed), counted down since it came, plus the
    # end of the run beyond its stages
    assert est.left(5.0, "training", eta_s=30.0, eta_age=2.0) == pytest.approx(28.0 + END_S)
    assert est.left(40.0, "general", eta_s=0.5, eta_age=0.0) == pytest.approx(0.5 + END_S)


def test_an_overrun_says_so_instead_of_about_one_second_left():
    est = RunEstimate(20.0)
    assert est.left(30.0) is None                                    # past the announced total
    assert est.left(30.0, "general", eta_s=2.0, eta_age=10.0) is None   # past the worker's last estimate
    assert est.left(30.0, "general", eta_s=2.0, eta_age=2.5) == pytest.approx(END_S)   # just at it: the end
    assert RunEstimate(None).left(3.0) is None


def test_the_card_compares_with_the_announced_total():
    assert RunEstimate(52.0).compare(96.2) == "announced 52 s (85 % longer)"
    assert RunEstimate(40.0).compare(30.0) == "announced 40 s (25 % shorter)"
    assert RunEstimate(0.0, cached="stored").compare(3.0) == ""
    assert RunEstimate(None).compare(3.0) == ""


def test_the_whole_run_is_in_the_announced_total_end_stages_included():
    cfg = RunConfig(task="r8", size=16, strategy="full", epochs=1, max_length=32, eval_size=50, general_size=50)
    stages = estimate_config(cfg, TINY_INFO)
    warm = run_estimate(cfg, TINY_INFO)
    assert warm.total_s == pytest.approx(stages + END_S, abs=0.1)
    assert warm.text() == f"about {round(warm.total_s)} s" and not warm.cached
    # evaluation and the general benchmark are priced: more of them, a longer run
    bigger = run_estimate(cfg.replace(eval_size=2000, general_size=500), TINY_INFO)
    assert bigger.total_s > warm.total_s + 5
    cold = run_estimate(cfg, TINY_INFO, worker_warm=False)
    assert cold.total_s == pytest.approx(warm.total_s + WORKER_START_S)


def test_a_stored_run_and_a_run_on_cached_features_are_announced_as_such():
    cfg = RunConfig(task="r8", size=256, strategy="feature-extraction", max_length=32, eval_size=50, general_size=50)
    stored = run_estimate(cfg, TINY_INFO, stored=True)
    assert stored.cached == "stored" and stored.total_s == 0.0 and "stored" in stored.text()
    cold = run_estimate(cfg, TINY_INFO)
    # an earlier run encoded the very same rows (another learning rate: the features do not depend on it)
    earlier = stored_run(task="r8", size=256, strategy="feature-extraction", max_length=32, eval_size=50,
                         general_size=50, lr=0.05)
    warm = run_estimate(cfg, TINY_INFO, stored_runs=[earlier])
    assert warm.cached == "features" and warm.text().startswith("features cached: about")
    assert warm.total_s < cold.total_s
    # other rows (another seed or size) or another layer: not cached; fine-tuning never reads cached features
    assert not features_cached(cfg.replace(seed=7), [earlier])
    assert not features_cached(cfg.replace(size=512), [earlier])
    assert not features_cached(cfg.replace(feature_layer=3), [earlier])
    assert not features_cached(cfg.replace(strategy="full"), [earlier])
    # another seed: its training rows are new, but the held-out rows (the same for every seed) are not
    reseeded = run_estimate(cfg.replace(seed=7), TINY_INFO, stored_runs=[earlier])
    assert cached_rows(cfg.replace(seed=7), [earlier]) == {"held_out"} and not reseeded.cached
    assert warm.total_s < reseeded.total_s < cold.total_s


def test_the_panel_reads_the_same_estimate_the_job_was_announced_with():
    import time

    from core.jobs import Job, time_left

    now = time.time()
    job = Job(id="job1", config=RunConfig(), owner="s", estimate_s=30.0, started_at=now - 10.0)
    assert time_left(job) == pytest.approx(20.0, abs=0.5)
    job.progress, job.progress_at = {"stage": "training", "eta_s": 12.0}, now - 2.0
    assert time_left(job) == pytest.approx(10.0 + END_S, abs=0.5)
    assert time_left(job, RunEstimate(30.0)) == pytest.approx(time_left(job), abs=0.5)
    job.progress_at = now - 20.0                                    # its last estimate long past: overrun
    assert time_left(job) is None


def test_fast_steps_do_not_shrink_the_stages_still_to_come():
    """Steps four times faster than planned shorten training, not the general benchmark after it."""
    plan = {"loading": 0, "tokenizing": 0, "training": 10.0, "evaluating": 4.0, "general": 6.0}
    clock = Clock(plan, steps_s=10.0)
    clock.observe_training(1.25, 0.5)              # half the steps in 1.25 s: speed 0.25
    assert clock.speed == pytest.approx(0.25)
    assert clock.left("training", 1.25) == pytest.approx(2.5 - 1.25 + 4.0 + 6.0)
    assert clock.left("general", 1.0) == pytest.approx(5.0)


def test_a_total_that_includes_the_workers_start_counts_from_the_click():
    import time

    from core.jobs import Job, time_left

    now = time.time()
    job = Job(id="job2", config=RunConfig(), owner="s", estimate_s=40.0, submitted_at=now - 15.0,
              started_at=now - 5.0)
    cold = RunEstimate(40.0, from_submit=True)
    assert cold.origin(job) == job.submitted_at and RunEstimate(40.0).origin(job) == job.started_at
    assert time_left(job, cold) == pytest.approx(25.0, abs=0.5)        # the worker's start was in the 40 s
    assert time_left(job) == pytest.approx(35.0, abs=0.5)


# ---------------------------------------------------------------------------- the first estimate on any host

def test_a_slower_machine_gets_slower_rates_in_proportion_to_its_measured_speed():
    """Training and in-domain rates follow the run's precision, the general benchmark's follow fp32;
    fixed costs stay; no measurement leaves the rates as they are."""
    from core.estimate import REFERENCE_SPEED, for_machine

    half = for_machine(REFERENCE_SPEED["train"] / 2, REFERENCE_SPEED["fp32"] / 4)
    assert half.step["full"] == pytest.approx(2 * DEFAULT_RATES.step["full"])
    assert half.forward == pytest.approx(2 * DEFAULT_RATES.forward)
    assert half.general == pytest.approx(4 * DEFAULT_RATES.general)
    assert half.fixed == DEFAULT_RATES.fixed and "scaled to this machine" in half.source
    assert for_machine(None, 100.0) is DEFAULT_RATES
    work = Work("full", step_tokens=10_000, test_tokens=5_000, general_sentences=800)
    slow, fast = predict(work, half), predict(work, DEFAULT_RATES)
    assert slow["training"] > fast["training"] and slow["general"] > fast["general"]
    assert slow["loading"] == fast["loading"]


def test_a_machines_speed_is_measured_on_its_first_runs_then_read_back(monkeypatch, tmp_path):
    """The best of the first three measurements (a first run beside a busy process measures too slow),
    then read from the cache; a damaged file is measured again, not an error."""
    import torch

    from core import machine

    monkeypatch.setenv("FTLAB_HOME", str(tmp_path))
    speeds = iter([50.0, 200.0, 150.0, 999.0, 80.0])
    monkeypatch.setattr(machine, "matmul_rate", lambda d, t: next(speeds))
    busy = iter([0.0] * 6)                                  # a quiet machine: every measurement is kept
    monkeypatch.setattr(machine, "others_busy_while", lambda measure: (measure(), next(busy)))
    cpu = torch.device("cpu")
    assert [machine.speed(cpu, None) for _ in range(5)] == [50.0, 200.0, 200.0, 200.0, 200.0]
    (tmp_path / "cache" / machine.SPEEDS_FILE).write_text("not json")
    assert machine.speed(cpu, None) == 999.0


def test_a_speed_measured_beside_a_busy_process_serves_its_run_and_is_not_kept(monkeypatch, tmp_path):
    """A warm worker measuring while the page draws (or another run trains) sees a slow machine: that
    figure would make every later estimate too long, so it is not kept."""
    import json

    import torch

    from core import machine

    monkeypatch.setenv("FTLAB_HOME", str(tmp_path))
    speeds, busy = iter([60.0, 210.0]), iter([1.2, 0.1])    # one core taken by another process, then quiet
    monkeypatch.setattr(machine, "matmul_rate", lambda d, t: next(speeds))
    monkeypatch.setattr(machine, "others_busy_while", lambda measure: (measure(), next(busy)))
    cpu = torch.device("cpu")
    assert machine.speed(cpu, None) == 60.0 and not (tmp_path / "cache" / machine.SPEEDS_FILE).exists()
    assert machine.speed(cpu, None) == 210.0
    assert list(json.loads((tmp_path / "cache" / machine.SPEEDS_FILE).read_text()).values()) == [[210.0]]


def test_the_cores_others_keep_busy_are_read_around_a_measurement():
    """While this process sleeps, a child spinning on a core is counted; the value measured comes back."""
    import subprocess
    import sys
    import time

    from core import machine

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)                                   # the child is spinning before the look
        value, others = machine.others_busy_while(lambda: time.sleep(1.0) or "measured")
    finally:
        spinner.kill()
        spinner.wait()
    assert value == "measured" and others > machine.QUIET_CORES


def test_the_matmul_rate_is_a_plausible_number_of_gflops():
    import torch

    from core.machine import matmul_rate

    torch.manual_seed(7)
    state = torch.get_rng_state()
    assert 1.0 < matmul_rate(torch.device("cpu"), None) < 1e5
    # the run has seeded the global generator before it measures: a first run on a machine (measured)
    # and a later one (read from the cache) must train from the same random numbers
    assert torch.equal(torch.get_rng_state(), state)


def test_the_apps_first_estimate_is_scaled_by_the_speeds_this_host_measured(tmp_path, monkeypatch):
    """Before any run is stored, the page's rates are the reference ones moved to this host by the speeds
    its warm worker kept (read without torch); another CPU's speeds, or none, leave them as they are."""
    import json

    from core import estimate

    monkeypatch.setattr(estimate, "cache_dir", lambda: tmp_path)
    assert estimate.host_rates() == estimate.DEFAULT_RATES                    # nothing measured here yet
    cpu = estimate.cpu_name()
    (tmp_path / estimate.SPEEDS_FILE).write_text(json.dumps({
        f"{cpu}|2 threads|torch 2.13.0|cpu|bfloat16": [180.0, 207.5], f"{cpu}|2 threads|torch 2.13.0|cpu|fp32": [101.0],
        "another CPU|2 threads|torch 2.13.0|cpu|fp32": [999.0]}))
    here = estimate.host_rates()
    assert here == estimate.for_machine(207.5, 101.0)
    ref = estimate.REFERENCE_SPEED
    assert here.step["full"] == pytest.approx(estimate.DEFAULT_RATES.step["full"] * ref["train"] / 207.5)
    assert here.general == pytest.approx(estimate.DEFAULT_RATES.general * ref["fp32"] / 101.0)
