"""BitFit (Ben Zaken et al. 2022): train only the encoder's bias terms, plus the head.

About 0.1 % of the weights; on small data it often comes close to full fine-tuning.
"""
from .base import COMMON, LR, Strategy, decay_groups


def adapt(model, cfg):
    biases = []
    for name, p in model.encoder.named_parameters():
        p.requires_grad_(name.endswith("bias"))
        if p.requires_grad:
            biases.append((name, p))
    return decay_groups(biases, cfg.lr, 0.0) + decay_groups(model.head.named_parameters(), cfg.head_lr,
                                                            cfg.weight_decay)


STRATEGY = Strategy(
    name="bitfit",
    colour="#9467bd",
    title="BitFit (biases only)",
    summary="Freeze every encoder weight matrix and train only the bias terms, plus the head.",
    defaults={"lr": 1e-3, "head_lr": 3e-2, "epochs": 3, "batch_size": 16, "dropout": 0.1},
    knobs=(LR,) + COMMON,
    adapt=adapt,
)
