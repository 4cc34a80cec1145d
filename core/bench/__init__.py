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

The package, one file per concern:
  harness.py     machine and device facts, matmul peak, FLOP counting, shared set-up, the project's side,
                 memory, profile, fresh processes, GPU throughput
  trainer.py     the Hugging Face Trainer baseline
  kernels_ab.py  the CPU kernels, before and after
  scaling.py     cost against work (training-set and evaluation-set size), slopes, the plot
  report.py      medians, goals, why a goal was missed, and the rendering of report.md (the template)
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

# main's parts, and every name the single-file core/bench.py had that anything uses (tests/test_bench.py
# reaches them as bench.NAME): re-exported, so `from core import bench` keeps working.
from .harness import (EPOCHS, FLOP_FORMULAS, LABEL, OP_GROUPS, QUICK, ROOT, RSS_LIMIT_GB, SCALING_GENERAL_SIZE,
                      STRATEGIES, _Data, _head_params, _log, bench_config, cpu_model, encoder_throughput,
                      in_fresh_process, machine_facts, matmul_gflops, measure_peaks, model_matmul_shapes,
                      non_embedding_params, peak_rss_default_run, profile_full, project_run, repeat_latency, sync,
                      train_flops)
from .kernels_ab import KERNEL_VARIANTS, kernel_ab
from .report import KEPT_BEGIN, KEPT_END, goals, kept_sections, render, summarise, why_missed
from .scaling import (EVAL_SIZES, EVAL_SIZES_QUICK, SCALING_EPOCHS, SCALING_EVAL_SIZE, SCALING_SIZES,
                      SCALING_SIZES_QUICK, eval_sweep, loglog_slope, plot_scaling, scaling_sweep)
from .trainer import CountingCollator, LossWrapper, trainer_baseline


# ---------------------------------------------------------------------------- main


def _side(side: str, cfg, params: int) -> dict:
    """One timed run of either side, from scratch (in_fresh_process runs it in a new interpreter)."""
    data = _Data(cfg)
    return (project_run if side == "project" else trainer_baseline)(cfg, data, params)


def main(args) -> dict:
    """Run the whole benchmark and write the report; returns the context it rendered."""
    from ..models import eval_batch_size, load_base

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
        from ..models import pick_device

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
