"""What every strategy is: a small description plus one function that adapts the classifier.

`adapt(model, cfg)` changes `model` in place (freezes, wraps, injects adapters) and returns the
optimiser's parameter groups. A new strategy is one new module with one `STRATEGY` in it,
listed in strategies/__init__.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


@dataclass(frozen=True)
class Strategy:
    name: str
    title: str
    summary: str                    # one line for the UI and `python -m core list`
    defaults: dict                  # values for RunConfig fields left at None
    uses: tuple[str, ...]           # RunConfig fields that change what it trains
    trains_encoder: bool            # False: the head trains on cached frozen features
    adapt: Callable                 # (EncoderClassifier, RunConfig) -> optimiser param groups
    aliases: tuple[str, ...] = ()


def decay_groups(named_params, lr: float, weight_decay: float) -> list[dict]:
    """Two groups: weights with weight decay, biases and norms without."""
    decay, no_decay = [], []
    for name, p in named_params:
        if p.requires_grad:
            (no_decay if any(k in name for k in NO_DECAY) else decay).append(p)
    groups = [{"params": decay, "lr": lr, "weight_decay": weight_decay},
              {"params": no_decay, "lr": lr, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def freeze(module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


COMMON = ("head_lr", "epochs", "batch_size", "warmup", "weight_decay", "dropout")
