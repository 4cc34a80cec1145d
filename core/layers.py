"""Layer by layer, before training: how well each layer's frozen features serve the task and the general skills.

    report = probe_layers(RunConfig(task="r8", size=256))
    print(report.table())          # layer | in-domain (95 % interval) | each general task | their mean

One forward pass through the pre-trained encoder gives every hidden state (the embeddings, then each
block); each layer's masked-mean features then get a linear probe: for the task, fitted on the run's
training sample and scored on its test subset (the texts a run with this config is scored on), and for
each general-benchmark task, fitted on its probe-train sentences and scored on its probe-test ones. The
probe is the general benchmark's own (L2-normalised logistic regression, core.benchmark.fit_probe):
for the last layer it is what feature extraction measures, up to the head's training (sklearn's
optimum here, a few epochs of AdamW there). Features are kept on disk per set of texts: the test subset
and the general sentences are encoded once per model; another size or seed encodes only its sample.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from .benchmark import MAX_LENGTH as GENERAL_MAX_LENGTH, fit_probe, one_blas_thread, probe_sets
from .config import RunConfig
from .data import eval_subset, held_out, sample_train
from .features import collate, corpus_identity, length_grouped_batches, tokenize
from .fmt import pct
from .models import autocast, autocast_dtype, eval_batch_size, load_base, pool
from .paths import cache_dir
from .plan import plan
from .stats import accuracy_interval


@torch.inference_mode()
def encode_layers(encoder, token_ids: list, pad_id: int, device, dtype, pooling: str = "mean") -> np.ndarray:
    """Pooled features of every hidden state, (layers + 1, texts, hidden): index 0 the embeddings, index k
    the output of block k (what a run's feature_layer = k reads)."""
    n_layers = encoder.config.num_hidden_layers
    out = np.zeros((n_layers + 1, len(token_ids), encoder.config.hidden_size), dtype=np.float32)
    lengths = np.array([len(t) for t in token_ids])
    for idx in length_grouped_batches(lengths, eval_batch_size(device), None):
        ids, mask = collate(token_ids, idx, pad_id, device)
        with autocast(device, dtype):
            hidden = encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        for k, h in enumerate(hidden):
            out[k, idx] = pool(h, mask, pooling).float().cpu().numpy()
    return out


def cached_layers(model_id: str, encoder, tokenizer, texts: list[str], max_length: int, device, dtype,
                  pooling: str = "mean") -> np.ndarray:
    """encode_layers of `texts`, kept in the cache (plain arrays, read without pickle)."""
    spec = f"layers|{model_id}|{corpus_identity(texts)}|{pooling}|{max_length}|{device.type}|{dtype}"
    path = cache_dir() / "layers" / f"{hashlib.sha256(spec.encode()).hexdigest()[:20]}.npy"
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        pass
    feats = encode_layers(encoder, tokenize(tokenizer, texts, max_length), tokenizer.pad_token_id, device, dtype,
                          pooling)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, feats)
    os.replace(tmp, path)
    return feats


def _probe(x_train, y_train, x_test, y_test) -> float:
    if len(set(y_train.tolist())) < 2:          # one label in the sample: a probe predicts it
        return float((y_test == y_train[0]).mean())
    with one_blas_thread():
        return float((fit_probe(x_train, y_train).predict(x_test) == y_test).mean())


