"""`python -m core bench`: the lab's own path against a Hugging Face Trainer, and against the machine.

One invocation measures, on the default model and task:
  1. feature extraction, full fine-tuning and LoRA through `core.training.run` (store=None) and through
     a fair `Trainer` baseline that trains the same model (same pooling, head, param groups, schedule),
     alternating the two sides over several repeats;
  2. the device's matmul peak (fp32 and bf16) and the FLOP/s the runs achieve against it;
  3. the goals (speed ratio, accuracy, share of peak, peak memory), met or not, with the figure;
  4. cost against work: training time against training-set size, evaluation time against
     evaluation-set size, with fitted log-log slopes and a plot;
  5. on CUDA, a throughput figure for a BERT-base-sized encoder (skipped with a note otherwise);
and writes it all to a generated markdown file (default docs/PERFORMANCE.md) with a PNG beside it.

Everything runs in a private FTLAB_HOME (a temporary folder), so "cold cache" really is cold and the
user's caches and run store are left alone.
"""
from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import gc
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

STRATEGIES = ("feature-extraction", "full", "lora")
LABEL = {"feature-extraction": "feature extraction", "full": "full fine-tuning", "lora": "LoRA r8"}
EPOCHS = 3
SCALING_SIZES = (64, 128, 256, 512, 1024, 2048, 4096)
SCALING_SIZES_QUICK = (64, 128, 256)
EVAL_SIZES = (125, 250, 500, 1000, 2000)
EVAL_SIZES_QUICK = (125, 250, 500)
SCALING_EPOCHS = 1
QUICK = {"size": 128, "eval_size": 500, "general_size": 200}   # --quick: a smoke test, not a measurement
SCALING_EVAL_SIZE = 100     # in-domain test texts per scaling run: the sweep measures training
SCALING_GENERAL_SIZE = 50   # the smallest general benchmark the config allows
RSS_LIMIT_GB = 2.5
ROOT = Path(__file__).resolve().parent.parent


KEPT_BEGIN, KEPT_END = "<!-- kept:", "<!-- /kept -->"


def kept_sections(path: Path) -> str:
    """Sections other scripts write into the same document (between `<!-- kept:NAME -->` and
    `<!-- /kept -->`, e.g. tests/app_speed.py's): carried over when the bench rewrites the file."""
    try:
        text = path.read_text()
    except OSError:
        return ""
    out, at = [], 0
    while (start := text.find(KEPT_BEGIN, at)) >= 0:
        end = text.find(KEPT_END, start)
        if end < 0:
            break
        out.append(text[start:end + len(KEPT_END)])
        at = end + len(KEPT_END)
    return "".join("\n" + section + "\n" for section in out)


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- machine and device


def sync(device) -> None:
    """Wait for queued device work, so a timer read after it means what it says."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts(device) -> dict:
    from .models import cpu_has_fast_bf16
    from .training import library_versions

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    flags = ""
    with contextlib.suppress(OSError):
        flags = Path("/proc/cpuinfo").read_text()
    facts = {
        "cpu": cpu_model(), "logical_cores": os.cpu_count(), "usable_cores": usable,
        "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
        "avx512_bf16": "avx512_bf16" in flags, "amx": "amx_bf16" in flags,
        "mkldnn_bf16": cpu_has_fast_bf16(), "device": str(device),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(), "versions": library_versions(),
    }
    with contextlib.suppress(OSError):
        facts["load_avg_start"] = os.getloadavg()
    with contextlib.suppress(Exception):
        import psutil

        facts["memory_gb"] = psutil.virtual_memory().total / 1e9
    return facts


def matmul_gflops(m: int, k: int, n: int, dtype, device, reps: int = 3, trials: int = 5) -> float:
    """Best-of-`trials` GFLOP/s of an (m,k) @ (k,n) matmul in `dtype` on `device`."""
    device = torch.device(device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(m, k, generator=gen).to(device, dtype)
    b = torch.randn(k, n, generator=gen).to(device, dtype)
    out = torch.empty(m, n, device=device, dtype=dtype)
    for _ in range(2):
        torch.matmul(a, b, out=out)
    best = math.inf
    for _ in range(trials):
        sync(device)
        t = time.perf_counter()
        for _ in range(reps):
            torch.matmul(a, b, out=out)
        sync(device)
        best = min(best, (time.perf_counter() - t) / reps)
    return 2.0 * m * k * n / best / 1e9


def model_matmul_shapes(hidden: int = 384, ffn: int = 1536, tokens: int = 1024) -> dict:
    """The encoder's own GEMMs at a typical step (batch 16 x ~64 tokens)."""
    return {f"{tokens}x{hidden}x{hidden} (q/k/v/out)": (tokens, hidden, hidden),
            f"{tokens}x{hidden}x{ffn} (FFN up)": (tokens, hidden, ffn),
            f"{tokens}x{ffn}x{hidden} (FFN down)": (tokens, ffn, hidden)}


def measure_peaks(device, quick: bool = False, square: int = 2048) -> dict:
    """Matmul throughput in fp32 and bf16; the peak of a dtype is the best shape measured."""
    device = torch.device(device)
    shapes = {f"{square}x{square}x{square}": (square, square, square), **model_matmul_shapes()}
    trials = 3 if quick else 5
    out = {"shapes": {}, "peak": {}}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        per = {}
        for label, (m, k, n) in shapes.items():
            try:
                per[label] = matmul_gflops(m, k, n, dtype, device, trials=trials)
            except RuntimeError as err:   # a device without this dtype
                per[label] = float("nan")
                out.setdefault("errors", []).append(f"{name} {label}: {err}")
        out["shapes"][name] = per
        finite = [v for v in per.values() if math.isfinite(v)]
        out["peak"][name] = max(finite) if finite else float("nan")
    return out


# ---------------------------------------------------------------------------- FLOP counting


def non_embedding_params(encoder) -> int:
    """Weights of the transformer blocks: what every token pays for (embeddings are a lookup)."""
    from .models import encoder_layers

    return sum(p.numel() for p in encoder_layers(encoder).parameters())


FLOP_FORMULAS = {
    "full": "6·P·T (forward 2·P·T + backward 4·P·T)",
    "lora": "4·P·T + 6·P_tr·T (forward 2·P·T; the backward still carries activation gradients through "
            "every block, 2·P·T, but computes weight gradients only for the adapters and head)",
    "feature-extraction": "2·P·T (forward only; the head's cost is negligible)",
    "forward": "2·P·T",
}


def train_flops(strategy: str, params: int, trainable: int, tokens: int) -> float:
    """FLOPs of training on `tokens` real (non-pad) tokens. P = non-embedding params; attention's
    seq² terms are left out (about seq/(6·hidden) ≈ 3-6 % more at 64-128 tokens and hidden 384)."""
    if strategy == "full":
        return 6.0 * params * tokens
    if strategy == "lora":
        return 4.0 * params * tokens + 6.0 * trainable * tokens
    if strategy in ("feature-extraction", "forward"):
        return 2.0 * params * tokens
    raise ValueError(f"no FLOP formula for {strategy!r}")


# ---------------------------------------------------------------------------- shared set-up


def bench_config(strategy: str, size: int, device: str = "auto", **changes):
    from .config import RunConfig

    changes.setdefault("epochs", EPOCHS)
    return RunConfig(strategy=strategy, size=size, device=device, **changes).resolved()


class _Data:
    """The task's texts, the run's training sample, test subset and validation set, tokenized."""

    def __init__(self, cfg):
        from .data import eval_subset, load_task, sample_train
        from .features import tokenize
        from .models import load_base

        self.task = task = load_task(cfg.task)
        self.tokenizer, self.base = load_base(cfg.model)
        self.train_idx = sample_train(task, cfg.size, cfg.seed)
        self.test_idx = eval_subset(task, cfg.eval_size)
        self.train_texts = [task.train_texts[i] for i in self.train_idx]
        self.test_texts = [task.test_texts[i] for i in self.test_idx]
        self.y_train = task.train_labels[self.train_idx]
        self.y_test = task.test_labels[self.test_idx]
        self.tok_train = tokenize(self.tokenizer, self.train_texts, cfg.max_length)
        self.tok_val = tokenize(self.tokenizer, task.val_texts, cfg.max_length)
        self.tok_test = tokenize(self.tokenizer, self.test_texts, cfg.max_length)

    def tokens(self, which: str) -> int:
        return int(sum(len(t) for t in getattr(self, f"tok_{which}")))


# ---------------------------------------------------------------------------- the project's side


