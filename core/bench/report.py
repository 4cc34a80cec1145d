"""The report: medians and goals from the measured runs, and docs/PERFORMANCE.md rendered from its
template (report.md beside this file). The figures and the choices (which sections, which reason for a
missed goal) are computed here, with the goals' own wording (goals(), which the console summary prints
too) and the tables' cell labels; every sentence of the document is in the template."""
from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import numpy as np

from .harness import EPOCHS, FLOP_FORMULAS, LABEL, QUICK, RSS_LIMIT_GB, STRATEGIES
from .scaling import SCALING_EPOCHS, SCALING_EVAL_SIZE, loglog_slope

TEMPLATE = Path(__file__).with_name("report.md")
SUPERLINEAR = 1.15      # a largest-3 log-log slope above this is reported as faster than linear


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


# ---------------------------------------------------------------------------- the template


class TemplateError(Exception):
    """report.md and the fields given to it do not match: a block or a field the code does not fill.
    Not a KeyError, so that why_missed's tolerance of a partial context cannot hide it."""


@functools.cache
def _blocks() -> dict[str, str]:
    """report.md's blocks by name: each `<!-- name -->` line starts one (the text before the first is
    a comment for the reader)."""
    parts = re.split(r"^<!-- ([a-z_]+) -->$", TEMPLATE.read_text(encoding="utf-8"), flags=re.M)
    return {name: text.strip("\n") for name, text in zip(parts[1::2], parts[2::2])}


_WHOLE_LINE_FIELD = re.compile(r"\{(\w+)\}")


def fill(block: str, /, **fields) -> str:
    """The block with its fields filled (str.format_map). A line that is only a field which comes out
    empty is left out, and with it the blank line after it when one stands before it too, so that an
    optional paragraph or section that is not there leaves the spacing as if it had never been written."""
    try:
        template = _blocks()[block]
    except KeyError:
        raise TemplateError(f"{TEMPLATE.name} has no block {block!r}") from None
    out, drop_blank = [], False
    for line in template.split("\n"):
        if drop_blank and not line:
            drop_blank = False
            continue
        drop_blank = False
        try:
            whole = _WHOLE_LINE_FIELD.fullmatch(line)
            if whole and fields[whole[1]] == "":
                drop_blank = bool(out) and not out[-1]
                continue
            out.append(line.format_map(fields))
        except KeyError as err:
            raise TemplateError(f"{TEMPLATE.name}, block {block!r}: no value for the field {err}") from None
    return "\n".join(out)


# ---------------------------------------------------------------------------- why a goal was missed


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
    return fill("why_floor", peak=peak / 1e9, tflop=work / 1e12, floor=floor, lab_s=p["train_eval_s"],
                budget=budget, left=budget - floor, rest=p["train_eval_s"] - floor)


def _why_missed(goal: str, ctx: dict) -> str:
    summary, prof = ctx["summary"], ctx.get("profile") or {}
    shares = {k: v / prof["wall_s"] for k, v in prof.get("groups", {}).items()} if prof.get("wall_s") else {}
    matmul = shares.get("matmul (linear/addmm/mm/bmm)")
    if "project/Trainer" in goal:
        strategy = "full" if goal.startswith(LABEL["full"]) else "lora"
        p, t = summary[strategy]["project"], summary[strategy]["trainer"]
        rows = (ctx.get("kernels") or {}).get("rows") or []
        kernel_gain = (fill("why_kernel_gain", gain=rows[2]["speedup"] / rows[1]["speedup"]) if len(rows) >= 3
                       else fill("why_kernel_gain_unmeasured"))
        speed = (fill("why_speed", lab=p["flops_s"] / 1e9, trainer=t["flops_s"] / 1e9, ratio=p["flops_s"] / t["flops_s"])
                 if p.get("flops_s") and t.get("flops_s") else "")
        return fill("why_ratio", speed=speed, kernel_gain=kernel_gain,
                    lab_train_pad=100 * p["train_pad"], lab_eval_pad=100 * p["eval_pad"],
                    trainer_train_pad=100 * t["train_pad"], trainer_eval_pad=100 * t["eval_pad"],
                    matmul_share=fill("why_matmul_share", share=100 * matmul) if matmul else "",
                    floor=_floor(strategy, ctx))
    if "share of the bf16 matmul peak" in goal:
        parts = ", ".join(f"{k} {100 * v:.0f} %" for k, v in sorted(shares.items(), key=lambda kv: -kv[1])
                          if v >= 0.02)
        return fill("why_share", profile=parts or fill("why_share_unprofiled"))
    return ""


