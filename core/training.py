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
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from .benchmark import GeneralBenchmark
from .config import RunConfig
from .data import eval_subset, load_task, sample_train
from .errors import ConfigError, DataError, ModelError, RunError, RunStopped  # noqa: F401  (re-exported)
from .estimate import STAGES, Clock, Work, predict as predict_stages, rates_from, step_seconds
from .features import FeatureCache, collate, corpus_identity, length_grouped_batches, padding_fraction, tokenize
from .kernels import cpu_kernels, keep_freed_memory
from .models import (EncoderClassifier, autocast, autocast_dtype, count_params, eval_batch_size,
                     fresh_encoder, load_base, model_identity, num_layers, pick_device)
from .result import RunResult
from .strategies import get_strategy

# Share of a typical run's wall time per stage: turns stage progress into one overall fraction.
STAGE_WEIGHTS = {"loading": 0.05, "tokenizing": 0.02, "training": 0.6, "evaluating": 0.15, "general": 0.18}
PROGRESS_INTERVAL_S = 0.2


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


def _schedule(optimizer, total_steps: int, warmup: float):
    warm = max(1, int(round(total_steps * warmup))) if warmup > 0 else 0

    def factor(step):
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _work(cfg, strategy, task, tok_train, tok_val, tok_test, train_idx, test_idx, model_id, device, dtype,
          benchmark) -> Work:
    """What this run will compute, exactly, for the time-left estimate (core.estimate)."""
    ntok = lambda toks: int(sum(len(x) for x in toks))   # noqa: E731
    uncached = 0
    if not strategy.trains_encoder:      # frozen features: only rows not yet on disk cost a forward
        for texts, toks, rows in ((task.train_texts, tok_train, train_idx), (task.val_texts, tok_val, None),
                                  (task.test_texts, tok_test, test_idx)):
            cache = FeatureCache(model_id, corpus_identity(texts), cfg.feature_layer, cfg.pooling, cfg.max_length,
                                 device, dtype, len(texts))
            missing = cache.missing(np.arange(len(texts)) if rows is None else rows)
            uncached += int(len(missing) * ntok(toks) / max(1, len(toks)))
    work = Work.of(strategy.name, strategy.trains_encoder, train_tokens=ntok(tok_train), val_tokens=ntok(tok_val),
                   test_tokens=ntok(tok_test), epochs=cfg.epochs, batch_size=cfg.batch_size, n_train=len(train_idx),
                   general_size=cfg.general_size, uncached_tokens=uncached)
    if not benchmark.has_reference():    # the first run on this machine also fits the pre-trained probes
        work.general_sentences += benchmark.sentences()
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


