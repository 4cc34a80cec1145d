"""The Hugging Face Trainer baseline: the lab's model, data, optimiser groups and schedule, trained by
transformers.Trainer with its own best options, so the ratio measures the lab's path and nothing else."""
from __future__ import annotations

import gc
import math
import os
import shutil
import tempfile
import time

import numpy as np
import torch
from torch import nn

from .harness import _Data, _head_params, sync, train_flops


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

    from ..models import EncoderClassifier, autocast_dtype, eval_batch_size, fresh_encoder, pick_device
    from ..strategies.base import decay_groups, freeze
    from ..training import _optimizer, _schedule

    hf_logging.set_verbosity_error()
    device = pick_device(cfg.device)
    bf16 = autocast_dtype(device, cfg.precision) is not None
    t0 = time.perf_counter()

    def rows(tokens, labels):
        return [{"input_ids": t.tolist(), "attention_mask": [1] * len(t), "labels": int(y)}
                for t, y in zip(tokens, labels)]

    from ..features import tokenize

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
