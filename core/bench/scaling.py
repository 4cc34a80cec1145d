"""Cost against work: training time against training-set size, evaluation time against evaluation-set
size, their fitted log-log slopes, and the plot beside the report."""
from __future__ import annotations

import copy
import gc
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .harness import SCALING_GENERAL_SIZE, STRATEGIES, _log, bench_config, sync

SCALING_SIZES = (64, 128, 256, 512, 1024, 2048, 4096)
SCALING_SIZES_QUICK = (64, 128, 256)
EVAL_SIZES = (125, 250, 500, 1000, 2000)
EVAL_SIZES_QUICK = (125, 250, 500)
SCALING_EPOCHS = 1
SCALING_EVAL_SIZE = 100     # in-domain test texts per scaling run: the sweep measures training


def loglog_slope(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = (x > 0) & (y > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def scaling_sweep(sizes, device: str = "auto", home: Path | None = None) -> dict:
    """Training-stage time against training-set size: one run per size, 1 epoch, a small test subset.
    Feature extraction twice per size: cold (the size's training rows not yet cached; validation, test and
    general features already are) and warm (everything cached)."""
    from ..training import run

    out = {s: {} for s in STRATEGIES}
    small = dict(eval_size=SCALING_EVAL_SIZE, general_size=SCALING_GENERAL_SIZE)
    for strategy in ("full", "lora"):
        for n in sizes:
            cfg = bench_config(strategy, n, device, **small).replace(epochs=SCALING_EPOCHS)
            r = run(cfg, store=None)
            out[strategy][n] = {"train_s": r.timings["training"], "total_s": r.timings["total"],
                                "eval_s": r.timings["evaluating"]}
            _log(f"scaling {strategy} n={n}: training {r.timings['training']:.1f}s")
    # feature extraction: a template home with everything but the training rows cached
    base_home = Path(home or tempfile.mkdtemp(prefix="ftlab-bench-fe-"))
    template = base_home / "fe-template"
    old = os.environ.get("FTLAB_HOME")
    try:
        os.environ["FTLAB_HOME"] = str(template)
        run(bench_config("feature-extraction", 16, device, **small).replace(epochs=SCALING_EPOCHS), store=None)
        for n in sizes:
            home_n = base_home / f"fe-{n}"
            shutil.copytree(template, home_n, dirs_exist_ok=True)
            os.environ["FTLAB_HOME"] = str(home_n)
            cfg = bench_config("feature-extraction", n, device, **small).replace(epochs=SCALING_EPOCHS)
            cold = run(cfg, store=None)
            warm = run(cfg, store=None)
            out["feature-extraction"][n] = {"train_s": warm.timings["training"], "cold_train_s": cold.timings["training"],
                                            "total_s": warm.timings["total"], "eval_s": warm.timings["evaluating"]}
            shutil.rmtree(home_n, ignore_errors=True)
            _log(f"scaling feature-extraction n={n}: cold {cold.timings['training']:.2f}s, "
                 f"warm {warm.timings['training']:.3f}s")
    finally:
        if old is None:
            os.environ.pop("FTLAB_HOME", None)
        else:
            os.environ["FTLAB_HOME"] = old
        if home is None:
            shutil.rmtree(base_home, ignore_errors=True)
    return out


def eval_sweep(sizes, device: str = "auto") -> dict:
    """The lab's evaluation path (core.training.predict, batch 32 on the CPU, 128 on a GPU, length-sorted) against test-set size."""
    from ..data import eval_subset, load_task
    from ..features import tokenize
    from ..models import EncoderClassifier, autocast_dtype, load_base, pick_device
    from ..training import predict

    cfg = bench_config("full", 64, device)
    dev = pick_device(cfg.device)
    dtype = autocast_dtype(dev, cfg.precision)
    task = load_task(cfg.task)
    tokenizer, base = load_base(cfg.model)
    torch.manual_seed(0)
    model = EncoderClassifier(copy.deepcopy(base), task.num_labels).to(dev)
    out = {}
    for n in sizes:
        idx = eval_subset(task, n)
        tok = tokenize(tokenizer, [task.test_texts[i] for i in idx], cfg.max_length)
        sync(dev)
        t = time.perf_counter()
        predict(model, tok, tokenizer.pad_token_id, dev, dtype)
        sync(dev)
        out[len(idx)] = {"eval_s": time.perf_counter() - t, "tokens": int(sum(len(x) for x in tok))}
    del model
    gc.collect()
    return out


def plot_scaling(scaling: dict, evals: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    series = [("full", "train_s", "full fine-tuning"), ("lora", "train_s", "LoRA r8"),
              ("feature-extraction", "cold_train_s", "feature extraction, cold cache"),
              ("feature-extraction", "train_s", "feature extraction, warm cache")]
    for strategy, field, label in series:
        pts = sorted((n, v[field]) for n, v in scaling.get(strategy, {}).items() if field in v)
        if pts:
            x, y = zip(*pts)
            ax.loglog(x, y, "o-", label=f"{label} (slope {loglog_slope(x, y):.2f})")
    ax.set_xlabel("training examples (1 epoch)")
    ax.set_ylabel("training stage, s")
    ax.set_title("Training time against training-set size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[1]
    pts = sorted((n, v["eval_s"]) for n, v in evals.items())
    if pts:
        x, y = zip(*pts)
        ax.loglog(x, y, "o-", color="tab:purple", label=f"in-domain evaluation (slope {loglog_slope(x, y):.2f})")
    ax.set_xlabel("evaluation texts")
    ax.set_ylabel("evaluation, s")
    ax.set_title("Evaluation time against evaluation-set size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
