"""One run: adapt the encoder to a task, then measure what it learned and what it forgot.

    run(config, on_progress, should_stop) -> RunResult

Stages: loading -> tokenizing -> training -> evaluating (in-domain) -> general benchmark.
`on_progress` receives plain dicts (they cross process boundaries); `should_stop` is polled
before every optimiser step and every evaluation batch, so a Stop lands within one step.
"""
from __future__ import annotations

import contextlib
import gc
import math
import platform
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from .benchmark import GeneralBenchmark
from .config import RunConfig
from .data import GENERAL_NAMES, curve_subset, eval_subset, held_out, sample_train
from .errors import ConfigError, DataError, ModelError, RunError, RunStopped  # noqa: F401  (re-exported)
from .estimate import STAGES, Clock, Work, for_machine, predict as predict_stages, rates_from, step_seconds
from .features import (FeatureCache, collate, corpus_identity, encode, length_grouped_batches, padding_fraction,
                       tokenize)
from .kernels import attention_as, cpu_kernels, keep_freed_memory
from .machine import speed as machine_speed
from .plan import RunPlan, check_fits, plan
from .models import (EncoderClassifier, autocast, autocast_dtype, count_params, eval_batch_size,
                     base_on, fresh_encoder, num_layers, pick_device)
from .result import RunResult, confusion, per_class
from .stats import pack
from .strategies import get_strategy
from .threads import ThreadGovernor
from .strategies.base import head_groups
from .weights import WeightStore

# Share of a typical run's wall time per stage: turns stage progress into one overall fraction.
STAGE_WEIGHTS = {"loading": 0.05, "tokenizing": 0.02, "training": 0.6, "evaluating": 0.15, "general": 0.18}
PROGRESS_INTERVAL_S = 0.2
# The most points of one training phase's walk across the trade-off plane. A live estimate costs a
# forward pass over the probe sentences, about a third of an epoch at n=256: after every epoch of a
# 10-epoch run that was 11.6 % of the run (docs/RESULTS.md, push). Four points still draw the walk.
LIVE_POINTS = 4


def library_versions() -> dict:
    import sklearn
    import transformers

    out = {"python": platform.python_version(), "torch": torch.__version__,
           "transformers": transformers.__version__, "numpy": np.__version__, "scikit-learn": sklearn.__version__}
    try:
        import peft

        out["peft"] = peft.__version__
    except ImportError:
        pass
    return out


class _Reporter:
    """Throttled progress dicts: the stage, the elapsed time, the whole run's time left and the
    overall fraction (elapsed / (elapsed + left)). The time left comes from a core.estimate.Clock
    once the run's work is known (after tokenizing); `tick()` re-sends the current stage so that
    elapsed and time left keep moving through stages that report no steps (evaluation, benchmark)."""

    def __init__(self, on_progress: Callable | None):
        self.on_progress = on_progress
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.curves: list = []
        self.clock: Clock | None = None
        self.stage, self.stage_start, self.state = "loading", self.t0, (0.0, 1.0, "")
        self.estimate: dict = {}     # predicted totals at milestones, compared with the real one at the end
        self.fraction = 0.0
        self.step_seconds = 0.0      # time in optimiser steps (the training loop adds to it)
        self.live_seconds = 0.0      # time in the live general estimates between epochs
        self.poll = None             # should_stop for predictions, also moving the progress (run sets it)

    def plan(self, seconds: dict, steps_s: float, source: str, steps_measure_training: bool) -> None:
        self.clock = Clock(seconds, steps_s, steps_measure_training)
        self.estimate = {"before_training_s": round(time.perf_counter() - self.t0 + sum(
            seconds[s] for s in STAGES[STAGES.index("training"):]), 2), "rates": source}

    def __call__(self, stage: str, done: float = 0.0, total: float = 1.0, message: str = "", force=False):
        now = time.perf_counter()
        if stage != self.stage:
            self.stage, self.stage_start = stage, now
        self.state = (done, total, message)
        if self.on_progress is None or (not force and now - self.last < PROGRESS_INTERVAL_S):
            return
        self.last = now
        elapsed, in_stage = now - self.t0, now - self.stage_start
        within = (done / total) if total else 1.0
        left = None
        if self.clock is not None:
            if stage == "training":
                self.clock.observe_training(self.step_seconds, within)
                if (within >= 0.25 or not self.clock.by_steps) and "early_training_s" not in self.estimate \
                        and in_stage >= 0.25 * self.clock.plan.get("training", 0.0):
                    self.estimate["early_training_s"] = round(self.clock.total(elapsed, stage, in_stage), 2)
            left = self.clock.left(stage, in_stage)
        if stage == STAGES[-1] and within >= 1:
            left, fraction = 0.0, 1.0
        elif left is not None:
            fraction = elapsed / (elapsed + left) if elapsed + left > 0 else 1.0
        else:   # loading and tokenizing, before the work is known: a small share, by stage
            fraction = 0.02 * (STAGES.index(stage) + within)
        self.fraction = max(self.fraction, min(1.0, fraction))   # a progress bar never goes back
        self.on_progress({"stage": stage, "done": done, "total": total, "fraction": self.fraction,
                          "message": message, "elapsed_s": elapsed, "eta_s": left, "curves": list(self.curves)})

    def tick(self) -> None:
        self(self.stage, *self.state)


