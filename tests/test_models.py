"""Encoders: the registry default offline, a local folder by path, a hub id offline, the device,
and the parameters each strategy trains."""
import pytest
import torch

from core.config import RunConfig
from core.models import (MODELS, EncoderClassifier, ModelError, count_params, encoder_layers, fresh_encoder,
                         load_base, model_identity, num_layers, pick_device)
from core.strategies import get_strategy

HIDDEN, LAYERS = 384, 6


def test_registry_default_loads_offline():
    tokenizer, encoder = load_base("minilm")
    assert "minilm" in MODELS
    assert encoder.config.hidden_size == HIDDEN and num_layers(encoder) == LAYERS
    assert not encoder.training
    ids = tokenizer(["a quick test"], return_tensors="pt")
    with torch.inference_mode():
        out = encoder(**ids).last_hidden_state
    assert out.shape[-1] == HIDDEN and torch.isfinite(out).all()
    assert model_identity("minilm").startswith("minilm@") and len(model_identity("minilm")) > len("minilm@")


def test_local_folder_loads_by_path(tmp_path):
    tokenizer, encoder = load_base("minilm")
    folder = tmp_path / "my-encoder"
    encoder.save_pretrained(folder)           # safetensors is the only format transformers 5 writes
    tokenizer.save_pretrained(folder)
    assert (folder / "model.safetensors").exists()
    tok2, enc2 = load_base(str(folder))
    assert enc2 is not encoder and num_layers(enc2) == LAYERS
    ref = encoder.state_dict()
    for name, value in enc2.state_dict().items():
        assert torch.equal(value, ref[name]), name
    assert tok2("hello world")["input_ids"] == tokenizer("hello world")["input_ids"]
    assert model_identity(str(folder)).startswith(str(folder) + "@")


def test_local_folder_without_a_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError) as err:
        load_base(str(tmp_path))
    msg = str(err.value)
    assert msg.startswith(f"could not load model '{tmp_path}'")


def test_hub_id_offline_is_a_one_line_model_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as err:
        load_base("some-org/bert-that-is-not-here")
    msg = str(err.value)
    assert "\n" not in msg
    assert "'some-org/bert-that-is-not-here'" in msg and "offline" in msg and "minilm" in msg


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("an accelerator is present: 'auto' rightly picks it")
    assert pick_device("auto") == torch.device("cpu")
    with pytest.raises(ModelError, match="no CUDA GPU"):
        pick_device("cuda")


# ---------------------------------------------------------------------------- what each strategy trains


def adapted(strategy: str, num_labels: int = 8, **changes):
    cfg = RunConfig(strategy=strategy, **changes).resolved()
    _, encoder = fresh_encoder("minilm")
    model = EncoderClassifier(encoder, num_labels, cfg.feature_layer, cfg.pooling, cfg.dropout or 0.0)
    groups = get_strategy(strategy).adapt(model, cfg)
    return model, groups, cfg


HEAD = HIDDEN * 8 + 8


def test_fresh_encoder_is_a_private_trainable_copy():
    _, base = load_base("minilm")
    _, enc = fresh_encoder("minilm")
    assert enc is not base
    assert all(p.requires_grad for p in enc.parameters())
    p_base, p_new = next(base.parameters()), next(enc.parameters())
    assert p_base.data_ptr() != p_new.data_ptr() and torch.equal(p_base, p_new)


def test_trainable_params_feature_extraction_is_the_head_only():
    # adapt freezes the encoder it is given (in a run: the shared base); this one is a private copy
    model, groups, _ = adapted("feature-extraction")
    assert count_params(model) == HEAD == sum(p.numel() for g in groups for p in g["params"])


def test_trainable_params_lora_r8_query_value():
    model, groups, cfg = adapted("lora")
    assert cfg.lora_r == 8 and cfg.lora_targets == ("query", "value")
    lora = LAYERS * 2 * (8 * HIDDEN * 2)          # A (r x in) + B (out x r) per targeted projection
    assert count_params(model) == lora + HEAD
    assert sum(p.numel() for g in groups for p in g["params"]) == lora + HEAD
    name_of = {id(p): n for n, p in model.named_parameters()}
    for g in groups:
        for p in g["params"]:
            name = name_of[id(p)]
            assert ("lora_" in name) != ("head" in name), name       # adapters and the head, nothing else
            assert g["lr"] == (cfg.head_lr if "head" in name else cfg.lr), name


