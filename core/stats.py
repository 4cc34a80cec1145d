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


# ---------------------------------------------------------------------------- one run's accuracy


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score 95 % interval of a share k/n: it stays inside [0, 1] and is not zero-wide at
    0/n or n/n (the normal interval is, and is poor on small test sets)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # at 0/n and n/n an end is 0 or 1 exactly (the float sum leaves 0.9999999999999999)
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def accuracy_interval(acc: float, n: int) -> dict:
    """A run's in-domain accuracy over its n test texts with its 95 % interval (Wilson):
    {"acc", "low", "high", "n", "method"}. Runs of one task with the same eval size are scored on
    the same texts, so their intervals speak of the same sentences."""
    k = round(acc * n)
    low, high = wilson(k, n)
    return {"acc": acc, "low": low, "high": high, "n": n, "method": "Wilson score 95 % over the test texts"}


def general_interval(change: dict | None) -> dict | None:
    """general_change() with its interval's ends and its verdict, as the cards and the CLI show it."""
    if change is None:
        return None
    return {"change": change["change"], "se": change["se"], "ci95": change["ci95"],
            "low": change["change"] - change["ci95"], "high": change["change"] + change["ci95"],
            "verdict": verdict(change["change"], change["se"]),
            "method": "paired over the same general sentences before and after, 95 %"}


def same_test_texts(a, b) -> bool:
    """True when two runs' in-domain figures come from the same test texts (task, eval size, split)."""
    return (a.task == b.task and a.n_eval == b.n_eval and a.config.get("eval_size") == b.config.get("eval_size")
            and a.config.get("eval_split", "test") == b.config.get("eval_split", "test"))


def same_benchmark(a, b) -> bool:
    """True when two runs' general scores come from the same probes on the same sentences."""
    return (a.config.get("model") == b.config.get("model") and a.benchmark == b.benchmark
            and a.config.get("general_size") == b.config.get("general_size"))


def runs_differ(a, b) -> bool:
    """Whether two runs (RunResults) differ by more than noise on either axis of the trade-off plot:
    paired over the same texts where both kept their outcomes, else by their own standard errors
    added in quadrature (a wider, unpaired test)."""
    after, before = (unpack(a.test_correct), unpack(b.test_correct)) if same_test_texts(a, b) else (None, None)
    if after is not None and before is not None and after.shape == before.shape and after.size > 1:
        if verdict(*paired_change(after, before)) != "within noise":      # no bootstrap: called per frontier step
            return True
    else:
        se = math.sqrt(sum(r.in_domain_acc * (1 - r.in_domain_acc) / max(r.n_eval, 1) for r in (a, b)))
        if abs(a.in_domain_acc - b.in_domain_acc) > Z95 * se:
            return True
    general = general_change(a.general, b.general) if same_benchmark(a, b) else None
    if general is not None:
        return verdict(general["change"], general["se"]) != "within noise"
    se = math.sqrt(a.general["stderr"] ** 2 + b.general["stderr"] ** 2)
    return abs(a.general["score"] - b.general["score"]) > Z95 * se


# ---------------------------------------------------------------------------- classes with few examples

FEW_EXAMPLES = 5     # below this many training examples a label is learned from next to nothing


def thin_classes(sampled_labels, num_labels: int, below: int = FEW_EXAMPLES) -> dict:
    """How many labels get fewer than `below` training examples in a sample (its labels, as ints):
    {"labels", "below", "thin", "none_or_one", "smallest"}. A label seen 0-1 times can hardly be
    learned; macro-F1 then sits far under the accuracy, which the commonest labels carry."""
    counts = np.bincount(np.asarray(sampled_labels, dtype=int), minlength=num_labels)
    return {"labels": int(num_labels), "below": below, "thin": int((counts < below).sum()),
            "none_or_one": int((counts <= 1).sum()), "smallest": int(counts.min()) if num_labels else 0}


def vs_majority(confusion, majority_acc: float) -> dict | None:
    """The in-domain accuracy's change against always answering the majority label, paired over the
    same test texts: {"change", "se", "ci95", "verdict"}. Each text is right or wrong for both, and the
    confusion matrix holds all four counts: right for both (the majority label's diagonal cell), only
    for the run (the rest of the diagonal), only for the majority (its row's misses). The majority label
    is the one whose share of the test texts is majority_acc; if several are (a tie), the wider interval
    is kept. None without a confusion matrix (results stored before it was kept)."""
    c = np.asarray(confusion, dtype=float)
    if c.ndim != 2 or c.size == 0 or c.sum() < 2:
        return None
    n = c.sum()
    support, hits = c.sum(axis=1), np.diag(c)
    candidates = [m for m in range(len(support)) if abs(support[m] / n - majority_acc) < 0.5 / n]
    if not candidates:
        return None
    best = None
    for m in candidates:
        only_run = hits.sum() - hits[m]           # d = +1
        only_majority = support[m] - hits[m]      # d = -1
        change = (only_run - only_majority) / n
        var = max(0.0, (only_run + only_majority - n * change ** 2) / (n - 1))
        se = math.sqrt(var / n)
        if best is None or se > best["se"]:
            best = {"change": float(change), "se": se, "ci95": Z95 * se, "verdict": verdict(change, se)}
    return best


def majority_lean(confusion) -> dict | None:
    """How much more often the run predicts the test set's commonest label than the texts have it,
    paired over the same texts (each text counts +1 if predicted that label but has another, -1 if it
    has it but was predicted another): {"label" (its index), "predicted", "true" (shares), "change",
    "se", "ci95", "verdict"}. A model that leans on the majority on small or skewed data shows a
    positive change outside its interval. None without a confusion matrix."""
    c = np.asarray(confusion, dtype=float)
    if c.ndim != 2 or c.size == 0 or c.sum() < 2:
        return None
    n = c.sum()
    top = int(c.sum(axis=1).argmax())
    more = c[:, top].sum() - c[top, top]            # predicted the commonest label, have another
    fewer = c[top].sum() - c[top, top]              # have it, predicted another
    change = (more - fewer) / n
    se = math.sqrt(max(0.0, (more + fewer - n * change ** 2) / (n - 1)) / n)
    return {"label": top, "predicted": float(c[:, top].sum() / n), "true": float(c[top].sum() / n),
            "change": float(change), "se": se, "ci95": Z95 * se, "verdict": verdict(change, se)}
