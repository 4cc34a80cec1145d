"""What every part of the bench shares: the machine and device facts, the matmul peak, FLOP counting,
the set-up of a measured run (bench_config, _Data), the project's side (project_run), peak memory,
the repeated-run latency, the profile, fresh processes, and the GPU throughput figure."""
from __future__ import annotations

import contextlib
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

STRATEGIES = ("feature-extraction", "full", "lora")
LABEL = {"feature-extraction": "feature extraction", "full": "full fine-tuning", "lora": "LoRA r8"}
EPOCHS = 3
QUICK = {"size": 128, "eval_size": 500, "general_size": 200}   # --quick: a smoke test, not a measurement
SCALING_GENERAL_SIZE = 50   # the smallest general benchmark the config allows (the profile, the scaling sweep)
RSS_LIMIT_GB = 2.5
ROOT = Path(__file__).resolve().parents[2]     # the repository: core/bench/harness.py -> .


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
    from ..models import cpu_has_fast_bf16
    from ..training import library_versions

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
    from ..models import encoder_layers

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
    from ..config import RunConfig

    changes.setdefault("epochs", EPOCHS)
    return RunConfig(strategy=strategy, size=size, device=device, **changes).resolved()


class _Data:
    """The task's texts, the run's training sample, test subset and validation set, tokenized."""

    def __init__(self, cfg):
        from ..data import curve_subset, eval_subset, load_task, sample_train
        from ..features import tokenize
        from ..models import load_base

        self.task = task = load_task(cfg.task)
        self.tokenizer, self.base = load_base(cfg.model)
        self.train_idx = sample_train(task, cfg.size, cfg.seed)
        self.test_idx = eval_subset(task, cfg.eval_size)
        self.train_texts = [task.train_texts[i] for i in self.train_idx]
        self.test_texts = [task.test_texts[i] for i in self.test_idx]
        self.y_train = task.train_labels[self.train_idx]
        self.y_test = task.test_labels[self.test_idx]
        self.tok_train = tokenize(self.tokenizer, self.train_texts, cfg.max_length)
        self.tok_val = tokenize(self.tokenizer, [task.val_texts[i] for i in curve_subset(task)], cfg.max_length)
        self.tok_test = tokenize(self.tokenizer, self.test_texts, cfg.max_length)

    def tokens(self, which: str) -> int:
        return int(sum(len(t) for t in getattr(self, f"tok_{which}")))


# ---------------------------------------------------------------------------- the project's side


def project_run(cfg, data: _Data, params: int) -> dict:
    """One run through core.training.run (no store); figures for the side-by-side table."""
    from ..features import length_grouped_batches, padding_fraction
    from ..training import run

    device = torch.device(cfg.device) if cfg.device != "auto" else None
    t = time.perf_counter()
    result = run(cfg, store=None)
    if device is not None:
        sync(device)
    wall = time.perf_counter() - t
    tm = result.timings
    n, epochs = result.size, cfg.epochs
    t_train, t_val, t_test = data.tokens("train"), data.tokens("val"), data.tokens("test")
    from ..models import eval_batch_size, pick_device

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
    from ..store import RunStore
    from ..training import run

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

    from ..training import run

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


def in_fresh_process(fn, *args):
    """fn(*args) in a new interpreter. Every timed run gets one: a run leaves process-wide state behind
    (the lab's allocator setting, oneDNN's kernel caches, a grown heap) that would otherwise favour
    whichever side comes next. The interpreter's start-up and imports are not timed."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


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