def _check(should_stop):
    if should_stop is not None and should_stop():
        raise RunStopped()


def _ticking(should_stop, report: _Reporter):
    """should_stop as predict() and the benchmark poll it before every batch, also keeping the
    progress (elapsed, time left) moving between the stage's own reports."""
    def poll():
        report.tick()
        return should_stop is not None and should_stop()

    return poll


def _sharing_cores(should_stop, governor: ThreadGovernor):
    """should_stop, also letting the governor look at the machine (before every step and batch)."""
    def asked():
        governor.poll()
        return should_stop is not None and should_stop()

    return asked


def _schedule(optimizer, total_steps: int, warmup: float):
    """Linear warm-up, then linear decay to 0. Not transformers' get_linear_schedule_with_warmup on
    purpose: that one takes its first step at rate 0 (a wasted step at n=16), and switching would change
    every stored and shipped result (RESULT_VERSION) for no gain in what the lab shows."""
    warm = max(1, int(round(total_steps * warmup))) if warmup > 0 else 0

    def factor(step):
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _work(cfg, strategy, task, sample, env, head_epochs: int, scorings: int, trains: bool = True) -> Work:
    """What this run will compute, exactly, for the time-left estimate (core.estimate). `trains`
    False: kept weights are re-scored, no training."""
    ntok = lambda toks: int(sum(len(x) for x in toks))   # noqa: E731
    uncached = 0
    if not strategy.trains_encoder:      # frozen features: only rows not yet on disk cost a forward
        for texts, toks, rows in ((task.train_texts, sample.tok_train, sample.train_idx),
                                  (task.val_texts, sample.tok_val, sample.val_idx),
                                  (sample.eval_texts, sample.tok_test, sample.test_idx)):
            cache = FeatureCache(env.model_id, corpus_identity(texts), cfg.feature_layer, cfg.pooling, cfg.max_length,
                                 env.device, env.dtype, len(texts))
            missing = cache.missing(np.arange(len(texts)) if rows is None else rows)
            uncached += int(len(missing) * ntok(toks) / max(1, len(toks)))
    work = Work.of(strategy.name, strategy.trains_encoder, train_tokens=ntok(sample.tok_train),
                   val_tokens=ntok(sample.tok_val), test_tokens=ntok(sample.tok_test), epochs=cfg.epochs if trains else 0,
                   batch_size=cfg.batch_size, n_train=len(sample.train_idx), general_size=cfg.general_size,
                   uncached_tokens=uncached, head_epochs=head_epochs, scorings=scorings)
    if not env.benchmark.has_reference():    # the first run on this machine also fits the pre-trained probes
        work.general_sentences += env.benchmark.sentences()
    return work


@torch.inference_mode()
def predict(model: EncoderClassifier, token_ids, pad_id, device, dtype, batch_size=None, should_stop=None):
    model.eval()
    lengths = np.array([len(t) for t in token_ids])
    batch_size = batch_size or eval_batch_size(device)
    preds = np.zeros(len(token_ids), dtype=np.int64)
    for idx in length_grouped_batches(lengths, batch_size, None):
        _check(should_stop)
        ids, mask = collate(token_ids, idx, pad_id, device)
        with autocast(device, dtype):
            logits = model(ids, mask)
        preds[idx] = logits.argmax(-1).cpu().numpy()
    return preds


