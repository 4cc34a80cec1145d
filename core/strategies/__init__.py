"""The registry of adaptation strategies: one module each, same shape (see base.py)."""
from .base import Knob, Strategy
from . import bitfit, feature_extraction, full, l2_sp, lora, lp_ft, wise_ft, zero_shot

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    zero_shot.STRATEGY, feature_extraction.STRATEGY, full.STRATEGY, lora.STRATEGY, bitfit.STRATEGY,
    lp_ft.STRATEGY, l2_sp.STRATEGY, wise_ft.STRATEGY)}
_ALIASES = {alias: s.name for s in STRATEGIES.values() for alias in s.aliases}
# Every knob any strategy reads, by RunConfig field (shared knobs are the same object).
KNOBS: dict[str, Knob] = {k.name: k for s in STRATEGIES.values() for k in s.knobs}


def get_strategy(name: str) -> Strategy:
    key = _ALIASES.get(name, name)
    if key not in STRATEGIES:
        raise ValueError(f"unknown strategy '{name}'; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[key]


def canonical_name(name: str) -> str:
    return get_strategy(name).name