@dataclass
class LayerReport:
    config: RunConfig                   # the resolved configuration the probes stand for
    rows: list = field(default_factory=list)    # per layer: layer, in_domain (accuracy_interval), general {task: acc}, general_mean
    n_general_test: int = 0             # probe-test sentences per general task

    @property
    def best_in_domain(self) -> int:
        """The layer (1.. blocks; a run's feature_layer) whose probe scores best on the task."""
        blocks = [r for r in self.rows if r["layer"] >= 1]
        return max(blocks, key=lambda r: r["in_domain"]["acc"])["layer"]

    @property
    def best_general(self) -> int:
        blocks = [r for r in self.rows if r["layer"] >= 1]
        return max(blocks, key=lambda r: r["general_mean"])["layer"]

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(), "rows": self.rows, "best_in_domain": self.best_in_domain,
                "best_general": self.best_general, "n_general_test": self.n_general_test}

    def table(self) -> str:
        tasks = list(self.rows[0]["general"])
        head = ["layer", "in-domain (95 %)"] + tasks + ["general mean"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.rows:
            name = "embeddings" if r["layer"] == 0 else str(r["layer"])
            marks = (" (best in-domain)" if r["layer"] == self.best_in_domain else "") + \
                    (" (best general)" if r["layer"] == self.best_general else "")
            d = r["in_domain"]
            cells = [name + marks, f"{pct(d['acc'])} ({pct(d['low'])} to {pct(d['high'])})"]
            cells += [pct(r["general"][t]) for t in tasks] + [pct(r["general_mean"])]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def probe_layers(config: RunConfig) -> LayerReport:
    """A linear probe on every layer of the pre-trained encoder, for `config`'s task (its training sample
    and test subset) and for the general benchmark at its general_size. On the CPU in bf16 where the run
    would train in it (the task's features) and in fp32 for the general tasks, as the benchmark scores."""
    p = plan(config)
    cfg, task = p.config, p.task
    tokenizer, encoder = load_base(cfg.model)
    device = torch.device("cpu")
    dtype = autocast_dtype(device, cfg.precision)
    train_idx = sample_train(task, cfg.size, cfg.seed)
    eval_texts, eval_labels = held_out(task, cfg.eval_split)
    test_idx = eval_subset(task, cfg.eval_size, cfg.eval_split)
    x_train = cached_layers(p.model_id, encoder, tokenizer, [task.train_texts[i] for i in train_idx], cfg.max_length,
                            device, dtype, cfg.pooling)
    x_test = cached_layers(p.model_id, encoder, tokenizer, [eval_texts[i] for i in test_idx], cfg.max_length,
                           device, dtype, cfg.pooling)
    y_train, y_test = task.train_labels[train_idx], eval_labels[test_idx]
    general = [(ps, cached_layers(p.model_id, encoder, tokenizer, ps.texts, GENERAL_MAX_LENGTH, device, None))
               for ps in probe_sets(cfg.general_size)]
    report = LayerReport(cfg, n_general_test=len(general[0][0].y_test) if general else 0)
    for k in range(x_test.shape[0]):
        acc = _probe(x_train[k], y_train, x_test[k], y_test)
        scores = {ps.name: _probe(x[k, :ps.n_train], ps.y_train, x[k, ps.n_train:], ps.y_test) for ps, x in general}
        report.rows.append({"layer": k, "in_domain": accuracy_interval(acc, len(y_test)), "general": scores,
                            "general_mean": float(np.mean(list(scores.values())))})
    return report


def seeds_table(reports: list[LayerReport]) -> str:
    """Several seeds' reports of one configuration: per layer the in-domain accuracy (mean over seeds, their
    range, and the widest Wilson half-width of one seed's test subset) and the general tasks (the same
    sentences for every seed), with how many seeds found each layer best for the task."""
    tasks = list(reports[0].rows[0]["general"])
    best = [r.best_in_domain for r in reports]
    head = ["layer", f"in-domain, mean of {len(reports)} seeds (range; ± one seed's 95 %)"] + tasks + \
        ["general mean", "best for the task in"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k, row in enumerate(reports[0].rows):
        accs = [r.rows[k]["in_domain"]["acc"] for r in reports]
        half = max((r.rows[k]["in_domain"]["high"] - r.rows[k]["in_domain"]["low"]) / 2 for r in reports)
        cells = ["embeddings" if k == 0 else str(k),
                 f"{pct(float(np.mean(accs)))} ({pct(min(accs))} to {pct(max(accs))}; ±{pct(half).replace(' %', '')})"]
        cells += [pct(row["general"][t]) for t in tasks] + [pct(row["general_mean"])]
        cells.append(f"{best.count(k)} of {len(reports)} seeds" if k else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