def _metrics(y_true, y_pred):
    from sklearn.metrics import f1_score

    return float((y_true == y_pred).mean()), float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def _optimizer(groups, device):
    # Fused AdamW: one kernel over all tensors instead of a loop per tensor (the CPU's default);
    # before/after in docs/PERFORMANCE.md. Trainer's default optimiser is fused too. Not on MPS.
    fused = True if device.type in ("cuda", "cpu") else None
    return torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8, fused=fused)


# ---------------------------------------------------------------------------- how batches reach the head
class LiveEncoder:
    """Token ids through the whole model: the path of every strategy that changes the encoder."""

    def __init__(self, model, sample, env, cfg):
        self.model, self.sample, self.env = model, sample, env
        self.loss_fn = nn.CrossEntropyLoss()
        self.y_train = torch.from_numpy(sample.y_train).to(env.device)
        self.plan = BatchPlan(np.array([len(x) for x in sample.tok_train]), cfg.batch_size, cfg.seed)

    def batches(self, epoch):   # padded and moved to the device before the epoch's first step
        env, tok = self.env, self.sample.tok_train
        return [collate(tok, idx, env.pad_id, env.device) + (self.y_train[torch.from_numpy(idx).to(env.device)],)
                for idx in self.plan(epoch)]

    def step(self, batch):
        ids, mask, target = batch
        self.model.train()
        with autocast(self.env.device, self.env.dtype):
            logits = self.model(ids, mask)
        loss = self.loss_fn(logits.float(), target)
        return loss, (logits.argmax(-1) == target).sum(), len(target)

    def predict(self, split: str, poll=None):
        tokens = {"train": self.sample.tok_train, "val": self.sample.tok_val, "test": self.sample.tok_test}[split]
        return predict(self.model, tokens, self.env.pad_id, self.env.device, self.env.dtype, should_stop=poll)


class CachedFeatures:
    """The encoder frozen: its features computed once (kept on disk across runs), and only the head
    trains on them. An optimisation of LiveEncoder's path for a frozen encoder, not another method:
    feature extraction, zero-shot and LP-FT's head phase."""

    def __init__(self, model, sample, env, cfg, task, poll):
        self.env, self.sample = env, sample
        self.head = nn.Sequential(model.dropout, model.head)
        self.loss_fn = nn.CrossEntropyLoss()
        self.y_train = torch.from_numpy(sample.y_train).to(env.device)
        self.plan = BatchPlan(np.array([len(x) for x in sample.tok_train]), cfg.batch_size or 1, cfg.seed)

        def cached(texts, rows, tokens_for):
            cache = FeatureCache(env.model_id, corpus_identity(texts), cfg.feature_layer, cfg.pooling,
                                 cfg.max_length, env.device, env.dtype, len(texts))
            return torch.from_numpy(cache.get(env.base, tokens_for, env.pad_id, rows, poll)).to(env.device)

        def tokens_of(texts):
            return lambda rows: tokenize(env.tokenizer, [texts[i] for i in rows], cfg.max_length)

        self.features = {"train": cached(task.train_texts, sample.train_idx, tokens_of(task.train_texts)),
                         "val": cached(task.val_texts, sample.val_idx, tokens_of(task.val_texts)),
                         "test": cached(sample.eval_texts, sample.test_idx, tokens_of(sample.eval_texts))}

    def batches(self, epoch):
        return [torch.from_numpy(idx).to(self.env.device) for idx in self.plan(epoch)]

    def step(self, idx_t):
        self.head.train()
        logits = self.head(self.features["train"][idx_t])
        target = self.y_train[idx_t]
        return self.loss_fn(logits, target), (logits.argmax(-1) == target).sum(), len(idx_t)

    def predict(self, split: str, poll=None):
        self.head.eval()
        with torch.inference_mode():
            return self.head(self.features[split]).argmax(-1).cpu().numpy()


