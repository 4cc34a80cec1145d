"""How long a run takes: the work of each stage, priced at rates measured on this machine.

    work = Work.of(cfg, n_train, n_val, n_test, mean_tokens, trains_encoder, cached_features)
    seconds = predict(work, rates)          # {"loading": s, "tokenizing": s, "training": s, ...}

A run's stages cost very different things: training pays a forward, a backward and an optimiser
update per token; evaluation a forward per token; the general benchmark a forward per general
sentence plus four probe fits. A fixed share of wall time per stage (what the app used before)
is wrong by a factor of several as soon as the sizes change, so the time left is computed from
the work instead. The rates come from the runs this machine has finished (every result records
its work and its stage timings; `rates_from` reads them back), and before there are any, from
the DEFAULT_RATES measured here. During a run the measured training speed corrects the rest.
No torch here: the app estimates before it starts a worker.
"""
from __future__ import annotations

import functools
import hashlib
import json
import platform
import statistics
from dataclasses import asdict, dataclass, field

from .data import GENERAL_TASKS
from .errors import ConfigError
from .model_registry import model_path
from .paths import atomic_write, cache_dir
from .strategies import get_strategy

STAGES = ("loading", "tokenizing", "training", "evaluating", "general")
GENERAL_SETS_PER_TASK = 2       # a changed encoder encodes each task's probe-train and probe-test sentences
LONG_RUN_S = 180                # longer than a few minutes: the app asks before it starts such a run


