"""RunConfig: strategy defaults, cleared fields, validation messages, stable keys, the lab's home."""
import os
from pathlib import Path

import pytest

from core.config import ConfigError, RunConfig, strategy_fields
from core.paths import lab_home
from core.strategies import STRATEGIES, get_strategy


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_resolved_fills_defaults_and_clears_unused_fields(name):
    strat = STRATEGIES[name]
    cfg = RunConfig(strategy=name, lr=None, epochs=None).resolved()
    for field_name, default in strat.defaults.items():
        assert getattr(cfg, field_name) == default, field_name
    for field_name in strategy_fields() - set(strat.uses):
        assert getattr(cfg, field_name) is None, f"{name} does not use {field_name}, it must be cleared"
    for field_name in set(strat.uses) - set(strat.defaults):
        assert getattr(cfg, field_name) == getattr(RunConfig(), field_name), field_name


def test_resolved_keeps_values_the_user_set():
    cfg = RunConfig(strategy="full", lr=1e-4, epochs=5, freeze_layers=2).resolved()
    assert (cfg.lr, cfg.epochs, cfg.freeze_layers) == (1e-4, 5, 2)
    assert cfg.head_lr == STRATEGIES["full"].defaults["head_lr"]


def test_strategy_aliases_resolve_to_the_canonical_name():
    assert RunConfig(strategy="fe").resolved().strategy == "feature-extraction"
    assert RunConfig(strategy="ft").resolved().strategy == "full"
    assert get_strategy("frozen").name == "feature-extraction"


def test_feature_extraction_ignores_encoder_only_fields():
    cfg = RunConfig(strategy="feature-extraction", lr=3e-5, freeze_layers=3, lora_r=4).resolved()
    assert cfg.lr is None and cfg.freeze_layers is None and cfg.lora_r is None and cfg.lora_targets is None


KEY_ARGS = ("minilm@abc", "r8@def")


def test_equal_configs_hash_equal():
    a = RunConfig(strategy="fe", lr=1e-3, lora_r=4).resolved()          # unused fields differ only
    b = RunConfig(strategy="feature-extraction").resolved()
    assert a == b
    assert a.key(*KEY_ARGS) == b.key(*KEY_ARGS)
    # an explicit value equal to the strategy default is the same run as leaving it unset
    from core.strategies import full

    assert (RunConfig(strategy="full", lr=full.DEFAULTS["lr"]).resolved().key(*KEY_ARGS)
            == RunConfig(strategy="full").resolved().key(*KEY_ARGS))


@pytest.mark.parametrize("change", [dict(seed=1), dict(size=32), dict(lr=2e-5), dict(strategy="lora"),
                                    dict(task="rt"), dict(max_length=64), dict(freeze_layers=1)])
def test_different_configs_hash_differently(change):
    base = RunConfig(strategy="full").resolved()
    assert base.key(*KEY_ARGS) != RunConfig(strategy="full").replace(**change).resolved().key(*KEY_ARGS)


def test_key_depends_on_model_and_data_identity():
    cfg = RunConfig().resolved()
    assert cfg.key("minilm@a", "r8@x") != cfg.key("minilm@b", "r8@x")
    assert cfg.key("minilm@a", "r8@x") != cfg.key("minilm@a", "r8@y")
    assert len(cfg.key(*KEY_ARGS)) == 16


def test_default_config_is_valid():
    RunConfig().resolved()


@pytest.mark.parametrize("change, words", [
    (dict(size=0), "size"),
    (dict(size=-5), "size"),
    (dict(seed=-1), "seed"),
    (dict(lr=0.0), "learning rate"),
    (dict(lr=1.5), "learning rate"),
    (dict(head_lr=20.0), "head learning rate"),
    (dict(epochs=0), "epochs"),
    (dict(batch_size=0), "batch size"),
    (dict(max_length=4), "max length"),
    (dict(warmup=1.0), "warmup"),
    (dict(dropout=1.0), "dropout"),
    (dict(pooling="max"), "pooling"),
    (dict(freeze_layers=-1), "frozen layers"),
    (dict(layer_lr_decay=0.0), "layer-wise lr decay"),
    (dict(layer_lr_decay=1.5), "layer-wise lr decay"),
    (dict(strategy="lora", lora_r=0), "LoRA rank"),
    (dict(strategy="lora", lora_targets=()), "LoRA targets: at least one is needed"),
    (dict(eval_size=5), "eval size"),
    (dict(general_size=10), "general benchmark size"),
    (dict(device="tpu"), "device"),
    (dict(precision="fp16"), "precision"),
    (dict(strategy="prompt-tuning"), "unknown strategy"),
])
def test_bad_values_give_a_clear_config_error(change, words):
    with pytest.raises(ConfigError) as err:
        RunConfig(strategy="full").replace(**change).resolved()
    msg = str(err.value)
    assert words in msg and "\n" not in msg
    name, value = list(change.items())[-1]      # the offending value is the last one given
    if name == "strategy":
        assert "feature-extraction" in msg      # says what is known
    elif not isinstance(value, tuple):
        assert f"(got {value!r})" in msg        # says what it got


def test_from_dict_rejects_unknown_fields_and_reads_targets_from_text():
    with pytest.raises(ConfigError, match="unknown config field.*learning_rate"):
        RunConfig.from_dict({"learning_rate": 1e-3})
    cfg = RunConfig.from_dict({"strategy": "lora", "lora_targets": "query, key,value"})
    assert cfg.lora_targets == ("query", "key", "value")


def test_dict_round_trip():
    cfg = RunConfig(strategy="lora", lora_targets=("query", "dense"), size=None).resolved()
    again = RunConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.key(*KEY_ARGS) == cfg.key(*KEY_ARGS)


def test_lab_home_is_the_tests_own_folder():
    from core.store import default_path

    home = lab_home()
    assert home == Path(os.environ["FTLAB_HOME"])
    assert default_path().parent == home
    assert "ftlab" in str(home).lower() or os.environ.get("FTLAB_TEST_HOME")
