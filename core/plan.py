"""A run's plan: its configuration resolved, checked against its task and model, and keyed, once.

    p = plan(RunConfig(task="r8", size=256, strategy="lora"))   # ConfigError / DataError with the reason
    p.config, p.strategy, p.task, p.key

Every caller that needs to know whether a run can go, or under which key it is stored, asks here:
the CLI, the link parser, the Lab's Run bar, the job queue, the sweeps and Ray. No torch: the
model's depth is read from its config.json, so the app's server plans without loading a model.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .config import ConfigError, RunConfig
from .data import Task, load_task
from .model_registry import model_identity, model_layers
from .strategies import Strategy, get_strategy


@dataclass(frozen=True)
class RunPlan:
    config: RunConfig        # resolved: the strategy's defaults filled in, the fields it ignores cleared
    strategy: Strategy
    task: Task
    layers: int | None       # transformer blocks from the model's config.json; None: known once loaded

    @cached_property
    def model_id(self) -> str:
        """What the weights are (a registry name with its files' fingerprint). Read when a key is asked
        for, not when the run is checked: a model whose package is missing fails its run with that
        reason, and does not make every value of a link or the Run bar unusable."""
        return model_identity(self.config.model)

    @property
    def key(self) -> str:
        """The run store's key: the whole resolved config and what its model and data are."""
        return self.config.key(self.model_id, self.task.identity())

    @property
    def training_key(self) -> str:
        """The key of the training alone (configs that differ only in AFTER_TRAINING share weights)."""
        return self.config.training_key(self.model_id, self.task.identity())


def plan(config: RunConfig, as_written: bool = False) -> RunPlan:
    """The plan of `config`, or the first reason it cannot run (ConfigError; DataError for a task that
    cannot be read). `as_written`: also check the fields this strategy ignores, each in its own range
    (a link's value must fit whichever strategy is picked later: `strategy=lora&freeze_layers=40`
    would otherwise block Run once full is picked)."""
    cfg = config.resolved()                 # the strategy exists and every knob it uses is in range
    task = load_task(cfg.task)
    layers = model_layers(cfg.model)
    check_fits(config if as_written else cfg, len(task.train_texts), layers)
    if as_written:
        config.validate()
    return RunPlan(cfg, get_strategy(cfg.strategy), task, layers)


def check_fits(cfg: RunConfig, n_train: int, layers: int | None) -> None:
    """The one check of a run against its task and model: no more examples than the task has, no
    more layers than the model has. `layers` None skips the layer checks (a model not yet loaded)."""
    if cfg.size is not None and cfg.size > n_train:
        raise ConfigError(f"size {cfg.size:,} is more than the task's {n_train:,} training examples")
    if layers is not None and cfg.freeze_layers and cfg.freeze_layers > layers:
        raise ConfigError(f"this model has {layers} layers; cannot freeze {cfg.freeze_layers}")
    if layers is not None and cfg.feature_layer is not None and not 1 <= cfg.feature_layer <= layers:
        raise ConfigError(f"feature layer must be between 1 and {layers} for this model (got {cfg.feature_layer})")
