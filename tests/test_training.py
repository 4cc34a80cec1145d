"""Small end-to-end runs: what each strategy really changes, caching, determinism, stopping, errors.

The expensive runs are session fixtures, each shared by several tests.
"""
import contextlib

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT, TINY, capture_models, write_csv
from core import training
from core.config import ConfigError, RunConfig
from core.data import DataError
from core.models import EncoderClassifier, ModelError, encoder_layers, load_base, model_path
from core.store import RunStore
from core.training import RunStopped, run

HIDDEN, LAYERS, R8_LABELS = 384, 6, 8
R8_HEAD = HIDDEN * R8_LABELS + R8_LABELS


@pytest.fixture(scope="session")
def pretrained():
    """The default model's weights as they are on disk (not the cached, shared copy)."""
    return load_file(f"{model_path('minilm')}/model.safetensors")


def weight(state: dict, name: str) -> torch.Tensor:
    """A pre-trained tensor by the encoder's own parameter name (the file may carry a 'bert.' prefix)."""
    return state[name] if name in state else state[f"bert.{name}"]


@pytest.fixture(scope="session")
def fe_store(tmp_path_factory):
    return RunStore(tmp_path_factory.mktemp("fe") / "runs.sqlite")


@pytest.fixture(scope="session")
def fe_run(fe_store):
    cfg = RunConfig(**{**TINY, "epochs": 3}, strategy="feature-extraction")
    events = []
    return cfg, run(cfg, on_progress=events.append, store=fe_store), events


def csv_config(path, **changes):
    """TINY on the small own-data CSV (2 labels, 4 validation and 16 test texts: cheaper than R8's)."""
    return RunConfig(**{**TINY, "task": f"csv:{path}", **changes})


@pytest.fixture(scope="session")
def full_runs(small_csv):
    """The same full fine-tuning config twice, without a store, with the trained models."""
    cfg = csv_config(small_csv, strategy="full")
    with capture_models() as made:
        results = run(cfg), run(cfg)
    assert len(made) == 2
    return cfg, results, made


@pytest.fixture(scope="session")
def lora_run(small_csv):
    with capture_models() as made:
        result = run(csv_config(small_csv, strategy="lora"))
    return result, made[0]


# ---------------------------------------------------------------------------- what each strategy changes


def test_feature_extraction_leaves_the_general_score_exactly_unchanged(fe_run):
    _, r, _ = fe_run
    assert r.general == r.pretrained_general             # score, refit score, stderr and every task
    assert set(r.general["per_task"]) == {"20ng", "cr", "trec6", "rt"}
    for name, v in r.general["per_task"].items():
        assert v == r.pretrained_general["per_task"][name]
        assert v["n_test"] == 50 and 0.3 < v["fixed"] <= 1.0
    assert r.general_delta == 0.0 and r.general_delta_refit == 0.0
    assert r.trainable_params == R8_HEAD


def test_full_fine_tuning_changes_the_encoder_weights(full_runs, pretrained):
    _, (r, _), (model, _) = full_runs
    assert r.trainable_params == r.total_params
    for i, block in enumerate(encoder_layers(model.encoder)):
        for name, p in block.named_parameters():
            assert not torch.equal(p.detach(), weight(pretrained, f"encoder.layer.{i}.{name}")), (i, name)


def test_no_run_modifies_the_shared_pretrained_encoder(fe_run, full_runs, lora_run, pretrained):
    _, base = load_base("minilm")
    for name, p in base.state_dict().items():
        if name in pretrained or f"bert.{name}" in pretrained:
            assert torch.equal(p, weight(pretrained, name)), name


def test_the_shared_encoder_stays_frozen_whole_and_on_the_cpu_after_every_kind_of_run(fe_run, full_runs, lora_run):
    """Nothing a run does is left on the cached pre-trained encoder: not a flag, a block or a device."""
    _, base = load_base("minilm")
    assert not any(p.requires_grad for p in base.parameters())        # frozen at load; runs train copies
    assert len(encoder_layers(base)) == LAYERS and {p.device.type for p in base.parameters()} == {"cpu"}


def test_a_frozen_feature_run_never_moves_the_shared_encoder(small_csv, monkeypatch):
    """Feature extraction and zero-shot classify with the shared encoder itself: moving their classifier
    (to the device, back to the CPU at the end) moves only the head; on a GPU, moving the shared one
    back to the CPU made every later run's weight distance fail on two devices."""
    import torch.nn as nn

    _, base = load_base("minilm")
    shared = {id(m) for m in base.modules()}
    touched, apply = [], nn.Module._apply
    monkeypatch.setattr(nn.Module, "_apply", lambda self, *a, **k: (touched.append(id(self)), apply(self, *a, **k))[1])
    for strategy in ("feature-extraction", "zero-shot"):
        run(csv_config(small_csv, strategy=strategy, seed=31))
    assert touched and not shared & set(touched)          # heads were moved, nothing of the shared encoder


