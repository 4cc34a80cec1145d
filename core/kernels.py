"""Faster CPU kernels for what a small encoder spends its step on besides matmuls.

On the 2-core CPU this lab targets (all-MiniLM-L6-v2, ~80 tokens, batch 16; the before/after
figures are measured by `python -m core bench`, "What the CPU kernels buy" in docs/PERFORMANCE.md):
  - torch's fused attention for CPU (`_scaled_dot_product_flash_attention_for_cpu`) is slow in
    its backward at these lengths; the plain matmul-softmax-matmul form is cheaper, all the more
    with bf16 scores and a softmax computed in float32 (torch's bf16 CPU softmax is slow).
  - dropout's `bernoulli_` draws one Mersenne-Twister number per element, and BERT applies it
    19 times per forward pass. 64-bit words from numpy's SFC64, 16 bits per element, give the
    same Bernoulli(1 - p) mask (p resolved to 1/65536) for less.

Both are used on the CPU only: on CUDA, SDPA's fused kernels and dropout are already fast.
The semantics are unchanged: the same attention (up to one bf16 unit in rare softmax values),
the same dropout probability and scaling.

A third CPU cost is the memory allocator's, see `keep_freed_memory()`.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import sys

import numpy as np
import torch
from torch import nn

ATTENTION = "lab_cpu"


def _random_int16(shape, device) -> torch.Tensor:
    """Uniform over [-32768, 32767]: 64-bit words from numpy's SFC64 generator, each cut into four
    16-bit draws. SFC64 makes them about twice as fast as torch's Mersenne Twister (`randint`), and
    is seeded on every call from torch's default generator, so `torch.manual_seed` still fixes
    every mask."""
    n = math.prod(shape)
    seed = int(torch.randint(0, 2 ** 63 - 1, (), dtype=torch.int64))
    words = np.random.SFC64(seed).random_raw((n + 3) // 4)
    return torch.from_numpy(words.view(np.int16)[:n]).view(shape).to(device)


def _keep(bits: torch.Tensor, p: float) -> torch.Tensor:
    """True with probability 1 - round(p * 65536) / 65536 for uniform 16-bit `bits`."""
    return bits >= round(p * 65536) - 32768


def _mask(like: torch.Tensor, p: float, scale: float) -> torch.Tensor:
    """Shaped and typed like `like`: 0 with probability p, else `scale`."""
    if round(p * 65536) >= 65536:
        return torch.zeros_like(like)
    keep = _keep(_random_int16(like.shape, like.device), p)
    # The same 0/1 bytes read as uint8: torch converts those to a float type several times faster
    # than it converts a bool tensor.
    return keep.view(torch.uint8).to(like.dtype).mul_(scale)


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """torch's dropout, the same law: zero with probability p, else scale by 1/(1-p) (rounded to x's
    dtype, as torch does too). p is resolved to 1/65536."""
    if not training or p == 0.0:
        return x
    # One multiply by a mask already scaled by 1/(1-p): autograd saves just that mask (x's dtype)
    # and the backward is one multiply too; cheaper than `where` or masked_fill plus a scale.
    return x * _mask(x, p, 1.0 / (1.0 - p) if p < 1.0 else 0.0)


class Dropout(nn.Dropout):
    """nn.Dropout with the cheaper mask; keeps `.p`, which BERT's attention reads."""

    def forward(self, x):
        return fast_dropout(x, self.p, self.training)


class _Softmax(torch.autograd.Function):
    """Softmax over the last dimension, computed in float32 (or wider) and returned in the input's
    dtype: torch's CPU softmax is about twice as fast on float32 as on bf16, even counting the casts.
    The backward runs on the saved output in the input's dtype, where torch's kernel is fast. For
    bf16 input the values are `scores.softmax(-1)`'s up to one bf16 unit in rare elements (torch's bf16
    kernel rounds its float intermediate differently); the gradients are its backward's."""

    @staticmethod
    def forward(ctx, scores):
        probs = torch.softmax(scores, -1, dtype=torch.promote_types(scores.dtype, torch.float32)).to(scores.dtype)
        ctx.save_for_backward(probs)
        return probs

    @staticmethod
    def backward(ctx, grad):
        probs, = ctx.saved_tensors
        return torch._softmax_backward_data(grad.to(probs.dtype), probs, -1, probs.dtype)


