"""A sweep's grid: strategy arms x sizes x --grid values x seeds, as (label, RunConfig) pairs.

Shared by the CLI's `sweep` and the app's sweep panel; no torch here (the app's server imports it).
"""
from __future__ import annotations

import itertools

from .config import FIELD_TYPES, ConfigError, RunConfig, parse_field
from .strategies import canonical_name


def parse_grid(items: list[str]) -> dict:
    """['lr=2e-5,5e-5', 'epochs=3'] -> {'lr': [2e-5, 5e-5], 'epochs': [3]}"""
    grid = {}
    for item in items or []:
        name, _, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if name not in FIELD_TYPES or not values:
            raise ConfigError(f"--grid wants FIELD=v1,v2,... with a config field (got {item!r})")
        sep = ";" if name == "lora_targets" else ","      # targets are themselves comma-separated
        try:
            grid[name] = [parse_field(name, v) for v in values.split(sep)]
        except ValueError:
            raise ConfigError(f"--grid {name}: cannot read {values!r}") from None
    return grid


def parse_arm(text: str) -> tuple[str, dict]:
    """'l2-sp:l2sp_alpha=100:epochs=5' -> ('l2-sp', {'l2sp_alpha': 100.0, 'epochs': 5}): one strategy
    with settings of its own, so one sweep can hold several variants of a strategy side by side."""
    name, *items = text.split(":")
    overrides = {}
    for item in items:
        field_name, _, value = item.partition("=")
        field_name = field_name.strip().replace("-", "_")
        if field_name not in FIELD_TYPES or not value:
            raise ConfigError(f"--strategies {text!r}: want NAME[:FIELD=VALUE...] with config fields (got {item!r})")
        try:
            overrides[field_name] = parse_field(field_name, value)
        except ValueError:
            raise ConfigError(f"--strategies {text!r}: cannot read {item!r}") from None
    return name.strip(), overrides


def sweep_configs(base: RunConfig, sizes, strategies, seeds, grid: dict) -> list[tuple[str, RunConfig]]:
    """(arm label, config) for every strategy arm x size x grid combination x seed."""
    names = list(grid)
    configs = []
    for arm, size, combo, seed in itertools.product(strategies, sizes, itertools.product(*grid.values()), seeds):
        strategy, overrides = parse_arm(arm)
        try:
            label = ":".join([canonical_name(strategy)] + arm.split(":")[1:])     # aliases under their real name
        except ValueError as err:
            raise ConfigError(str(err)) from None
        configs.append((label, base.replace(strategy=strategy, size=size, seed=seed,
                                          **dict(zip(names, combo)), **overrides)))
    return configs
