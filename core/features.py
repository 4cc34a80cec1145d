"""Tokens, length-grouped batches and pooled features, with an on-disk cache of frozen features.

Padding is the waste to avoid on a CPU: batches are formed from examples of similar length
and padded only to their own longest member.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np
import torch

from .paths import cache_dir
from .models import autocast, eval_batch_size, only_bottom_layers, pool
from .errors import RunStopped


def tokenize(tokenizer, texts: list[str], max_length: int) -> list[np.ndarray]:
    """Token ids per text, truncated, unpadded."""
    if not texts:
        return []
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False,
                    return_attention_mask=False, return_token_type_ids=False)
    return [np.asarray(ids, dtype=np.int64) for ids in enc["input_ids"]]


def length_grouped_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None,
                           window: int = 50) -> list[np.ndarray]:
    """Batches of similar-length examples.

    Training (rng given): shuffle, sort within windows of `window` batches by length, then shuffle
    the batch order, so batches stay random but carry little padding. Evaluation (no rng): one
    global sort, longest first, so a memory problem shows up on the first batch.
    """
    n = len(lengths)
    if rng is None:
        order = np.argsort(-lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    order = rng.permutation(n)
    chunk = batch_size * window
    batches = []
    for start in range(0, n, chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(-lengths[part], kind="stable")]
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]


def collate(token_ids: list[np.ndarray], idx: np.ndarray, pad_id: int, device: torch.device):
    """(input_ids, attention_mask) for the examples `idx`, padded to their longest."""
    width = max(len(token_ids[i]) for i in idx)
    ids = np.full((len(idx), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(idx), width), dtype=np.int64)
    for row, i in enumerate(idx):
        t = token_ids[i]
        ids[row, :len(t)] = t
        mask[row, :len(t)] = 1
    return (torch.from_numpy(ids).to(device, non_blocking=True),
            torch.from_numpy(mask).to(device, non_blocking=True))


def padding_fraction(token_ids: list[np.ndarray], batches: list[np.ndarray]) -> float:
    real = sum(len(token_ids[i]) for b in batches for i in b)
    padded = sum(len(b) * max(len(token_ids[i]) for i in b) for b in batches)
    return 1.0 - real / padded if padded else 0.0


@torch.inference_mode()
def encode(encoder, token_ids: list[np.ndarray], pad_id: int, device: torch.device, dtype,
           layer: int | None = None, pooling: str = "mean", batch_size: int | None = None,
           should_stop=None) -> np.ndarray:
    """Pooled features (float32, one row per text) of one layer of `encoder`."""
    if not token_ids:
        return np.zeros((0, encoder.config.hidden_size), dtype=np.float32)
    was_training = encoder.training
    encoder.eval()
    lengths = np.array([len(t) for t in token_ids])
    batch_size = batch_size or eval_batch_size(device)
    out = np.zeros((len(token_ids), encoder.config.hidden_size), dtype=np.float32)
    try:
        with only_bottom_layers(encoder, layer) as lower:
            for idx in length_grouped_batches(lengths, batch_size, None):
                if should_stop is not None and should_stop():
                    raise RunStopped()
                ids, mask = collate(token_ids, idx, pad_id, device)
                with autocast(device, dtype):
                    hidden = lower(input_ids=ids, attention_mask=mask).last_hidden_state
                out[idx] = pool(hidden, mask, pooling).float().cpu().numpy()
    finally:
        encoder.train(was_training)
    return out


class FeatureCache:
    """Frozen-encoder features on disk, one file per (model, texts, layer, pooling, length, precision).

    Rows are computed only when first asked for, so a 64-example run does not pay for the whole
    train split; later runs with the same model, task and layer read them back.
    """

    def __init__(self, model_identity: str, corpus_identity: str, layer, pooling: str, max_length: int,
                 device: torch.device, dtype, n_rows: int):
        spec = f"{model_identity}|{corpus_identity}|{layer}|{pooling}|{max_length}|{device.type}|{dtype}"
        name = hashlib.sha256(spec.encode()).hexdigest()[:20]
        self.path = cache_dir() / "features" / f"{name}.npz"
        self.n_rows = n_rows
        self.layer, self.pooling, self.device, self.dtype = layer, pooling, device, dtype

    def _read(self):
        try:
            with np.load(self.path) as z:
                feats, done = z["feats"], z["done"]
            if len(done) == self.n_rows:
                return feats, done
        except (OSError, ValueError, KeyError):
            pass   # missing or damaged: rebuild
        return None, np.zeros(self.n_rows, dtype=bool)

    def missing(self, rows: np.ndarray) -> np.ndarray:
        """The rows of `rows` whose features are not on disk yet."""
        feats, done = self._read()
        return np.unique(rows) if feats is None else rows[~done[rows]]

    def get(self, encoder, token_ids_for, pad_id: int, rows: np.ndarray, should_stop=None) -> np.ndarray:
        """Features for `rows`; token_ids_for(rows) gives token ids for rows not yet cached."""
        feats, done = self._read()
        missing = rows[~done[rows]] if feats is not None else np.unique(rows)
        if len(missing):
            new = encode(encoder, token_ids_for(missing), pad_id, self.device, self.dtype,
                         self.layer, self.pooling, should_stop=should_stop)
            if feats is None:
                feats = np.zeros((self.n_rows, new.shape[1]), dtype=np.float32)
            feats[missing] = new
            done[missing] = True
            self._write(feats, done)
        return feats[rows]

    def _write(self, feats, done):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, feats=feats, done=done)
        os.replace(tmp, self.path)   # atomic: a crash mid-write leaves the old cache intact


def corpus_identity(texts: list[str]) -> str:
    h = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()[:16]
    return f"{len(texts)}:{h}"