# ---------------------------------------------------------------------------- the document

# Cell labels of the tables (the sentences are in the template).
SIDE = {"project": "lab", "trainer": "Trainer"}
SIDE_WARM = "lab (warm feature cache)"
NO_GENERAL = "none (Trainer has none)"
NO_GPU = "none available"
SCALING_SERIES = (("full", "train_s", "full fine-tuning"), ("lora", "train_s", "LoRA r8"),
                  ("feature-extraction", "cold_train_s", "feature extraction, cold"),
                  ("feature-extraction", "train_s", "feature extraction, warm"))


def render(ctx: dict) -> str:
    """docs/PERFORMANCE.md for a context main() built (or a test's partial one)."""
    facts, peaks, summary = ctx["facts"], ctx["peaks"], ctx["summary"]
    v = facts["versions"]
    la0, la1 = facts.get("load_avg_start"), facts.get("load_avg_end")
    load_row = ""
    if la0:
        busy = max(la0[0], (la1 or la0)[0]) > facts["usable_cores"] + 0.5
        load_row = fill("load_row", start=la0, end=fill("load_end", end=la1) if la1 else "",
                        busy=fill("load_busy") if busy else "")
    cfgs = ctx["configs"]
    return fill(
        "report", command=ctx["command"], date=ctx["date"], minutes=ctx["bench_s"] / 60,
        quick=fill("quick", **QUICK) if ctx["quick"] else "",
        cpu=facts["cpu"], logical_cores=facts["logical_cores"], usable_cores=facts["usable_cores"],
        torch_threads=facts["torch_threads"], torch_interop_threads=facts["torch_interop_threads"],
        avx512_bf16=facts["avx512_bf16"], amx=facts["amx"], mkldnn_bf16=facts["mkldnn_bf16"],
        memory_row=fill("memory_row", memory_gb=facts["memory_gb"]) if facts.get("memory_gb") else "",
        device=facts["device"], gpu_name=facts["cuda"] or NO_GPU,
        torch=v.get("torch"), transformers=v.get("transformers"), peft=v.get("peft", "–"), python=v.get("python"),
        load_row=load_row,
        goal_rows="\n".join(fill("goal_row", goal=g["goal"], target=g["target"], shown=g["shown"],
                                  met=fill("goal_met") if g["met"] else fill("goal_not_met", miss=g["miss"]))
                             for g in ctx["goals"]),
        missed=_missed(ctx),
        size=ctx["size"], epochs=EPOCHS, n_eval=ctx["n_eval"], seed=ctx["seed"], repeats=ctx["repeats"],
        defaults="; ".join(fill("defaults", label=LABEL[s], lr=_f(c.lr, "g"), head_lr=_f(c.head_lr, "g"),
                                batch_size=c.batch_size, max_length=c.max_length, warmup=c.warmup,
                                weight_decay=c.weight_decay) for s, c in cfgs.items()),
        side_rows=_side_rows(ctx),
        setup_lab=_per_strategy(summary, "project", "setup_s", ".2f"),
        setup_trainer=_per_strategy(summary, "trainer", "setup_s", ".2f"),
        run_totals=_per_strategy(summary, "project", "total_s", ".1f"),
        eval_batch=ctx.get("eval_batch", 32), general_size=cfgs["full"].general_size,
        peak_rows="\n".join(fill("peak_row", shape=label, fp32=_f(peaks["shapes"]["fp32"][label], ".0f"),
                                 bf16=_f(peaks["shapes"]["bf16"][label], ".0f")) for label in peaks["shapes"]["fp32"]),
        peak_fp32=_f(peaks["peak"]["fp32"], ".0f"), peak_bf16=_f(peaks["peak"]["bf16"], ".0f"),
        params_m=ctx["params"] / 1e6,
        label_full=LABEL["full"], label_lora=LABEL["lora"], label_fe=LABEL["feature-extraction"],
        flops_full=FLOP_FORMULAS["full"], flops_lora=FLOP_FORMULAS["lora"],
        flops_fe=FLOP_FORMULAS["feature-extraction"], flops_forward=FLOP_FORMULAS["forward"],
        lora_trainable=ctx.get("lora_trainable", 0),
        profile=_profile(ctx.get("profile")), kernels=_kernels(ctx.get("kernels")), repeat=_repeat(ctx.get("repeat")),
        memory=_memory(ctx.get("rss")), scaling=_scaling(ctx),
        gpu=_gpu(ctx.get("gpu")),
        stage_rows="\n".join(fill("stage_row", stage=k, s=sec) for k, sec in ctx["stage_s"].items()),
        bench_s=ctx["bench_s"],
    ) + "\n"


