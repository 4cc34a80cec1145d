"""The registry of adaptation strategies: one module each, same shape (see base.py)."""
from .base import Strategy
from . import bitfit, feature_extraction, full, lora

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    feature_extraction.STRATEGY, full.STRATEGY, lora.STRATEGY, bitfit.STRATEGY)}
_ALIASES = {alias: s.name for s in STRATEGIES.values() for alias in s.aliases}


def get_strategy(name: str) -> Strategy:
    key = _ALIASES.get(name, name)
    if key not in STRATEGIES:
        raise ValueError(f"unknown strategy '{name}'; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[key]


def canonical_name(name: str) -> str:
    return get_strategy(name).name