def _train_loop(cfg, step_fn, epoch_batches, total, evaluate_val, report, should_stop, optimizer, scheduler,
                params_to_clip):
    """The loop shared by every strategy: epochs of steps, curves, progress.

    `epoch_batches(epoch)` returns the epoch's batches already on the device (built once per epoch:
    `total` steps is counted from the index plan, not by building them); loss and hits are
    summed as device tensors and read once per epoch, so a GPU step never waits on the host.
    """
    step = 0
    for epoch in range(cfg.epochs):
        loss_sum, correct, seen = 0.0, 0, 0
        for batch in epoch_batches(epoch):
            _check(should_stop)
            t_step = time.perf_counter()
            loss, n_correct, n = step_fn(batch)
            loss.backward()
            if params_to_clip:
                torch.nn.utils.clip_grad_norm_(params_to_clip, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum = loss_sum + loss.detach() * n
            correct = correct + n_correct
            seen += n
            step += 1
            report.step_seconds += time.perf_counter() - t_step
            report("training", step, total, f"epoch {epoch + 1}/{cfg.epochs}, step {step}/{total}")
        val_acc = evaluate_val()
        report.curves.append({"epoch": epoch + 1, "train_loss": float(loss_sum) / max(seen, 1),
                              "train_acc": float(correct) / max(seen, 1), "val_acc": val_acc})
        report("training", step, total, f"epoch {epoch + 1}/{cfg.epochs} done", force=True)
    return report.curves


def run(config: RunConfig, on_progress: Callable | None = None, should_stop: Callable | None = None,
        store=None) -> RunResult:
    """Train and evaluate one configuration; answered from `store` at once if it was run before."""
    report = _Reporter(on_progress)
    poll = _ticking(should_stop, report)     # for predict() and the benchmark: stop, and progress
    timings = {}
    t = time.perf_counter()
    report("loading", 0, 1, "checking the configuration", force=True)
    try:
        cfg = config.resolved()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    strategy = get_strategy(cfg.strategy)
    task = load_task(cfg.task)
    if cfg.size is not None and cfg.size > len(task.train_texts):
        raise DataError(f"task '{task.name}' has {len(task.train_texts)} training examples; "
                        f"size {cfg.size} is more than that")
    model_id = model_identity(cfg.model)
    key = cfg.key(model_id, task.identity())
    if store is not None:
        hit = store.get(key)
        if hit is not None:
            hit.cached = True
            report("general", 1, 1, "answered from the run store", force=True)
            return hit

    report("loading", 0.5, 1, f"loading {cfg.model}", force=True)
    tokenizer, base = load_base(cfg.model)
    device = pick_device(cfg.device)
    dtype = autocast_dtype(device, cfg.precision)
    n_layers = num_layers(base)
    if cfg.feature_layer is not None and not 1 <= cfg.feature_layer <= n_layers:
        raise ConfigError(f"feature layer must be between 1 and {n_layers} for this model (got {cfg.feature_layer})")
    if cfg.freeze_layers and cfg.freeze_layers > n_layers:
        raise ConfigError(f"this model has {n_layers} layers; cannot freeze {cfg.freeze_layers}")
    base.to(device)   # the cached base model lives on the CPU between runs
    if device.type == "cpu":
        keep_freed_memory()
    torch.manual_seed(cfg.seed)
    pad_id = tokenizer.pad_token_id
    benchmark = GeneralBenchmark(model_id, tokenizer, device, dtype, cfg.general_size)
    timings["loading"] = time.perf_counter() - t

    t = time.perf_counter()
    report("tokenizing", 0, 1, "drawing the training sample and tokenizing", force=True)
    train_idx = sample_train(task, cfg.size, cfg.seed)
    test_idx = eval_subset(task, cfg.eval_size)
    y_train, y_val, y_test = task.train_labels[train_idx], task.val_labels, task.test_labels[test_idx]
    train_texts = [task.train_texts[i] for i in train_idx]
    test_texts = [task.test_texts[i] for i in test_idx]
    tok_train = tokenize(tokenizer, train_texts, cfg.max_length)
    tok_val = tokenize(tokenizer, task.val_texts, cfg.max_length)
    tok_test = tokenize(tokenizer, test_texts, cfg.max_length)
    timings["tokenizing"] = time.perf_counter() - t

    encoder = base if not strategy.trains_encoder else fresh_encoder(cfg.model)[1]
    model = EncoderClassifier(encoder, task.num_labels, cfg.feature_layer, cfg.pooling, cfg.dropout or 0.0)
    total_params = count_params(model, trainable_only=False)
    groups = strategy.adapt(model, cfg)
    trainable = count_params(model)
    model.to(device)
    optimizer = _optimizer(groups, device)
    lengths = np.array([len(x) for x in tok_train])
    batch_size = cfg.batch_size
    batch_plan = {}

    def batches_for_epoch(epoch):
        if epoch not in batch_plan:
            batch_plan[epoch] = length_grouped_batches(lengths, batch_size, np.random.default_rng([cfg.seed, epoch]))
        return batch_plan[epoch]

    steps = len(batches_for_epoch(0)) * cfg.epochs
    scheduler = _schedule(optimizer, steps, cfg.warmup)
    loss_fn = nn.CrossEntropyLoss()
    y_train_t = torch.from_numpy(y_train).to(device)
    warnings = []

    work = _work(cfg, strategy, task, tok_train, tok_val, tok_test, train_idx, test_idx, model_id, device, dtype,
                 benchmark)
    rates = rates_from(store.list() if store is not None else [], device.type)
    report.plan(predict_stages(work, rates), step_seconds(work, rates), rates.source, strategy.trains_encoder)

    t = time.perf_counter()
    report("training", 0, steps, "starting", force=True)
    kernels = contextlib.ExitStack()    # the CPU kernels, from training to the in-domain test predictions
    try:
        if strategy.trains_encoder:
            def epoch_batches(epoch):   # padded and moved to the device before the epoch's first step
                return [collate(tok_train, idx, pad_id, device) + (y_train_t[torch.from_numpy(idx).to(device)],)
                        for idx in batches_for_epoch(epoch)]

            def step_fn(batch):
                ids, mask, target = batch
                model.train()
                with autocast(device, dtype):
                    logits = model(ids, mask)
                loss = loss_fn(logits.float(), target)
                return loss, (logits.argmax(-1) == target).sum(), len(target)

            def evaluate_val():
                return _metrics(y_val, predict(model, tok_val, pad_id, device, dtype, should_stop=poll))[0]

            clip = [p for g in groups for p in g["params"]]
            kernels.enter_context(cpu_kernels(model, device))
            curves = _train_loop(cfg, step_fn, epoch_batches, steps, evaluate_val, report, should_stop,
                                 optimizer, scheduler, clip)
            train_pred = predict(model, tok_train, pad_id, device, dtype, should_stop=poll)
        else:
            # Frozen encoder: features once (cached on disk across runs), then a head on top.
            def cached(texts, tokens_all, rows, n_rows):
                cache = FeatureCache(model_id, corpus_identity(texts), cfg.feature_layer, cfg.pooling,
                                     cfg.max_length, device, dtype, n_rows)
                return torch.from_numpy(cache.get(base, tokens_all, pad_id, rows, poll)).to(device)

            def train_tokens_for(rows):
                return tokenize(tokenizer, [task.train_texts[i] for i in rows], cfg.max_length)

            def test_tokens_for(rows):
                return tokenize(tokenizer, [task.test_texts[i] for i in rows], cfg.max_length)

            report("training", 0, steps, "computing frozen features (cached for later runs)", force=True)
            f_train = cached(task.train_texts, train_tokens_for, train_idx, len(task.train_texts))
            f_val = cached(task.val_texts, lambda rows: [tok_val[i] for i in rows], np.arange(len(tok_val)),
                           len(task.val_texts))
            f_test = cached(task.test_texts, test_tokens_for, test_idx, len(task.test_texts))
            head = nn.Sequential(model.dropout, model.head)

            def epoch_batches(epoch):
                return [torch.from_numpy(idx).to(device) for idx in batches_for_epoch(epoch)]

            def step_fn(idx_t):
                head.train()
                logits = head(f_train[idx_t])
                target = y_train_t[idx_t]
                return loss_fn(logits, target), (logits.argmax(-1) == target).sum(), len(idx_t)

            def head_predict(feats):
                head.eval()
                with torch.inference_mode():
                    return head(feats).argmax(-1).cpu().numpy()

            def evaluate_val():
                return _metrics(y_val, head_predict(f_val))[0]

            curves = _train_loop(cfg, step_fn, epoch_batches, steps, evaluate_val, report, should_stop, optimizer,
                                 scheduler, None)
            train_pred = head_predict(f_train)
        timings["training"] = time.perf_counter() - t

        t = time.perf_counter()
        report("evaluating", 0, 1, f"in-domain test set ({len(test_idx)} texts)", force=True)
        if strategy.trains_encoder:
            test_pred = predict(model, tok_test, pad_id, device, dtype, should_stop=poll)
        else:
            test_pred = head_predict(f_test)
        kernels.close()    # the general benchmark compares with a reference computed by transformers' kernels
        acc, f1 = _metrics(y_test, test_pred)
        train_acc = _metrics(y_train, train_pred)[0]
        timings["evaluating"] = time.perf_counter() - t

        t = time.perf_counter()
        report("general", 0, 1, "general benchmark: MR, CR, TREC-6, Rotten Tomatoes", force=True)
        _, pretrained = benchmark.reference(base, poll)
        general = benchmark.score(model.encoder, base, strategy.trains_encoder, poll)
        timings["general"] = time.perf_counter() - t
    except torch.OutOfMemoryError:
        raise RunError(f"out of memory on {device.type} at batch size {batch_size} and max length "
                       f"{cfg.max_length}: lower one of them and run again") from None
    finally:
        kernels.close()
        del optimizer
        model.to("cpu")
        base.to("cpu")
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()

    counts = np.bincount(y_train, minlength=task.num_labels)
    majority = float((y_test == counts.argmax()).mean())
    n_classes_pred = len(set(test_pred.tolist()))
    if n_classes_pred == 1 and len(set(y_test.tolist())) > 1:
        warnings.append("the model predicts a single class for every test text: it has learned nothing "
                        "beyond the majority label (try a higher learning rate or more epochs)")
    timings["total"] = time.perf_counter() - report.t0
    estimate = {**report.estimate, "actual_s": round(timings["total"], 2)}
    result = RunResult(
        key=key, config=cfg.to_dict(), task=cfg.task, strategy=cfg.strategy, size=len(train_idx), seed=cfg.seed,
        in_domain_acc=acc, in_domain_f1=f1, train_acc=train_acc, general=general.to_dict(),
        pretrained_general=pretrained.to_dict(), curves=curves, timings=timings, device=str(device),
        precision="bf16" if dtype == torch.bfloat16 else "fp32", trainable_params=trainable,
        total_params=total_params, n_eval=len(test_idx), majority_acc=majority,
        predicted_classes=n_classes_pred, warnings=warnings, versions=library_versions(),
        padding_fraction=padding_fraction(tok_train, batches_for_epoch(0)) if strategy.trains_encoder else 0.0,
        train_tokens=int(sum(len(x) for x in tok_train)) * cfg.epochs, created_at=time.time(),
        work=asdict(work), estimate=estimate)
    if store is not None:
        store.put(result)
    report("general", 1, 1, "done", force=True)
    return result
