"""Zero-shot by label names: embed each label's name (or a short description) with the frozen
encoder and give a text the label whose embedding is nearest by cosine similarity.

It trains nothing and forgets nothing: the left end of every size curve (the training sample is
not even read). The head is set to the normalised label embeddings with no bias, so its argmax
is the cosine nearest label: a text's own length does not change which label is nearest.
"""
from .base import Strategy, freeze

# Short descriptions for the shipped tasks' terse label names (a name not listed is used as it is).
DESCRIPTIONS = {
    "acq": "company acquisitions and mergers", "crude": "crude oil", "earn": "company earnings and profits",
    "grain": "grain and wheat harvests", "interest": "interest rates", "money-fx": "currency exchange markets",
    "ship": "shipping and ports", "trade": "international trade", "ham": "an ordinary personal text message",
    "spam": "spam advertising a prize or offer", "fresh": "a positive movie review", "rotten": "a negative movie review",
    "ABBR": "abbreviation", "DESC": "description", "ENTY": "entity", "HUM": "person", "LOC": "location",
    "NUM": "number", "Bottoms": "trousers, skirts and shorts", "Intimate": "lingerie and sleepwear",
    "Trend": "trendy fashion",
}


def adapt(model, cfg):
    freeze(model)          # nothing learns: the encoder is the shared base model, the head is set below
    return []


def init_head(model, label_names, embed, cfg) -> None:
    import torch

    with torch.no_grad():
        v = torch.as_tensor(embed([DESCRIPTIONS.get(name, name) for name in label_names]),
                            dtype=model.head.weight.dtype)
        model.head.weight.copy_(v / v.norm(dim=1, keepdim=True).clamp(min=1e-12))
        model.head.bias.zero_()


STRATEGY = Strategy(
    name="zero-shot",
    colour="#17becf",
    title="Zero-shot (label names, no training)",
    summary="No training at all: each text gets the label whose name it is nearest to in the encoder's space.",
    defaults={},
    knobs=(),
    adapt=adapt,
    trains_encoder=False,
    init_head=init_head,
    aliases=("zeroshot", "zs"),
)
