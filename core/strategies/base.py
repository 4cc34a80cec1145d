"""What every strategy is: its knobs, plus the hooks that turn a classifier into the adapted one.

A strategy is one module with one `STRATEGY` in it, listed in strategies/__init__.py (the shape of
Hugging Face PEFT: a small description of the method's own knobs plus the functions that apply it).

Hooks, called by core.training in this order (only `adapt` is required):

    adapt(model, cfg) -> param groups      which parameters train, and at what rate; it may freeze,
                                           wrap or inject adapters into `model` in place
    head_phase(cfg) -> epochs              a head-only phase first (the encoder frozen), then adapt
    init_head(model, label_names, embed, cfg)  set the head before training; embed(texts) gives the
                                           frozen encoder's features (zero-shot: of label names)
    penalty(model, reference, cfg)         after each backward: add the gradient of an extra loss
                                           term (L2-SP: a pull toward the pre-trained weights)
    finish(model, reference, tuned, a)     after training, before any evaluation: edit the weights at
                                           strength a (WiSE-FT: interpolate toward the pre-trained ones);
                                           `strength(cfg)` is the run's own a, `curve` the others scored

`reference` is the pre-trained encoder the run started from (never trained). A knob is a field
of RunConfig; the strategy declares which ones it reads, with their range and meaning, and the
config's validation, the CLI's flags, the Lab's widgets and the URL are all made from that.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


@dataclass(frozen=True)
class Knob:
    name: str                       # the RunConfig field it sets
    label: str                      # what the Lab's widget and the messages call it
    help: str                       # one line: what it changes
    low: float | None = None        # inclusive bounds for numbers (None: unbounded)
    high: float | None = None
    low_open: bool = False          # True: the bound itself is not allowed (a learning rate > 0)
    high_open: bool = False
    choices: tuple = ()             # for a tuple of names: the names allowed
    step: float | None = None       # the Lab's number box step

    def describe_range(self) -> str:
        if self.choices:
            return "a comma-separated subset of " + ",".join(self.choices)
        if self.low is None and self.high is None:
            return ""
        lo = "" if self.low is None else ("(" if self.low_open else "[") + f"{self.low:g}"
        hi = "" if self.high is None else f"{self.high:g}" + (")" if self.high_open else "]")
        if self.high is None:
            return (">" if self.low_open else ">=") + f" {self.low:g}"
        if self.low is None:
            return ("<" if self.high_open else "<=") + f" {self.high:g}"
        return f"{lo}, {hi}"

    def problem(self, value) -> str | None:
        """Why `value` is not allowed, or None. None values (the strategy's default) are fine."""
        if value is None:
            return None
        if self.choices:
            bad = [v for v in value if v not in self.choices]
            if not value:
                return f"{self.label}: at least one is needed, from {', '.join(self.choices)}"
            return f"{self.label} must be among {', '.join(self.choices)} (got {', '.join(bad)})" if bad else None
        if isinstance(value, bool):
            return None
        ok_low = self.low is None or (value > self.low if self.low_open else value >= self.low)
        ok_high = self.high is None or (value < self.high if self.high_open else value <= self.high)
        if ok_low and ok_high:
            return None
        return f"{self.label} must be in {self.describe_range()} (got {value})"


# The knobs every trained strategy reads (feature extraction and zero-shot use fewer).
LR = Knob("lr", "learning rate", "encoder learning rate (LoRA: the adapters' rate)", 0, 1, low_open=True, high_open=True, step=1e-5)
HEAD_LR = Knob("head_lr", "head learning rate", "learning rate of the new classification head", 0, 10, low_open=True, high_open=True,
               step=1e-3)
EPOCHS = Knob("epochs", "epochs", "passes over the training sample", 1, 1000, step=1)
BATCH_SIZE = Knob("batch_size", "batch size", "examples per optimiser step", 1, 4096, step=1)
WARMUP = Knob("warmup", "warmup", "share of the steps with a linear warm-up (then linear decay)", 0, 1, high_open=True,
              step=0.05)
WEIGHT_DECAY = Knob("weight_decay", "weight decay", "AdamW weight decay (toward zero)", 0, 1, high_open=True, step=0.01)
DROPOUT = Knob("dropout", "dropout", "dropout on the pooled features, before the head", 0, 1, high_open=True, step=0.05)
BEST_EPOCH = Knob("best_epoch", "keep the best epoch", "keep the weights of the epoch with the best validation accuracy (true/false)")
COMMON = (HEAD_LR, EPOCHS, BATCH_SIZE, WARMUP, WEIGHT_DECAY, DROPOUT, BEST_EPOCH)


@dataclass(frozen=True)
class Strategy:
    name: str
    title: str
    summary: str                    # one line for the UI and `python -m core list`
    colour: str                     # its points and lines in every plot (a distinct hex colour)
    defaults: dict                  # values for RunConfig fields left at None
    knobs: tuple[Knob, ...]         # the RunConfig fields it reads beyond the run's setup
    adapt: Callable                 # (EncoderClassifier, RunConfig) -> optimiser param groups
    trains_encoder: bool = True     # False: the encoder stays pre-trained (its features can be cached)
    head_phase: Callable | None = None
    init_head: Callable | None = None
    penalty: Callable | None = None
    finish: Callable | None = None
    strength: Callable | None = None  # (cfg) -> the finish() strength the run reports
    curve: tuple[float, ...] = ()   # finish() strengths also scored after training (WiSE-FT's curve)
    aliases: tuple[str, ...] = ()

    def head_epochs(self, cfg) -> int:
        return self.head_phase(cfg) if self.head_phase else 0

    def finish_points(self, cfg) -> list:
        """The finish() strengths scored after training: [None] (no finish step), or the curve with
        the run's own strength among them."""
        if self.finish is None:
            return [None]
        return sorted(set(self.curve) | {self.strength(cfg)})

    @property
    def uses(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.knobs)

    def knob(self, name: str) -> Knob | None:
        return next((k for k in self.knobs if k.name == name), None)


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


def head_groups(model, cfg) -> list[dict]:
    """The head alone, at its own rate: feature extraction, and LP-FT's first phase."""
    return decay_groups(model.head.named_parameters(), cfg.head_lr, cfg.weight_decay)