# A run's outcome, less what the clock and the process say (times, when, the library versions).
NOT_OUTCOME = ("timings", "created_at", "estimate", "versions", "cached")
ORDER_SCRIPT = """
import json, sys
from core.config import RunConfig
from core.training import run
base = json.loads(sys.argv[1])
r = run(RunConfig(**{**base, "strategy": sys.argv[2]})).to_dict()
print(json.dumps({k: v for k, v in r.items() if k not in %r}))
""" % (NOT_OUTCOME,)


def test_a_run_gives_the_same_result_bit_for_bit_whatever_ran_before_it_in_its_process(fe_run, lora_run, full_runs):
    """Full fine-tuning in this process, after feature extraction, LoRA and whatever other tests ran,
    and alone in a fresh process: one outcome (in-domain predictions, every general sentence, curves,
    the weights' distance). An order-dependent first run came from a global random generator drawn by
    the machine-speed measurement (core.machine keeps its own now)."""
    import json
    import subprocess
    import sys
    from dataclasses import asdict

    cfg, (here, _), _ = full_runs
    done = subprocess.run([sys.executable, "-c", ORDER_SCRIPT, json.dumps(asdict(cfg)), "full"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    fresh = json.loads(done.stdout.strip().splitlines()[-1])
    assert fresh == json.loads(json.dumps({k: v for k, v in here.to_dict().items() if k not in NOT_OUTCOME}))


def test_lora_keeps_base_weights_and_trains_adapters_and_head(lora_run, pretrained):
    r, model = lora_run
    assert r.trainable_params == LAYERS * 2 * (8 * HIDDEN * 2) + HIDDEN * 2 + 2     # ham / spam head
    lora_b, compared = 0, 0
    for name, p in model.encoder.named_parameters():
        if "lora_" in name:
            if "lora_B" in name:           # B starts at zero: nonzero means the adapter learned
                lora_b += 1
                assert p.detach().abs().sum() > 0, name
            continue
        plain = name.replace(".base_layer", "")
        assert torch.equal(p.detach(), weight(pretrained, plain)), name
        compared += 1
    assert lora_b == LAYERS * 2 and compared > 90
    head = model.head                       # peft's modules_to_save wrapper around the new head
    trained, original = head.modules_to_save["default"], head.original_module
    assert all(p.requires_grad for p in trained.parameters())
    assert not torch.equal(trained.weight, original.weight)


# ---------------------------------------------------------------------------- results, curves, cache


def test_result_fields_are_sane(fe_run, full_runs):
    for r, n_eval, labels in ((fe_run[1], 50, R8_LABELS), (full_runs[1][0], 16, 2)):
        assert r.size == 16 and r.n_eval == n_eval and r.task == r.config["task"]
        assert 0 <= r.in_domain_acc <= 1 and 0 <= r.in_domain_f1 <= 1 and 0 <= r.train_acc <= 1
        assert 0 < r.majority_acc < 1 and 1 <= r.predicted_classes <= labels
        assert r.device == "cpu" and r.precision in ("bf16", "fp32")
        assert set(r.timings) >= {"loading", "tokenizing", "training", "evaluating", "general", "total"}
        assert r.config["strategy"] == r.strategy and r.config["epochs"] == len(r.curves)


def test_curves_have_one_point_per_epoch(fe_run, full_runs):
    for cfg, r in ((fe_run[0], fe_run[1]), (full_runs[0], full_runs[1][0])):
        assert len(r.curves) == cfg.epochs
        assert [c["epoch"] for c in r.curves] == list(range(1, cfg.epochs + 1))
        for c in r.curves:
            assert c["train_loss"] > 0 and 0 <= c["train_acc"] <= 1 and 0 <= c["val_acc"] <= 1


def test_progress_reaches_every_stage_in_order(fe_run):
    stages = [ev["stage"] for ev in fe_run[2]]
    assert [s for i, s in enumerate(stages) if i == 0 or s != stages[i - 1]] == list(training.STAGES)
    fractions = [ev["fraction"] for ev in fe_run[2]]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert len(fe_run[2][-1]["curves"]) == 3


def test_a_second_identical_run_comes_from_the_store(fe_run, fe_store):
    cfg, first, _ = fe_run
    assert not first.cached and fe_store.get(first.key).to_dict() == first.to_dict()
    events = []
    again = run(cfg, on_progress=events.append, store=fe_store)
    assert again.cached and again.key == first.key
    assert "training" not in {ev["stage"] for ev in events}          # nothing was trained again
    for field in ("in_domain_acc", "in_domain_f1", "train_acc", "general", "curves", "trainable_params"):
        assert getattr(again, field) == getattr(first, field), field
    # an equivalent config (alias, unused field set) is the same run
    assert run(cfg.replace(strategy="fe", lr=0.5), store=fe_store).key == first.key
    assert len(fe_store.list()) == 1


def test_same_config_and_seed_give_identical_results(full_runs):
    _, (a, b), (ma, mb) = full_runs
    assert not a.cached and not b.cached and a.key == b.key
    for field in ("in_domain_acc", "in_domain_f1", "train_acc", "general", "curves", "predicted_classes"):
        assert getattr(a, field) == getattr(b, field), field
    sa, sb = ma.state_dict(), mb.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------------------- stopping and errors


@pytest.mark.parametrize("strategy", ["full", "feature-extraction"])
def test_should_stop_is_honoured_during_training(strategy, store):
    seen = []
    cfg = RunConfig(**{**TINY, "seed": 11}, strategy=strategy)   # a seed no other test ran: nothing cached
    with pytest.raises(RunStopped):
        run(cfg, on_progress=lambda ev: seen.append(ev["stage"]), should_stop=lambda: "training" in seen,
            store=store)
    assert "training" in seen and "evaluating" not in seen and "general" not in seen
    assert store.list() == []                                       # a stopped run stores nothing


@pytest.mark.parametrize("change, error, words", [
    (dict(size=0), ConfigError, "size must be a positive number"),
    (dict(size=10 ** 6), ConfigError, "size 1,000,000 is more than the task's"),
    (dict(task="no-such-task"), DataError, "unknown task 'no-such-task'"),
    (dict(model="no-such-org/no-such-model"), ModelError, "not in the registry"),
    (dict(strategy="adapters"), ConfigError, "unknown strategy 'adapters'"),
    (dict(lr=2.0), ConfigError, "learning rate must be in (0, 1)"),
    (dict(feature_layer=7), ConfigError, "feature layer must be between 1 and 6"),
    (dict(feature_layer=0), ConfigError, "feature layer must be between 1 and 6"),
    (dict(freeze_layers=7), ConfigError, "cannot freeze 7"),
])
def test_bad_values_fail_clearly_before_training(change, error, words, store, tiny):
    seen = []
    with pytest.raises(error) as err:
        run(tiny.replace(**change), on_progress=lambda ev: seen.append(ev["stage"]), store=store)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert "training" not in seen and store.list() == []


# ---------------------------------------------------------------------------- the majority-only warning


@contextlib.contextmanager
def constant_head(label: int):
    """Runs whose new head starts by predicting `label` for every text (zero weights, one big bias)."""
    class Constant(EncoderClassifier):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            with torch.no_grad():
                self.head.weight.zero_()
                self.head.bias.fill_(-5.0)
                self.head.bias[label] = 5.0

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "EncoderClassifier", Constant)
        yield


def constant_config(path):
    return csv_config(path, strategy="feature-extraction", head_lr=1e-6)     # the head barely moves


def test_a_model_predicting_one_class_is_warned_about(small_csv):
    with constant_head(0):
        r = run(constant_config(small_csv))
    assert r.predicted_classes == 1
    assert r.in_domain_acc == r.majority_acc == 0.5       # the test rows are 8 ham, 8 spam; ham is label 0
    assert len(r.warnings) == 1 and "single class" in r.warnings[0]


def test_no_warning_when_the_test_set_itself_has_one_label(tmp_path):
    path = write_csv(tmp_path / "ham_only_test.csv", test_labels={"ham"})
    with constant_head(0):
        r = run(constant_config(path))
    assert r.predicted_classes == 1 and r.in_domain_acc == r.majority_acc == 1.0
    assert r.warnings == []


def test_no_warning_for_a_model_that_predicts_several_classes(fe_run):
    r = fe_run[1]
    assert r.predicted_classes > 1 and r.warnings == []


def test_cpu_kernels_serve_the_in_domain_predictions_but_not_the_general_benchmark(small_csv, monkeypatch):
    """The lab's CPU attention runs training and the in-domain predictions; the general benchmark
    compares with a pre-trained reference computed by transformers' SDPA, so it gets SDPA too."""
    from core import benchmark, kernels

    seen = []
    predict, score = training.predict, benchmark.GeneralBenchmark.score

    def spy_predict(model, *a, **kw):
        seen.append(("predict", model.encoder.config._attn_implementation))
        return predict(model, *a, **kw)

    def spy_score(self, encoder, *a, **kw):
        seen.append(("general", encoder.config._attn_implementation))
        return score(self, encoder, *a, **kw)

    monkeypatch.setattr(training, "predict", spy_predict)
    monkeypatch.setattr(benchmark.GeneralBenchmark, "score", spy_score)
    run(csv_config(small_csv, strategy="full", epochs=1, device="cpu"))
    assert [s for s in seen if s[0] == "predict"] == [("predict", kernels.ATTENTION)] * 3   # val, train, test
    assert seen[-1] == ("general", "sdpa")
