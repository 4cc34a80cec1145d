"""Feature extraction: the encoder stays exactly as pre-trained; only a linear head learns.

Features come from one layer (default the last); since the encoder never changes, core.training
computes them once and caches them, so the head trains on them in a fraction of a second per epoch.
"""
from .base import COMMON, Strategy, freeze, head_groups


def adapt(model, cfg):
    freeze(model.encoder)   # the shared base model, frozen from its load already (a copy elsewhere: trainable_params)
    return head_groups(model, cfg)


STRATEGY = Strategy(
    name="feature-extraction",
    colour="#1f77b4",
    title="Feature extraction (frozen encoder)",
    summary="Freeze the encoder, read features from one layer, train only a linear head on them.",
    defaults={"head_lr": 1e-2, "epochs": 30, "batch_size": 32, "dropout": 0.0},
    knobs=COMMON,
    adapt=adapt,
    trains_encoder=False,
    aliases=("fe", "features", "frozen"),
)