def test_trainable_params_bitfit_is_biases_plus_head():
    _, encoder = load_base("minilm")
    biases = sum(p.numel() for name, p in encoder.named_parameters() if name.endswith("bias"))
    model, groups, _ = adapted("bitfit")
    assert count_params(model) == biases + HEAD
    assert all(name.endswith("bias") for name, p in model.encoder.named_parameters() if p.requires_grad)


def test_trainable_params_full_is_everything():
    model, groups, _ = adapted("full")
    total = count_params(model, trainable_only=False)
    assert count_params(model) == total
    assert sum(p.numel() for g in groups for p in g["params"]) == total      # every weight is optimised
    assert 22_000_000 < total < 23_000_000


@pytest.mark.parametrize("k", [2, 6])
def test_freezing_layers_removes_embeddings_and_the_bottom_blocks(k):
    full_model, _, _ = adapted("full")
    model, groups, _ = adapted("full", freeze_layers=k)
    layers = encoder_layers(model.encoder)
    frozen = count_params(model.encoder.embeddings, False) + sum(count_params(b, False) for b in list(layers)[:k])
    assert count_params(model) == count_params(full_model) - frozen
    assert not any(p.requires_grad for b in list(layers)[:k] for p in b.parameters())
    assert all(p.requires_grad for b in list(layers)[k:] for p in b.parameters())
    optimised = {id(p) for g in groups for p in g["params"]}
    assert not optimised & {id(p) for p in model.encoder.embeddings.parameters()}


def test_layer_wise_lr_decay_gives_each_block_its_rate():
    lr, decay = 1e-4, 0.5
    model, groups, cfg = adapted("full", lr=lr, layer_lr_decay=decay)
    rate = {id(p): g["lr"] for g in groups for p in g["params"]}
    layers = encoder_layers(model.encoder)
    for depth, block in enumerate(layers, start=1):
        for p in block.parameters():
            assert rate[id(p)] == pytest.approx(lr * decay ** (LAYERS - depth))
    for p in model.encoder.embeddings.parameters():
        assert rate[id(p)] == pytest.approx(lr * decay ** LAYERS)
    for p in model.head.parameters():
        assert rate[id(p)] == cfg.head_lr
    # and no decay: every encoder weight at the same rate
    model, groups, _ = adapted("full", lr=lr)
    head = {id(p) for p in model.head.parameters()}
    assert {g["lr"] for g in groups if not any(id(p) in head for p in g["params"])} == {lr}


def test_weight_decay_skips_biases_and_norms():
    model, groups, cfg = adapted("full")
    decay_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    for name, p in model.named_parameters():
        expected = 0.0 if (name.endswith("bias") or "LayerNorm" in name) else cfg.weight_decay
        assert decay_of[id(p)] == expected, name


def test_loading_a_registry_model_does_not_turn_the_hub_off_for_the_process(monkeypatch):
    """Workers inherit the server's environment: loading the embedded model must not leave
    HF_HUB_OFFLINE=1 behind for them."""
    import os

    from core.models import load_base

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    load_base.cache_clear()
    try:
        load_base("minilm")
        assert "HF_HUB_OFFLINE" not in os.environ
    finally:
        load_base.cache_clear()


def test_a_lower_layer_is_read_through_a_view_that_leaves_the_shared_encoder_whole():
    """feature_layer = 2 on the shared pre-trained encoder: a shallow view with two blocks that shares
    every weight; the encoder itself keeps its six blocks, during the call too."""
    from core.models import encoder_layers, load_base, only_bottom_layers

    _, base = load_base("minilm")
    with only_bottom_layers(base, 2) as lower:
        assert len(encoder_layers(lower)) == 2 and len(encoder_layers(base)) == 6
        assert lower.embeddings is base.embeddings and encoder_layers(lower)[1] is encoder_layers(base)[1]
    assert len(encoder_layers(base)) == 6
    with only_bottom_layers(base, None) as whole:
        assert whole is base
