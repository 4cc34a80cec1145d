"""Command line: python -m core {run, list, sweep, runs, delete, export, bench}.

Every subcommand builds RunConfigs and calls core.training.run; nothing here trains or scores.
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

from .config import FIELD_TYPES, ConfigError, RunConfig, parse_field
from .fmt import pct_value, pts
from .sweeps import parse_grid, sweep_configs
from .uploads import display_name
from .urlstate import config_to_query
from .data import GENERAL_NAMES, TASKS
from .model_registry import MODELS
from .strategies import KNOBS, STRATEGIES
from .stats import verdict
from .plan import plan
from .store import RunStore, to_csv, to_json
from .errors import DataError, ModelError, RunError, RunStopped

def _parse_size(text: str):
    return parse_field("size", text)


SETUP_HELP = {   # the run's setup; strategy knobs explain themselves (core/strategies/*.py)
    "task": "in-domain task: a shipped one (see `list`), csv:PATH or hf:ID", "size": "training examples ('all': every one)",
    "strategy": "how the encoder is adapted (see `list`)", "model": "encoder: a registry name, a local folder or a hub id",
    "seed": "seed of the sample, the head and the batches", "max_length": "tokens per text, in [8, 512]",
    "feature_layer": "encoder layer the head reads, 1..layers ('none': the last)",
    "pooling": "mean (how MiniLM was trained) or cls", "eval_size": "in-domain test texts, >= 10 ('all': the split)",
    "eval_split": "split the in-domain figures are measured on: test (report) or validation (choose defaults)",
    "general_size": "general-benchmark sentences per task, in [50, 5000]", "device": "auto, cpu, cuda or mps",
    "precision": "auto (bf16 where fast), bf16 or fp32",
}


def flag_help(name: str) -> str:
    default = getattr(RunConfig(), name)
    knob = KNOBS.get(name)
    if knob is None:
        return f"{SETUP_HELP.get(name, name)} (default: {default})"
    users = [s.name for s in STRATEGIES.values() if name in s.uses]
    shown = ("each strategy's own" if default is None else default)
    rng = knob.describe_range()
    return (f"{knob.help}{'; ' + rng if rng else ''} (default: {shown}; read by "
            f"{'every trained strategy' if len(users) >= 6 else ', '.join(users)})")


def add_config_flags(p: argparse.ArgumentParser, skip=()):
    for name in FIELD_TYPES:
        if name not in skip:
            p.add_argument("--" + name.replace("_", "-"), dest=name, type=str, default=None,
                           help=flag_help(name).replace("%", "%%"))


def command_line(cfg: RunConfig) -> str:
    """The one `python -m core run ...` line that runs `cfg`: the fields that differ from RunConfig's
    defaults, written as a link writes them (`--size all`, `--lora-targets query,value`), quoted for a
    POSIX shell. The Lab shows it; on another machine it runs unchanged (on its GPU where it has one)."""
    flags = [f"--{name.replace('_', '-')} {shlex.quote(text)}" for name, text in config_to_query(cfg).items()]
    return " ".join(["python -m core run", *flags])


def config_from_args(args, **overrides) -> RunConfig:
    values = {}
    for name in FIELD_TYPES:
        raw = getattr(args, name, None)
        if raw is not None:
            try:
                values[name] = parse_field(name, raw)
            except ValueError:
                raise ConfigError(f"--{name.replace('_', '-')}: cannot read {raw!r}") from None
    values.update(overrides)
    return RunConfig(**values)


# ---------------------------------------------------------------------------- output


def fmt_pct(x):
    return "-" if x is None else f"{pct_value(x):.1f}"     # rounded as the app rounds (core.fmt)


def result_table(r) -> str:
    g, p, change = r.general, r.pretrained_general, r.general_change()
    inside = r.in_domain_interval()
    lines = [
        f"run {r.key}  task={r.task} strategy={r.strategy} size={r.size} seed={r.seed}"
        + ("  (from the run store)" if r.cached else ""),
        f"  in-domain accuracy     {fmt_pct(r.in_domain_acc):>6} %   95 % {fmt_pct(inside['low'])} to "
        f"{fmt_pct(inside['high'])} %   macro-F1 {fmt_pct(r.in_domain_f1)} %"
        f"   (majority class {fmt_pct(r.majority_acc)} %, n={r.n_eval})",
        f"  train accuracy         {fmt_pct(r.train_acc):>6} %   "
        + (f"overfitting gap {pts(r.overfit_gap)}" if r.trained else "nothing trained (zero-shot): no overfitting gap"),
        f"  general score (fixed)  {fmt_pct(g['score']):>6} %   {pts(r.general_delta, unit='')}"
        + (f" ± {pct_value(change['ci95']):.1f} (paired 95 %, {verdict(change['change'], change['se'])})" if change else "")
        + f" pts vs pre-trained {fmt_pct(p['score'])} % (SE of the score {100 * g['stderr']:.1f})",
        f"  general score (refit)  {fmt_pct(g['score_refit']):>6} %   {pts(r.general_delta_refit)}",
        "  per task (fixed/refit) " + "  ".join(f"{k} {fmt_pct(v['fixed'])}/{fmt_pct(v['refit'])}"
                                               for k, v in g["per_task"].items()),
        f"  trainable parameters   {r.trainable_params:,} of {r.total_params:,}",
    ] + ([f"  commonest label        {r.majority_lean_text()}"] if r.majority_lean() else []) + [
        f"  time                   {r.timings.get('total', 0):.1f} s  ("
        + ", ".join(f"{k} {v:.1f}" for k, v in r.timings.items() if k not in ("total", "general_live"))
        + (f"; live general estimates {r.timings['general_live']:.1f} of the training" if r.timings.get("general_live")
           else "") + f")  on {r.device} {r.precision}",
    ]
    for w in r.warnings:
        lines.append(f"  WARNING: {w}")
    return "\n".join(lines)


class ProgressBar:
    """A tqdm bar over the run's overall fraction, labelled with its stage."""

    def __init__(self, enabled: bool, desc: str = ""):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            # disable=None: no bar when stderr is not a terminal, so logs and pipes get no \r noise
            # in front of the result or of an `error:` line
            self.bar = tqdm(total=1000, desc=desc, bar_format="{desc} {bar} {percentage:3.0f}% {postfix}",
                            file=sys.stderr, leave=False, disable=None)

    def __call__(self, ev: dict):
        if self.bar is None:
            return
        self.bar.n = int(1000 * ev["fraction"])
        eta = ev.get("eta_s")
        self.bar.set_postfix_str(f"{ev['stage']}: {ev['message']}" + (f" ~{eta:.0f}s left" if eta else ""))

    def close(self):
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------- commands


