"""The CPU kernels, before and after: full fine-tuning steps under transformers' kernels and the lab's
(core/kernels.py), interleaved step by step on the same batches ("What the CPU kernels buy")."""
from __future__ import annotations

import contextlib
import time

import numpy as np
import torch

from .harness import _Data, bench_config


KERNEL_VARIANTS = (
    ("before: transformers' kernels (SDPA, torch dropout), AdamW's default on the CPU (a loop per tensor)",
     "sdpa", "loop", True),
    ("+ fused AdamW", "sdpa", "fused", True),
    ("+ the lab's CPU attention and dropout (the lab now)", "lab", "fused", True),
    ("for reference: the lab now with every dropout off (not used)", "lab", "fused", False),
)


def kernel_ab(device: str = "auto", steps: int = 40, size: int = 512, keep_memory: bool = False) -> dict | None:
    """Full fine-tuning steps (bf16 autocast, batch 16, R8) under each variant of KERNEL_VARIANTS,
    interleaved step by step on the same batches so that drift in the machine's speed hits all alike.
    CPU only: on CUDA the lab keeps transformers' kernels."""
    from torch import nn

    from ..features import collate, length_grouped_batches
    from ..kernels import cpu_kernels, keep_freed_memory
    from ..models import EncoderClassifier, autocast, autocast_dtype, fresh_encoder, pick_device
    from ..strategies import get_strategy

    dev = pick_device(device)
    if dev.type != "cpu":
        return None
    if keep_memory:
        keep_freed_memory()
    cfg = bench_config("full", size, device)
    data = _Data(cfg)
    dtype = autocast_dtype(dev, cfg.precision)
    lengths = np.array([len(t) for t in data.tok_train])
    batches = [collate(data.tok_train, idx, data.tokenizer.pad_token_id, dev)
               + (torch.from_numpy(data.y_train[idx]),)
               for idx in length_grouped_batches(lengths, cfg.batch_size, np.random.default_rng(0))]
    loss_fn = nn.CrossEntropyLoss()
    contexts = contextlib.ExitStack()
    variants = []
    with contexts:
        for label, attention, optim, dropout_on in KERNEL_VARIANTS:
            torch.manual_seed(cfg.seed)
            model = EncoderClassifier(fresh_encoder(cfg.model)[1], data.task.num_labels, None, cfg.pooling, cfg.dropout)
            groups = get_strategy("full").adapt(model, cfg)
            opt = torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8,
                                    **({"fused": True} if optim == "fused" else {"foreach": False}))
            if attention == "lab":
                contexts.enter_context(cpu_kernels(model, dev))
            if not dropout_on:
                for m in model.modules():
                    if isinstance(m, nn.Dropout):
                        m.p = 0.0
            params = [p for g in groups for p in g["params"]]
            variants.append({"label": label, "model": model, "opt": opt, "params": params, "times": []})

        def step(v, batch):
            ids, mask, target = batch
            v["model"].train()
            with autocast(dev, dtype):
                logits = v["model"](ids, mask)
            loss = loss_fn(logits.float(), target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(v["params"], 1.0)
            v["opt"].step()
            v["opt"].zero_grad(set_to_none=True)

        for v in variants:                 # warm-up: first-call allocations and oneDNN primitives
            for b in batches[:2]:
                step(v, b)
        tokens = 0
        for i in range(steps):
            b = batches[i % len(batches)]
            tokens += int(b[1].sum())
            order = variants[i % len(variants):] + variants[:i % len(variants)]   # rotate who goes first
            for v in order:
                t = time.perf_counter()
                step(v, b)
                v["times"].append(time.perf_counter() - t)
    base = float(np.sum(variants[0]["times"]))
    rows = [{"label": v["label"], "ms_per_step": 1000 * float(np.mean(v["times"])),
             "tokens_per_s": tokens / float(np.sum(v["times"])), "speedup": base / float(np.sum(v["times"]))}
            for v in variants]
    return {"steps": steps, "batch_size": cfg.batch_size, "rows": rows}