def project_run(cfg, data: _Data, params: int) -> dict:
    """One run through core.training.run (no store); figures for the side-by-side table."""
    from .features import length_grouped_batches, padding_fraction
    from .training import run

    device = torch.device(cfg.device) if cfg.device != "auto" else None
    t = time.perf_counter()
    result = run(cfg, store=None)
    if device is not None:
        sync(device)
    wall = time.perf_counter() - t
    tm = result.timings
    n, epochs = result.size, cfg.epochs
    t_train, t_val, t_test = data.tokens("train"), data.tokens("val"), data.tokens("test")
    from .models import eval_batch_size, pick_device

    lengths = np.array([len(x) for x in data.tok_test])
    eval_pad = padding_fraction(data.tok_test, length_grouped_batches(lengths, eval_batch_size(pick_device(cfg.device)),
                                                                      None))
    if cfg.strategy == "feature-extraction":
        # training stage = features for the rows not yet cached, then the head on them
        work = {"train": 0.0, "eval": 0.0}
        train_pad, eval_pad = 0.0, 0.0
    else:
        # training stage = the steps, a validation pass per epoch and one prediction pass over the training set
        work = {"train": train_flops(cfg.strategy, params, result.trainable_params - _head_params(cfg, data),
                                     t_train * epochs)
                + train_flops("forward", params, 0, t_val * epochs + t_train),
                "eval": train_flops("forward", params, 0, t_test)}
        train_pad = result.padding_fraction
    return {
        "side": "project", "train_s": tm["training"], "eval_s": tm["evaluating"], "general_s": tm["general"],
        "setup_s": tm["loading"] + tm["tokenizing"], "total_s": tm["total"], "wall_s": wall,
        "acc": result.in_domain_acc, "train_ex_s": n * epochs / tm["training"],
        "eval_ex_s": result.n_eval / max(tm["evaluating"], 1e-9),
        "flops_train": work["train"], "flops_eval": work["eval"],
        "flops_s": work["train"] / tm["training"] if work["train"] else None,
        "train_pad": train_pad, "eval_pad": eval_pad, "trainable": result.trainable_params,
        "real_tokens": t_train * epochs, "precision": result.precision,
    }


def _head_params(cfg, data) -> int:
    return (data.base.config.hidden_size + 1) * data.task.num_labels


# ---------------------------------------------------------------------------- the Trainer's side


class LossWrapper(nn.Module):
    """The lab's EncoderClassifier with a forward that returns the loss, as Trainer wants."""

    def __init__(self, classifier):
        super().__init__()
        self.clf = classifier
        self.loss_fn = nn.CrossEntropyLoss()

    def forward(self, input_ids=None, attention_mask=None, labels=None, **_):
        logits = self.clf(input_ids, attention_mask)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = self.loss_fn(logits.float(), labels)
        return out


class CountingCollator:
    """DataCollatorWithPadding that also counts real and padded tokens per phase."""

    def __init__(self, inner):
        self.inner = inner
        self.phase = "train"
        self.real: dict = {}
        self.total: dict = {}

    def __call__(self, features):
        batch = self.inner(features)
        m = batch["attention_mask"]
        self.real[self.phase] = self.real.get(self.phase, 0) + int(m.sum())
        self.total[self.phase] = self.total.get(self.phase, 0) + m.numel()
        return batch

    def padding(self, phase: str) -> float:
        total = self.total.get(phase, 0)
        return 1.0 - self.real.get(phase, 0) / total if total else 0.0


def _phase_callback(collator):
    from transformers import TrainerCallback

    class Phase(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kw):
            collator.phase = "train"

        def on_epoch_end(self, args, state, control, **kw):
            collator.phase = "val"      # the per-epoch evaluation follows the epoch's end

    return Phase()


def trainer_baseline(cfg, data: _Data, params: int, workdir: str | os.PathLike | None = None) -> dict:
    """The same model, data, optimiser groups and schedule, trained by transformers.Trainer.

    Trainer's own best options here: bf16 autocast where the device supports it,
    train_sampling_strategy="group_by_length" (which also length-groups evaluation), DataCollatorWithPadding,
    no saving or logging, dataloader in the main process, evaluation once per epoch on the same validation
    set as the lab, then prediction on the same test subset. LoRA through peft with modules_to_save=["head"];
    feature extraction as a plain user would do it: encoder frozen, forwarded at every step.
    """
    from transformers import DataCollatorWithPadding, PrinterCallback, Trainer, TrainingArguments, set_seed
    from transformers.utils import logging as hf_logging

    from .models import EncoderClassifier, autocast_dtype, eval_batch_size, fresh_encoder, pick_device
    from .strategies.base import decay_groups, freeze
    from .training import _optimizer, _schedule

    hf_logging.set_verbosity_error()
    device = pick_device(cfg.device)
    bf16 = autocast_dtype(device, cfg.precision) is not None
    t0 = time.perf_counter()

    def rows(tokens, labels):
        return [{"input_ids": t.tolist(), "attention_mask": [1] * len(t), "labels": int(y)}
                for t, y in zip(tokens, labels)]

    from .features import tokenize

    tok_train = tokenize(data.tokenizer, data.train_texts, cfg.max_length)   # timed: the Trainer side tokenizes too
    train_ds = rows(tok_train, data.y_train)
    val_ds = rows(data.tok_val, data.task.val_labels)
    test_ds = rows(data.tok_test, data.y_test)

    set_seed(cfg.seed)
    encoder = fresh_encoder(cfg.model)[1]
    encoder.set_attn_implementation("sdpa")     # transformers' own kernels: SDPA attention, torch dropout
    clf = EncoderClassifier(encoder, data.task.num_labels, cfg.feature_layer, cfg.pooling, cfg.dropout or 0.0)
    model = LossWrapper(clf)
    if cfg.strategy == "full":
        groups = decay_groups(clf.encoder.named_parameters(), cfg.lr, cfg.weight_decay)
        groups += decay_groups(clf.head.named_parameters(), cfg.head_lr, cfg.weight_decay)
    elif cfg.strategy == "lora":
        from peft import LoraConfig, get_peft_model

        lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=list(cfg.lora_targets), modules_to_save=["head"], bias="none")
        model = get_peft_model(model, lcfg)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        groups = decay_groups([(n, p) for n, p in named if "head" not in n], cfg.lr, cfg.weight_decay)
        groups += decay_groups([(n, p) for n, p in named if "head" in n], cfg.head_lr, cfg.weight_decay)
    elif cfg.strategy == "feature-extraction":
        freeze(clf.encoder)
        groups = decay_groups(clf.head.named_parameters(), cfg.head_lr, cfg.weight_decay)
    else:
        raise ValueError(f"no Trainer baseline for {cfg.strategy!r}")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    model.to(device)
    optimizer = _optimizer(groups, device)   # the lab's fused AdamW, as Trainer's default (adamw_torch_fused)
    steps = math.ceil(len(train_ds) / cfg.batch_size) * cfg.epochs
    scheduler = _schedule(optimizer, steps, cfg.warmup)

    collator = CountingCollator(DataCollatorWithPadding(data.tokenizer))
    own_dir = workdir is None
    workdir = tempfile.mkdtemp(prefix="ftlab-trainer-") if own_dir else str(workdir)
    args = TrainingArguments(
        output_dir=workdir, num_train_epochs=cfg.epochs, per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=eval_batch_size(device), bf16=bf16, use_cpu=device.type == "cpu",
        train_sampling_strategy="group_by_length", eval_strategy="epoch", save_strategy="no",
        logging_strategy="no", report_to="none", disable_tqdm=True, seed=cfg.seed, data_seed=cfg.seed,
        dataloader_num_workers=0, dataloader_pin_memory=device.type == "cuda",
        max_grad_norm=1.0 if cfg.strategy != "feature-extraction" else 0.0,
        label_names=["labels"], remove_unused_columns=False,
    )

    def accuracy(pred):
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        return {"accuracy": float((np.asarray(logits).argmax(-1) == pred.label_ids).mean())}

    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                      data_collator=collator, processing_class=data.tokenizer, compute_metrics=accuracy,
                      optimizers=(optimizer, scheduler), callbacks=[_phase_callback(collator)])
    trainer.remove_callback(PrinterCallback)     # disable_tqdm=True would print every metrics dict
    setup = time.perf_counter() - t0
    try:
        sync(device)
        t = time.perf_counter()
        trainer.train()
        sync(device)
        t_train = time.perf_counter() - t
        collator.phase = "test"
        t = time.perf_counter()
        out = trainer.predict(test_ds)
        sync(device)
        t_eval = time.perf_counter() - t
    finally:
        if own_dir:
            shutil.rmtree(workdir, ignore_errors=True)
    logits = out.predictions[0] if isinstance(out.predictions, tuple) else out.predictions
    acc = float((np.asarray(logits).argmax(-1) == out.label_ids).mean())
    n, epochs = len(train_ds), cfg.epochs
    t_tr, t_val, t_test = data.tokens("train"), data.tokens("val"), data.tokens("test")
    head = _head_params(cfg, data)
    work_train = (train_flops(cfg.strategy, params, trainable - head, t_tr * epochs)
                  + train_flops("forward", params, 0, t_val * epochs))
    result = {
        "side": "trainer", "train_s": t_train, "eval_s": t_eval, "general_s": None, "setup_s": setup,
        "total_s": setup + t_train + t_eval, "wall_s": setup + t_train + t_eval, "acc": acc,
        "train_ex_s": n * epochs / t_train, "eval_ex_s": len(test_ds) / max(t_eval, 1e-9),
        "flops_train": work_train, "flops_eval": train_flops("forward", params, 0, t_test),
        "flops_s": work_train / t_train, "train_pad": collator.padding("train"), "eval_pad": collator.padding("test"),
        "trainable": trainable, "real_tokens": t_tr * epochs, "precision": "bf16" if bf16 else "fp32",
    }
    del trainer, model, clf, encoder, optimizer
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