def cmd_run(args, store):
    from .training import run

    cfg = config_from_args(args)
    bar = ProgressBar(not args.json and not args.quiet, desc=f"{cfg.strategy} n={cfg.size}")
    try:
        result = run(cfg, on_progress=bar, store=None if args.no_store else store)
    finally:
        bar.close()
    # --json: the result, and the intervals the Lab's cards show (the bits alone leave them to the reader)
    print(json.dumps({**result.to_dict(), "intervals": result.intervals()}, indent=1) if args.json
          else result_table(result))


def cmd_layers(args, store):
    from .layers import probe_layers, seeds_table   # torch: only for this command

    base = config_from_args(args)
    seeds = args.seeds or [base.seed]
    reports = [probe_layers(base.replace(seed=s)) for s in seeds]
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=1, default=str))
        return
    cfg, first = reports[0].config, reports[0]
    what = (f"A linear probe on each layer of {cfg.model}'s frozen features: {display_name(cfg.task)} at "
            f"n={cfg.size or 'all'} (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}; "
            f"{first.rows[0]['in_domain']['n']:,} test texts) and the general tasks "
            f"({first.n_general_test:,} test sentences each).")
    table = first.table() if len(reports) == 1 else seeds_table(reports)
    best = max(range(1, len(first.rows)), key=lambda k: sum(r.rows[k]["in_domain"]["acc"] for r in reports))
    print(what)
    print(table)
    print(f"Best layer for the task{' (on the mean over the seeds)' if len(reports) > 1 else ''}: {best} (python -m "
          f"core run ... --strategy feature-extraction --feature-layer {best}); for the general tasks: {first.best_general}.")
    if args.out:
        command = "python -m core layers " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        doc = [f"## {args.title}", "", what, "", table, "", f"Made by `{command}`."]
        write_doc(Path(args.out), "\n".join(doc) + "\n", args.section)
        print(f"wrote {args.out}" + (f" (section {args.section})" if args.section else ""))


