"""LP-FT (Kumar et al. 2022): linear probing, then fine-tuning.

A randomly initialised head sends large, arbitrary gradients into the encoder in the first steps of
fine-tuning and distorts the pre-trained features. LP-FT first fits the head with the encoder
frozen (on cached features, as feature extraction does), then fine-tunes everything, the head at
the encoder's small rate since it is already fitted.
"""
from . import full
from .base import Knob, Strategy

LP_EPOCHS = Knob("lp_epochs", "head-only epochs", "head-only epochs on the frozen encoder before fine-tuning all", 1, 1000, step=1)


def adapt(model, cfg):
    return full.adapt(model, cfg, head_lr=cfg.lr)


def head_phase(cfg) -> int:
    return cfg.lp_epochs


STRATEGY = Strategy(
    name="lp-ft",
    colour="#ff7f0e",
    title="LP-FT (probe first, then fine-tune)",
    summary="Fit the head on the frozen encoder first, then fine-tune all of it: less distortion of the features.",
    defaults={**full.DEFAULTS, "lp_epochs": 20},
    knobs=full.KNOBS + (LP_EPOCHS,),
    adapt=adapt,
    head_phase=head_phase,
    aliases=("lpft",),
)