class BatchPlan:
    """Length-grouped batches, one fixed shuffle per (seed, epoch)."""

    def __init__(self, lengths, batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed, self.epochs = lengths, batch_size, seed, {}

    def __call__(self, epoch: int):
        if epoch not in self.epochs:
            self.epochs[epoch] = length_grouped_batches(self.lengths, self.batch_size,
                                                        np.random.default_rng([self.seed, epoch]))
        return self.epochs[epoch]


def weight_distance(encoder, reference) -> float:
    """||theta - theta_0|| / ||theta_0|| over the encoder's weights (LoRA: its merged updates)."""
    ref = dict(reference.named_parameters())
    moved = norm = 0.0
    with torch.no_grad():
        for module in encoder.modules():
            if hasattr(module, "get_delta_weight") and hasattr(module, "active_adapters"):   # a peft LoRA layer
                for adapter in module.active_adapters:
                    moved += float(module.get_delta_weight(adapter).float().pow(2).sum())
        for name, p in encoder.named_parameters():
            r = ref.get(name.replace("base_layer.", ""))
            if r is None or "lora_" in name:
                continue
            moved += float((p.float() - r.float()).pow(2).sum())
            norm += float(r.float().pow(2).sum())
    return math.sqrt(moved / norm) if norm else 0.0


# ---------------------------------------------------------------------------- the stages
@dataclass
class Loaded:
    tokenizer: object
    base: nn.Module          # the pre-trained encoder, never trained: reference and feature source
    device: torch.device
    dtype: object
    pad_id: int
    model_id: str
    benchmark: GeneralBenchmark


@dataclass
class Sample:
    train_idx: np.ndarray
    val_idx: np.ndarray       # the validation texts of the per-epoch curves (data.curve_subset)
    test_idx: np.ndarray      # the evaluated texts: of the test split, or of validation (cfg.eval_split)
    eval_texts: list          # that split's texts, which test_idx indexes
    y_train: np.ndarray
    y_val: np.ndarray
    y_test: np.ndarray
    tok_train: list
    tok_val: list
    tok_test: list


def load(p: RunPlan) -> Loaded:
    cfg, model_id = p.config, p.model_id
    device = pick_device(cfg.device)
    tokenizer, base = base_on(cfg.model, str(device))
    dtype = autocast_dtype(device, cfg.precision)
    if p.layers is None:          # a model without a config.json the plan could read: checked once loaded
        check_fits(cfg, len(p.task.train_texts), num_layers(base))
    if device.type == "cpu":
        keep_freed_memory()
    torch.manual_seed(cfg.seed)
    # The general benchmark always scores in fp32, whatever the run trains in: bf16 kernels differ
    # between hosts, and so did the pre-trained reference (tests/reference_stability.py)
    return Loaded(tokenizer, base, device, dtype, tokenizer.pad_token_id, model_id,
                  GeneralBenchmark(model_id, tokenizer, device, None, cfg.general_size))


def sample_and_tokenize(cfg: RunConfig, task, tokenizer) -> Sample:
    train_idx = sample_train(task, cfg.size, cfg.seed)
    val_idx = curve_subset(task)
    eval_texts, eval_labels = held_out(task, cfg.eval_split)
    test_idx = eval_subset(task, cfg.eval_size, cfg.eval_split)
    return Sample(train_idx, val_idx, test_idx, eval_texts, task.train_labels[train_idx], task.val_labels[val_idx],
                  eval_labels[test_idx],
                  tokenize(tokenizer, [task.train_texts[i] for i in train_idx], cfg.max_length),
                  tokenize(tokenizer, [task.val_texts[i] for i in val_idx], cfg.max_length),
                  tokenize(tokenizer, [eval_texts[i] for i in test_idx], cfg.max_length))


def adapt(cfg: RunConfig, strategy, task, env: Loaded):
    """The classifier (a fresh encoder copy when the strategy changes it) and its parameter groups."""
    encoder = fresh_encoder(cfg.model)[1] if strategy.trains_encoder else env.base
    model = EncoderClassifier(encoder, task.num_labels, cfg.feature_layer, cfg.pooling, cfg.dropout or 0.0)
    if strategy.init_head is not None:
        def embed(texts):
            return encode(env.base, tokenize(env.tokenizer, texts, cfg.max_length), env.pad_id, env.device,
                          env.dtype, cfg.feature_layer, cfg.pooling)

        strategy.init_head(model, task.label_names, embed, cfg)
    total = count_params(model, trainable_only=False)
    groups = strategy.adapt(model, cfg)
    own_parts_to(model, env.base, env.device)
    return model, groups, total


def own_parts_to(model: EncoderClassifier, base, device) -> None:
    """Move the classifier to `device`, all but the shared pre-trained encoder when it is the classifier's
    (feature extraction, zero-shot): base_on keeps that one on its device for every run of the process."""
    (model.head if model.encoder is base else model).to(device)


def trainable_params(cfg, num_labels: int) -> tuple[int, int]:
    """(trainable, total) parameters a strategy would train, counted on a CPU copy without training.

    Built exactly as a run builds its classifier, so the number matches RunResult.trainable_params.
    """
    cfg = cfg.resolved()
    encoder = fresh_encoder(cfg.model)[1]   # adapt() freezes or wraps: never touch the shared base
    model = EncoderClassifier(encoder, num_labels, cfg.feature_layer, cfg.pooling, cfg.dropout or 0.0)
    total = count_params(model, trainable_only=False)
    get_strategy(cfg.strategy).adapt(model, cfg)
    return count_params(model), total


def train_phase(cfg, phase: str, epochs: int, forward, model, groups, env: Loaded, report, should_stop,
                progress: dict, penalty=None, keep_best: bool = False, live: bool = True,
                last_scored_after: bool = False) -> int | None:
    """Epochs of optimiser steps over `forward`'s batches, one curve point per epoch. Returns the
    epoch whose weights the model keeps: the best on validation with `keep_best`, else None (the last).
    `live`: score the live general estimate (live_epochs), except, with `last_scored_after`, on the
    last epoch, whose encoder the general benchmark then scores in full (finish_walk)."""
    optimizer = _optimizer(groups, env.device)
    scheduler = _schedule(optimizer, len(forward.plan(0)) * epochs, cfg.warmup)
    clip = [p for g in groups for p in g["params"]] if isinstance(forward, LiveEncoder) else None
    best_acc, best_epoch, best_weights = -1.0, None, None
    scored = live_epochs(epochs, last_scored_after) if live else set()
    for epoch in range(epochs):
        loss_sum, correct, seen = 0.0, 0, 0
        for batch in forward.batches(epoch):
            _check(should_stop)
            t_step = time.perf_counter()
            loss, n_correct, n = forward.step(batch)
            loss.backward()
            if penalty is not None:
                penalty(model, env.base, cfg)
            if clip:
                torch.nn.utils.clip_grad_norm_(clip, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum = loss_sum + loss.detach() * n      # device tensors, read once per epoch
            correct = correct + n_correct
            seen += n
            progress["step"] += 1
            report.step_seconds += time.perf_counter() - t_step
            report("training", progress["step"], progress["total"],
                   f"{phase}epoch {epoch + 1}/{epochs}, step {progress['step']}/{progress['total']}")
        val_acc = _metrics(forward.sample.y_val, forward.predict("val", report.poll))[0]
        number = len(report.curves) + 1
        t_live = time.perf_counter()
        general = _live_general(model, env, report.poll) if epoch + 1 in scored else {}
        report.live_seconds += time.perf_counter() - t_live
        report.curves.append({"epoch": number, "phase": phase.strip(": ") or "train",
                              "train_loss": float(loss_sum) / max(seen, 1), "train_acc": float(correct) / max(seen, 1),
                              "val_acc": val_acc, "distance": _distance(model, env), **general})
        if keep_best and val_acc > best_acc:
            best_acc, best_epoch = val_acc, number
            best_weights = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        report("training", progress["step"], progress["total"], f"{phase}epoch {epoch + 1}/{epochs} done", force=True)
    del optimizer
    if best_weights is not None:
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in best_weights:
                    p.copy_(best_weights[n])
    return best_epoch


def live_epochs(epochs: int, last_scored_after: bool = False) -> set[int]:
    """The epochs (1-based) after which a phase scores the live general estimate: at most LIVE_POINTS,
    spread evenly and ending on the last epoch. With `last_scored_after` the walk's last point comes
    from the general benchmark instead (finish_walk), so the live ones are spread over the epochs before."""
    if last_scored_after:
        return _spread(epochs - 1, LIVE_POINTS - 1)
    return _spread(epochs, LIVE_POINTS)


def _spread(n: int, k: int) -> set[int]:
    """k of the numbers 1..n (all of them if n <= k), evenly spaced, n among them."""
    k = min(n, k)
    return {-(-(i + 1) * n // k) for i in range(k)} if k > 0 else set()


def finish_walk(curves: list[dict], general, pretrained) -> None:
    """The walk's last point: the general benchmark's own score of the last epoch's encoder (the same
    fixed probes as the live estimate, on every test sentence instead of a few), at no extra cost."""
    curves[-1].update(general_est=round(general.score, 6), general_ref=round(pretrained.score, 6))


def _restore(model, tensors: dict) -> None:
    """Kept weights (core.weights) into the model, by parameter name."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(tensors[name].to(p.dtype))


def _live_general(model, env: Loaded, poll) -> dict:
    """The live general estimate after an epoch (core.benchmark.live_estimate), with the attention
    the reference was scored with; nothing while the encoder is the pre-trained one."""
    if model.encoder is env.base:
        return {}
    with attention_as(model.encoder, env.base.config._attn_implementation):
        estimate, reference = env.benchmark.live_estimate(model.encoder, env.base, poll)
    return {"general_est": round(estimate, 6), "general_ref": round(reference, 6)}


def _distance(model, env: Loaded) -> float:
    return 0.0 if model.encoder is env.base else round(weight_distance(model.encoder, env.base), 6)


@dataclass
class Prepared:
    """A run between its stages: what `prepare` built, and what each later stage adds."""
    plan: RunPlan
    env: Loaded
    sample: Sample
    model: EncoderClassifier
    groups: list              # the optimiser's parameter groups ([]: nothing trains)
    total_params: int
    trainable: int
    points: list              # the finish() strengths scored after training ([None]: no finish step)
    head_epochs: int
    work: Work
    weights: WeightStore | None   # kept fine-tuned weights (a strategy with a finish step)
    kept: tuple | None            # (tensors, meta) of kept weights this run re-scores instead of training
    timings: dict
    forward: object = None        # LiveEncoder or CachedFeatures, set by train
    chosen_epoch: int | None = None
    last_scored_after: bool = False
    tuned: dict | None = None     # the fine-tuned encoder's weights, before any finish step mixes them

    @property
    def headline(self):
        """The finish strength the run reports (None without a finish step)."""
        strategy = self.plan.strategy
        return strategy.strength(self.plan.config) if strategy.finish else None

    def set_point(self, a) -> None:
        """The encoder at strength `a` of the strategy's finish step (WiSE-FT: mixed toward pre-trained)."""
        if a is not None:
            self.plan.strategy.finish(self.model, self.env.base, self.tuned, a)


def prepare(p: RunPlan, store, report: _Reporter) -> Prepared:
    """Loading and tokenizing: the encoder and benchmark, the sample, the adapted classifier, kept weights
    to re-score if any, and the work the run will do (the time-left estimate's plan)."""
    cfg, strategy, task = p.config, p.strategy, p.task
    timings = {}
    report("loading", 0.5, 1, f"loading {cfg.model}", force=True)
    env = load(p)
    timings["loading"] = time.perf_counter() - report.t0

    report("tokenizing", 0, 1, "drawing the training sample and tokenizing", force=True)
    t = time.perf_counter()
    sample = sample_and_tokenize(cfg, task, env.tokenizer)
    timings["tokenizing"] = time.perf_counter() - t

    model, groups, total_params = adapt(cfg, strategy, task, env)
    trainable = count_params(model)
    points, head_epochs = strategy.finish_points(cfg), strategy.head_epochs(cfg)
    # A strategy with a finish step keeps its fine-tuned weights: a run that differs only in the finish
    # strength (or the evaluation sizes) re-scores them instead of training again.
    weights = WeightStore.beside(store) if strategy.finish else None
    kept = weights.load(p.training_key) if weights else None
    if kept is not None:
        points, head_epochs, groups = [strategy.strength(cfg)], 0, []
        _restore(model, kept[0])
        report.curves = list(kept[1]["curves"])
    work = _work(cfg, strategy, task, sample, env, head_epochs, len(points), trains=kept is None)
    defaults = for_machine(machine_speed(env.device, env.dtype), machine_speed(env.device, None))
    rates = rates_from(store.list(all_versions=True) if store is not None else [], env.device.type, defaults=defaults)
    report.plan(predict_stages(work, rates), step_seconds(work, rates), rates.source, strategy.trains_encoder)
    return Prepared(p, env, sample, model, groups, total_params, trainable, points, head_epochs, work, weights,
                    kept, timings)


def train(r: Prepared, report: _Reporter, should_stop, kernels: contextlib.ExitStack) -> None:
    """The training stage: LP-FT's head-only phase, then the strategy's epochs (none for zero-shot or a
    re-scoring of kept weights); the weights are kept for strategies with a finish step."""
    cfg, strategy, task, env, sample, model = r.plan.config, r.plan.strategy, r.plan.task, r.env, r.sample, r.model
    t = time.perf_counter()
    report("training", 0, 1, "starting" if strategy.trains_encoder else
           "computing frozen features (cached for later runs)", force=True)
    if strategy.trains_encoder:
        kernels.enter_context(cpu_kernels(model, env.device))
        r.forward = LiveEncoder(model, sample, env, cfg)
    else:
        r.forward = CachedFeatures(model, sample, env, cfg, task, report.poll)
    steps = len(r.forward.plan(0))
    progress = {"step": 0, "total": steps * (r.head_epochs + (cfg.epochs or 0) if r.groups else r.head_epochs)}
    if r.head_epochs:     # LP-FT: the head first, on the frozen encoder's cached features
        train_phase(cfg, "head only: ", r.head_epochs, CachedFeatures(model, sample, env, cfg, task, report.poll),
                    model, head_groups(model, cfg), env, report, should_stop, progress, live=False)
    r.chosen_epoch = r.kept[1]["chosen_epoch"] if r.kept else None
    # the general benchmark scores the last epoch's encoder, unless best_epoch may restore an earlier one
    # or a finish step (WiSE-FT) mixes it: then the last epoch is scored live too
    r.last_scored_after = strategy.trains_encoder and not strategy.finish and not cfg.best_epoch
    if r.groups:          # zero-shot trains nothing, nor does a re-scoring of kept weights
        r.chosen_epoch = train_phase(cfg, "", cfg.epochs, r.forward, model, r.groups, env, report, should_stop,
                                     progress, penalty=strategy.penalty, keep_best=bool(cfg.best_epoch),
                                     last_scored_after=r.last_scored_after)
        if r.weights is not None:
            r.weights.save(r.plan.training_key, dict(model.named_parameters()),
                           {"curves": report.curves, "chosen_epoch": r.chosen_epoch})
    r.timings["training"] = time.perf_counter() - t
    r.timings["general_live"] = report.live_seconds       # part of training: its cost, measured


def evaluate(r: Prepared, report: _Reporter, kernels: contextlib.ExitStack) -> tuple[dict, np.ndarray]:
    """In-domain predictions on the evaluated texts at every finish point, and on the training sample
    at the headline one: ({point: test predictions}, train predictions)."""
    t = time.perf_counter()
    report("evaluating", 0, 1, f"in-domain {r.plan.config.eval_split} set ({len(r.sample.test_idx)} texts)",
           force=True)
    if r.plan.strategy.finish:
        r.tuned = {n: w.detach().clone() for n, w in r.model.encoder.named_parameters()}
    test_preds = {}
    for a in r.points:
        r.set_point(a)
        test_preds[a] = r.forward.predict("test", report.poll)
    r.set_point(r.headline)
    train_pred = r.forward.predict("train", report.poll)
    kernels.close()    # the general benchmark compares with a reference computed by transformers' kernels
    r.timings["evaluating"] = time.perf_counter() - t
    return test_preds, train_pred


def benchmark(r: Prepared, report: _Reporter) -> tuple:
    """The general benchmark of the encoder at every finish point, against the pre-trained reference:
    (reference, {point: score}, the weights' distance at the headline point)."""
    t = time.perf_counter()
    report("general", 0, 1, f"general benchmark: {GENERAL_NAMES}", force=True)
    _, pretrained = r.env.benchmark.reference(r.env.base, report.poll)
    generals = {}
    for a in r.points:
        r.set_point(a)
        # WiSE-FT at a = 0 is the pre-trained encoder exactly (lerp at 0 copies it), so its score is
        # the reference itself: one general benchmark (about 47 s here) less per run
        changed = r.plan.strategy.trains_encoder and a != 0.0
        generals[a] = r.env.benchmark.score(r.model.encoder, r.env.base, changed, report.poll)
    r.set_point(r.headline)
    distance = _distance(r.model, r.env)
    if r.groups and r.last_scored_after:
        finish_walk(report.curves, generals[r.headline], pretrained)
    r.timings["general"] = time.perf_counter() - t
    return pretrained, generals, distance


def assemble(r: Prepared, report: _Reporter, test_preds: dict, train_pred, pretrained, generals: dict,
             distance: float) -> RunResult:
    """The RunResult: metrics, intervals' raw material, the warnings a reader needs, and the run's cost."""
    cfg, strategy, task, sample, env = r.plan.config, r.plan.strategy, r.plan.task, r.sample, r.env
    y_train, y_test = sample.y_train, sample.y_test
    test_pred, general = test_preds[r.headline], generals[r.headline]
    acc, f1 = _metrics(y_test, test_pred)
    warnings = []
    counts = np.bincount(y_train, minlength=task.num_labels)
    majority = float((y_test == counts.argmax()).mean())
    n_classes_pred = len(set(test_pred.tolist()))
    if n_classes_pred == 1 and len(set(y_test.tolist())) > 1:
        warnings.append("the model predicts a single class for every test text: it has learned nothing "
                        "beyond the majority label (try a higher learning rate or more epochs)")
    curve = [{"alpha": a, "in_domain_acc": _metrics(y_test, test_preds[a])[0], "general": generals[a].score,
              "general_refit": generals[a].score_refit} for a in r.points] if strategy.finish else []
    r.timings["total"] = time.perf_counter() - report.t0
    estimate = {**report.estimate, "actual_s": round(r.timings["total"], 2)}
    return RunResult(
        key=r.plan.key, config=cfg.to_dict(), task=cfg.task, strategy=cfg.strategy, size=len(sample.train_idx),
        seed=cfg.seed, in_domain_acc=acc, in_domain_f1=f1, train_acc=_metrics(y_train, train_pred)[0],
        general=general.to_dict(), pretrained_general=pretrained.to_dict(), curves=report.curves, timings=r.timings,
        device=str(env.device), precision="bf16" if env.dtype == torch.bfloat16 else "fp32",
        trainable_params=r.trainable, total_params=r.total_params, n_eval=len(sample.test_idx), majority_acc=majority,
        predicted_classes=n_classes_pred, warnings=warnings, versions=library_versions(),
        padding_fraction=padding_fraction(sample.tok_train, r.forward.plan(0)) if strategy.trains_encoder else 0.0,
        train_tokens=int(sum(len(x) for x in sample.tok_train)) * (cfg.epochs or 0), created_at=time.time(),
        work=asdict(r.work), estimate=estimate, weight_distance=distance, chosen_epoch=r.chosen_epoch, curve=curve,
        rescored=r.kept is not None, training_key=r.plan.training_key if r.weights else None,
        test_correct=pack(test_pred == y_test), per_class=per_class(y_test, test_pred, task.label_names),
        confusion=confusion(y_test, test_pred, task.num_labels), benchmark=env.benchmark.settings())


def run(config: RunConfig, on_progress: Callable | None = None, should_stop: Callable | None = None,
        store=None) -> RunResult:
    """Train and evaluate one configuration; answered from `store` at once if it was run before.
    Stages: plan -> prepare (loading, tokenizing) -> train -> evaluate -> benchmark -> assemble -> store."""
    governor = ThreadGovernor()      # the run's threads follow what the machine has free (core/threads.py)
    try:
        return _run(config, _Reporter(on_progress), _sharing_cores(should_stop, governor), store)
    finally:
        governor.restore()           # also after a store hit, a refused plan or a failed load


def _run(config: RunConfig, report: _Reporter, should_stop, store) -> RunResult:
    report.poll = _ticking(should_stop, report)     # for predictions and the benchmark
    report("loading", 0, 1, "checking the configuration", force=True)
    p = plan(config)
    hit = store.get(p.key) if store is not None else None
    if hit is not None:
        hit.cached = True
        report("general", 1, 1, "answered from the run store", force=True)
        return hit

    r = prepare(p, store, report)
    kernels = contextlib.ExitStack()    # the CPU kernels, from training to the in-domain test predictions
    try:
        train(r, report, should_stop, kernels)
        test_preds, train_pred = evaluate(r, report, kernels)
        pretrained, generals, distance = benchmark(r, report)
    except torch.OutOfMemoryError:
        raise RunError(f"out of memory on {r.env.device.type} at batch size {p.config.batch_size} and max length "
                       f"{p.config.max_length}: lower one of them and run again") from None
    finally:
        kernels.close()
        own_parts_to(r.model, r.env.base, "cpu")     # the device's memory back; the shared encoder stays
        gc.collect()
        if r.env.device.type == "cuda":
            torch.cuda.empty_cache()
    result = assemble(r, report, test_preds, train_pred, pretrained, generals, distance)
    if store is not None:
        store.put(result)
    report("general", 1, 1, "done", force=True)
    return result
