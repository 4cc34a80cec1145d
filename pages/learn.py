"""Learn: the ideas and the remedies for forgetting, each in a few sentences and tied to a comparison
you can queue in one click, with what the preset runs measured for it where there are some.

A button queues the runs for this session, points the Lab at the first one and switches there;
the Lab shows them training one after the other and lands each on the trade-off plot.
"""
import streamlit as st

from pages import ui
from core.config import ConfigError, RunConfig
from core.fmt import pct, pts
from core.presets import measured

ui.enter_page()      # first: a run that skipped app.py goes through it

st.title("Learn")
ui.sync_query()
st.write("Each idea below comes with a small experiment. The button queues its runs on the in-domain task "
         "you picked in the Lab and takes you there to watch. Each says how long its runs take on this machine "
         "(estimated from their work at the speed this machine's runs have measured); feature extraction takes "
         "a second or two once its features are cached.")

task = ui.lab_config().task
preset_runs = ui.preset_runs(task)
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
     "measures this with a general benchmark of four tasks the model never trains on, each a different skill: "
     "the topic of informal posts (20 Newsgroups), the sentiment of product reviews (CR) and of film critics "
     "(Rotten Tomatoes), and what a question asks for (TREC-6); about 3,700 test sentences, none of them in any "
     "other task. On the trade-off plot, a run that forgot lands left of the dashed line, with a bar for "
     "its paired 95 % interval (about ±1 point for a fine-tuning run on R8): a change inside it is noise. A higher learning rate pushes it further; watch "
     "the run's path walk left, epoch by epoch, while it trains.",
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
     "(3e-3, chosen on validation) our R8 runs at n=256 forgot as much as full fine-tuning (-2.8 against -2.9 "
     "points; docs/RESULTS.md). Run both and see where "
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
    # ------------------------------------------------------------------ the remedies for forgetting
    ("Pushing it too far",
     "At this lab's default rate (1e-4, chosen on validation) full fine-tuning on R8 at n=256 loses about 3 "
     "points of general score, three times its paired interval. Raise the rate and the loss grows while the "
     "new task is learned no better: 2e-4 lost 4.9 points for the same 95.5 % in-domain, and 5e-4 lost 16.8 "
     "points for 94.2 % (one seed each, docs/RESULTS.md). The new task is learned as well as ever while the "
     "old skills go: catastrophic forgetting, plainly. Queue it with two remedies at the same rate and see how "
     "much each pulls back: at 5e-4 L2-SP lost 1.2 points (93.3 % in-domain), LP-FT 13.4 (94.7 %).",
     [RunConfig(task=task, strategy="full", size=256), RunConfig(task=task, strategy="full", size=256, lr=5e-4),
      RunConfig(task=task, strategy="l2-sp", size=256, lr=5e-4), RunConfig(task=task, strategy="lp-ft", size=256, lr=5e-4)]),
    ("Remedy: LP-FT, fit the head first",
     "A new head starts random, and its first large, noisy gradients flow into the encoder and distort the "
     "features it was given (Kumar et al. 2022). LP-FT first fits the head alone on the frozen encoder's "
     "features (linear probing), then fine-tunes everything from that good start. The per-epoch curves show "
     "the two phases: the head-only epochs first, the weights' distance from the pre-trained ones still 0. "
     "On R8 at n=256 and the default rate it moved the weights less (0.51 % against 0.64 %) and forgot less "
     "(-1.6 against -2.9 points, three seeds each) for 94.7 % in-domain against 95.5 % (docs/RESULTS.md). "
     "With four times the data it helped less: at n=1024, -2.3 against -3.6, since four times the steps "
     "after the head is fitted let the encoder drift anyway. At 5e-4: see 'Pushing it too far'.",
     [RunConfig(task=task, strategy="full", size=256), RunConfig(task=task, strategy="lp-ft", size=256)]),
    ("Remedy: L2-SP, a pull back toward the pre-trained weights",
     "L2-SP (Li et al. 2018) fine-tunes every weight but adds alpha/2 · ‖θ − θ₀‖² to the loss: the further a "
     "weight wanders from where pre-training left it, the harder it is pulled back. alpha = 0 is plain full "
     "fine-tuning. On R8 at n=256, alpha = 10 (the lab's default) cut the forgetting to a third (-0.9 against "
     "-2.9 points) for 2 points of in-domain accuracy (93.5 % against 95.5 %); alpha = 1000 forgot nothing and "
     "learned 6 points less (89.5 %). Both land no better than feature extraction at that size (93.8 %, nothing "
     "forgotten): a remedy is worth its training only where it keeps more in-domain accuracy than the frozen "
     "encoder gives (docs/RESULTS.md).",
     [RunConfig(task=task, strategy="full", size=256), RunConfig(task=task, strategy="l2-sp", size=256, l2sp_alpha=10),
      RunConfig(task=task, strategy="l2-sp", size=256, l2sp_alpha=1000)]),
    ("Remedy: WiSE-FT, one training and a whole curve",
     "WiSE-FT (Wortsman et al. 2022) fine-tunes once, then mixes the weights: θ(a) = (1 − a) θ₀ + a θ_ft. "
     "a = 0 is the pre-trained encoder (with the fine-tuned head), a = 1 the fine-tuned one. One run scores a "
     "whole curve and draws it on the trade-off plot; the Lab's slider then scores any other a from the kept "
     "weights, without training again. On R8 at n=256, a = 0.75 kept 95.4 % of full fine-tuning's 95.5 % "
     "in-domain and forgot 1.9 points instead of 2.9; a = 0.5 (the default) forgot 1.2 for 94.2 % "
     "(three seeds, docs/RESULTS.md). At a = 0 the fine-tuned head on the pre-trained features gets only "
     "82.8 %: the head needs the features it was trained with.",
     [RunConfig(task=task, strategy="wise-ft", size=256)]),
    ("Remedy: early stopping, keep the best epoch",
     "Held-out validation accuracy says when training stopped helping. With 'keep the best epoch' the run "
     "evaluates after every epoch and keeps the weights of the best one, so a late epoch that overfits (or "
     "forgets) is undone, and the result says which epoch it kept. Over the default three epochs on R8 at "
     "n=256 it kept epochs 3, 3 and 2 of three seeds and changed neither accuracy nor forgetting (validation "
     "accuracy was still rising or flat). Many epochs on little data give it more to choose from: this experiment runs 12 epochs on 64 "
     "examples, with and without it.",
     [RunConfig(task=task, strategy="full", size=64, epochs=12),
      RunConfig(task=task, strategy="full", size=64, epochs=12, best_epoch=True)]),
    ("Remedy: zero-shot, no training at all",
     "With no labelled data, the encoder can still classify: embed each label's name (or a short description "
     "of it) and give every text the label whose embedding is closest. Nothing trains, so nothing is forgotten: "
     "it is the left end of every size curve, and the bar that a few labelled examples have to clear. On R8 it "
     "reaches 63.6 % from the eight label names alone (the commonest label is 49.8 % of the test texts); 64 "
     "labelled examples take feature extraction to 84 % and full fine-tuning to 89 % (docs/RESULTS.md).",
     [RunConfig(task=task, strategy="zero-shot", size=64), RunConfig(task=task, strategy="feature-extraction", size=64),
      RunConfig(task=task, strategy="full", size=64)]),
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
        seen = [(c, measured(c, preset_runs)) for c in configs]
        if any(m for _, m in seen):
            st.caption("Measured before (preset runs, mean over seeds): " + " | ".join(
                f"{describe(c)}: in-domain {pct(m['in_domain'])}, general {pts(m['general_delta'])}"
                + (f" ({m['runs']} runs)" if m["runs"] > 1 else "") for c, m in seen if m))
        if st.button(f"Queue {len(configs)} run{'s' if len(configs) > 1 else ''} and watch in the Lab",
                     key=f"learn_{i}"):
            try:
                ui.queue_runs(configs, title)        # on Ray when the server has it, else the local queue
            except ConfigError as err:
                ui.show_config_error(err)
                st.stop()
            ui.set_lab_config(configs[-1])
            st.switch_page("pages/lab.py")
