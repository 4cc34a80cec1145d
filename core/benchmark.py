"""The general benchmark: how much of what pre-training gave does an adapted encoder keep?

Measured the SentEval way. For each general task a logistic-regression probe is fitted once on
the *pre-trained* encoder's pooled features (cached per model). An adapted encoder is then
scored twice:
  fixed probe - the old probe, unchanged, on the new features: what the old head still gets right;
  refit probe - a new probe fitted on the new features: what is still linearly recoverable.
The general score is the mean accuracy over tasks.
"""
from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from .paths import cache_dir
from .data import GENERAL_TASKS, SPLIT_SEED, found_elsewhere, load_task
from .stats import pack, unpack

# Sentences per task to fit a probe on, and to score it: RunConfig.general_size, default 1000,
# which puts the standard error of the 4-task mean at about 0.7 points.
MAX_LENGTH = 64         # general-task sentences are short; 64 tokens covers nearly all of them
POOLING = "mean"        # the pooling all-MiniLM-L6-v2 was trained with
PROBE_C = 10.0
LIVE_SENTENCES = 64     # per task: the fixed probes scored between epochs, a live estimate of the score
# 2: 20 Newsgroups instead of MR (MR's sentences are nearly all in Rotten Tomatoes), sentences found
#    in any other task left out
BENCHMARK_VERSION = 2


def settings() -> dict:
    """What the general score depends on besides the encoder: part of every run's store key, and
    kept with every result, so a change here never mixes two benchmarks in one table or plot.
    The sentences per task (RunConfig.general_size) are in the config itself."""
    return {"version": BENCHMARK_VERSION, "tasks": list(GENERAL_TASKS), "max_length": MAX_LENGTH,
            "pooling": POOLING, "probe": f"L2-normalised logistic regression, C={PROBE_C}", "precision": "fp32"}


@dataclass
class ProbeSet:
    name: str
    texts: list[str]        # probe-train texts then probe-test texts
    labels: np.ndarray
    n_train: int

    @property
    def y_train(self):
        return self.labels[:self.n_train]

    @property
    def y_test(self):
        return self.labels[self.n_train:]


def _subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    if n >= len(labels):
        return np.arange(len(labels))
    from sklearn.model_selection import train_test_split

    _, held = train_test_split(np.arange(len(labels)), test_size=n, random_state=seed, stratify=labels)
    return np.sort(held)


@functools.lru_cache(maxsize=4)
def probe_sets(size: int, tasks: tuple[str, ...] = tuple(GENERAL_TASKS)) -> list[ProbeSet]:
    sets = []
    for name in tasks:
        task = load_task(name)
        # sentences also found in another task (a handful: "excellent" is a CR sentence and a drug
        # review) are left out before sampling, so no sentence is counted twice or was trained on
        tr_ok = np.flatnonzero(~found_elsewhere(name, "train"))
        te_ok = np.flatnonzero(~found_elsewhere(name, "test"))
        tr = tr_ok[_subset(task.train_labels[tr_ok], size, SPLIT_SEED + 3)]
        te = te_ok[_subset(task.test_labels[te_ok], size, SPLIT_SEED + 4)]
        texts = [task.train_texts[i] for i in tr] + [task.test_texts[i] for i in te]
        labels = np.concatenate([task.train_labels[tr], task.test_labels[te]])
        sets.append(ProbeSet(name, texts, labels, len(tr)))
    return sets


def one_blas_thread():
    """scikit-learn's BLAS/OpenMP pools next to torch's: on 2 cores their spinning threads fight
    torch's for the same cores and later torch steps slow down many-fold (measured: the same
    step 9 s, then 107 s in one process). The probes are small: one thread is plenty."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def fit_probe(x: np.ndarray, y: np.ndarray):
    """Logistic regression on L2-normalised features (the encoder was trained for cosine similarity).

    Not standardised: a StandardScaler fitted on pre-trained features blows up dimensions of tiny
    variance, so a fixed probe then collapses after a few steps at lr 2e-5 (measured: -30 points
    on the 4-task mean at n=64, while the refit probe and the L2-normalised fixed probe lose <1 point).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    return make_pipeline(Normalizer(), LogisticRegression(C=PROBE_C, max_iter=3000)).fit(x, y)