# ---------------------------------------------------------------------------- memory, profile


# A small interpreter starts the run and reports its child's peak RSS. Measuring the run as our own
# direct child would be wrong: Linux keeps the peak RSS across fork/vfork + exec, so a child of this
# (large) bench process would inherit the bench's own peak (measured: 3.73 GB reported, 2.0 GB real).
_RSS_WRAPPER = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
                "sys.stderr.write('MAXRSS_KB %d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
                "sys.exit(rc)")


def peak_rss_default_run(device: str | None = None, extra: tuple = ()) -> dict:
    """Peak resident memory of `python -m core run --no-store --quiet` (the default config) in a fresh
    process, from the rusage of a small wrapper's child (see _RSS_WRAPPER)."""
    cmd = [sys.executable, "-m", "core", "run", "--no-store", "--quiet", *extra]
    if device:
        cmd += ["--device", device]
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _RSS_WRAPPER, *cmd], cwd=str(ROOT), capture_output=True,
                          text=True, env=os.environ.copy())
    kb = [int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("MAXRSS_KB")]
    scale = 1 if sys.platform == "darwin" else 1024     # ru_maxrss: bytes on macOS, KiB on Linux
    return {"command": " ".join(["python", *cmd[1:]]), "returncode": proc.returncode,
            "peak_rss_gb": (kb[-1] * scale / 1e9) if kb else float("nan"), "wall_s": time.perf_counter() - t,
            "stdout_tail": proc.stdout[-400:], "stderr_tail": proc.stderr[-400:]}


def repeat_latency(cfg) -> dict:
    """How long a repeated configuration takes to answer from the run store: in-process (the app's
    worker) and as a fresh `python -m core run` (interpreter start and imports included)."""
    from .store import RunStore
    from .training import run

    folder = Path(tempfile.mkdtemp(prefix="ftlab-bench-store-"))
    try:
        store = RunStore(folder / "runs.sqlite")
        run(cfg, store=store)                          # the first time: trains and stores
        t = time.perf_counter()
        hit = run(cfg, store=store)
        in_process = time.perf_counter() - t
        cmd = [sys.executable, "-m", "core", "--store", str(folder / "runs.sqlite"), "run", "--quiet",
               "--task", cfg.task, "--size", str(cfg.size), "--strategy", cfg.strategy, "--epochs", str(cfg.epochs)]
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True, env=os.environ.copy())
        cli = time.perf_counter() - t
        return {"in_process_s": in_process, "cli_s": cli, "cached": hit.cached,
                "cli_cached": "from the run store" in proc.stdout, "strategy": cfg.strategy, "size": cfg.size}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


OP_GROUPS = (
    ("matmul (linear/addmm/mm/bmm)", ("addmm", "aten::mm", "bmm", "matmul", "linear", "mkldnn")),
    ("attention (SDPA)", ("attention", "sdpa", "_scaled_dot")),
    ("optimizer (AdamW)", ("adam", "_foreach", "optimizer")),
    ("layer norm", ("layer_norm",)),
    ("GELU / softmax / dropout", ("gelu", "softmax", "dropout", "bernoulli", "random_")),
    ("embedding", ("embedding",)),
    ("copies / casts / fills", ("copy_", "to_copy", "aten::to", "fill_", "zero_", "clone", "contiguous", "cat")),
)


def profile_full(device: str = "auto", size: int = 64) -> dict:
    """torch.profiler over the training stage of a small full fine-tuning run (started and stopped from
    the run's own progress events). Self time per op group, and the share the profiler cannot place."""
    from torch.profiler import ProfilerActivity, profile

    from .training import run

    cfg = bench_config("full", size, device, eval_size=50, general_size=SCALING_GENERAL_SIZE).replace(epochs=1)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    prof = profile(activities=acts)
    state = {"on": False, "t0": 0.0, "t1": 0.0}

    def on_progress(ev):
        if ev["stage"] == "training" and not state["on"]:
            state["on"], state["t0"] = True, time.perf_counter()
            prof.start()
        elif ev["stage"] != "training" and state["on"] and not state["t1"]:
            prof.stop()
            state["t1"] = time.perf_counter()

    result = run(cfg, on_progress=on_progress, store=None)
    if state["on"] and not state["t1"]:
        prof.stop()
        state["t1"] = time.perf_counter()
    wall = state["t1"] - state["t0"]
    groups = {name: 0.0 for name, _ in OP_GROUPS}
    other = 0.0
    top = []
    for evt in prof.key_averages():
        self_s = evt.self_cpu_time_total / 1e6
        key = evt.key.lower()
        if key.startswith("profilerstep") or key.startswith("[memory]"):
            continue
        top.append((evt.key, self_s, evt.count))
        for name, needles in OP_GROUPS:
            if any(nd in key for nd in needles):
                groups[name] += self_s
                break
        else:
            other += self_s
    top.sort(key=lambda r: -r[1])
    placed = sum(groups.values()) + other
    return {"config": f"full, size {size}, 1 epoch, batch {cfg.batch_size}", "wall_s": wall,
            "steps": math.ceil(result.size / cfg.batch_size), "groups": groups, "other_ops": other,
            "unattributed": max(0.0, wall - placed), "top": top[:12], "training_stage_s": result.timings["training"]}


# ---------------------------------------------------------------------------- fresh processes


def _side(side: str, cfg, params: int) -> dict:
    data = _Data(cfg)
    return (project_run if side == "project" else trainer_baseline)(cfg, data, params)


