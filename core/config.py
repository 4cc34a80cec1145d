"""RunConfig: the single description of a run.

Every knob a user can turn is a plain field here. A field left at None takes the
strategy's default when the config is resolved; fields a strategy does not use are
cleared, so two configs that would train the same thing hash to the same key.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, fields


from .errors import ConfigError  # noqa: F401  (re-exported: core.config.ConfigError)
from .strategies import get_strategy, KNOBS
from .benchmark import settings


@dataclass
class RunConfig:
    task: str = "r8"
    size: int | None = 256          # training examples; None = all the task has
    strategy: str = "full"
    model: str = "minilm"
    seed: int = 0
    # optimisation (None = the strategy's default)
    lr: float | None = None         # encoder learning rate (LoRA: adapter rate)
    head_lr: float | None = None    # the new classification head gets a rate of its own
    epochs: int | None = None
    batch_size: int | None = None
    max_length: int = 128
    warmup: float = 0.1             # fraction of steps with linear warm-up, then linear decay
    weight_decay: float = 0.01
    dropout: float | None = None    # dropout before the head (None = the strategy's default)
    # what the head reads
    feature_layer: int | None = None  # 1..num_layers, None = the last
    pooling: str = "mean"           # "mean" (how MiniLM was trained) or "cls"
    # full fine-tuning
    freeze_layers: int = 0          # bottom encoder layers (and embeddings) kept frozen
    layer_lr_decay: float = 1.0     # lr of layer l = lr * decay ** (num_layers - l)
    # LoRA
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = ("query", "value")
    # remedies for forgetting (their meaning and range: the strategy modules that read them)
    best_epoch: bool = False        # keep the weights of the best validation epoch (any trained strategy)
    lp_epochs: int | None = None    # LP-FT: head-only epochs first
    l2sp_alpha: float | None = None  # L2-SP: pull toward the pre-trained weights
    wise_alpha: float | None = None  # WiSE-FT: 0 = pre-trained encoder, 1 = fine-tuned
    # evaluation
    eval_size: int | None = 2000    # in-domain test examples (seeded subset); None = whole test split
    eval_split: str = "test"        # "test" for every reported figure; "validation" to choose defaults on
    general_size: int = 1000        # general benchmark: probe-train and probe-test sentences per task
    device: str = "auto"            # auto | cpu | cuda | mps
    precision: str = "auto"         # auto (bf16 where supported) | bf16 | fp32

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["lora_targets"] = list(self.lora_targets) if self.lora_targets is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        d = dict(d)
        if d.get("lora_targets") is not None:
            targets = d["lora_targets"]
            if isinstance(targets, str):
                targets = [t.strip() for t in targets.split(",") if t.strip()]
            d["lora_targets"] = tuple(targets)
        return cls(**d)

    def resolved(self) -> "RunConfig":
        """Fill strategy defaults, clear fields the strategy ignores, and validate."""
        try:
            strat = get_strategy(self.strategy)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        values = self.to_dict()
        values["strategy"] = strat.name
        for name, default in strat.defaults.items():
            if values.get(name) is None:
                values[name] = default
        for name in strategy_fields() - set(strat.uses):
            values[name] = None
        cfg = RunConfig.from_dict(values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """The run's setup here; every strategy knob by the range its strategy module declares."""
        def need(ok: bool, msg: str):
            if not ok:
                raise ConfigError(msg)

        need(self.size is None or (isinstance(self.size, int) and self.size >= 1),
             f"size must be a positive number of training examples (got {self.size})")
        need(isinstance(self.seed, int) and self.seed >= 0, f"seed must be a non-negative integer (got {self.seed})")
        need(8 <= self.max_length <= 512, f"max length must be between 8 and 512 tokens (got {self.max_length})")
        need(self.pooling in ("mean", "cls"), f"pooling must be 'mean' or 'cls' (got {self.pooling!r})")
        for knob in KNOBS.values():
            problem = knob.problem(getattr(self, knob.name))
            need(problem is None, problem or "")
        need(self.eval_size is None or self.eval_size >= 10, f"eval size must be at least 10 (got {self.eval_size})")
        need(self.eval_split in ("test", "validation"),
             f"eval split must be 'test' or 'validation' (got {self.eval_split!r})")
        need(50 <= self.general_size <= 5000,
             f"general benchmark size must be between 50 and 5000 sentences per task (got {self.general_size})")
        need(self.device in ("auto", "cpu", "cuda", "mps"), f"device must be auto, cpu, cuda or mps (got {self.device!r})")
        need(self.precision in ("auto", "bf16", "fp32"), f"precision must be auto, bf16 or fp32 (got {self.precision!r})")

    def key(self, model_identity: str, data_identity: str) -> str:
        """Stable hash of the whole resolved config plus what the model and data really are."""
        payload = {"config": self.to_dict(), "model": model_identity, "data": data_identity, "v": RESULT_VERSION,
                   "benchmark": settings()}
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def training_key(self, model_identity: str, data_identity: str) -> str:
        """The key of the training alone: equal for configs that differ only in what acts after
        training (WiSE-FT's mixing, the evaluation sizes), so their runs can share one set of weights."""
        after = {name: None for name in AFTER_TRAINING}
        return "train-" + self.replace(**after).key(model_identity, data_identity)


# Fields read only after training: changing them re-scores kept weights (core.weights), no retraining.
AFTER_TRAINING = ("wise_alpha", "eval_size", "eval_split", "general_size")

# Bump when a change to the training or evaluation code makes old stored results incomparable.
RESULT_VERSION = 6   # 2: CPU training kernels (core/kernels.py); 3: their attention dropout scaled exactly;
                     # 4: SFC64 dropout masks, bf16 attention scores, the in-domain predictions on the CPU kernels;
                     # 5: the remedies' knobs in the config, weight distance in the result;
                     # 6: the general benchmark's version 2 (core.benchmark), a validation split of
                     #    1,000 texts (the curves on 200 of them), eval_split
# The oldest version measured the way this code measures: results from COMPARABLE_SINCE on share a
# plot with new runs; older ones are listed only on request. Raise it with a change of measurement
# (5 changed only the config's and the result's shape, so 4's figures still compare; 6 changed the
# benchmark and the training pool, so nothing older does).
COMPARABLE_SINCE = 6

def strategy_fields() -> set[str]:
    """Fields that only some strategies read (their knobs); resolved() clears the others."""
    return set(KNOBS)


# Every field as text, the one way the CLI flags and the app's URL are read and written.
FIELD_TYPES = {f.name: f.type for f in fields(RunConfig)}
NONE_WORDS = ("none", "all", "default", "")   # all of these mean None for an optional field


def parse_field(name: str, text: str):
    """'2e-5' -> 2e-05, 'all' -> None (optional fields), 'query,value' -> ('query', 'value')."""
    kind = FIELD_TYPES[name]
    optional = kind.endswith("| None")
    text = str(text).strip()
    if optional and text.lower() in NONE_WORDS:
        return None
    if kind.startswith("bool"):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}: want true or false (got {text!r})")
    if kind.startswith("int"):
        return int(text)
    if kind.startswith("float"):
        return float(text)
    if kind.startswith("tuple"):
        return tuple(t.strip() for t in text.split(",") if t.strip())
    return text


def format_field(name: str, value) -> str:
    if value is None:
        return "all" if name in ("size", "eval_size") else "none"
    if isinstance(value, (tuple, list)):
        return ",".join(value)
    if isinstance(value, float):
        return repr(value)          # the shortest text that reads back as the same float (":g" kept 6 digits)
    return str(value)