def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Attention as transformers' eager form computes it, with the cheaper dropout.

    query/key/value: (batch, heads, length, head_dim); returns (batch, length, heads, head_dim)
    and the attention probabilities (dropped, not rescaled).
    """
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    # The (batch, heads, length, length) tensors are the largest of the step: scale and mask the
    # scores in place, in the matmul's dtype (bf16 under autocast, with a mask of that dtype from
    # `attention_mask_for`), so softmax reads and saves bf16 rather than a float32 copy. The scores
    # are bf16 from the matmul already and the mask is 0 or the dtype's minimum, so the softmax
    # input is the one eager builds; torch's CPU softmax computes in float internally either way.
    scores = torch.matmul(query, key.transpose(2, 3)).mul_(scaling)
    if attention_mask is not None:       # additive: 0 for tokens, the dtype's minimum for padding
        # In place only in the scores' own dtype: a float32 minimum added into bf16 would round to
        # -inf and turn a row with nothing to attend to into NaN.
        scores = scores.add_(attention_mask) if attention_mask.dtype == scores.dtype else scores + attention_mask
    # Cast before dropout: autocast casts the probabilities to value's dtype (bf16) for the matmul
    # anyway, and a mask on the narrower tensor moves half the bytes. The 1/(1-p) goes on the
    # (smaller) output instead, as a float: in bf16 it would round to 1.109 for p=0.1 and shrink
    # every kept weight by 0.16 %, which eager attention on fp32 probabilities does not.
    probs = _Softmax.apply(scores).to(value.dtype)
    drop = module.training and dropout > 0.0
    if drop:
        probs = probs * _mask(probs, dropout, 1.0)
    out = torch.matmul(probs, value)
    if drop and dropout < 1.0:
        out = out * (1.0 / (1.0 - dropout))
    return out.transpose(1, 2).contiguous(), probs


def attention_mask_for(*args, dtype: torch.dtype = torch.float32, **kwargs) -> torch.Tensor:
    """transformers' eager mask (0 to attend, the dtype's minimum not to), in the CPU autocast dtype
    when autocast is on: the dtype the attention scores have."""
    from transformers.masking_utils import eager_mask

    if torch.is_autocast_enabled("cpu"):
        dtype = torch.get_autocast_dtype("cpu")
    return eager_mask(*args, dtype=dtype, **kwargs)


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register(ATTENTION, attention)
    if ATTENTION not in ALL_MASK_ATTENTION_FUNCTIONS:
        AttentionMaskInterface.register(ATTENTION, attention_mask_for)


@contextlib.contextmanager
def cpu_kernels(model: nn.Module, device: torch.device):
    """While training and evaluating on the CPU: the cheaper dropout (LoRA's included) and attention
    in `model`, an EncoderClassifier. Both go back afterwards, also when the run stops or fails,
    so the general benchmark runs the same kernels as the pre-trained reference it is compared to.
    In eval mode the dropouts do nothing and the attention is eager's, bf16 scores included."""
    if device.type != "cpu":
        yield model
        return
    _register()
    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, Dropout(child.p, child.inplace).train(child.training))
                swapped.append((parent, name, child))
    encoder = model.encoder
    before = encoder.config._attn_implementation
    # An encoder whose attention does not go through transformers' interface keeps its own
    # (transformers then logs a warning and leaves the setting as it was).
    encoder.set_attn_implementation(ATTENTION)
    try:
        yield model
    finally:
        encoder.set_attn_implementation(before)
        for parent, name, original in swapped:
            original.train(getattr(parent, name).training)
            setattr(parent, name, original)


@contextlib.contextmanager
def attention_as(encoder, implementation: str):
    """For a while, another attention implementation: the live general score inside training uses
    the one the pre-trained reference was scored with, so the two compare."""
    before = encoder.config._attn_implementation
    if before == implementation:
        yield
        return
    encoder.set_attn_implementation(implementation)
    try:
        yield
    finally:
        encoder.set_attn_implementation(before)


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4      # glibc's mallopt() parameters (malloc.h)


@functools.cache     # once per process is enough
def keep_freed_memory() -> bool:
    """Let glibc keep freed memory for reuse instead of returning it to the OS at once.

    By default glibc serves every block above its mmap threshold (at most 32 MB) with its own mmap
    and unmaps it on free, and trims the top of the heap, so every training step page-faults its
    fresh activations and gradients in again; the word-embedding gradient alone (47 MB) is mapped,
    faulted in and zeroed on every step (before/after: docs/PERFORMANCE.md, "What the CPU kernels
    buy"). With mmap off (glibc falls back to it only when the heap cannot grow) every block
    comes from the heap, and up to 512 MB free at its top (a step's activations) stay mapped.
    Process-wide and for the rest of the process: memory freed below the heap top stays resident
    until the process exits. So it is called from a process that trains (the CLI, whose sweeps run
    one configuration after another at the same peak; the app's worker, which exits after its one
    run), never the app's server. Linux/glibc only; elsewhere a no-op.
    Returns whether the setting took.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 512 << 20))
    except (OSError, AttributeError):      # not glibc (musl, ...): leave the allocator alone
        return False
    return ok