def in_fresh_process(fn, *args):
    """fn(*args) in a new interpreter. Every timed run gets one: a run leaves process-wide state behind
    (the lab's allocator setting, oneDNN's kernel caches, a grown heap) that would otherwise favour
    whichever side comes next. The interpreter's start-up and imports are not timed."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


# ---------------------------------------------------------------------------- CPU kernels, before and after

KERNEL_VARIANTS = (
    ("before: transformers' kernels (SDPA, torch dropout), AdamW's default on the CPU (a loop per tensor)",
     "sdpa", "loop", True),
    ("+ fused AdamW", "sdpa", "fused", True),
    ("+ the lab's CPU attention and dropout (the lab now)", "lab", "fused", True),
    ("for reference: the lab now with every dropout off (not used)", "lab", "fused", False),
)


def kernel_ab(device: str = "auto", steps: int = 40, size: int = 512, keep_memory: bool = False) -> dict | None:
    """Full fine-tuning steps (bf16 autocast, batch 16, R8) under each variant of KERNEL_VARIANTS,
    interleaved step by step on the same batches so that drift in the machine's speed hits all alike.
    CPU only: on CUDA the lab keeps transformers' kernels."""
    from torch import nn

    from .features import collate, length_grouped_batches
    from .kernels import cpu_kernels, keep_freed_memory
    from .models import EncoderClassifier, autocast, autocast_dtype, fresh_encoder, pick_device
    from .strategies import get_strategy

    dev = pick_device(device)
    if dev.type != "cpu":
        return None
    if keep_memory:
        keep_freed_memory()
    cfg = bench_config("full", size, device)
    data = _Data(cfg)
    dtype = autocast_dtype(dev, cfg.precision)
    lengths = np.array([len(t) for t in data.tok_train])
    batches = [collate(data.tok_train, idx, data.tokenizer.pad_token_id, dev)
               + (torch.from_numpy(data.y_train[idx]),)
               for idx in length_grouped_batches(lengths, cfg.batch_size, np.random.default_rng(0))]
    loss_fn = nn.CrossEntropyLoss()
    contexts = contextlib.ExitStack()
    variants = []
    with contexts:
        for label, attention, optim, dropout_on in KERNEL_VARIANTS:
            torch.manual_seed(cfg.seed)
            model = EncoderClassifier(fresh_encoder(cfg.model)[1], data.task.num_labels, None, cfg.pooling, cfg.dropout)
            groups = get_strategy("full").adapt(model, cfg)
            opt = torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8,
                                    **({"fused": True} if optim == "fused" else {"foreach": False}))
            if attention == "lab":
                contexts.enter_context(cpu_kernels(model, dev))
            if not dropout_on:
                for m in model.modules():
                    if isinstance(m, nn.Dropout):
                        m.p = 0.0
            params = [p for g in groups for p in g["params"]]
            variants.append({"label": label, "model": model, "opt": opt, "params": params, "times": []})

        def step(v, batch):
            ids, mask, target = batch
            v["model"].train()
            with autocast(dev, dtype):
                logits = v["model"](ids, mask)
            loss = loss_fn(logits.float(), target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(v["params"], 1.0)
            v["opt"].step()
            v["opt"].zero_grad(set_to_none=True)

        for v in variants:                 # warm-up: first-call allocations and oneDNN primitives
            for b in batches[:2]:
                step(v, b)
        tokens = 0
        for i in range(steps):
            b = batches[i % len(batches)]
            tokens += int(b[1].sum())
            order = variants[i % len(variants):] + variants[:i % len(variants)]   # rotate who goes first
            for v in order:
                t = time.perf_counter()
                step(v, b)
                v["times"].append(time.perf_counter() - t)
    base = float(np.sum(variants[0]["times"]))
    rows = [{"label": v["label"], "ms_per_step": 1000 * float(np.mean(v["times"])),
             "tokens_per_s": tokens / float(np.sum(v["times"])), "speedup": base / float(np.sum(v["times"]))}
            for v in variants]
    return {"steps": steps, "batch_size": cfg.batch_size, "rows": rows}


# ---------------------------------------------------------------------------- scaling


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
    from .training import run

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
    from .data import eval_subset, load_task
    from .features import tokenize
    from .models import EncoderClassifier, autocast_dtype, load_base, pick_device
    from .training import predict

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


# ---------------------------------------------------------------------------- GPU


def encoder_throughput(device, config=None, batch: int = 64, seq: int = 128, steps: int = 10,
                       warmup: int = 3) -> dict:
    """Examples/s and TFLOP/s of a BERT-base-sized encoder (random weights, built from BertConfig):
    a training step (bf16 autocast, AdamW) and a forward pass. Meant for CUDA; runs anywhere."""
    from transformers import BertConfig, BertModel

    device = torch.device(device)
    config = config or BertConfig()      # bert-base: 12 layers, hidden 768, 110 M parameters
    torch.manual_seed(0)
    model = BertModel(config, add_pooling_layer=False).to(device)
    params = non_embedding_params(model)
    ids = torch.randint(0, config.vocab_size, (batch, seq), device=device)
    mask = torch.ones_like(ids)
    dtype = torch.bfloat16 if (device.type != "cuda" or torch.cuda.is_bf16_supported()) else torch.float16
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, **({"fused": True} if device.type == "cuda" else {}))

    def train_step():
        with torch.autocast(device.type, dtype=dtype):
            loss = model(input_ids=ids, attention_mask=mask).last_hidden_state.float().pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def timed(fn, n):
        for _ in range(warmup):
            fn()
        sync(device)
        t = time.perf_counter()
        for _ in range(n):
            fn()
        sync(device)
        return (time.perf_counter() - t) / n

    model.train()
    step_s = timed(train_step, steps)
    model.eval()

    @torch.inference_mode()
    def forward():
        with torch.autocast(device.type, dtype=dtype):
            model(input_ids=ids, attention_mask=mask)

    fwd_s = timed(forward, steps)
    tokens = batch * seq
    out = {"device": str(device), "dtype": str(dtype).replace("torch.", ""), "batch": batch, "seq": seq,
           "non_embedding_params": params, "train_step_s": step_s, "train_ex_s": batch / step_s,
           "train_tflops": 6 * params * tokens / step_s / 1e12, "forward_s": fwd_s, "forward_ex_s": batch / fwd_s,
           "forward_tflops": 2 * params * tokens / fwd_s / 1e12}
    del model, opt
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


# ---------------------------------------------------------------------------- report