@dataclass
class LinearProbe:
    """A fitted probe as plain arrays: the cache holds data only (np.load without pickle), so whoever
    can write the cache folder cannot make the worker run code. Predicts exactly as fit_probe's
    pipeline does: L2-normalise the rows, then the logistic regression's linear decision."""
    coef: np.ndarray          # (classes or 1, features)
    intercept: np.ndarray
    classes: np.ndarray

    @classmethod
    def of(cls, pipeline) -> "LinearProbe":
        lr = pipeline[-1]
        return cls(lr.coef_.copy(), lr.intercept_.copy(), lr.classes_.copy())

    def predict(self, x: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        scores = (x / norms) @ self.coef.T + self.intercept
        if scores.shape[1] == 1:                      # binary: one decision, positive = the second class
            return self.classes[(scores[:, 0] > 0).astype(int)]
        return self.classes[scores.argmax(axis=1)]


def save_probes(path, probes: dict, per_task: dict) -> None:
    """Probes and the pre-trained per-task scores as one .npz (atomic: a crash leaves the old file)."""
    import json
    import os

    arrays = {"per_task": np.array(json.dumps(per_task))}
    for name, probe in probes.items():
        arrays.update({f"{name}.coef": probe.coef, f"{name}.intercept": probe.intercept,
                       f"{name}.classes": probe.classes})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_probes(path) -> tuple[dict, dict] | None:
    """(probes, per_task) from save_probes' file; None if it is missing or damaged (then refit)."""
    import json

    try:
        with np.load(path, allow_pickle=False) as z:
            per_task = json.loads(str(z["per_task"]))
            probes = {name: LinearProbe(z[f"{name}.coef"], z[f"{name}.intercept"], z[f"{name}.classes"])
                      for name in per_task}
        return probes, per_task
    except (OSError, ValueError, KeyError, TypeError):
        return None


def standard_error(acc: float, n: int) -> float:
    return math.sqrt(max(acc * (1 - acc), 1e-12) / n)


@dataclass
class GeneralScore:
    score: float                 # mean accuracy over tasks, fixed probe
    score_refit: float           # mean accuracy over tasks, refitted probe
    stderr: float                # standard error of `score`
    per_task: dict               # name -> {"fixed": acc, "refit": acc, "n_test": n, "correct": packed bits}

    def to_dict(self) -> dict:
        return {"score": self.score, "score_refit": self.score_refit, "stderr": self.stderr,
                "per_task": self.per_task}


def _summarise(per_task: dict) -> GeneralScore:
    fixed = [v["fixed"] for v in per_task.values()]
    refit = [v["refit"] for v in per_task.values()]
    se = math.sqrt(sum(standard_error(v["fixed"], v["n_test"]) ** 2 for v in per_task.values())) / len(per_task)
    return GeneralScore(float(np.mean(fixed)), float(np.mean(refit)), se, per_task)


class GeneralBenchmark:
    """Pre-trained probes for one model on one device/precision, and scoring of adapted encoders."""

    def __init__(self, model_identity: str, tokenizer, device, dtype, size: int = 1000):
        self.model_identity = model_identity
        self.tokenizer = tokenizer
        self.device, self.dtype = device, dtype
        self.sets = probe_sets(size)
        self._tokens = {}

    def _token_ids(self, ps: ProbeSet):
        if ps.name not in self._tokens:
            from .features import tokenize

            self._tokens[ps.name] = tokenize(self.tokenizer, ps.texts, MAX_LENGTH)
        return self._tokens[ps.name]

    def _cache(self, ps: ProbeSet):
        from .features import FeatureCache, corpus_identity

        return FeatureCache(self.model_identity, corpus_identity(ps.texts), None, POOLING, MAX_LENGTH,
                            self.device, self.dtype, len(ps.texts))

    def _pretrained_features(self, encoder, ps: ProbeSet, should_stop=None) -> np.ndarray:
        ids = self._token_ids(ps)
        return self._cache(ps).get(encoder, lambda rows: [ids[i] for i in rows], self.tokenizer.pad_token_id,
                                   np.arange(len(ps.texts)), should_stop)

    def _probe_path(self):
        from .features import corpus_identity

        # "|correct": the file also holds each test sentence's outcome (core.stats, paired changes)
        spec = f"{self.model_identity}|{self.device.type}|{self.dtype}|{MAX_LENGTH}|{PROBE_C}|l2|correct"
        spec += "|" + "|".join(corpus_identity(ps.texts) for ps in self.sets)
        return cache_dir() / "probes" / f"{hashlib.sha256(spec.encode()).hexdigest()[:20]}.npz"

    def settings(self) -> dict:
        """settings(), with the precision this instance really scores in."""
        return {**settings(), "precision": "fp32" if self.dtype is None else str(self.dtype).replace("torch.", "")}

    def has_reference(self) -> bool:
        """True when the pre-trained probes are on disk (every run after the first on this machine)."""
        return self._probe_path().exists()

    def sentences(self) -> int:
        """General sentences one encoder pass covers: each task's probe-train and probe-test sets."""
        return int(sum(len(ps.texts) for ps in self.sets))

    def reference(self, base_encoder, should_stop=None) -> tuple[dict, GeneralScore]:
        """(probes, the pre-trained encoder's score), fitted once and kept on disk."""
        path = self._probe_path()
        stored = load_probes(path) if path.exists() else None
        if stored is not None:
            probes, per_task = stored
            return probes, _summarise(per_task)
        probes, per_task = {}, {}
        for ps in self.sets:
            x = self._pretrained_features(base_encoder, ps, should_stop)
            with one_blas_thread():
                probe = LinearProbe.of(fit_probe(x[:ps.n_train], ps.y_train))
            correct = probe.predict(x[ps.n_train:]) == ps.y_test
            probes[ps.name] = probe
            per_task[ps.name] = {"fixed": float(correct.mean()), "refit": float(correct.mean()),
                                 "n_test": len(ps.y_test), "correct": pack(correct)}
        save_probes(path, probes, per_task)
        return probes, _summarise(per_task)

    def score(self, encoder, base_encoder, encoder_changed: bool, should_stop=None) -> GeneralScore:
        """Score `encoder`. An unchanged encoder reads the pre-trained features back from the cache."""
        from .features import encode

        probes, reference = self.reference(base_encoder, should_stop)
        if not encoder_changed:
            return reference
        per_task = {}
        for ps in self.sets:
            x = encode(encoder, self._token_ids(ps), self.tokenizer.pad_token_id, self.device, self.dtype,
                       None, POOLING, should_stop=should_stop)
            with one_blas_thread():
                correct = probes[ps.name].predict(x[ps.n_train:]) == ps.y_test
                refit_probe = fit_probe(x[:ps.n_train], ps.y_train)
                refit = float((refit_probe.predict(x[ps.n_train:]) == ps.y_test).mean())
            per_task[ps.name] = {"fixed": float(correct.mean()), "refit": refit, "n_test": len(ps.y_test),
                                 "correct": pack(correct)}
        return _summarise(per_task)

    def live_estimate(self, encoder, base_encoder, should_stop=None) -> tuple[float, float]:
        """A cheap estimate of the general score while training: the fixed probes on the first
        LIVE_SENTENCES test sentences of each task, as a change against the pre-trained encoder on
        the same sentences, added to the pre-trained full score. Paired, so it is noisy only where
        the encoder really changed. Returns (estimate, the pre-trained score it is relative to)."""
        from .features import encode

        probes, reference = self.reference(base_encoder, should_stop)
        changes = []
        for ps in self.sets:
            n = min(LIVE_SENTENCES, len(ps.y_test))
            before = unpack(reference.per_task[ps.name].get("correct"))
            if before is None:
                return float("nan"), reference.score
            x = encode(encoder, self._token_ids(ps)[ps.n_train:ps.n_train + n], self.tokenizer.pad_token_id,
                       self.device, self.dtype, None, POOLING, should_stop=should_stop)
            after = probes[ps.name].predict(x) == ps.y_test[:n]
            changes.append(float(after.mean() - before[:n].mean()))
        return reference.score + sum(changes) / len(changes), reference.score