def cmd_list(args, store):

    if args.json:
        print(json.dumps({"models": {k: v.title for k, v in MODELS.items()},
                          "tasks": {k: {"title": v.title, "domain": v.domain, "general": v.general}
                                    for k, v in TASKS.items()},
                          "strategies": {k: {"summary": v.summary, "knobs": {
                              n.name: {"help": n.help, "range": n.describe_range(),
                                       "default": v.defaults.get(n.name, getattr(RunConfig(), n.name))}
                              for n in v.knobs}} for k, v in STRATEGIES.items()}}, indent=1, default=str))
        return
    print("models:")
    for name, m in MODELS.items():
        print(f"  {name:20s} {m.title}  [{m.licence}]")
    print("  (or a local folder with safetensors weights, or a hub id when online)")
    print("tasks:")
    for name, t in TASKS.items():
        print(f"  {name:20s} {t.title} ({t.domain}){'  [general benchmark]' if t.general else ''}")
    print("  (or csv:PATH for your own file with columns text,label[,split]; hf:ID for a hub dataset)")
    print("strategies (and the knobs each reads beyond the run's setup; `run --help` explains them):")
    for name, s in STRATEGIES.items():
        print(f"  {name:20s} {s.summary}")
        knobs = ", ".join(f"{k.name}={s.defaults.get(k.name, getattr(RunConfig(), k.name))}" for k in s.knobs)
        print(f"  {'':20s}   knobs: {knobs or 'none'}")


def cmd_runs(args, store):
    results = store.list(task=args.task, strategy=args.strategy, all_versions=args.all_versions)
    if args.json:
        print(json.dumps([r.summary() for r in results], indent=1))
        return
    # An upload shows as its file's name (--task still takes upload:<hash>); the text columns are as wide
    # as their longest value, so a long name never pushes the numbers out of line.
    names = {t: display_name(t) for t in {r.task for r in results}}
    tw = max([4] + [len(n) for n in names.values()])
    sw = max([8] + [len(r.strategy) for r in results])
    print(f"{'key':16s} {'task':{tw}s} {'strategy':{sw}s} {'size':>5s} {'seed':>4s} {'in-dom':>6s} {'train':>6s} "
          f"{'general':>7s} {'Δgen':>6s} {'time':>6s}")
    for r in results:
        print(f"{r.key:16s} {names[r.task]:{tw}s} {r.strategy:{sw}s} {r.size:5d} {r.seed:4d} "
              f"{fmt_pct(r.in_domain_acc):>6s} {fmt_pct(r.train_acc):>6s} {fmt_pct(r.general['score']):>7s} "
              f"{pts(r.general_delta, unit=''):>6s} {r.timings.get('total', 0):6.1f}")
    print(f"{len(results)} runs in {store.path}")


def cmd_delete(args, store):
    keys = [r.key for r in store.list(all_versions=True)] if args.all else args.keys
    print(f"deleted {store.delete(keys)} run(s)")


def cmd_export(args, store):
    results = store.list(task=args.task, strategy=args.strategy, all_versions=args.all_versions)
    text = to_csv(results) if args.format == "csv" else to_json(results)
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {len(results)} runs to {args.out}")
    else:
        sys.stdout.write(text)


