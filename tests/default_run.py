"""The default run's stages, timed: `python -m core run --no-store --json` (full fine-tuning, R8, n=256,
3 epochs), caches warm, each in a fresh process. Writes docs/perf/default_run_<label>.json and, with
--doc, the kept section "default-run" of docs/PERFORMANCE.md (before and after, side by side).

    python tests/default_run.py --label after [--root CHECKOUT] [--repeats 3] [--before JSON] [--doc FILE]

Per repeat it records the process's wall time and peak memory, the run's own stage timings, the
time-left estimate the run started with against its real total, and the two intervals the cards
show (the general change's paired 95 % interval, the in-domain Wilson interval), so a reader sees
a speed-up was not bought with noise. --root runs another checkout's code with this interpreter.
Measure on an otherwise quiet machine: the load average is recorded at both ends.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from perf_doc import commit_of, cpu_name, save, write_kept

HERE = Path(__file__).resolve().parents[1]
STAGES = ("loading", "tokenizing", "training", "general_live", "evaluating", "general", "total")


def cpu_flags() -> str:
    flags = next((l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("flags")), "")
    have = [f for f in ("avx512_bf16", "amx_bf16") if f" {f}" in flags]
    return ", ".join(have) or "no bf16 instructions"


def one_run(root: Path, home: str, extra: list[str]) -> dict:
    env = {**os.environ, "FTLAB_HOME": home, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"}
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "core", "run", "--no-store", "--json", "--quiet", *extra], cwd=root,
                         env=env, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss        # the largest child so far (KiB)
    r = json.loads(out)
    general = r["intervals"].get("general_change") or {}
    in_domain = r["intervals"].get("in_domain") or {}
    return {"wall_s": round(wall, 2), "peak_rss_gb": round(peak / 2**20, 2),        # the largest process so far
            "stages": {s: round(r["timings"].get(s, 0.0), 2) for s in STAGES},
            "estimate_at_start_s": r["estimate"].get("before_training_s"), "actual_s": r["estimate"].get("actual_s"),
            "estimate_rates": r["estimate"].get("rates"), "precision": r["precision"],
            "benchmark": r.get("benchmark"), "in_domain_acc": r["in_domain_acc"],
            "general_change": general, "in_domain_interval": in_domain,
            "refit": r["general"].get("score_refit"), "work": r["work"], "timings": r["timings"],
            "device": r["device"], "train_tokens_once": r["work"]["step_tokens"] // max(1, r["config"]["epochs"] or 1)}


def machine_facts() -> dict:
    """What the stages' work costs at best here: this machine's matmul rate in bf16 and fp32
    (core.machine), the encoder's linear-layer FLOPs per token, and the general benchmark's tokens."""
    sys.path.insert(0, str(HERE))
    import torch

    from core.benchmark import MAX_LENGTH, probe_sets
    from core.config import RunConfig
    from core.features import tokenize
    from core.machine import matmul_rate
    from core.models import autocast_dtype, load_base

    tokenizer, base = load_base(RunConfig().model)
    c = base.config
    per_token = 2 * c.num_hidden_layers * (4 * c.hidden_size ** 2 + 2 * c.hidden_size * c.intermediate_size)
    general_tokens = sum(len(t) for ps in probe_sets(RunConfig().general_size)
                         for t in tokenize(tokenizer, ps.texts, MAX_LENGTH))
    cpu = torch.device("cpu")
    train = autocast_dtype(cpu)
    return {"flop_per_token": per_token, "general_tokens": general_tokens,
            "train_precision": "fp32" if train is None else "bf16",
            "peak_train_gflops": round(max(matmul_rate(cpu, train) for _ in range(3)), 1),
            "peak_fp32_gflops": round(max(matmul_rate(cpu, None) for _ in range(3)), 1)}


def against_peak(run: dict, facts: dict) -> list[tuple[str, float, float, float]]:
    """(stage, seconds, TFLOP of linear-layer matmuls, share of this machine's matmul peak) per stage:
    training = steps (forward + backward, 3x) and validation passes; evaluating = the test texts and
    the train-accuracy pass; general = every probe sentence once, in fp32."""
    w, t, f = run["work"], run["timings"], facts["flop_per_token"]
    rows = []
    n_train = run["train_tokens_once"]
    stages = {"training (without the live estimate)": (t["training"] - t.get("general_live", 0.0),
                                                       3 * w["step_tokens"] + w["forward_tokens"] - n_train,
                                                       facts["peak_train_gflops"]),
              "evaluating": (t["evaluating"], w["test_tokens"] + n_train, facts["peak_train_gflops"]),
              "general": (t["general"], facts["general_tokens"], facts["peak_fp32_gflops"])}
    for name, (seconds, tokens, peak) in stages.items():
        tflop = tokens * f / 1e12
        rows.append((name, seconds, tflop, tflop * 1e3 / seconds / peak if seconds else 0.0))
    return rows


def measure(root: Path, repeats: int, extra: list[str]) -> list[dict]:
    home = tempfile.mkdtemp(prefix="default-run-home-")
    one_run(root, home, extra)              # warm: probes, tokenizer files, the page cache
    runs = []
    for i in range(repeats):
        runs.append(one_run(root, home, extra))
        print(f"repeat {i + 1}:", json.dumps(runs[-1]["stages"]), flush=True)
    return runs


def median_stages(runs: list[dict]) -> dict:
    return {s: round(statistics.median(r["stages"][s] for r in runs), 2) for s in STAGES} | {
        "wall": round(statistics.median(r["wall_s"] for r in runs), 2)}


def half_width(change: dict) -> str:
    return f"±{change['ci95'] * 100:.2f}" if change.get("ci95") is not None else "–"


def section(before: dict | None, after: dict) -> str:
    sides = ([before] if before else []) + [after]
    head = [f"{d['label']} ({d['commit']}, {d['date']})" for d in sides]
    lines = ["<!-- kept:default-run -->", "## The default run, stage by stage", "",
             f"Generated by `python tests/default_run.py` on {after['cpu']} ({after['cores']} cores, "
             f"{after['bf16']}): `python -m core run --no-store --json` (full fine-tuning, R8, n=256, 3 epochs), "
             f"caches warm, a fresh process per repeat; median of {len(after['runs'])} repeats, seconds.", "",
             "| stage | " + " | ".join(head) + " |", "|---|" + "---|" * len(sides)]
    medians = [median_stages(d["runs"]) for d in sides]
    names = {"general_live": "(of training: the live general estimate)", "total": "**the run's own total**",
             "wall": "process wall (start-up and imports included)"}
    for s in (*STAGES, "wall"):
        lines.append(f"| {names.get(s, s)} | " + " | ".join(f"{m[s]:.1f}" for m in medians) + " |")
    lines.append("| general stage's share of the run | " + " | ".join(
        f"{m['general'] / m['total'] * 100:.0f} %" for m in medians) + " |")
    lines.append("| peak memory (GB) | " + " | ".join(
        str(max((r["peak_rss_gb"] or 0) for r in d["runs"]) or "–") for d in sides) + " |")
    lines.append("| estimate at the start / real total (s, first repeat) | " + " | ".join(
        f"{d['runs'][0]['estimate_at_start_s']} / {d['runs'][0]['actual_s']}" for d in sides) + " |")
    lines.append("| general change and its paired 95 % interval (points, first repeat) | " + " | ".join(
        f"{d['runs'][0]['general_change'].get('change', float('nan')) * 100:+.2f} "
        f"{half_width(d['runs'][0]['general_change'])}" for d in sides) + " |")
    lines.append("| in-domain accuracy (first repeat) | " + " | ".join(
        f"{d['runs'][0]['in_domain_acc'] * 100:.1f} %" for d in sides) + " |")
    lines.append("| precision of training / of the general benchmark | " + " | ".join(
        f"{d['runs'][0]['precision']} / {(d['runs'][0]['benchmark'] or {}).get('precision')}" for d in sides) + " |")
    facts = after.get("machine")
    if facts:
        lines += ["", f"Against this machine's matmul peak ({after['label']}, first repeat): "
                  f"{facts['peak_train_gflops']:.0f} GFLOP/s in {facts['train_precision']}, "
                  f"{facts['peak_fp32_gflops']:.0f} in fp32 (`core.machine.matmul_rate`, one encoder "
                  f"feed-forward matmul); the encoder's linear layers cost {facts['flop_per_token'] / 1e6:.1f} MFLOP "
                  f"a token; the general benchmark encodes {facts['general_tokens']:,} tokens.", "",
                  "| stage | s | TFLOP | share of the peak |", "|---|---|---|---|"]
        rows = against_peak(after["runs"][0], facts)
        lines += [f"| {name} | {sec:.1f} | {tf:.2f} | {share * 100:.0f} % |" for name, sec, tf, share in rows]
        at_peak = sum(tf * 1e3 / (facts["peak_fp32_gflops"] if name == "general" else facts["peak_train_gflops"])
                      for name, _, tf, _ in rows)
        lines += ["", f"At 100 % of these peaks the three stages' matmuls alone would take {at_peak:.0f} s: "
                  "a default run of 20 s on this host needs less work or a cheaper precision for the general "
                  "benchmark, not only faster code."]
    lines += ["", "Load average (1 min) at start / end: " + "; ".join(
        f"{d['label']} {d['load_avg'][0]:.2f} / {d['load_avg'][1]:.2f}" for d in sides) + ".", "<!-- /kept -->"]
    return "\n".join(lines)


def estimate_section(paths: list[str]) -> str:
    """The start-of-run estimate against the real total, for each measurement in `paths` (before and
    after, bf16 and fp32 training): the kept section "start-estimate"."""
    lines = ["<!-- kept:start-estimate -->", "## The time announced at the start, against the real total", "",
             "What `run` announced before its first training step (`estimate.before_training_s`) against its own "
             "total, first repeat of each `tests/default_run.py` measurement. Training in fp32 on this host "
             "(`-- --precision fp32`) stands in for a host without bf16: the reference rates are bf16 ones.", "",
             "| measurement | commit | training precision | announced s | real s | error | rates |",
             "|---|---|---|---|---|---|---|"]
    for path in paths:
        d = json.loads(Path(path).read_text())
        r = d["runs"][0]
        error = (r["estimate_at_start_s"] - r["actual_s"]) / r["actual_s"]
        lines.append(f"| {d['label']} | {d['commit']} | {r['precision']} | {r['estimate_at_start_s']:.1f} | "
                     f"{r['actual_s']:.1f} | {error * 100:+.0f} % | {r['estimate_rates']} |")
    return "\n".join(lines + ["<!-- /kept -->"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", required=True)
    ap.add_argument("--root", default=str(HERE))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--before", help="an earlier label's JSON, for the before column")
    ap.add_argument("--doc", help="write the kept section of this markdown file")
    ap.add_argument("extra", nargs="*", help="more `core run` flags (default: none, the default run)")
    ap.add_argument("--doc-only", help="write --doc from this label's JSON again, measuring nothing")
    ap.add_argument("--estimate-doc", nargs="+", metavar="JSON",
                    help="write --doc's start-estimate section from these measurements, measuring nothing")
    args = ap.parse_args()
    if args.estimate_doc:
        write_kept(Path(args.doc), estimate_section(args.estimate_doc))
        return
    if args.doc_only:
        before = json.loads(Path(args.before).read_text()) if args.before else None
        write_kept(Path(args.doc), section(before, json.loads(Path(args.doc_only).read_text())))
        return
    root = Path(args.root).resolve()
    start = os.getloadavg()[0]
    runs = measure(root, args.repeats, args.extra)
    facts = machine_facts()
    result = {"label": args.label, "commit": commit_of(root), "date": time.strftime("%Y-%m-%d %H:%M"),
              "cpu": cpu_name(), "cores": os.cpu_count(), "bf16": cpu_flags(), "extra": args.extra,
              "load_avg": [start, os.getloadavg()[0]], "runs": runs, "machine": facts}
    save(result, HERE / "docs" / "perf" / f"default_run_{args.label}.json", args.doc, args.before, section)


if __name__ == "__main__":
    main()