@dataclass
class Work:
    """What one run computes, in the units its stages cost."""
    strategy: str
    step_tokens: int = 0         # tokens through optimiser steps, all epochs (0: only a head trains)
    forward_tokens: int = 0      # tokens predicted in the training stage: validation each epoch, train
                                 # accuracy; for frozen features, the features not yet cached
    test_tokens: int = 0         # in-domain test tokens predicted
    general_sentences: int = 0   # general sentences encoded (0: the encoder is unchanged, read from cache)
    head_steps: int = 0          # optimiser steps of a head on frozen features (tiny, but not nothing)

    @classmethod
    def of(cls, strategy: str, trains_encoder: bool, *, train_tokens: int, val_tokens: int, test_tokens: int,
           epochs: int | None, batch_size: int | None, n_train: int, general_size: int, uncached_tokens: int = 0,
           head_epochs: int = 0, scorings: int = 1) -> "Work":
        """The work of a configuration from its token counts (exact in the worker, estimated before).
        `head_epochs`: a head-only phase first (LP-FT); `scorings`: how many times the trained encoder is
        evaluated and benchmarked (WiSE-FT scores a curve)."""
        epochs = epochs or 0          # zero-shot: no training
        head_steps = (head_epochs + (0 if trains_encoder else epochs)) * -(-n_train // max(1, batch_size or 1))
        if trains_encoder:
            return cls(strategy, step_tokens=train_tokens * epochs, forward_tokens=val_tokens * epochs + train_tokens,
                       test_tokens=test_tokens * scorings, head_steps=head_steps,
                       general_sentences=len(GENERAL_TASKS) * GENERAL_SETS_PER_TASK * general_size * scorings)
        return cls(strategy, forward_tokens=uncached_tokens, head_steps=head_steps)


@dataclass
class Rates:
    """Seconds per unit of work on one device, and the stages' fixed costs."""
    step: dict = field(default_factory=dict)     # strategy -> s per token of an optimiser step
    forward: float = 0.0                         # s per token predicted
    general: float = 0.0                         # s per general sentence (encoding and probe fits)
    head_step: float = 0.0                       # s per optimiser step of a head on frozen features
    fixed: dict = field(default_factory=dict)    # stage -> s that do not scale with the work
    source: str = ""                             # where these came from, for the page to say

    def to_dict(self) -> dict:
        return asdict(self)


# Measured on the reference machine (an AMD EPYC, 2 cores, avx512_bf16 without AMX; bf16 autocast, the
# lab's CPU kernels, two threads): the full, forward and general rates by `rates_from` over three
# default runs (tests/default_run.py, docs/perf/default_run_before.json, 2026-12-04); LoRA and BitFit
# keep the ratio to full measured over seven runs on 2026-12-01 (0.76); a head step as measured then.
# The general rate is the benchmark's version 2 (fp32). Until a machine has runs of its own, these are
# scaled to it by its measured matmul speed (for_machine, core/machine.py).
DEFAULT_RATES = Rates(
    step={"full": 3.0e-4, "lora": 2.3e-4, "bitfit": 2.3e-4},
    forward=9.2e-5,
    general=4.0e-3,
    head_step=5e-4,
    fixed={"loading": 1.0, "tokenizing": 0.5, "training": 0.3, "evaluating": 0.2, "general": 0.4},
    source="rates measured on the reference 2-core CPU",
)


# core.machine.speed on the machine DEFAULT_RATES describe, GFLOP/s: "train" in the precision it trained
# in (bf16 there), "fp32" for the general benchmark. Another machine's rates are scaled by its own.
REFERENCE_SPEED = {"train": 415.0, "fp32": 202.0}    # core.machine.matmul_rate there, 2026-12-04


def for_machine(train_speed: float | None, general_speed: float | None, rates: Rates = DEFAULT_RATES) -> Rates:
    """`rates` moved to this machine: the training and in-domain rates scaled by how fast it multiplies
    matrices in the run's precision, the general benchmark's by how fast in fp32 (it always scores in
    fp32), each against REFERENCE_SPEED; fixed costs as they are (core/machine.py measures the speeds)."""
    if not train_speed or not general_speed:
        return rates
    train = REFERENCE_SPEED["train"] / train_speed
    general = REFERENCE_SPEED["fp32"] / general_speed
    return Rates(step={k: v * train for k, v in rates.step.items()}, forward=rates.forward * train,
                 general=rates.general * general, head_step=rates.head_step, fixed=dict(rates.fixed),
                 source=f"{rates.source}, scaled to this machine's measured speed "
                        f"({1 / train:.2f}x in training, {1 / general:.2f}x in fp32)")


SPEEDS_FILE = "machine_speed.json"    # core.machine writes it: {"<cpu>|<n> threads|torch <v>|<device>|<precision>": [GFLOP/s, ...]}


def cpu_name() -> str:
    """This CPU's model name (/proc/cpuinfo), else what the platform says."""
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        name = ""
    return name or platform.processor() or platform.machine()


def host_rates(rates: Rates = DEFAULT_RATES) -> Rates:
    """`rates` scaled to this host from the matmul speeds its runs (or its warm worker) measured and kept,
    read without torch: the app's first estimate, before any run here is stored. The fastest precision
    measured on this CPU is the one its runs train in (bf16 where the CPU has it); `rates` as they are
    while nothing was measured here yet."""
    try:
        known = json.loads((cache_dir() / SPEEDS_FILE).read_text())
    except (OSError, ValueError):
        return rates
    here = {}
    for key, seen in (known.items() if isinstance(known, dict) else []):
        parts = key.split("|")
        if len(parts) == 5 and parts[0] == cpu_name() and parts[3] == "cpu" and isinstance(seen, list) and seen:
            here[parts[4]] = max(float(v) for v in seen)
    if "fp32" not in here:
        return rates
    return for_machine(max(here.values()), here["fp32"], rates)


def _step_rate(strategy: str, rates: Rates) -> float:
    """s per step token; a strategy without a measured rate gets the dearest one."""
    return rates.step.get(strategy) or max(rates.step.values(), default=DEFAULT_RATES.step["full"])


def predict(work: Work, rates: Rates = DEFAULT_RATES) -> dict:
    """Seconds per stage for `work` at `rates`."""
    step = _step_rate(work.strategy, rates)
    f = rates.fixed
    return {
        "loading": f.get("loading", 0.0),
        "tokenizing": f.get("tokenizing", 0.0),
        "training": f.get("training", 0.0) + work.step_tokens * step + work.forward_tokens * rates.forward
        + work.head_steps * rates.head_step,
        "evaluating": f.get("evaluating", 0.0) + work.test_tokens * rates.forward,
        "general": f.get("general", 0.0) + work.general_sentences * rates.general,
    }


def rates_from(results, device: str = "cpu", limit: int = 20, defaults: Rates = DEFAULT_RATES) -> Rates:
    """Rates read back from finished runs on `device` (newest first; median of each rate), falling
    back to `defaults` for whatever they do not measure."""
    step: dict[str, list] = {}
    forward, general, head = [], [], []
    used = 0
    for r in results:
        work, t = getattr(r, "work", None) or {}, r.timings or {}
        if not work or getattr(r, "cached", False) or not str(r.device).startswith(device):
            continue
        used += 1
        fixed = defaults.fixed
        fwd = None
        if work.get("test_tokens"):
            fwd = max(0.0, t.get("evaluating", 0.0) - fixed["evaluating"]) / work["test_tokens"]
            forward.append(fwd)
        fwd = fwd if fwd is not None else defaults.forward
        rest = t.get("training", 0.0) - fixed["training"] - fwd * work.get("forward_tokens", 0)
        if work.get("step_tokens"):
            step.setdefault(work["strategy"], []).append(max(0.0, rest) / work["step_tokens"])
        elif work.get("head_steps"):
            head.append(max(0.0, rest) / work["head_steps"])
        if work.get("general_sentences"):
            general.append(max(0.0, t.get("general", 0.0) - fixed["general"]) / work["general_sentences"])
        if used >= limit:
            break
    if not used:
        return defaults
    med = statistics.median
    return Rates(
        step={**defaults.step, **{k: med(v) for k, v in step.items()}},
        forward=med(forward) if forward else defaults.forward,
        general=med(general) if general else defaults.general,
        head_step=med(head) if head else defaults.head_step,
        fixed=dict(defaults.fixed),
        source=f"rates from the last {used} run(s) on this machine",
    )


TRUST_AFTER = 0.3      # share of the steps after which their measured speed replaces the plan's


class Clock:
    """The whole run's time left, as it goes: the stage plan, corrected by how fast training really is.

    `plan` is predict()'s seconds per stage and `steps_s` the part of training that is optimiser
    steps. The seconds the steps have really taken, against their planned share, give the speed
    (validation passes between epochs are in the training stage but not in the steps, so they
    must not be extrapolated from the step count); that speed then scales everything still to come,
    later stages included (a busy or slower machine is slower at everything). Within a stage, time
    passes against the corrected plan, so the estimate keeps moving between progress events.
    """

    def __init__(self, plan: dict, steps_s: float = 0.0, steps_measure_training: bool = True):
        self.plan = dict(plan)
        self.steps_s = steps_s
        self.speed = 1.0             # real / planned seconds, once the steps have run a while
        # False for a head on frozen features: its training stage is mostly computing the features
        # before the first step, so the share of steps done says nothing about the time.
        self.by_steps = steps_measure_training and steps_s > 0

    def observe_training(self, step_seconds: float, fraction_done: float) -> None:
        """`step_seconds`: time spent in optimiser steps so far; `fraction_done`: share of steps done."""
        if self.by_steps and fraction_done >= 0.05:
            measured = min(10.0, max(0.1, (step_seconds / fraction_done) / self.steps_s))
            # The first steps carry one-time costs (allocations, kernel set-up): trust the measurement
            # in proportion to the steps behind it, fully from TRUST_AFTER of them on.
            w = min(1.0, fraction_done / TRUST_AFTER)
            self.speed = (1 - w) + w * measured

    def left(self, stage: str, seconds_in_stage: float) -> float:
        """Seconds left in the whole run while in `stage`. Stages not yet begun are scaled by the
        measured speed only when it is slower than planned: fast optimiser steps say little about the
        general benchmark's probes, and shrinking it by them announced '12 s left' for a run that had
        70 s to go (measured on a busy 2-core machine; the steps' speed keeps applying to training)."""
        at = STAGES.index(stage)
        current = max(0.0, self.plan.get(stage, 0.0) * (self.speed if stage == "training" else max(1.0, self.speed))
                      - seconds_in_stage)
        return current + sum(self.plan.get(s, 0.0) * max(1.0, self.speed) for s in STAGES[at + 1:])

    def total(self, elapsed: float, stage: str, seconds_in_stage: float) -> float:
        return elapsed + self.left(stage, seconds_in_stage)


def step_seconds(work: Work, rates: Rates = DEFAULT_RATES) -> float:
    """The optimiser steps' share of predict()'s training stage."""
    return work.step_tokens * _step_rate(work.strategy, rates)


def describe_accuracy(predicted: float | None, actual: float) -> str:
    """'estimated 41 s at the start (7 % under)' (for the result card)."""
    if not predicted or actual <= 0:
        return ""
    off = (predicted - actual) / actual
    side = "over" if off > 0 else "under"
    return f"estimated {predicted:.0f} s at the start ({abs(100 * off):.0f} % {side})"


# ---------------------------------------------------------------------------- before a run starts


def mean_tokens(model: str, sample: tuple, max_length: int) -> float:
    """Mean tokens per text of `sample` under the model's own fast tokenizer (capped at max_length,
    plus the two special tokens); a model without a tokenizer.json here: about four characters a token."""
    return _mean_tokens(model, sample, max_length) if sample else float(max_length)


def _tokenizer_file(model: str):
    from pathlib import Path


    try:
        path = Path(model_path(model)) / "tokenizer.json"
    except Exception:        # noqa: BLE001 - a missing model package: the run itself will say so
        return None
    return path if path.exists() else None


@functools.lru_cache(maxsize=64)
def _mean_tokens(model: str, sample: tuple, max_length: int) -> float:
    path = _tokenizer_file(model)
    if path is None:
        return float(min(max_length, statistics.fmean(len(t) / 4 + 2 for t in sample)))
    # Kept on disk: loading the tokenizer and encoding the sample is about 0.2 s of the first page's
    # script, paid once per model, task and max length instead of once per server start.
    stat = path.stat()
    key = hashlib.sha256("\x1e".join([str(path), str(stat.st_size), str(stat.st_mtime_ns), str(max_length),
                                       *sample]).encode()).hexdigest()[:24]
    known = _read_mean_tokens()
    if key in known:
        return float(known[key])
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_length)
    mean = float(statistics.fmean(len(e.ids) for e in tok.encode_batch(list(sample))))
    _write_mean_tokens({**dict(list(known.items())[-255:]), key: mean})
    return mean