def _median(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return float(np.median(vals)) if vals else None


def summarise(runs: dict) -> dict:
    """Medians per (strategy, side) and the project/Trainer ratios."""
    summary = {}
    for strategy, sides in runs.items():
        s = {}
        for side, rows in sides.items():
            if not rows:
                continue
            keys = ("train_s", "eval_s", "general_s", "setup_s", "total_s", "acc", "train_ex_s", "eval_ex_s",
                    "flops_s", "train_pad", "eval_pad")
            med = {k: _median(rows, k) for k in keys}
            med["train_eval_s"] = float(np.median([r["train_s"] + r["eval_s"] for r in rows]))
            med["n"] = len(rows)
            med["trainable"] = rows[0]["trainable"]
            med["precision"] = rows[0]["precision"]
            s[side] = med
        if "project" in s and "trainer" in s:
            s["ratio"] = s["project"]["train_eval_s"] / s["trainer"]["train_eval_s"]
            s["acc_delta"] = s["project"]["acc"] - s["trainer"]["acc"]
        summary[strategy] = s
    return summary


def goals(summary: dict, peaks: dict, rss: dict | None, repeat: dict | None = None) -> list[dict]:
    out = []

    def add(name, target, value, met, shown, miss=""):
        out.append({"goal": name, "target": target, "value": value, "met": met, "shown": shown, "miss": miss})

    # The engine's own budget (512 examples, 3 epochs, in-domain evaluation and general benchmark included).
    for strategy, limit in (("full", 60.0), ("feature-extraction", 15.0)):
        p = summary.get(strategy, {}).get("project")
        if p and p.get("total_s") is not None:
            t = p["total_s"]
            add(f"{LABEL[strategy]}: one whole run (training, evaluation, general benchmark)"
                + (", warm feature cache" if strategy == "feature-extraction" else ""),
                f"≤ {limit:.0f} s", t, t <= limit, f"{t:.1f} s", "" if t <= limit else f"{t - limit:.1f} s over")
    if repeat:
        t = repeat["in_process_s"]
        add("a repeated configuration, answered from the run store (in process)", "≤ 1 s", t,
            t <= 1.0 and repeat["cached"], f"{t:.3f} s", "" if t <= 1.0 else f"{t - 1:.2f} s over")

    for strategy, limit in (("full", 0.5), ("lora", 0.5), ("feature-extraction", 0.1)):
        s = summary.get(strategy, {})
        if "ratio" in s:
            r = s["ratio"]
            add(f"{LABEL[strategy]}: project/Trainer, training+evaluation wall"
                + (" (warm feature cache)" if strategy == "feature-extraction" else ""),
                f"≤ {limit}", r, r <= limit, f"{r:.3f}",
                "" if r <= limit else f"{r / limit:.2f}x the target ({(r - limit) * s['trainer']['train_eval_s']:.1f} s too slow)")
    for strategy in STRATEGIES:
        s = summary.get(strategy, {})
        if "acc_delta" in s:
            d = 100 * s["acc_delta"]
            add(f"{LABEL[strategy]}: in-domain accuracy vs Trainer", "≥ Trainer − 1 point", d, d >= -1.0,
                f"{100 * s['project']['acc']:.1f} vs {100 * s['trainer']['acc']:.1f} ({d:+.1f} points)",
                "" if d >= -1.0 else f"{-1.0 - d:.1f} points short")
    full = summary.get("full", {}).get("project")
    peak = peaks["peak"].get("bf16")
    if full and full.get("flops_s") and peak and math.isfinite(peak):
        frac = full["flops_s"] / (peak * 1e9)
        add("full fine-tuning: training FLOP/s share of the bf16 matmul peak", "≥ 40 %", frac, frac >= 0.4,
            f"{100 * frac:.1f} % ({full['flops_s'] / 1e9:.0f} of {peak:.0f} GFLOP/s)",
            "" if frac >= 0.4 else f"{100 * (0.4 - frac):.1f} points short ({0.4 / frac:.2f}x faster needed)")
    if rss:
        gb = rss["peak_rss_gb"]
        ok = gb <= RSS_LIMIT_GB and rss["returncode"] == 0
        add("peak resident memory of the default run", f"≤ {RSS_LIMIT_GB} GB", gb, ok,
            f"{gb:.2f} GB" + ("" if rss["returncode"] == 0 else f" (run failed, rc {rss['returncode']})"),
            "" if ok else f"{gb - RSS_LIMIT_GB:.2f} GB over")
    return out


def _f(x, spec=".1f", none="–"):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return none
    return format(x, spec)


def why_missed(goal: str, ctx: dict) -> str:
    """Why a goal was missed, in the measured figures of this invocation."""
    try:
        return _why_missed(goal, ctx)
    except (KeyError, TypeError, ZeroDivisionError):     # a partial context (a smoke test): no reason given
        return ""


def _floor(strategy: str, ctx: dict) -> str:
    """How much of the lab's training+evaluation time its counted matmul work needs at the measured
    peak, and what a ratio of 0.5 would leave for everything else."""
    run = ctx["runs"][strategy]["project"][0]
    peak = (ctx["peaks"]["peak"].get("bf16") or math.nan) * 1e9
    if not math.isfinite(peak) or not run.get("flops_train"):
        return ""
    p, t = ctx["summary"][strategy]["project"], ctx["summary"][strategy]["trainer"]
    work = run["flops_train"] + run["flops_eval"]
    floor, budget = work / peak, 0.5 * t["train_eval_s"]
    return (f" At the best measured bf16 matmul rate ({peak / 1e9:.0f} GFLOP/s), the lab's counted matmul work "
            f"alone (steps, validation, train-accuracy and test passes: {work / 1e12:.1f} TFLOP) takes {floor:.1f} s "
            f"of its {p['train_eval_s']:.1f} s; a ratio of 0.5 ({budget:.1f} s) would leave {budget - floor:.1f} s "
            f"for everything else (dropout, softmax, layer norm, GELU, AdamW, casts, Python), which takes "
            f"{p['train_eval_s'] - floor:.1f} s now.")


def _why_missed(goal: str, ctx: dict) -> str:
    summary, prof = ctx["summary"], ctx.get("profile") or {}
    shares = {k: v / prof["wall_s"] for k, v in prof.get("groups", {}).items()} if prof.get("wall_s") else {}
    matmul = shares.get("matmul (linear/addmm/mm/bmm)")
    if "project/Trainer" in goal:
        strategy = "full" if goal.startswith(LABEL["full"]) else "lora"
        p, t = summary[strategy]["project"], summary[strategy]["trainer"]
        rows = (ctx.get("kernels") or {}).get("rows") or []
        kernel_gain = (f"{rows[2]['speedup'] / rows[1]['speedup']:.2f}x faster than transformers' own with the same fused AdamW"
                       if len(rows) >= 3 else "faster")
        speed = (f"its training stage runs at {p['flops_s'] / 1e9:.0f} counted GFLOP/s to the Trainer's "
                 f"{t['flops_s'] / 1e9:.0f} (x{p['flops_s'] / t['flops_s']:.2f}), " if p.get("flops_s") and t.get("flops_s")
                 else "")
        return ("Both sides do the same arithmetic on the same tokens with the same matmul kernels; a ratio of 0.5 "
                "means doing it at twice the Trainer's speed. The lab gets there part of the way: " + speed
                + f"it pads {100 * p['train_pad']:.1f} % of training and {100 * p['eval_pad']:.1f} % of evaluation "
                f"tokens to the Trainer's {100 * t['train_pad']:.1f} % / {100 * t['eval_pad']:.1f} %, and its CPU "
                "attention and dropout kernels make a step " + kernel_gain + " (see 'What the CPU kernels buy'). What is left is the "
                "same for both: the block matmuls"
                + (f" ({100 * matmul:.0f} % of the lab's profiled training stage)" if matmul else "")
                + ", the AdamW update and bf16 casts of every weight each step. The lab's training stage also "
                "predicts the whole training set once for its train accuracy, which the Trainer does not."
                + _floor(strategy, ctx))
    if "share of the bf16 matmul peak" in goal:
        parts = ", ".join(f"{k} {100 * v:.0f} %" for k, v in sorted(shares.items(), key=lambda kv: -kv[1])
                          if v >= 0.02)
        return ("At hidden size 384 the GEMMs are small (about 1,300 tokens x 384 x 384 for q/k/v/out at batch 16) "
                "and the backward's transposed products run below the square-matrix peak; the time outside "
                "matmuls has no counted FLOPs: the AdamW update of 22.7 M parameters (the embeddings included, "
                "which the count leaves out), bf16 casts of weights and activations, dropout masks, layer norm "
                "and GELU, and per-step host work. Profile of the training stage: " + (parts or "not run") + ".")
    return ""


def render(ctx: dict) -> str:
    facts, peaks, summary = ctx["facts"], ctx["peaks"], ctx["summary"]
    L = []
    w = L.append
    w("# Performance: the lab against Hugging Face Trainer, and against the machine")
    w("")
    w(f"Generated by `{ctx['command']}` on {ctx['date']} in {ctx['bench_s'] / 60:.1f} min. "
      "Do not edit by hand: run the command again.")
    if ctx["quick"]:
        w("")
        w(f"**Quick mode (smoke test):** one repeat, at most {QUICK['size']} training examples, "
          f"{QUICK['eval_size']} test texts, a general benchmark of {QUICK['general_size']} sentences per task "
          "and a small scaling sweep; figures are indicative only.")
    w("")
    w("## Machine")
    w("")
    v = facts["versions"]
    la0 = facts.get("load_avg_start")
    la1 = facts.get("load_avg_end")
    w("| | |")
    w("|---|---|")
    w(f"| CPU | {facts['cpu']} |")
    w(f"| cores | {facts['logical_cores']} logical, {facts['usable_cores']} usable by this process |")
    w(f"| torch threads | {facts['torch_threads']} intra-op, {facts['torch_interop_threads']} inter-op |")
    w(f"| bf16 on this CPU | avx512_bf16: {facts['avx512_bf16']}, AMX: {facts['amx']}, oneDNN bf16: {facts['mkldnn_bf16']} |")
    if facts.get("memory_gb"):
        w(f"| memory | {facts['memory_gb']:.1f} GB |")
    w(f"| device used | {facts['device']} |")
    w(f"| GPU | {facts['cuda'] or 'none available'} |")
    w(f"| versions | torch {v.get('torch')}, transformers {v.get('transformers')}, peft {v.get('peft', '–')}, "
      f"Python {v.get('python')} |")
    if la0:
        w(f"| load average (1/5/15 min) | start {la0[0]:.2f}/{la0[1]:.2f}/{la0[2]:.2f}"
          + (f", end {la1[0]:.2f}/{la1[1]:.2f}/{la1[2]:.2f}" if la1 else "")
          + (" (above the core count: other work shared the machine, timings are pessimistic)"
             if max(la0[0], (la1 or la0)[0]) > facts["usable_cores"] + 0.5 else "") + " |")
    w("")

    w("## Goals")
    w("")
    w("| goal | target | measured | met |")
    w("|---|---|---|---|")
    for g in ctx["goals"]:
        w(f"| {g['goal']} | {g['target']} | {g['shown']} | {'met' if g['met'] else 'NOT met: ' + g['miss']} |")
    missed = [g for g in ctx["goals"] if not g["met"]]
    if missed:
        w("")
        busy = max((facts.get("load_avg_start") or (0,))[0], (facts.get("load_avg_end") or (0,))[0])
        for g in missed:
            why = why_missed(g["goal"], ctx)
            if busy > facts["usable_cores"] + 0.5:
                why += (f" The machine was shared while this ran (load average up to {busy:.1f} on "
                        f"{facts['usable_cores']} cores): single runs swing several-fold, so rerun on a quiet "
                        "machine before reading this as a property of the code.")
            w(f"- **Not met: {g['goal']}** — {g['miss']}. {why}")
    w("")

    w("## Side by side: the lab's path against Trainer")
    w("")
    cfgs = ctx["configs"]
    w(f"Default model (all-MiniLM-L6-v2) and task (R8), {ctx['size']} training examples, {EPOCHS} epochs, "
      f"in-domain evaluation on the same {ctx['n_eval']} test texts, seed {ctx['seed']}; "
      f"median of {ctx['repeats']} repeat(s), the two sides alternating (which goes first swaps every repeat). "
      "Per strategy, both sides use the lab's defaults: "
      + "; ".join(f"{LABEL[s]}: lr {_f(c.lr, 'g')}, head lr {_f(c.head_lr, 'g')}, batch {c.batch_size}, "
                  f"max length {c.max_length}, warmup {c.warmup}, weight decay {c.weight_decay}"
                  for s, c in cfgs.items()) + ".")
    w("")
    w("| strategy | side | train s | eval s | train+eval s | general benchmark s | train ex/s | eval ex/s | "
      "in-domain acc | padding train / eval | training GFLOP/s | % bf16 peak | project/Trainer |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    peak = peaks["peak"].get("bf16")
    for strategy in STRATEGIES:
        s = summary.get(strategy, {})
        for side in ("project", "trainer"):
            m = s.get(side)
            if not m:
                continue
            name = "lab (warm feature cache)" if strategy == "feature-extraction" and side == "project" else (
                "lab" if side == "project" else "Trainer")
            fl = m.get("flops_s")
            pct = 100 * fl / (peak * 1e9) if fl and peak and math.isfinite(peak) else None
            w(f"| {LABEL[strategy]} | {name} | {_f(m['train_s'], '.2f')} | {_f(m['eval_s'], '.2f')} | "
              f"{_f(m['train_eval_s'], '.2f')} | {_f(m['general_s'], '.1f') if side == 'project' else 'none (Trainer has none)'} | "
              f"{_f(m['train_ex_s'], '.0f')} | {_f(m['eval_ex_s'], '.0f')} | {_f(100 * m['acc'], '.1f')} | "
              f"{_f(100 * m['train_pad'], '.1f')} % / {_f(100 * m['eval_pad'], '.1f')} % | "
              f"{_f(fl / 1e9 if fl else None, '.0f')} | {_f(pct, '.1f')} | "
              f"{_f(s.get('ratio'), '.3f') if side == 'project' else ''} |")
        if strategy == "feature-extraction" and ctx.get("fe_cold"):
            c = ctx["fe_cold"]
            tr = s.get("trainer", {}).get("train_eval_s")
            w(f"| {LABEL[strategy]} | lab, cold cache (once) | {_f(c['train_s'], '.2f')} | {_f(c['eval_s'], '.2f')} | "
              f"{_f(c['train_s'] + c['eval_s'], '.2f')} | {_f(c['general_s'], '.1f')} | {_f(c['train_ex_s'], '.0f')} | "
              f"{_f(c['eval_ex_s'], '.0f')} | {_f(100 * c['acc'], '.1f')} | – | – | – | "
              f"{_f((c['train_s'] + c['eval_s']) / tr if tr else None, '.3f')} |")
    w("")
    w("Set-up time, not in the table: the lab's loading + tokenizing stages "
      + ", ".join(f"{LABEL[s]} {_f(summary.get(s, {}).get('project', {}).get('setup_s'), '.2f')} s" for s in STRATEGIES)
      + "; the Trainer side's tokenizing + model + Trainer construction "
      + ", ".join(f"{LABEL[s]} {_f(summary.get(s, {}).get('trainer', {}).get('setup_s'), '.2f')} s" for s in STRATEGIES)
      + ". The lab's whole `run()` (loading to general benchmark, median): "
      + ", ".join(f"{LABEL[s]} {_f(summary.get(s, {}).get('project', {}).get('total_s'), '.1f')} s" for s in STRATEGIES)
      + ".")
    w("")
    w("What each side does, so the comparison is fair:")
    w("")
    w("- **Same model.** Both train the lab's `EncoderClassifier` (all-MiniLM-L6-v2, masked-mean pooling, "
      "dropout, linear head); the Trainer gets it wrapped in a module whose forward returns the "
      "cross-entropy loss. Same training sample, validation set (200 texts), test subset, seed, "
      "max length, batch size.")
    w("- **Same optimisation.** AdamW (β 0.9/0.999, ε 1e-8) with the same parameter groups (encoder at lr, "
      "the head at its own head lr, no weight decay on biases and norms), passed to Trainer with "
      "`optimizers=(opt, sched)`; the same linear warm-up (10 %) and linear decay schedule object; gradient "
      "clipping at 1.0 on both sides (none for feature extraction, as in the lab).")
    w("- **Trainer's best options here.** bf16 autocast where the device supports it (`bf16=True`), "
      "`train_sampling_strategy=\"group_by_length\"` (transformers 5's replacement for `group_by_length`; it "
      "also length-groups evaluation batches), `DataCollatorWithPadding`, fused AdamW (Trainer's default "
      "`optim=\"adamw_torch_fused\"`), evaluation batch "
      f"{ctx.get('eval_batch', 32)} (as the lab's), `dataloader_num_workers=0` (workers would compete for 2 cores), "
      "`save_strategy=\"no\"`, `logging_strategy=\"no\"`, `report_to=\"none\"`, no progress bar.")
    w("- **Kernels.** The Trainer side runs the model as transformers builds it: SDPA attention and torch's "
      "dropout. On the CPU the lab trains with its own attention and dropout kernels (`core/kernels.py`: the "
      "same computation, cheaper there) and keeps freed memory for reuse (glibc's `mallopt`; see 'What the "
      "CPU kernels buy'); this is part of what the ratio measures. Every timed run, either side, runs in a fresh "
      "interpreter (start-up and imports untimed), so neither inherits the other's process state. The lab's in-domain predictions (the per-epoch validation, the train accuracy and the test set) run its own "
      "attention too, in eval mode; its general benchmark runs SDPA, as the pre-trained reference it is compared to did.")
    w("- **Same work in each timed stage.** Training: the optimiser steps plus one validation pass per epoch "
      "(`eval_strategy=\"epoch\"` on the Trainer, the lab's own curves); the lab's training stage also "
      "predicts the training set once for its train accuracy, which the Trainer does not. Evaluation: "
      "prediction on the test subset.")
    w("- **LoRA**: both sides use peft `get_peft_model` (r 8, α 16, dropout 0.1, query/value) with "
      "`modules_to_save=[\"head\"]`.")
    w("- **Feature extraction**: the Trainer baseline freezes the encoder (`requires_grad=False`) and trains "
      "the head with an encoder forward at every step (in train mode, so encoder dropout is active), which is "
      "what a plain user does; the lab reads pooled features from its on-disk cache. *Warm*: features already "
      "cached (every repeat after the first run); *cold*: the first run in an empty FTLAB_HOME, whose training "
      "stage computes the training, validation and test features, and whose general-benchmark stage fits the "
      "pre-trained probes. Feature extraction uses the same 3 epochs as the other strategies here (the lab's "
      "own default is 30).")
    w(f"- **General benchmark**: only the lab has one (4 tasks × 2×{cfgs['full'].general_size:,} sentences, "
      "fixed and refitted probes); "
      "its time is reported apart and left out of the ratio. The Trainer has no equivalent.")
    w("- Padding: tokens spent on padding as a share of all tokens in the batches actually formed (lab: its "
      "length-grouped batch plan; Trainer: counted in the collator). Feature extraction's warm path forwards "
      "no tokens.")
    w("")

    w("## The limit: matmul peak and achieved FLOP/s")
    w("")
    w("`torch.matmul` best of several timed trials, in this invocation:")
    w("")
    w("| shape (m×k×n) | fp32 GFLOP/s | bf16 GFLOP/s |")
    w("|---|---|---|")
    for label in peaks["shapes"]["fp32"]:
        w(f"| {label} | {_f(peaks['shapes']['fp32'][label], '.0f')} | {_f(peaks['shapes']['bf16'][label], '.0f')} |")
    w(f"| **peak (best shape)** | **{_f(peaks['peak']['fp32'], '.0f')}** | **{_f(peaks['peak']['bf16'], '.0f')}** |")
    w("")
    w("Achieved FLOP/s = counted FLOPs / training-stage seconds, with P = non-embedding (transformer-block) "
      f"parameters = {ctx['params'] / 1e6:.2f} M, T = real (non-pad) tokens; padding is waste and is not counted. "
      "Attention's seq² terms are left out (≈ 3-6 % at these lengths), so the figures are slight under-estimates.")
    w("")
    for k in ("full", "lora", "feature-extraction"):
        w(f"- {LABEL[k]} training: {FLOP_FORMULAS[k]}" + (" (Trainer baseline: the frozen encoder's forward)"
                                                         if k == "feature-extraction" else ""))
    w(f"- plus the forward passes each training stage also runs: {FLOP_FORMULAS['forward']} over the validation "
      "tokens once per epoch, and (lab only) the training tokens once for train accuracy.")
    w(f"- P_tr = trainable parameters in the encoder (LoRA: {ctx.get('lora_trainable', 0):,} adapter weights).")
    w("")
    prof = ctx.get("profile")
    if prof:
        w("## Where the time goes (lab, full fine-tuning)")
        w("")
        w(f"torch.profiler over the training stage of one small run ({prof['config']}, {prof['steps']} steps, "
          f"{prof['wall_s']:.2f} s under the profiler, {prof['training_stage_s']:.2f} s stage time as the run "
          "measured it). Self time per group of ops:")
        w("")
        w("| group | s | share of profiled wall |")
        w("|---|---|---|")
        rows = sorted(prof["groups"].items(), key=lambda kv: -kv[1]) + [("other ops", prof["other_ops"]),
                                                                       ("not in any op (Python, host)", prof["unattributed"])]
        for name, sec in rows:
            w(f"| {name} | {sec:.2f} | {100 * sec / prof['wall_s']:.1f} % |")
        w("")
        w("Top ops by self time: " + ", ".join(f"`{k}` {s:.2f} s ({c}×)" for k, s, c in prof["top"][:8]) + ".")
        w("")

    kab = ctx.get("kernels")
    if kab:
        w("## What the CPU kernels buy (before and after)")
        w("")
        w(f"Full fine-tuning steps (R8, batch {kab['batch_size']}, bf16 autocast, gradient clipping, AdamW), "
          f"{kab['steps']} steps per variant on the same batches, the variants interleaved step by step so that "
          "drift in the machine's speed hits all of them alike. Before `core/kernels.py` the lab ran the first row.")
        w("")
        kept = kab.get("kept") or [None] * len(kab["rows"])
        base_ms = kab["rows"][0]["ms_per_step"]
        w("Two fresh processes: glibc's allocator as it comes, and with freed memory kept for reuse "
          "(`kernels.keep_freed_memory()`, which the lab's runs switch on).")
        w("")
        w("| variant | ms per step, allocator as it comes | ms per step, freed memory kept | "
          "speed-up over the first cell |")
        w("|---|---|---|---|")
        for r, k in zip(kab["rows"], kept):
            w(f"| {r['label']} | {r['ms_per_step']:.0f} | {_f(k and k['ms_per_step'], '.0f')} | "
              f"{base_ms / r['ms_per_step']:.2f}x / {_f(k and base_ms / k['ms_per_step'], '.2f')}x |")
        w("")
        w("The lab now runs the third row's last column. Why: at ~80 tokens per text, torch's fused CPU attention "
          "is slow in its backward; the plain matmul-softmax-matmul form is cheaper at these lengths, all the more "
          "with its (batch, heads, length, length) scores scaled and masked in place in bf16. torch's dropout draws "
          "one Mersenne-Twister number per element with `bernoulli_`; the lab's takes 64-bit words from numpy's "
          "SFC64 generator (seeded from torch's) and uses 16 bits per element, the same Bernoulli mask (p to "
          "1/65,536) at a fraction of the cost. The last row is what dropout still costs. The allocator: glibc "
          "serves large blocks with mmap and returns them on free, so each step page-faults its activations and "
          "gradients in afresh (the 47 MB word-embedding gradient included); with mmap off and the heap top kept, "
          "they are reused.")
        w("")

    rep = ctx.get("repeat")
    if rep:
        w("## A repeated run")
        w("")
        w(f"The same configuration a second time ({rep['strategy']}, n={rep['size']}) is answered from the run "
          f"store: **{rep['in_process_s']:.3f} s** inside a running process (the app's worker; cached="
          f"{rep['cached']}), {rep['cli_s']:.1f} s as a fresh `python -m core run` including interpreter start "
          f"and the torch/transformers imports (cached={rep['cli_cached']}). Goal: at most 1 s.")
        w("")

    rss = ctx.get("rss")
    w("## Memory")
    w("")
    if rss:
        w(f"Peak resident set size of `{rss['command']}` (the default configuration: full fine-tuning, 256 "
          f"examples, evaluation and general benchmark) in a fresh process, from that child's own rusage: "
          f"**{rss['peak_rss_gb']:.2f} GB** (goal ≤ {RSS_LIMIT_GB} GB; the run took {rss['wall_s']:.0f} s"
          + (f"; it FAILED with return code {rss['returncode']}: {rss['stderr_tail']}" if rss["returncode"] else "")
          + ").")
    else:
        w("Not measured in this invocation.")
    w("")

    sc, ev = ctx.get("scaling"), ctx.get("evals")
    if sc:
        w("## Cost against work")
        w("")
        w(f"Training-stage time against training-set size, one run per size, {SCALING_EPOCHS} epoch, "
          f"{SCALING_EVAL_SIZE} test texts and the smallest general benchmark (these stages are not part of the "
          "figure); evaluation time against evaluation-set size through the lab's `predict` (batch "
          f"{ctx.get('eval_batch', 32)}, length-sorted), one pass each. Slope = fitted exponent of time ∝ size^slope on log-log axes, over "
          "all sizes and over the largest three (the large-size slope is the one that shows super-linear growth; "
          "at small sizes fixed costs such as the validation pass flatten the curve).")
        w("")
        w(f"![scaling]({ctx['png_name']})")
        w("")
        sizes = sorted({n for s in sc.values() for n in s})
        w("| strategy | " + " | ".join(f"n={n}" for n in sizes) + " | slope (all) | slope (largest 3) |")
        w("|---|" + "---|" * (len(sizes) + 2))
        slopes = {}
        for strategy, field, label in (("full", "train_s", "full fine-tuning"), ("lora", "train_s", "LoRA r8"),
                                       ("feature-extraction", "cold_train_s", "feature extraction, cold"),
                                       ("feature-extraction", "train_s", "feature extraction, warm")):
            pts = sorted((n, v[field]) for n, v in sc.get(strategy, {}).items() if field in v)
            if not pts:
                continue
            x, y = zip(*pts)
            s_all, s_top = loglog_slope(x, y), loglog_slope(x[-3:], y[-3:])
            slopes[label] = (s_all, s_top)
            w(f"| {label} | " + " | ".join(_f(dict(pts).get(n), ".2f") for n in sizes)
              + f" | {_f(s_all, '.2f')} | {_f(s_top, '.2f')} |")
        if ev:
            pts = sorted((n, v["eval_s"]) for n, v in ev.items())
            x, y = zip(*pts)
            s_all, s_top = loglog_slope(x, y), loglog_slope(x[-3:], y[-3:])
            slopes["evaluation"] = (s_all, s_top)
            w("")
            w("| evaluation texts | " + " | ".join(str(n) for n in x) + " | slope (all) | slope (largest 3) |")
            w("|---|" + "---|" * (len(x) + 2))
            w("| evaluation s | " + " | ".join(f"{t:.2f}" for t in y) + f" | {s_all:.2f} | {s_top:.2f} |")
        w("")
        fast = [k for k, (a, t) in slopes.items() if math.isfinite(t) and t > 1.15]
        if fast:
            w("**Faster than linear** (largest-3 slope above 1.15): " + ", ".join(
                f"{k} ({slopes[k][1]:.2f})" for k in fast) + ". Check before relying on large sizes.")
        else:
            w("Nothing grows faster than linearly: every largest-3 slope is ≤ 1.15 (1.0 = linear; the "
              "tolerance covers timing noise on a shared machine).")
        w("")

    w("## GPU")
    w("")
    gpu = ctx.get("gpu")
    if gpu:
        w(f"Base-size encoder throughput (BERT-base config, random weights, batch {gpu['batch']} × seq {gpu['seq']}, "
          f"{gpu['dtype']} autocast, {gpu['device']}): training step {gpu['train_step_s'] * 1000:.0f} ms "
          f"({gpu['train_ex_s']:.0f} ex/s, {gpu['train_tflops']:.1f} TFLOP/s), forward "
          f"{gpu['forward_s'] * 1000:.0f} ms ({gpu['forward_ex_s']:.0f} ex/s, {gpu['forward_tflops']:.1f} TFLOP/s).")
    else:
        w("**No GPU was available to this benchmark; no CUDA figure here is measured.** The bench runs on CUDA "
          "unchanged (`RunConfig.device` `auto` picks it; `FTLAB_BENCH_DEVICE=cuda` forces it): it synchronises "
          "the device before reading every timer, the lab's training uses fused AdamW there and so does the "
          "Trainer baseline's optimiser, and a throughput test of a BERT-base-sized encoder (random weights, "
          "batch 64 × seq 128, bf16 autocast, training step and forward) runs when CUDA is present; it was "
          "skipped here.")
    w("")
    w("## Bench stages")
    w("")
    w("| stage | s |")
    w("|---|---|")
    for k, sec in ctx["stage_s"].items():
        w(f"| {k} | {sec:.1f} |")
    w(f"| **total** | **{ctx['bench_s']:.1f}** |")
    w("")
    return "\n".join(L)


# ---------------------------------------------------------------------------- main


def main(args) -> dict:
    """Run the whole benchmark and write the report; returns the context it rendered."""
    from .models import eval_batch_size, load_base

    t_bench = time.perf_counter()
    quick = bool(getattr(args, "quick", False))
    repeats = 1 if quick else max(1, int(getattr(args, "repeats", 3)))
    size = int(getattr(args, "size", 512))
    small = {}
    if quick:   # a smoke test must be quick on a busy 2-core machine: fewer examples and evaluation texts
        size = min(size, QUICK["size"])
        small = {"eval_size": QUICK["eval_size"], "general_size": QUICK["general_size"]}
    out_path = Path(getattr(args, "out", None) or "docs/PERFORMANCE.md")
    device = getattr(args, "device", None) or os.environ.get("FTLAB_BENCH_DEVICE") or "auto"
    do_scaling = not getattr(args, "no_scaling", False)
    if sys.argv[1:2] == ["bench"]:
        command = " ".join(["python -m core bench", *sys.argv[2:]])
    else:
        command = f"python -m core bench --repeats {repeats} --size {size} --out {out_path}" + (" --quick" if quick else "")
    stage_s = {}

    old_home = os.environ.get("FTLAB_HOME")
    home = Path(tempfile.mkdtemp(prefix="ftlab-bench-"))
    os.environ["FTLAB_HOME"] = str(home / "lab")
    try:
        from .models import pick_device

        dev = pick_device(device)
        facts = machine_facts(dev)
        _log(f"{facts['cpu']}, {facts['usable_cores']} cores, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads, device {dev}")

        t = time.perf_counter()
        peaks = measure_peaks(dev, quick)
        stage_s["matmul peak"] = time.perf_counter() - t
        _log(f"matmul peak: fp32 {peaks['peak']['fp32']:.0f}, bf16 {peaks['peak']['bf16']:.0f} GFLOP/s")

        configs = {s: bench_config(s, size, device, **small) for s in STRATEGIES}
        runs = {s: {"project": [], "trainer": []} for s in STRATEGIES}

        # cold feature cache: the very first run in an empty FTLAB_HOME
        t = time.perf_counter()
        fe_cfg = configs["feature-extraction"]
        data = {}
        data["feature-extraction"] = _Data(fe_cfg)
        params = non_embedding_params(load_base(fe_cfg.model)[1])
        fe_cold = in_fresh_process(_side, "project", fe_cfg, params)
        stage_s["feature extraction, cold cache"] = time.perf_counter() - t
        _log(f"feature extraction cold: train {fe_cold['train_s']:.2f}s eval {fe_cold['eval_s']:.2f}s "
             f"general {fe_cold['general_s']:.1f}s")
        for s in STRATEGIES:
            data.setdefault(s, _Data(configs[s]))

        t = time.perf_counter()
        for rep in range(repeats):
            for s in STRATEGIES:
                order = ("project", "trainer") if rep % 2 == 0 else ("trainer", "project")
                for side in order:
                    r = in_fresh_process(_side, side, configs[s], params)
                    runs[s][side].append(r)
                    _log(f"repeat {rep + 1}/{repeats} {s} {side}: train {r['train_s']:.2f}s eval {r['eval_s']:.2f}s "
                         f"acc {r['acc']:.3f}")
        stage_s[f"side by side ({repeats} repeat(s) x 3 strategies x 2 sides)"] = time.perf_counter() - t
        summary = summarise(runs)

        t = time.perf_counter()
        rss = peak_rss_default_run(None if device == "auto" else device)
        stage_s["peak memory (default run, subprocess)"] = time.perf_counter() - t
        _log(f"peak RSS of the default run: {rss['peak_rss_gb']:.2f} GB (rc {rss['returncode']})")

        t = time.perf_counter()
        repeat = repeat_latency(configs["feature-extraction"])
        stage_s["repeat from the run store"] = time.perf_counter() - t
        _log(f"repeat from the store: {repeat['in_process_s']:.3f}s in process, {repeat['cli_s']:.1f}s CLI")

        t = time.perf_counter()
        prof = profile_full(device)
        stage_s["profile (small full fine-tuning run)"] = time.perf_counter() - t

        t = time.perf_counter()
        ab_steps = 6 if quick else 40
        kernels = in_fresh_process(kernel_ab, device, ab_steps, size, False)
        if kernels:
            kernels["kept"] = in_fresh_process(kernel_ab, device, ab_steps, size, True)["rows"]
            _log("kernels: " + "; ".join(f"{r['label']}: {r['ms_per_step']:.0f} ms/step, {k['ms_per_step']:.0f} with "
                                         "freed memory kept" for r, k in zip(kernels["rows"], kernels["kept"])))
        stage_s["CPU kernels, interleaved A/B (two fresh processes)"] = time.perf_counter() - t

        scaling = evals = None
        png = out_path.parent / ("perf_scaling.png" if out_path.name == "PERFORMANCE.md" else f"{out_path.stem}_scaling.png")
        if do_scaling:
            t = time.perf_counter()
            scaling = scaling_sweep(SCALING_SIZES_QUICK if quick else SCALING_SIZES, device, home / "scaling")
            stage_s["scaling: training-set size"] = time.perf_counter() - t
            t = time.perf_counter()
            evals = eval_sweep(EVAL_SIZES_QUICK if quick else EVAL_SIZES, device)
            stage_s["scaling: evaluation-set size"] = time.perf_counter() - t
            plot_scaling(scaling, evals, png)

        gpu = None
        if dev.type == "cuda":
            t = time.perf_counter()
            gpu = encoder_throughput(dev)
            stage_s["GPU: BERT-base throughput"] = time.perf_counter() - t

        with contextlib.suppress(OSError):
            facts["load_avg_end"] = os.getloadavg()
        lora = summary.get("lora", {}).get("project", {})
        ctx = {
            "command": command.strip(), "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "quick": quick,
            "facts": facts, "peaks": peaks, "summary": summary, "runs": runs, "fe_cold": fe_cold,
            "goals": goals(summary, peaks, rss, repeat), "configs": configs, "size": size, "repeats": repeats,
            "n_eval": len(data["full"].test_idx), "seed": configs["full"].seed, "params": params,
            "lora_trainable": (lora.get("trainable") or 0) - _head_params(configs["lora"], data["lora"]),
            "profile": prof, "kernels": kernels, "eval_batch": eval_batch_size(dev), "rss": rss, "repeat": repeat, "scaling": scaling, "evals": evals, "png_name": png.name, "gpu": gpu,
            "stage_s": stage_s, "bench_s": time.perf_counter() - t_bench,
        }
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(render(ctx) + "\n" + kept_sections(out_path))
        _log(f"wrote {out_path} ({ctx['bench_s'] / 60:.1f} min)")
        print(console_summary(ctx))
        return ctx
    finally:
        if old_home is None:
            os.environ.pop("FTLAB_HOME", None)
        else:
            os.environ["FTLAB_HOME"] = old_home
        shutil.rmtree(home, ignore_errors=True)


def console_summary(ctx: dict) -> str:
    lines = [f"matmul peak: fp32 {ctx['peaks']['peak']['fp32']:.0f} GFLOP/s, bf16 {ctx['peaks']['peak']['bf16']:.0f} GFLOP/s"]
    for s in STRATEGIES:
        m = ctx["summary"].get(s, {})
        p, tr = m.get("project"), m.get("trainer")
        if p and tr:
            lines.append(f"{LABEL[s]:20s} lab train {p['train_s']:.2f}s eval {p['eval_s']:.2f}s acc {p['acc']:.3f} | "
                         f"Trainer train {tr['train_s']:.2f}s eval {tr['eval_s']:.2f}s acc {tr['acc']:.3f} | "
                         f"ratio {m['ratio']:.3f}")
    for g in ctx["goals"]:
        lines.append(f"[{'met' if g['met'] else 'NOT met'}] {g['goal']}: {g['shown']} (target {g['target']})")
    lines.append(f"bench took {ctx['bench_s']:.0f} s")
    return "\n".join(lines)
