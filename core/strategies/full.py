"""Full fine-tuning: every encoder weight learns, optionally with the bottom layers frozen and
a learning rate that shrinks layer by layer towards the embeddings (Sun et al. 2019).
"""
from .base import COMMON, LR, Knob, Strategy, decay_groups, freeze

FREEZE_LAYERS = Knob("freeze_layers", "frozen layers", "bottom encoder layers (and the embeddings) kept frozen", 0, None, step=1)
LAYER_LR_DECAY = Knob("layer_lr_decay", "layer-wise lr decay", "layer l learns at lr * decay^(layers - l); 1 = the same rate for all",
                      0, 1, low_open=True, step=0.05)
KNOBS = (LR,) + COMMON + (FREEZE_LAYERS, LAYER_LR_DECAY)
DEFAULTS = {"lr": 1e-4, "head_lr": 3e-2, "epochs": 3, "batch_size": 16, "dropout": 0.1}   # docs/DEFAULTS.md


def adapt(model, cfg, head_lr=None):
    """`head_lr`: the head's rate when it differs from cfg.head_lr (LP-FT's second phase)."""
    from ..models import encoder_layers   # torch: only when a run adapts a model

    layers = encoder_layers(model.encoder)
    n = len(layers)
    k = min(cfg.freeze_layers or 0, n)
    if k > 0:   # frozen bottom: embeddings and the first k blocks
        freeze(model.encoder.embeddings)
        for block in list(layers)[:k]:
            freeze(block)
    decay = cfg.layer_lr_decay or 1.0
    groups = decay_groups(model.encoder.embeddings.named_parameters(), cfg.lr * decay ** n, cfg.weight_decay)
    for depth, block in enumerate(layers, start=1):          # block `depth` gets lr * decay^(n - depth)
        groups += decay_groups(block.named_parameters(), cfg.lr * decay ** (n - depth), cfg.weight_decay)
    in_blocks = {id(p) for p in model.encoder.embeddings.parameters()} | {id(p) for p in layers.parameters()}
    rest = [(name, p) for name, p in model.encoder.named_parameters() if id(p) not in in_blocks]
    groups += decay_groups(rest, cfg.lr, cfg.weight_decay)   # e.g. the unused BERT pooler
    groups += decay_groups(model.head.named_parameters(), head_lr or cfg.head_lr, cfg.weight_decay)
    return groups


STRATEGY = Strategy(
    name="full",
    colour="#d62728",
    title="Full fine-tuning",
    summary="Update every encoder weight with the head; freeze bottom layers or decay the lr by depth if you like.",
    defaults=DEFAULTS,
    knobs=KNOBS,
    adapt=adapt,
    aliases=("finetune", "fine-tuning", "ft"),
)
