"""Faster CPU kernels for the two things a small encoder spends its training step on besides matmuls.

Measured on the 2-core CPU this lab targets (all-MiniLM-L6-v2, ~80 tokens, batch 16; the profile
and the before/after figures are in docs/PERFORMANCE.md):
  - torch's fused attention for CPU (`_scaled_dot_product_flash_attention_for_cpu`) took 36 % of a
    full fine-tuning step in its backward alone; at these lengths the plain matmul-softmax-matmul
    form is several times cheaper, forward and backward.
  - dropout's `bernoulli_` draws one Mersenne-Twister number per element: ~2.6 ms for one
    (16, 81, 384) activation, and BERT applies it 19 times per forward pass. Drawing 64 random
    bits at a time and using 16 of them per element gives the same Bernoulli(1 - p) mask
    (p resolved to 1/65536) in under half the time.

Both are used on the CPU only: on CUDA, SDPA's fused kernels and dropout are already fast.
The semantics are unchanged: the same attention, the same dropout probability and scaling.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

ATTENTION = "lab_cpu"


def _keep_mask(shape, p: float, device) -> torch.Tensor:
    """Bernoulli(1 - p) as a bool tensor, from 16 random bits per element."""
    n = 1
    for s in shape:
        n *= s
    words = torch.randint(-2 ** 63, 2 ** 63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=device)
    bits = words.view(torch.int16)[:n].view(shape)      # uniform over [-32768, 32767]
    return bits >= int(round(p * 65536)) - 32768


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    if not training or p == 0.0:
        return x
    if p >= 1.0:
        return torch.zeros_like(x)
    # One multiply by a mask already scaled by 1/(1-p): autograd saves just that mask (x's dtype)
    # and the backward is one multiply too; cheaper than `where` or masked_fill plus a scale.
    scaled_mask = _keep_mask(x.shape, p, x.device).to(x.dtype).mul_(1.0 / (1.0 - p))
    return x * scaled_mask


class Dropout(nn.Dropout):
    """nn.Dropout with the cheaper mask; keeps `.p`, which BERT's attention reads."""

    def forward(self, x):
        return fast_dropout(x, self.p, self.training)


def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Attention as transformers' eager form computes it, with the cheaper dropout.

    query/key/value: (batch, heads, length, head_dim); returns (batch, length, heads, head_dim).
    """
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask      # additive: 0 for tokens, a large negative for padding
    # Cast before dropout, not after: autocast would cast the probabilities to value's dtype (bf16)
    # for the matmul anyway, and dropout on the narrower tensor moves half the bytes.
    probs = scores.softmax(dim=-1).to(value.dtype)
    if module.training and dropout > 0.0:
        probs = fast_dropout(probs, dropout)
    out = torch.matmul(probs, value)
    return out.transpose(1, 2).contiguous(), probs


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, eager_mask

    AttentionInterface.register(ATTENTION, attention)
    if ATTENTION not in ALL_MASK_ATTENTION_FUNCTIONS:
        AttentionMaskInterface.register(ATTENTION, eager_mask)   # the additive float mask eager uses


@contextlib.contextmanager
def cpu_training_kernels(model: nn.Module, device: torch.device):
    """While training on the CPU: the cheaper dropout (LoRA's included) and attention in `model`,
    an EncoderClassifier. The attention goes back to what it was afterwards, so evaluation and
    the general benchmark run the same kernel as the pre-trained reference they are compared to."""
    if device.type != "cpu":
        yield model
        return
    _register()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, Dropout(child.p, child.inplace).train(child.training))
    encoder = model.encoder
    before = encoder.config._attn_implementation
    try:
        encoder.set_attn_implementation(ATTENTION)
    except (ValueError, AttributeError, NotImplementedError):
        before = None      # an encoder that cannot take it keeps its own attention
    try:
        yield model
    finally:
        if before is not None:
            encoder.set_attn_implementation(before)
