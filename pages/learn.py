"""Learn: five ideas, each in a few sentences and tied to a comparison you can queue in one click.

A button queues the runs for this session, points the Lab at the first one and switches there;
the Lab shows them training one after the other and lands each on the trade-off plot.
"""
import streamlit as st

from pages import ui
from core.config import ConfigError, RunConfig

st.title("Learn")
ui.sync_query()
st.write("Each idea below comes with a small experiment. The button queues its runs on the in-domain task "
         "you picked in the Lab and takes you there to watch. Each says how long its runs take on this machine "
         "(estimated from their work at the speed this machine's runs have measured); feature extraction takes "
         "a second or two once its features are cached.")

task = ui.lab_config().task
LESSONS = [
    ("Overfitting",
     "A model overfits when it starts memorising its training examples instead of learning what they have in "
     "common. You see it as a gap: accuracy on the training set keeps climbing while accuracy on held-out "
     "examples stalls or falls. Tiny training sets and many epochs make it easy to see. Watch the live curves: "
     "train accuracy reaches 100 % long before the held-out accuracy stops moving.",
     [RunConfig(task=task, strategy="full", size=32, epochs=12)]),
    ("Catastrophic forgetting",
     "Fine-tuning moves the encoder's weights towards one task. Skills the task does not exercise can be "
     "overwritten on the way: the model gets better at your data and worse at everything else. The lab "
     "measures this with a general benchmark of four sentence tasks the model never trains on. On the "
     "trade-off plot, a run that forgot lands left of the dashed line; a higher learning rate pushes it further.",
     [RunConfig(task=task, strategy="full", size=256), RunConfig(task=task, strategy="full", size=256, lr=2e-4)]),
    ("Feature extraction vs fine-tuning",
     "Feature extraction keeps the encoder exactly as it was and trains only a small linear layer on its "
     "outputs, so nothing is forgotten and training is almost free, but the features cannot adapt to your "
     "domain. Full fine-tuning adapts every weight: usually more accurate once there is enough data, at the "
     "price of compute and some forgetting. With very little data the frozen features often win.",
     [RunConfig(task=task, strategy=s, size=n) for s in ("feature-extraction", "full") for n in (32, 512)]),
    ("LoRA",
     "LoRA leaves the pre-trained weights frozen and learns a small low-rank correction beside some of them, "
     "here the attention projections. A few tens of thousands of parameters train instead of millions, and "
     "several adapters can share one base model. Whether it also forgets less depends on how hard it is "
     "pushed: the literature finds LoRA learns less and forgets less, but at this lab's default adapter rate "
     "(1e-3) our R8 runs forgot about as much as full fine-tuning (docs/RESULTS.md). Run both and see where "
     "they land; then lower the LoRA learning rate and run it again.",
     [RunConfig(task=task, strategy="lora", size=256), RunConfig(task=task, strategy="full", size=256),
      RunConfig(task=task, strategy="lora", size=256, lr=3e-4)]),
    ("Freezing layers and lower learning rates for lower layers",
     "Lower layers of a transformer encode general things such as word pieces and syntax; upper layers are "
     "more task-specific. Freezing the bottom layers, or giving each layer a smaller learning rate the lower "
     "it sits (layer-wise decay), keeps the general part mostly intact while the top adapts. The literature "
     "reports less forgetting for little loss of in-domain accuracy; this experiment checks it on your task.",
     [RunConfig(task=task, strategy="full", size=256), RunConfig(task=task, strategy="full", size=256, freeze_layers=4),
      RunConfig(task=task, strategy="full", size=256, layer_lr_decay=0.7)]),
]


def describe(cfg: RunConfig) -> str:
    default = RunConfig(task=task).to_dict()
    changed = {k: v for k, v in cfg.to_dict().items() if v != default[k] and k not in ("strategy", "size")}
    return ", ".join([cfg.strategy, f"n={cfg.size}"] + [f"{k}={v}" for k, v in changed.items()])


for i, (title, text, configs) in enumerate(LESSONS):
    with st.container(border=True):
        st.subheader(title)
        st.write(text)
        estimates = [ui.estimate_seconds(c) for c in configs]
        total = None if None in estimates else sum(estimates)
        st.caption("Runs: " + " | ".join(describe(c) for c in configs) + f" · about {ui.duration(total)} in all here")
        if st.button(f"Queue {len(configs)} run{'s' if len(configs) > 1 else ''} and watch in the Lab",
                     key=f"learn_{i}"):
            try:
                for cfg in configs:
                    ui.submit(cfg)
            except ConfigError as err:
                ui.show_config_error(err)
                st.stop()
            ui.set_lab_config(configs[-1])
            st.switch_page("pages/lab.py")
