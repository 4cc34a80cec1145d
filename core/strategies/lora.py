"""LoRA (Hu et al. 2021) via peft: the encoder's weights stay frozen; small low-rank updates
are learned beside the attention projections. The new head is trained and saved with the
adapter through `modules_to_save` (without it, peft silently leaves it out: peft#310, #1070).
"""
from .base import COMMON, LR, Knob, Strategy, decay_groups

TARGETS = ("query", "key", "value", "dense")    # the BERT-style projections an adapter can sit beside
KNOBS = (LR,) + COMMON + (
    Knob("lora_r", "LoRA rank", "rank of each low-rank update", 1, 256, step=1),
    Knob("lora_alpha", "LoRA alpha", "scaling of the updates (they are multiplied by alpha / r)", 0, None, low_open=True, step=1),
    Knob("lora_dropout", "LoRA dropout", "dropout on the adapters' input", 0, 1, high_open=True, step=0.05),
    Knob("lora_targets", "LoRA targets", "the projections that get an adapter", choices=TARGETS),
)


def adapt(model, cfg):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=list(cfg.lora_targets), modules_to_save=["head"], bias="none")
    peft_model = get_peft_model(model, config)     # injects in place; the head becomes trainable
    model.peft_model = [peft_model]                # a list, so it is not registered as a submodule
    lora, head = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (head if "head" in name else lora).append((name, p))
    return decay_groups(lora, cfg.lr, cfg.weight_decay) + decay_groups(head, cfg.head_lr, cfg.weight_decay)


STRATEGY = Strategy(
    name="lora",
    colour="#2ca02c",
    title="LoRA (low-rank adapters)",
    summary="Freeze the encoder and learn low-rank updates to chosen projections, plus the head.",
    defaults={"lr": 3e-3, "head_lr": 3e-2, "epochs": 3, "batch_size": 16, "dropout": 0.1},   # docs/DEFAULTS.md
    knobs=KNOBS,
    adapt=adapt,
)