def mean_sd(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def pm(vals, scale=100, signed=False, digits=1):
    """'mean ± sd' of the values that are there, or '-'."""
    m, sd = mean_sd(vals)
    if m is None:
        return "-"
    return (f"{scale * m:+.{digits}f}" if signed else f"{scale * m:.{digits}f}") + f" ± {scale * sd:.{digits}f}"


def sweep_table(labelled, grid_names) -> str:
    """Markdown: one row per cell (arm, size, grid values), mean ± sd over seeds. `labelled`: (arm, result)."""
    cells = {}
    for arm, r in labelled:
        cell = (arm, r.size) + tuple(str(r.config.get(n)) for n in grid_names)
        cells.setdefault(cell, []).append(r)
    results = [r for _, r in labelled]
    paired = any(r.general_change() is not None for r in results)
    distance = any(r.weight_distance is not None for r in results)
    chosen = any(r.chosen_epoch is not None for r in results)
    split = results[0].config.get("eval_split") or "test"
    head = (["strategy", "size"] + grid_names + ["seeds", f"in-domain {split} acc", "train acc", "general (fixed probe)",
                                                 "Δ general fixed"] + ["paired 95 % ± (per run)"] * paired
            + ["Δ general refit"]
            + ["weight distance %"] * distance + ["kept epoch"] * chosen + ["trainable params", "time s"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell, rs in cells.items():
        extra = []
        if distance:
            extra.append(pm([r.weight_distance for r in rs], digits=2))
        if chosen:
            extra.append(", ".join(str(r.chosen_epoch) for r in rs if r.chosen_epoch is not None) or "-")
        lines.append("| " + " | ".join([cell[0], str(cell[1])] + list(cell[2:]) + [
            str(len(rs)), pm([r.in_domain_acc for r in rs]), pm([r.train_acc for r in rs]),
            pm([r.general["score"] for r in rs]), pm([r.general_delta for r in rs], signed=True)]
            + [paired_ci(rs)] * paired + [pm([r.general_delta_refit for r in rs], signed=True)] + extra + [f"{rs[0].trainable_params:,}",
            f"{statistics.fmean(r.timings.get('total', 0) for r in rs):.1f}"]) + " |")
    return "\n".join(lines)


def paired_ci(results) -> str:
    """The mean over runs of the paired 95 % half-width of each run's general change ('-' if none has one)."""
    cis = [c["ci95"] for c in (r.general_change() for r in results) if c is not None]
    return f"± {100 * statistics.fmean(cis):.1f}" if cis else "-"


def curve_table(labelled) -> str:
    """Markdown: the finish curves (WiSE-FT's a) of the runs that have one, mean ± sd over seeds; '' if none."""
    cells = {}
    for arm, r in labelled:
        for point in r.curve:
            delta = point["general"] - r.pretrained_general["score"]
            cells.setdefault((arm, r.size, point["alpha"]), []).append((point["in_domain_acc"], delta))
    if not cells:
        return ""
    lines = ["| strategy | size | a | seeds | in-domain acc | Δ general fixed |", "|---|---|---|---|---|---|"]
    for (arm, size, a), points in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        lines.append(f"| {arm} | {size} | {a:g} | {len(points)} | {pm([p[0] for p in points])} | "
                     f"{pm([p[1] for p in points], signed=True)} |")
    return "\n".join(lines)


def timing_summary(results) -> str:
    """One sentence: where a run's time went, median over the runs that trained the encoder (their
    own measured stage timings, kept with each result; a cached run's are those of its first run),
    and what the live per-epoch general estimate cost (0 for a one-epoch run: its only point is the
    general benchmark's). '' if no run trained the encoder."""
    trained = [r for r in results if STRATEGIES[r.strategy].trains_encoder and "general_live" in r.timings]
    if not trained:
        return ""

    def med(stage):
        return statistics.median(r.timings.get(stage, 0.0) for r in trained)

    live = [r.timings["general_live"] / r.timings["total"] for r in trained]
    return (f"Time, median over the {len(trained)} runs that trained the encoder: {med('total'):.0f} s a run, of which "
            f"training {med('training'):.0f} s, the in-domain evaluation {med('evaluating'):.0f} s and the general "
            f"benchmark {med('general'):.0f} s. The live general estimates between epochs (part of training) took "
            f"{100 * statistics.median(live):.1f} % of a run (at most {100 * max(live):.1f} %).")


def per_class_table(labelled) -> str:
    """Markdown: per cell (arm, size), each label's recall on the in-domain test texts, mean over
    seeds, labels by support (the commonest first), and how often the commonest label was predicted
    against how often it is true: a strategy that leans on the majority on small, skewed data shows
    as a first column near 100 % and a predicted share above the true one. '' if no run has it."""
    cells = {}
    for arm, r in labelled:
        if r.per_class:
            cells.setdefault((arm, r.size), []).append(r)
    if not cells:
        return ""
    support = {c["label"]: c["support"] for c in next(iter(cells.values()))[0].per_class}   # one test set
    labels = sorted(support, key=lambda lab: -support[lab])
    total = sum(support.values())
    top = labels[0]
    head = (["strategy", "size", "seeds"] + [f"{lab} ({support[lab]})" for lab in labels]
            + [f"predicted {top} / true {top}"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (arm, size), rs in cells.items():
        by = [{c["label"]: c for c in r.per_class} for r in rs]
        recall = [statistics.fmean(100 * (b[lab]["recall"] or 0) for b in by) for lab in labels]
        shares = statistics.fmean(b[top]["predicted"] for b in by) / total
        lines.append("| " + " | ".join([arm, str(size), str(len(rs))] + [f"{v:.0f}" for v in recall]
                                       + [f"{100 * shares:.1f} % / {100 * support[top] / total:.1f} %"]) + " |")
    return "\n".join(lines)


def sweep_on_ray(configs, store, args, grid) -> list:
    """The sweep's runs as Ray tasks (core.ray_sweep): one progress bar over the sweep, a line per
    run as it lands; the results are stored here, by this process."""
    from .ray_sweep import run_sweep

    from tqdm import tqdm

    bar = tqdm(total=len(configs), desc="sweep on Ray", unit="run", disable=args.quiet, leave=False)

    def landed(arm, r, done, total):
        bar.update(1)
        bar.write(f"[{done or '-'}/{total}] {arm:18s} n={r.size:<5d} seed={r.seed} "
                  + " ".join(f"{n}={r.config.get(n)}" for n in grid)
                  + f"  in-domain {fmt_pct(r.in_domain_acc)}  general {fmt_pct(r.general['score'])} "
                    f"({pts(r.general_delta, unit='')})  {r.timings['total']:.0f}s" + ("  already stored" if r.cached else ""))

    try:
        return run_sweep(configs, store, address=args.ray or None, workers=args.workers,
                         cpus_per_run=args.cpus_per_run, on_result=landed)
    finally:
        bar.close()


def cmd_sweep(args, store):
    from .training import run

    base = config_from_args(args, )
    strategies = args.strategies
    grid = parse_grid(args.grid)
    configs = sweep_configs(base, args.sizes, strategies, args.seeds, grid)
    for _, c in configs:
        plan(c)        # fail on a bad value (or a size the task lacks) before hours of training, not after
    labelled, t0 = [], time.time()
    if args.ray is not None:
        labelled = sweep_on_ray(configs, store, args, grid)
    for i, (arm, cfg) in enumerate([] if args.ray is not None else configs, 1):
        bar = ProgressBar(not args.quiet, desc=f"[{i}/{len(configs)}] {arm} n={cfg.size} seed={cfg.seed}")
        try:
            r = run(cfg, on_progress=bar, store=store)
        finally:
            bar.close()
        labelled.append((arm, r))
        print(f"[{i}/{len(configs)}] {arm:18s} n={r.size:<5d} seed={r.seed} "
              + " ".join(f"{n}={r.config.get(n)}" for n in grid)
              + f"  in-domain {fmt_pct(r.in_domain_acc)}  train {fmt_pct(r.train_acc)}  general "
                f"{fmt_pct(r.general['score'])} ({pts(r.general_delta, unit='')})  {r.timings['total']:.0f}s"
              + ("  cached" if r.cached else ""), flush=True)
    results = [r for _, r in labelled]
    table = sweep_table(labelled, list(grid))
    curves = curve_table(labelled)
    print(table + ("\n\n" + curves if curves else ""))
    if args.out:
        pre = results[0].pretrained_general
        command = "python -m core sweep " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        doc = [("## " if args.section else "# ") + args.title, "",
               f"Generated by `{command}` on {time.strftime('%Y-%m-%d')} "
               f"({results[0].device}, {results[0].precision}); {len(results)} runs, "
               f"{time.time() - t0:.0f} s of which the run store answered {sum(r.cached for r in results)}.", "",
               f"Model `{base.model}`, in-domain task `{base.task}` ({base.eval_split} subset n={results[0].n_eval}). "
               f"General score: mean accuracy of SentEval-style logistic probes on {GENERAL_NAMES} (test sentences: " + ", ".join(f"{k} {v['n_test']:,}" for k, v in pre["per_task"].items())
               + f"; SE of the mean {100 * pre['stderr']:.1f} points). "
               f"Pre-trained encoder: general {fmt_pct(pre['score'])} %"
               + " (" + ", ".join(f"{k} {fmt_pct(v['fixed'])}" for k, v in pre["per_task"].items()) + ").", "",
               "Cells give mean ± standard deviation over seeds. Δ general fixed: the pre-trained probes scored "
               "on the adapted encoder's features; refit: probes fitted anew on them."
               + (" Paired 95 % ±: the half-width of each run's interval for its own general change (the same "
                  "sentences before and after, core/stats.py), averaged over the seeds." if "paired 95" in table else "")
               + (" Weight distance: ||θ − θ₀|| / ||θ₀|| of the encoder at the end, in percent; kept epoch: "
                  "the epoch best_epoch kept, per seed." if "weight distance" in table else ""), "", table, ""]
        timing = timing_summary(results)
        if timing:
            doc += [timing, ""]
        if args.per_class:
            doc += ["Per class: each label's recall on the in-domain test texts in percent, mean over seeds "
                    "(labels by their number of test texts, in brackets), and the share of test texts given the "
                    "commonest label against its true share:", "", per_class_table(labelled), ""]
        if curves:
            doc += ["Each WiSE-FT run scored at every mixing a (θ(a) = (1 − a) θ₀ + a θ_ft, head as "
                    "fine-tuned), from the same training:", "", curves, ""]
        if args.json_out:
            Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json_out).write_text(json.dumps({"command": command, "runs": [r.to_dict() for r in results]},
                                                      indent=1))
            doc.append(f"Every run's full result: `{args.json_out}`.")
        write_doc(Path(args.out), "\n".join(doc) + "\n", args.section)
        print(f"wrote {args.out}" + (f" (section {args.section})" if args.section else ""))


def write_doc(path: Path, text: str, section: str | None) -> None:
    """The whole file, or with `section` only the part between its markers (added at the end the
    first time), so several sweeps can keep their tables in one document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not section:
        path.write_text(text)
        return
    start, end = f"<!-- sweep:{section} -->", f"<!-- /sweep:{section} -->"
    old = path.read_text() if path.exists() else ""
    block = f"{start}\n{text}{end}\n"
    if start in old and end in old:
        head, rest = old.split(start, 1)
        new = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        new = old + ("\n" if old and not old.endswith("\n\n") else "") + block
    path.write_text(new)


def cmd_bench(args, store):
    from .bench import main as bench_main

    bench_main(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description="Fine-tuning lab: adapt a pre-trained encoder "
                                "and measure in-domain accuracy against general-benchmark accuracy.")
    p.add_argument("--store", help="run store file (default: $FTLAB_HOME/runs.sqlite under the user data dir)")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="train and evaluate one configuration")
    add_config_flags(r)
    r.add_argument("--json", action="store_true", help="print the whole result as JSON")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--no-store", action="store_true", help="neither read nor write the run store")
    r.set_defaults(func=cmd_run)

    l = sub.add_parser("list", help="models, tasks and strategies")
    l.add_argument("--json", action="store_true")
    l.set_defaults(func=cmd_list)

    s = sub.add_parser("sweep", help="sizes x strategies x seeds (x --grid values); writes a markdown table")
    add_config_flags(s, skip=("size", "strategy", "seed"))
    s.add_argument("--sizes", nargs="+", type=_parse_size, default=[64, 256, 1024])
    s.add_argument("--strategies", nargs="+", default=["feature-extraction", "full", "lora"],
                   help="strategies, each optionally with settings of its own: NAME[:FIELD=VALUE...], "
                        "e.g. l2-sp:l2sp_alpha=100 full:best_epoch=true")
    s.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    s.add_argument("--grid", nargs="*", help="extra axes, e.g. lr=2e-5,5e-5,1e-4 epochs=3,5")
    s.add_argument("--out", help="write the table as markdown here (e.g. docs/RESULTS.md)")
    s.add_argument("--json-out", help="also write every run's full result as JSON here")
    s.add_argument("--per-class", action="store_true", help="also write each label's recall per cell to --out")
    s.add_argument("--title", default="Results")
    s.add_argument("--section", help="replace only this named section of --out (between its markers), "
                                     "keeping the rest of the file")
    s.add_argument("--quiet", action="store_true")
    s.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run the sweep's runs as Ray tasks: on this machine without an ADDRESS, else on the "
                        "cluster whose head is at ADDRESS (host:port or ray://host:port); results land in "
                        "this store, runs already stored are skipped")
    s.add_argument("--workers", type=int, default=2, help="--ray on this machine: runs at a time (default 2)")
    s.add_argument("--cpus-per-run", type=int, default=1, help="--ray: CPUs (torch threads) per run (default 1)")
    s.set_defaults(func=cmd_sweep)

    ls = sub.add_parser("runs", help="list stored runs")
    ls.add_argument("--task")
    ls.add_argument("--strategy")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--all-versions", action="store_true", help="also runs measured by an older RESULT_VERSION")
    ls.set_defaults(func=cmd_runs)

    d = sub.add_parser("delete", help="delete stored runs by key")
    d.add_argument("keys", nargs="*")
    d.add_argument("--all", action="store_true")
    d.set_defaults(func=cmd_delete)

    e = sub.add_parser("export", help="export stored runs as CSV or JSON")
    e.add_argument("--format", choices=["csv", "json"], default="csv")
    e.add_argument("--out")
    e.add_argument("--task")
    e.add_argument("--strategy")
    e.add_argument("--all-versions", action="store_true", help="also runs measured by an older RESULT_VERSION")
    e.set_defaults(func=cmd_export)

    lay = sub.add_parser("layers", help="a linear probe on every layer of the frozen encoder: which to use")
    add_config_flags(lay)
    lay.add_argument("--json", action="store_true", help="print the report as JSON")
    lay.add_argument("--seeds", nargs="+", type=int, help="several training samples: one table over them")
    lay.add_argument("--out", help="also write the table as markdown here (e.g. docs/RESULTS.md)")
    lay.add_argument("--section", help="replace only this named section of --out (between its markers)")
    lay.add_argument("--title", default="Which layer: a linear probe on each frozen layer")
    lay.set_defaults(func=cmd_layers)

    b = sub.add_parser("bench", help="speed against a Hugging Face Trainer baseline; writes docs/PERFORMANCE.md")
    b.add_argument("--repeats", type=int, default=3)
    b.add_argument("--size", type=int, default=512)
    b.add_argument("--out", default="docs/PERFORMANCE.md")
    b.add_argument("--quick", action="store_true", help="one repeat, small scaling sweep (a smoke test)")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        store = RunStore(args.store) if args.store else RunStore()
        args.func(args, store)
    except (ConfigError, DataError, ModelError, RunError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (RunStopped, KeyboardInterrupt):
        print("stopped", file=sys.stderr)
        return 130
    return 0
