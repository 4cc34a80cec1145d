"""Feature extraction: the encoder stays exactly as pre-trained; only a linear head learns.

Features come from one layer (default the last) and are computed once and cached, so the
head trains on them in a fraction of a second per epoch.
"""
from .base import COMMON, Strategy, decay_groups, freeze


def adapt(model, cfg):
    freeze(model.encoder)   # the shared base model: fresh_encoder() unfreezes its copies
    return decay_groups(model.head.named_parameters(), cfg.head_lr, cfg.weight_decay)


STRATEGY = Strategy(
    name="feature-extraction",
    title="Feature extraction (frozen encoder)",
    summary="Freeze the encoder, read features from one layer, train only a linear head on them.",
    defaults={"head_lr": 1e-2, "epochs": 30, "batch_size": 32, "dropout": 0.0},
    uses=COMMON,
    trains_encoder=False,
    adapt=adapt,
    aliases=("fe", "features", "frozen"),
)
