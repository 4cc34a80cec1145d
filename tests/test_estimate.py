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
