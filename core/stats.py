"""Paired uncertainty: is a change of a point or two more than noise?

The forgetting a run shows is a difference between two encoders scored on the *same* sentences,
so its uncertainty is a paired one: over sentences, d_i = (right after) - (right before), and the
standard error of the mean change is sd(d) / sqrt(n). Sentences both encoders get right (or both
wrong) add nothing to it, which is why it is far smaller than the per-task standard error of an
accuracy. Tasks hold distinct sentences, so their errors add in quadrature for the mean over tasks.

Per-sentence correctness travels inside results as packed bits (`pack` / `unpack`): about 170
characters per thousand sentences.
"""
from __future__ import annotations

import base64
import math

import numpy as np

Z95 = 1.959964        # two-sided 95 % normal quantile


def pack(correct) -> str:
    """Booleans -> 'n:base64 of the packed bits' (JSON-friendly)."""
    bits = np.asarray(correct, dtype=bool)
    return f"{len(bits)}:" + base64.b64encode(np.packbits(bits).tobytes()).decode()


def unpack(text: str | None) -> np.ndarray | None:
    if not text:
        return None
    n, _, data = text.partition(":")
    return np.unpackbits(np.frombuffer(base64.b64decode(data), dtype=np.uint8))[:int(n)].astype(bool)


def paired_change(after, before) -> tuple[float, float]:
    """(mean of after - before, its standard error) over paired 0/1 outcomes of the same items."""
    a, b = np.asarray(after, dtype=float), np.asarray(before, dtype=float)
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"paired outcomes need the same items, at least two (got {a.shape} and {b.shape})")
    d = a - b
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))


def paired_bootstrap(after, before, reps: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A 95 % percentile interval of the mean paired change, resampling items with replacement."""
    d = np.asarray(after, dtype=float) - np.asarray(before, dtype=float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(reps, d.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def verdict(change: float, se: float) -> str:
    """'distinguishable from zero' when the 95 % interval excludes 0, else 'within noise'."""
    return "distinguishable from zero" if abs(change) > Z95 * se else "within noise"


def general_change(general: dict, reference: dict) -> dict | None:
    """The fixed-probe general score's change against the reference, paired per sentence:
    {"change", "se", "ci95", "per_task": {name: {"change", "se"}}}; None when either side lacks the
    per-sentence outcomes (results stored before they were kept) or they are not the same sentences."""
    per_task = {}
    for name, v in general["per_task"].items():
        after, before = unpack(v.get("correct")), unpack(reference["per_task"].get(name, {}).get("correct"))
        if after is None or before is None or after.shape != before.shape:
            return None
        change, se = paired_change(after, before)
        per_task[name] = {"change": change, "se": se}
    if not per_task:
        return None
    n = len(per_task)
    change = sum(t["change"] for t in per_task.values()) / n
    se = math.sqrt(sum(t["se"] ** 2 for t in per_task.values())) / n
    return {"change": change, "se": se, "ci95": Z95 * se, "per_task": per_task}


def in_domain_change(after: str | None, before: str | None) -> dict | None:
    """Two runs' in-domain accuracy difference over the same test texts (packed outcomes), paired:
    {"change", "se", "ci95", "bootstrap95"}; None when either lacks them or the texts differ in number."""
    a, b = unpack(after), unpack(before)
    if a is None or b is None or a.shape != b.shape:
        return None
    change, se = paired_change(a, b)
    return {"change": change, "se": se, "ci95": Z95 * se, "bootstrap95": paired_bootstrap(a, b)}