def _missed(ctx: dict) -> str:
    facts = ctx["facts"]
    busy = max((facts.get("load_avg_start") or (0,))[0], (facts.get("load_avg_end") or (0,))[0])
    items = []
    for g in ctx["goals"]:
        if g["met"]:
            continue
        why = why_missed(g["goal"], ctx)
        if busy > facts["usable_cores"] + 0.5:
            why += fill("missed_busy", busy=busy, cores=facts["usable_cores"])
        items.append(fill("missed", goal=g["goal"], miss=g["miss"], why=why))
    return "\n".join(items)


def _per_strategy(summary: dict, side: str, key: str, spec: str) -> str:
    return ", ".join(f"{LABEL[s]} {_f(summary.get(s, {}).get(side, {}).get(key), spec)} s" for s in STRATEGIES)


def _side_rows(ctx: dict) -> str:
    summary, peak = ctx["summary"], ctx["peaks"]["peak"].get("bf16")
    rows = []
    for strategy in STRATEGIES:
        s = summary.get(strategy, {})
        for side in ("project", "trainer"):
            m = s.get(side)
            if not m:
                continue
            fl = m.get("flops_s")
            pct = 100 * fl / (peak * 1e9) if fl and peak and math.isfinite(peak) else None
            rows.append(fill(
                "side_row", label=LABEL[strategy],
                side=SIDE_WARM if strategy == "feature-extraction" and side == "project" else SIDE[side],
                train_s=_f(m["train_s"], ".2f"), eval_s=_f(m["eval_s"], ".2f"), train_eval_s=_f(m["train_eval_s"], ".2f"),
                general_s=_f(m["general_s"], ".1f") if side == "project" else NO_GENERAL,
                train_ex_s=_f(m["train_ex_s"], ".0f"), eval_ex_s=_f(m["eval_ex_s"], ".0f"), acc=_f(100 * m["acc"], ".1f"),
                train_pad=_f(100 * m["train_pad"], ".1f"), eval_pad=_f(100 * m["eval_pad"], ".1f"),
                gflops=_f(fl / 1e9 if fl else None, ".0f"), peak_pct=_f(pct, ".1f"),
                ratio=_f(s.get("ratio"), ".3f") if side == "project" else ""))
        if strategy == "feature-extraction" and ctx.get("fe_cold"):
            c = ctx["fe_cold"]
            tr = s.get("trainer", {}).get("train_eval_s")
            rows.append(fill(
                "side_row_cold", label=LABEL[strategy], train_s=_f(c["train_s"], ".2f"), eval_s=_f(c["eval_s"], ".2f"),
                train_eval_s=_f(c["train_s"] + c["eval_s"], ".2f"), general_s=_f(c["general_s"], ".1f"),
                train_ex_s=_f(c["train_ex_s"], ".0f"), eval_ex_s=_f(c["eval_ex_s"], ".0f"), acc=_f(100 * c["acc"], ".1f"),
                ratio=_f((c["train_s"] + c["eval_s"]) / tr if tr else None, ".3f")))
    return "\n".join(rows)


