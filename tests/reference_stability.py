"""What makes the general benchmark's pre-trained reference differ between hosts?

Scores the pre-trained encoder on the general benchmark (fresh caches each time, so nothing is read
back) in child processes that differ in what a different host would change: the numeric precision
of the encoder pass (bf16 autocast / fp32), the CPU instruction set oneDNN may use
(ONEDNN_MAX_CPU_ISA: what a host without AVX512-BF16, or with AMX, would take), MKL's code path
(MKL_ENABLE_INSTRUCTIONS), and the thread count. Each child prints its per-task correct-sentence
bits; this script compares every variant with the default one of the same precision and writes
the counts of sentences that flipped, and the time of one encoder pass over the benchmark.

    python tests/reference_stability.py --json-out docs/perf/reference_stability.json
    python tests/reference_stability.py --against-presets    # the shipped presets against a live reference
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

VARIANTS = [   # (name, precision, extra environment, threads)
    ("fp32, default ISA", "fp32", {}, 2),
    ("fp32, oneDNN and MKL capped at AVX2", "fp32", {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}, 2),
    ("fp32, 1 thread", "fp32", {}, 1),
    ("bf16, default ISA", "bf16", {}, 2),
    ("bf16, oneDNN capped at AVX512_CORE (no bf16 instructions)", "bf16", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, 2),
    ("bf16, oneDNN capped at AVX2", "bf16", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, 2),
    ("bf16, 1 thread", "bf16", {}, 1),]


def child(precision: str, threads: int) -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    from core.benchmark import GeneralBenchmark
    from core.models import load_base, pick_device
    from core.model_registry import model_identity
    from core.config import RunConfig

    torch.set_num_threads(threads)
    cfg = RunConfig()
    tokenizer, base = load_base(cfg.model)
    device = pick_device("cpu")
    # bf16 asked for directly: a host whose oneDNN lacks native bf16 (capped at AVX2) still runs it, as
    # a host of another kind would
    bench = GeneralBenchmark(model_identity(cfg.model), tokenizer, device,
                             torch.bfloat16 if precision == "bf16" else None, cfg.general_size)
    start = time.perf_counter()
    _, ref = bench.reference(base)
    seconds = time.perf_counter() - start
    print(json.dumps({"score": ref.score, "seconds": seconds,
                      "correct": {k: v["correct"] for k, v in ref.per_task.items()}}))


def flips(a: dict, b: dict) -> int:
    from core.stats import unpack

    return int(sum((unpack(a[k]) != unpack(b[k])).sum() for k in a))


def against_presets() -> None:
    """The reference scored here, now, against the one every preset run carries: sentences apart."""
    import torch  # noqa: F401  (before core: the lab's own import order)

    sys.path.insert(0, str(ROOT))
    from core.presets import load_presets
    from core.config import RunConfig
    from core.plan import plan
    from core.training import load

    p = plan(RunConfig())
    cfg, env = p.config, load(p)
    _, live = env.benchmark.reference(env.base)
    live_bits = {k: v["correct"] for k, v in live.per_task.items()}
    presets, problems = load_presets()
    for preset in presets:
        apart = sorted({flips(live_bits, {k: v["correct"] for k, v in r.pretrained_general["per_task"].items()})
                        for r in preset.runs if r.config.get("general_size") == cfg.general_size
                        and set(r.pretrained_general["per_task"]) == set(live_bits)})
        print(f"{preset.name}: {len(preset.runs)} runs; live reference {100 * live.score:.4f} %; "
              f"sentences apart: {apart or 'no run on this benchmark'}")
    for problem in problems:
        print(problem)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json-out")
    ap.add_argument("--child", nargs=2)
    ap.add_argument("--against-presets", action="store_true",
                    help="compare the reference scored here with the one stored in every preset run")
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    if args.against_presets:
        against_presets()
        return
    sys.path.insert(0, str(ROOT))
    rows, base = [], {}
    for name, precision, extra, threads in VARIANTS:
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, **extra, "FTLAB_HOME": home, "OMP_NUM_THREADS": str(threads)}
            out = subprocess.run([sys.executable, __file__, "--child", precision, str(threads)], env=env,
                                 capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        base.setdefault(precision, r)
        row = {"variant": name, "precision": precision, "score": round(100 * r["score"], 4),
               "flipped_vs_default": flips(base[precision]["correct"], r["correct"]),
               "flipped_vs_fp32": flips(base["fp32"]["correct"], r["correct"]) if "fp32" in base else None,
               "seconds": round(r["seconds"], 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