def _mean_tokens_file():
    return cache_dir() / "mean_tokens.json"


def _read_mean_tokens() -> dict:
    try:
        known = json.loads(_mean_tokens_file().read_text())
        return known if isinstance(known, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_mean_tokens(known: dict) -> None:
    try:
        atomic_write(_mean_tokens_file(), json.dumps(known))   # two servers writing at once: one whole file
    except OSError:
        pass                            # an unwritable cache costs time, never the estimate


def estimate_config(cfg, info: dict, rates: Rates = DEFAULT_RATES, rescoring: bool = False,
                    cached_features: bool | set = False) -> float | None:
    """Seconds a configuration will take here, before it runs: `info` holds the task's sizes and a
    sample of its texts (n_train, n_val, n_test, sample). None when the config cannot run.
    `rescoring`: its fine-tuned weights are kept (core.weights), so it only evaluates, once.
    `cached_features`: a frozen-feature run's rows already on disk: True for all, or cached_rows' set."""
    try:
        cfg = cfg.resolved()
    except ConfigError:
        return None
    strategy = get_strategy(cfg.strategy)
    parts = {"train", "held_out"} if cached_features is True else set(cached_features or ())
    mean = mean_tokens(cfg.model, tuple(info.get("sample") or ()), cfg.max_length)
    n_train = min(cfg.size or info["n_train"], info["n_train"])
    n_test = min(cfg.eval_size or info["n_test"], info["n_test"])
    work = Work.of(strategy.name, strategy.trains_encoder, train_tokens=int(n_train * mean),
                   val_tokens=int(info["n_val"] * mean), test_tokens=int(n_test * mean),
                   epochs=0 if rescoring else cfg.epochs, batch_size=cfg.batch_size, n_train=n_train,
                   general_size=cfg.general_size,
                   uncached_tokens=int(((0 if "train" in parts else n_train)
                                        + (0 if "held_out" in parts else info["n_val"] + n_test)) * mean),
                   head_epochs=0 if rescoring else strategy.head_epochs(cfg),
                   scorings=1 if rescoring else len(strategy.finish_points(cfg)))
    return float(sum(predict(work, rates).values()))


# ---------------------------------------------------------------------------- one estimate per run

# Beyond the worker's own stages: a worker that is not warm yet imports torch and loads the model
# before the run's first stage (measured with the browser's presenter run on the reference 2-core
# CPU: about 10 s alone, 38 s with the machine loaded 8-fold), and after its last stage the result
# goes to the app (the job's end came 2-7 s after the worker's "done" in the same runs).
WORKER_START_S = 10.0
END_S = 3.0


@dataclass
class RunEstimate:
    """THE time estimate of one run: made when it is submitted, moved by its own progress, read by the
    Run bar ("about 13 s"), the running panel (time left) and the result card (announced vs taken),
    so the three never disagree. `total_s` is the announced wall time from the job's start to its
    result, end stages (in-domain evaluation, general benchmark, storing) included; `cached` says why
    a run is quick: "stored" (the run store answers it at once) or "features" (a frozen-feature run
    whose features are all on disk: it encodes nothing)."""
    total_s: float | None
    cached: str = ""
    from_submit: bool = False     # the total counts from the click (it includes a worker's start), not the job's start

    def origin(self, job) -> float | None:
        """When this estimate's clock started for `job`: its submission when the total includes starting
        the worker, else the job's start (a wait in the queue is announced apart, as the wait)."""
        return job.submitted_at if self.from_submit else job.started_at

    def text(self) -> str:
        """How the Run bar and the panel announce it: 'about 13 s', 'stored: at once', 'features cached: about 2 s'."""
        if self.cached == "stored":
            return "already stored: answered at once"
        when = "an unknown time" if self.total_s is None else say_duration(self.total_s)
        return f"features cached: about {when}" if self.cached == "features" else f"about {when}"

    def left(self, elapsed: float, stage: str | None = None, eta_s: float | None = None,
             eta_age: float = 0.0) -> float | None:
        """Seconds left now, `elapsed` after the job started. Before the worker's first estimate, the
        announced total counts down; after it, the worker's (its plan from the exact work, corrected by
        its measured speed, counted down since it came), plus END_S. None: it has overrun every
        estimate (the panel then says so instead of 'about 1 s left' for many seconds)."""
        if eta_s is not None:
            left = eta_s - eta_age
        elif self.total_s is not None:
            left = self.total_s - END_S - elapsed
        else:
            return None
        if left < -1.0:            # past what was planned by more than a second: no honest figure
            return None
        return max(0.0, left) + END_S

    def live_total(self, elapsed: float, left: float | None) -> float | None:
        """The whole run's time as it now looks (elapsed + left), None while unknown."""
        return None if left is None else elapsed + left

    def compare(self, actual: float) -> str:
        """'announced 13 s, took 25 s (92 % over)' for the result card; '' without an announced time."""
        if not self.total_s or actual <= 0 or self.cached == "stored":
            return ""
        off = (actual - self.total_s) / self.total_s
        side = "longer" if off > 0 else "shorter"
        return f"announced {say_duration(self.total_s)} ({abs(100 * off):.0f} % {side})"


def say_duration(seconds: float) -> str:
    """'45 s', '3 min', '1 h 30 min': how a person says a wait (the app's ui.duration uses the same)."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{int(seconds // 3600)} h {round(seconds % 3600 / 60)} min"


def cached_rows(cfg, stored: list) -> set:
    """Which of a frozen-feature run's rows are on disk already, as far as this machine's stored runs
    tell (the app asks without torch; features are cached per model, layer, pooling, length and
    precision, whatever the head's settings): "held_out" (the validation curve's and the evaluated
    texts: the same for every seed and size) and "train" (the same training sample: seed and size)."""
    try:
        cfg = cfg.resolved()
    except Exception:     # noqa: BLE001 - a config that cannot run is estimated as None anyway
        return set()
    if _trains(cfg.strategy):
        return set()
    want, found = cfg.to_dict(), set()
    common = ("model", "task", "feature_layer", "pooling", "max_length", "device", "precision")
    for r in stored:
        c = getattr(r, "config", None) or {}
        if _trains(c.get("strategy")) or any(c.get(k) != want.get(k) for k in common):
            continue
        if (c.get("eval_size"), c.get("eval_split")) == (want["eval_size"], want["eval_split"]):
            found.add("held_out")
        if (c.get("seed"), c.get("size")) == (want["seed"], want["size"]):
            found.add("train")
    return found


def features_cached(cfg, stored: list) -> bool:
    """Whether all of a frozen-feature run's features are on disk already (it encodes nothing)."""
    return cached_rows(cfg, stored) == {"train", "held_out"}


def _trains(strategy: str | None) -> bool:
    try:
        return get_strategy(strategy or "full").trains_encoder
    except Exception:     # noqa: BLE001 - an unknown strategy in an old record
        return True


def run_estimate(cfg, info: dict, rates: Rates = DEFAULT_RATES, *, stored: bool = False, stored_runs=(),
                 worker_warm: bool = True, rescoring: bool = False) -> RunEstimate:
    """The estimate a run is announced with, before it starts: `stored`, the store has this very run
    (answered at once); `stored_runs`, this machine's runs (a frozen-feature run whose features one
    of them computed encodes nothing); `worker_warm` False adds the worker's start."""
    if stored:
        return RunEstimate(0.0, cached="stored")
    parts = cached_rows(cfg, list(stored_runs))
    cached = parts == {"train", "held_out"}
    seconds = estimate_config(cfg, info, rates, rescoring, cached_features=parts)
    if seconds is None:
        return RunEstimate(None)
    start = 0.0 if worker_warm else WORKER_START_S
    return RunEstimate(round(seconds + END_S + start, 1), cached="features" if cached else "",
                       from_submit=not worker_warm)
