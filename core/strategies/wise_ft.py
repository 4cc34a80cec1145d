"""WiSE-FT (Wortsman et al. 2022): fine-tune, then interpolate the encoder's weights back toward
the pre-trained ones: theta(a) = (1 - a) * theta_0 + a * theta_ft.

One training gives a whole curve: core.training scores every `a` of CURVE after training (in-domain
and general) and reports the run at `wise_alpha`. The head is kept as fine-tuned at every `a`
(there is no zero-shot head to mix it with); the general benchmark reads only the encoder, so at
a = 0 it scores exactly the pre-trained encoder.
"""
from . import full
from .base import Knob, Strategy

WISE_ALPHA = Knob("wise_alpha", "WiSE-FT mixing", "mixing of the encoder: 0 = pre-trained, 1 = fine-tuned", 0, 1, step=0.05)
CURVE = (0.0, 0.25, 0.5, 0.75, 1.0)


def finish(model, reference, tuned: dict, a: float) -> None:
    """Set the encoder to (1 - a) * reference + a * tuned (`tuned`: the fine-tuned weights by name)."""
    import torch

    with torch.no_grad():
        ref = dict(reference.named_parameters())
        for name, p in model.encoder.named_parameters():
            p.copy_(torch.lerp(ref[name].to(p.dtype), tuned[name], a))


STRATEGY = Strategy(
    name="wise-ft",
    colour="#e377c2",
    title="WiSE-FT (interpolate back toward pre-trained)",
    summary="Full fine-tuning, then the encoder's weights mixed with the pre-trained ones: a curve from one run.",
    defaults={**full.DEFAULTS, "wise_alpha": 0.5},
    knobs=full.KNOBS + (WISE_ALPHA,),
    adapt=full.adapt,
    finish=finish,
    strength=lambda cfg: cfg.wise_alpha,
    curve=CURVE,
    aliases=("wiseft", "wise"),
)
