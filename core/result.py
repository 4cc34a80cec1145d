"""RunResult: everything one run measured, as plain values (stored as JSON, sent between processes).

Its own module, free of torch, so the run store, the presets and the app read results without
importing the training code.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import numpy as np

from .fmt import pct, pts
from .stats import accuracy_interval, general_change, general_interval, majority_lean, vs_majority
from . import config as _config   # its versions read at each call: a test may change the measurement's


UNEVEN_F1 = 0.10      # 10 points: wider than the two figures' noise on a few hundred test texts


@dataclass
class RunResult:
    key: str
    config: dict
    task: str
    strategy: str
    size: int
    seed: int
    in_domain_acc: float
    in_domain_f1: float
    train_acc: float
    general: dict                 # score, score_refit, stderr, per_task
    pretrained_general: dict
    curves: list                  # per epoch: epoch, train_loss, train_acc, val_acc
    timings: dict                 # seconds per stage, and total
    device: str
    precision: str
    trainable_params: int
    total_params: int
    n_eval: int
    majority_acc: float           # accuracy of always predicting the commonest training label
    predicted_classes: int        # distinct labels the model predicts on the test subset
    warnings: list = field(default_factory=list)
    versions: dict = field(default_factory=dict)
    padding_fraction: float = 0.0
    train_tokens: int = 0
    created_at: float = 0.0
    cached: bool = False
    work: dict = field(default_factory=dict)      # what each stage computed (core.estimate.Work)
    estimate: dict = field(default_factory=dict)  # the time-left estimate against the real time
    weight_distance: float | None = None          # ||theta - theta_0|| / ||theta_0|| of the encoder at the end
    chosen_epoch: int | None = None               # best_epoch: the epoch whose weights were kept
    curve: list = field(default_factory=list)     # WiSE-FT: alpha, in_domain_acc, general, general_refit
    rescored: bool = False                        # kept fine-tuned weights re-scored, nothing trained (core.weights)
    training_key: str | None = None               # the kept weights' name (strategies with a finish step)
    test_correct: str | None = None               # each in-domain test text right or not (core.stats.pack)
    per_class: list = field(default_factory=list)  # per label: name, support, recall, precision, predicted
    confusion: list = field(default_factory=list)  # in-domain test set: [true label][predicted label] counts
    result_version: int = field(default_factory=lambda: _result_version())   # of the code that measured it
    benchmark: dict = field(default_factory=dict)   # the general benchmark's settings (core.benchmark.settings)

    @property
    def overfit_gap(self) -> float:
        return self.train_acc - self.in_domain_acc

    @property
    def general_delta(self) -> float:
        return self.general["score"] - self.pretrained_general["score"]

    @property
    def general_delta_refit(self) -> float:
        return self.general["score_refit"] - self.pretrained_general["score_refit"]

    def majority_lean(self) -> dict | None:
        """core.stats.majority_lean of the in-domain test texts, with the label's name; None without
        a confusion matrix (results stored before it was kept)."""
        lean = majority_lean(self.confusion)
        if lean is None:
            return None
        names = [c["label"] for c in self.per_class]
        return {**lean, "name": names[lean["label"]] if lean["label"] < len(names) else str(lean["label"])}

    def majority_lean_text(self) -> str | None:
        """One sentence: 'It predicted earn for 57.1 % of the test texts, which have it 49.8 %: +7.3 ±
        1.4 pts, it leans on the commonest label more than the data does.'"""
        lean = self.majority_lean()
        if lean is None:
            return None
        change = pts(lean["change"]) + f" ± {pts(lean['ci95'], unit='').lstrip('+')}"
        if lean["verdict"] == "within noise":
            said = "no more and no less than the data, within noise"
        elif lean["change"] > 0:
            said = "it leans on the commonest label more than the data does"
        else:
            said = "it predicts the commonest label less often than the data has it"
        return (f"It predicted {lean['name']} for {pct(lean['predicted'])} of the test texts, which have it "
                f"{pct(lean['true'])} of the time: {change}, {said}.")

    def general_change(self) -> dict | None:
        """The general score's change with its paired standard error (core.stats.general_change);
        None for results stored before per-sentence outcomes were kept."""
        return general_change(self.general, self.pretrained_general)

    def in_domain_interval(self) -> dict:
        """The in-domain accuracy with its 95 % interval over the run's test texts (core.stats)."""
        return accuracy_interval(self.in_domain_acc, self.n_eval)

    def intervals(self) -> dict:
        """What the cards show beyond the raw bits: the in-domain accuracy's 95 % interval, the general
        change's paired interval and its verdict (None for a result stored without per-sentence outcomes),
        and whether the encoder was trained at all (no overfitting gap to read when it was not)."""
        return {"in_domain": self.in_domain_interval(), "general_change": general_interval(self.general_change()),
                "vs_majority": self.vs_majority() or {"change": self.in_domain_acc - self.majority_acc},
                "majority_lean": self.majority_lean(), "trained": self.trained}

    def labels_missed(self) -> tuple[int, int]:
        """(labels of the test texts the run never got right, labels the test texts have): why a macro-F1,
        which weighs every label equally, sits far under an accuracy the common labels carry."""
        present = [c for c in self.per_class if c["support"]]
        return sum(1 for c in present if not c["recall"]), len(present)

    @property
    def labels_uneven(self) -> bool:
        """Macro-F1 more than UNEVEN_F1 under the accuracy: the common labels carry the accuracy, rare ones
        are learned far worse (on a 52-label upload: 84 % accuracy, 33 % macro-F1)."""
        return self.in_domain_acc - self.in_domain_f1 > UNEVEN_F1

    def vs_majority(self) -> dict | None:
        """The in-domain change against always answering the commonest label, paired over the same test
        texts, with its interval and verdict (core.stats.vs_majority); None without a confusion matrix."""
        return vs_majority(self.confusion, self.majority_acc)

    def beats_majority(self) -> bool:
        """True when the run is better than always answering the commonest label by more than noise: by
        the paired interval where the confusion matrix is kept, else with the majority-class accuracy
        under the in-domain 95 % interval."""
        paired = self.vs_majority()
        if paired is not None:
            return paired["change"] > 0 and paired["verdict"] != "within noise"
        return self.majority_acc < self.in_domain_interval()["low"]

    @property
    def trained(self) -> bool:
        """False for a strategy that fits nothing to the training texts (zero-shot): its train accuracy
        is a score on texts it never learned from, and its 'overfitting gap' means nothing."""
        return self.strategy != "zero-shot"

    def to_dict(self) -> dict:
        return asdict(self)

    def export_dict(self) -> dict:
        """to_dict() for a file a person reads: created_at as ISO 8601 with its time zone (UTC), and
        the intervals the cards show. from_dict() reads it back."""
        return {**self.to_dict(), "created_at": iso_time(self.created_at, "microseconds"),
                "intervals": self.intervals()}

    @classmethod
    def from_dict(cls, d: dict) -> "RunResult":
        known = {f for f in cls.__dataclass_fields__}
        d = {k: v for k, v in d.items() if k in known}
        if isinstance(d.get("created_at"), str):          # an export_dict(): ISO 8601
            d["created_at"] = datetime.fromisoformat(d["created_at"]).timestamp()
        if d.get("result_version") is None:
            # Stored before results said their version: 5 added weight_distance; older ones read as 4,
            # the version of the shipped presets (regenerated at 4: commit f29a21b).
            d["result_version"] = 5 if "weight_distance" in d else 4
        return cls(**d)

    @property
    def current(self) -> bool:
        """Measured the way this code measures (core.config.COMPARABLE_SINCE): comparable with a run made now."""
        return (self.result_version or 0) >= _config.COMPARABLE_SINCE

    def summary(self) -> dict:
        """The flat row shown in tables and exported to CSV."""
        c = self.config
        change = self.general_change()
        inside = self.in_domain_interval()
        row = {
            "key": self.key, "task": self.task, "strategy": self.strategy, "size": self.size, "seed": self.seed,
            "lr": c.get("lr"), "head_lr": c.get("head_lr"), "epochs": c.get("epochs"),
            "batch_size": c.get("batch_size"), "max_length": c.get("max_length"),
            "freeze_layers": c.get("freeze_layers"), "layer_lr_decay": c.get("layer_lr_decay"),
            "lora_r": c.get("lora_r"), "feature_layer": c.get("feature_layer"), "model": c.get("model"),
            "in_domain_acc": self.in_domain_acc, "in_domain_low": inside["low"], "in_domain_high": inside["high"],
            "in_domain_f1": self.in_domain_f1, "train_acc": self.train_acc,
            "overfit_gap": self.overfit_gap if self.trained else None, "general": self.general["score"],
            "general_refit": self.general["score_refit"], "general_delta": self.general_delta,
            "general_delta_refit": self.general_delta_refit, "general_stderr": self.general["stderr"],
            "general_delta_ci95": (change or {}).get("ci95"),
            "l2sp_alpha": c.get("l2sp_alpha"), "wise_alpha": c.get("wise_alpha"), "lp_epochs": c.get("lp_epochs"),
            "best_epoch": c.get("best_epoch"), "weight_distance": self.weight_distance,
            "chosen_epoch": self.chosen_epoch,
            "trainable_params": self.trainable_params, "time_s": self.timings.get("total"),
            "device": self.device, "created_at": iso_time(self.created_at),
        }
        for name, v in self.general["per_task"].items():
            row[f"general_{name}"] = v["fixed"]
            row[f"general_{name}_refit"] = v["refit"]
        return row


def iso_time(seconds: float | None, timespec: str = "seconds") -> str | None:
    """A Unix time as ISO 8601 in UTC with its offset: 1.0 -> '1970-01-01T00:00:01+00:00'."""
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec=timespec)


def _result_version() -> int:
    return _config.RESULT_VERSION


def per_class(y_true, y_pred, names) -> list[dict]:
    """Per label: how many test texts have it (support), the share of them found (recall), the share
    of its predictions that are right (precision), and how often it was predicted. A model that
    predicts only the majority class shows as one label with recall 1 and the rest at 0."""
    from sklearn.metrics import precision_recall_fscore_support   # about 1 s to import: off the server's path

    labels = list(range(len(names)))
    precision, recall, _, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=np.nan)
    predicted = np.bincount(np.asarray(y_pred), minlength=len(names))
    return [{"label": name, "support": int(support[i]), "predicted": int(predicted[i]),
             "recall": None if support[i] == 0 else float(recall[i]),
             "precision": None if predicted[i] == 0 else float(precision[i])} for i, name in enumerate(names)]


def confusion(y_true, y_pred, n_labels: int) -> list[list[int]]:
    """Counts of [true label][predicted label] (rows sum to each label's support)."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=list(range(n_labels))).tolist()