def _profile(prof: dict | None) -> str:
    if not prof:
        return ""
    wall = prof["wall_s"]
    rows = "\n".join(fill("profile_row", group=name, s=sec, pct=100 * sec / wall)
                     for name, sec in sorted(prof["groups"].items(), key=lambda kv: -kv[1]))
    top = ", ".join(fill("top_op", op=k, s=s, count=c) for k, s, c in prof["top"][:8])
    return fill("profile", **dict(prof, rows=rows, top=top, other_pct=100 * prof["other_ops"] / wall,
                                  unattributed_pct=100 * prof["unattributed"] / wall))


def _kernels(kab: dict | None) -> str:
    if not kab:
        return ""
    kept = kab.get("kept") or [None] * len(kab["rows"])
    base_ms = kab["rows"][0]["ms_per_step"]
    rows = "\n".join(fill("kernel_row", label=r["label"], ms=r["ms_per_step"], kept_ms=_f(k and k["ms_per_step"], ".0f"),
                          speedup=base_ms / r["ms_per_step"], kept_speedup=_f(k and base_ms / k["ms_per_step"], ".2f"))
                     for r, k in zip(kab["rows"], kept))
    return fill("kernels", batch_size=kab["batch_size"], steps=kab["steps"], rows=rows)


def _repeat(rep: dict | None) -> str:
    return fill("repeat", **rep) if rep else ""


def _memory(rss: dict | None) -> str:
    if not rss:
        return fill("memory_not_measured")
    return fill("memory", **rss, limit=RSS_LIMIT_GB, failed=fill("memory_failed", **rss) if rss["returncode"] else "")


def _scaling(ctx: dict) -> str:
    sc, ev = ctx.get("scaling"), ctx.get("evals")
    if not sc:
        return ""
    sizes = sorted({n for s in sc.values() for n in s})
    rows, slopes = [], {}
    for strategy, field, label in SCALING_SERIES:
        pts = sorted((n, v[field]) for n, v in sc.get(strategy, {}).items() if field in v)
        if not pts:
            continue
        x, y = zip(*pts)
        s_all, s_top = loglog_slope(x, y), loglog_slope(x[-3:], y[-3:])
        slopes[label] = (s_all, s_top)
        rows.append(fill("scaling_row", label=label, cells=" | ".join(_f(dict(pts).get(n), ".2f") for n in sizes),
                         slope_all=_f(s_all, ".2f"), slope_top=_f(s_top, ".2f")))
    eval_table = ""
    if ev:
        pts = sorted((n, v["eval_s"]) for n, v in ev.items())
        x, y = zip(*pts)
        s_all, s_top = loglog_slope(x, y), loglog_slope(x[-3:], y[-3:])
        slopes["evaluation"] = (s_all, s_top)
        eval_table = fill("eval_table", sizes=" | ".join(str(n) for n in x), rule="---|" * (len(x) + 2),
                          times=" | ".join(f"{t:.2f}" for t in y), slope_all=s_all, slope_top=s_top)
    fast = [k for k, (a, t) in slopes.items() if math.isfinite(t) and t > SUPERLINEAR]
    growth = (fill("growth_fast", limit=SUPERLINEAR, fast=", ".join(f"{k} ({slopes[k][1]:.2f})" for k in fast)) if fast
              else fill("growth_linear", limit=SUPERLINEAR))
    return fill("scaling", epochs=SCALING_EPOCHS, eval_size=SCALING_EVAL_SIZE, eval_batch=ctx.get("eval_batch", 32),
                png_name=ctx["png_name"], sizes=" | ".join(f"n={n}" for n in sizes), rule="---|" * (len(sizes) + 2),
                rows="\n".join(rows), eval_table=eval_table, growth=growth)


def _gpu(gpu: dict | None) -> str:
    if not gpu:
        return fill("no_gpu")
    return fill("gpu", **gpu, train_step_ms=gpu["train_step_s"] * 1000, forward_ms=gpu["forward_s"] * 1000)
