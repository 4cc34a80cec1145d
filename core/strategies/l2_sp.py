"""L2-SP (Li et al. 2018): full fine-tuning plus alpha/2 * ||theta - theta_0||^2 over the encoder.

Weight decay pulls weights toward zero; L2-SP pulls them toward where pre-training left them, so
the encoder can adapt only as far as the task's gradient outweighs the pull. alpha = 0 is plain
full fine-tuning. The term's gradient, alpha * (theta - theta_0), is added to each weight's
gradient after the backward pass: the same optimisation, without an autograd graph for the sum.
"""
from . import full
from .base import Knob, Strategy

L2SP_ALPHA = Knob("l2sp_alpha", "L2-SP alpha", "strength of the pull toward the pre-trained weights (0 = full fine-tuning)",
                  0, None, step=0.1)


def penalty(model, reference, cfg) -> None:
    import torch

    pairs = [(p, r) for p, r in zip(model.encoder.parameters(), reference.parameters())
             if p.requires_grad and p.grad is not None]
    if cfg.l2sp_alpha and pairs:
        params, refs = [p.detach() for p, _ in pairs], [r.detach() for _, r in pairs]
        torch._foreach_add_([p.grad for p, _ in pairs], torch._foreach_sub(params, refs), alpha=cfg.l2sp_alpha)


STRATEGY = Strategy(
    name="l2-sp",
    colour="#8c564b",
    title="L2-SP (pull toward the pre-trained weights)",
    summary="Full fine-tuning with a penalty alpha/2 * ||theta - theta_0||^2 that keeps the encoder near its start.",
    # 10: on R8 at n=256 (3 seeds, docs/RESULTS.md) it halved the forgetting of full fine-tuning for
    # about 1.5 points of in-domain accuracy; 1000 keeps the encoder where it was and learns less
    defaults={**full.DEFAULTS, "l2sp_alpha": 10.0},
    knobs=full.KNOBS + (L2SP_ALPHA,),
    adapt=full.adapt,
    penalty=penalty,
    aliases=("l2sp",),
)
