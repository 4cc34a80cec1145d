"""Learn: the ideas and the remedies for forgetting, each in a few sentences and tied to a comparison
you can queue in one click, with what the preset runs measured for it where there are some.

A button queues the runs for this session, points the Lab at the first one and switches there;
the Lab shows them training one after the other and lands each on the trade-off plot.
"""
import streamlit as st

from pages import ui
from core.config import ConfigError, RunConfig
from core.errors import DataError
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


def r8(preset: str, **settings) -> dict:
    """What the shipped R8 preset `preset` measured with these settings, means over its seeds (core.presets.
    measured): every figure a lesson quotes is read here, at render time, so a regenerated preset
    (make results, make remedies) updates its lesson. A figure the presets lack reads as a dash."""
    found = measured(RunConfig(task="r8", **settings), ui.preset_runs("r8", names=[preset]))
    return found or {"runs": 0, "in_domain": None, "general_delta": None, "ci95": None, "weight_distance": None,
                     "chosen_epochs": [], "curve": {}, "lean": None}


def change(m: dict) -> str:
    """A general change as the lessons write it: '-2.9' (the unit follows in the sentence)."""
    return pts(m["general_delta"], unit="")


def interval(m: dict) -> str:
    """The half-width of the general change's paired 95 % interval: '1.0'."""
    return pts(m["ci95"], unit="").lstrip("+")


full, fe = r8("r8", strategy="full", size=256), r8("r8", strategy="feature-extraction", size=256)
lora = r8("r8", strategy="lora", size=256)
push = {lr: r8("r8_push_256", strategy="full", size=256, lr=lr) for lr in (2e-4, 5e-4)}
push_l2sp, push_lpft = (r8("r8_push_256", strategy=s, size=256, lr=5e-4) for s in ("l2-sp", "lp-ft"))
lp_ft, full_256 = r8("r8_remedies_256", strategy="lp-ft", size=256), r8("r8_remedies_256", strategy="full", size=256)
lp_ft_1024, full_1024 = (r8("r8_remedies_1024", strategy=s, size=1024) for s in ("lp-ft", "full"))
l2sp = {a: r8("r8_remedies_256", strategy="l2-sp", size=256, l2sp_alpha=a) for a in (10, 1000)}
wise = r8("r8_remedies_256", strategy="wise-ft", size=256)
wise_at = lambda a: wise["curve"].get(a, {"in_domain": None, "general_delta": None})   # noqa: E731
best = r8("r8_remedies_256", strategy="full", size=256, best_epoch=True)
zero_shot = r8("r8_remedies_256", strategy="zero-shot", size=256)
fe_64, full_64 = (r8("r8", strategy=s, size=64) for s in ("feature-extraction", "full"))
majority = next((r.majority_acc for r in ui.preset_runs("r8", names=["r8_remedies_256"])), None)
seeds = lambda m: {1: "one seed", 3: "three seeds"}.get(m["runs"], f"{m['runs']} seeds")   # noqa: E731
lean_64 = {s: (r8("r8", strategy=s, size=64)["lean"] or {"name": "–", "true": None, "predicted": None})
           for s in ("feature-extraction", "lora", "full")}

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
     f"its paired 95 % interval (about ±{interval(full)} points for a fine-tuning run on R8 at n=256): a change "
     "inside it is noise. A higher learning rate pushes it further; watch the run's path walk left, epoch by "
     "epoch, while it trains.",
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
     f"(3e-3, chosen on validation) our R8 runs at n=256 forgot as much as full fine-tuning ({change(lora)} against "
     f"{change(full)} points; docs/RESULTS.md). Run both and see where "
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
     f"At this lab's default rate (1e-4, chosen on validation) full fine-tuning on R8 at n=256 changes the "
     f"general score by {change(full)} points ({pct(full['in_domain'])} in-domain), against a paired interval of "
     f"±{interval(full)}. Raise the rate and the loss grows while the new task is learned "
     f"no better: 2e-4 changed it by {change(push[2e-4])} points for {pct(push[2e-4]['in_domain'])} in-domain, and "
     f"5e-4 by {change(push[5e-4])} points for {pct(push[5e-4]['in_domain'])} ({seeds(push[5e-4])} each, "
     "docs/RESULTS.md). The new task is learned as well as ever while the old skills go: catastrophic "
     "forgetting, plainly. Queue it with two remedies at the same rate and see how much each pulls back: at "
     f"5e-4 L2-SP {change(push_l2sp)} points ({pct(push_l2sp['in_domain'])} in-domain), LP-FT {change(push_lpft)} "
     f"({pct(push_lpft['in_domain'])}).",
     [RunConfig(task=task, strategy="full", size=256), RunConfig(task=task, strategy="full", size=256, lr=5e-4),
      RunConfig(task=task, strategy="l2-sp", size=256, lr=5e-4), RunConfig(task=task, strategy="lp-ft", size=256, lr=5e-4)]),
    ("Remedy: LP-FT, fit the head first",
     "A new head starts random, and its first large, noisy gradients flow into the encoder and distort the "
     "features it was given (Kumar et al. 2022). LP-FT first fits the head alone on the frozen encoder's "
     "features (linear probing), then fine-tunes everything from that good start. The per-epoch curves show "
     "the two phases: the head-only epochs first, the weights' distance from the pre-trained ones still 0. "
     f"On R8 at n=256 and the default rate it moved the weights less ({pct(lp_ft['weight_distance'], 2)} against "
     f"{pct(full_256['weight_distance'], 2)}) and forgot less ({change(lp_ft)} against {change(full_256)} points, "
     f"{seeds(lp_ft)} each) for {pct(lp_ft['in_domain'])} in-domain against {pct(full_256['in_domain'])} "
     f"(docs/RESULTS.md). With four times the data it helped less: at n=1024, {change(lp_ft_1024)} against "
     f"{change(full_1024)}, since four times the steps after the head is fitted let the encoder drift anyway. "
     "At 5e-4: see 'Pushing it too far'.",
     [RunConfig(task=task, strategy="full", size=256), RunConfig(task=task, strategy="lp-ft", size=256)]),
    ("Remedy: L2-SP, a pull back toward the pre-trained weights",
     "L2-SP (Li et al. 2018) fine-tunes every weight but adds alpha/2 · ‖θ − θ₀‖² to the loss: the further a "
     "weight wanders from where pre-training left it, the harder it is pulled back. alpha = 0 is plain full "
     f"fine-tuning. On R8 at n=256, alpha = 10 (the lab's default) cut the forgetting from {change(full_256)} to "
     f"{change(l2sp[10])} points for {pct(l2sp[10]['in_domain'])} in-domain against {pct(full_256['in_domain'])}; "
     f"alpha = 1000 changed the general score by {change(l2sp[1000])} points and reached "
     f"{pct(l2sp[1000]['in_domain'])} in-domain. Both land no better than feature extraction at that size "
     f"({pct(fe['in_domain'])}, nothing forgotten): a remedy is worth its training only where it keeps more "
     "in-domain accuracy than the frozen encoder gives (docs/RESULTS.md).",
     [RunConfig(task=task, strategy="full", size=256), RunConfig(task=task, strategy="l2-sp", size=256, l2sp_alpha=10),
      RunConfig(task=task, strategy="l2-sp", size=256, l2sp_alpha=1000)]),
    ("Remedy: WiSE-FT, one training and a whole curve",
     "WiSE-FT (Wortsman et al. 2022) fine-tunes once, then mixes the weights: θ(a) = (1 − a) θ₀ + a θ_ft. "
     "a = 0 is the pre-trained encoder (with the fine-tuned head), a = 1 the fine-tuned one. One run scores a "
     "whole curve and draws it on the trade-off plot; the Lab's slider then scores any other a from the kept "
     f"weights, without training again. On R8 at n=256, a = 0.75 reached {pct(wise_at(0.75)['in_domain'])} "
     f"in-domain against full fine-tuning's {pct(full_256['in_domain'])} and changed the general score by "
     f"{pts(wise_at(0.75)['general_delta'], unit='')} points instead of {change(full_256)}; a = 0.5 (the default) "
     f"{change(wise)} for {pct(wise['in_domain'])} ({seeds(wise)}, docs/RESULTS.md). At a = 0 the fine-tuned "
     f"head on the pre-trained features gets only {pct(wise_at(0.0)['in_domain'])}: the head needs the features "
     "it was trained with.",
     [RunConfig(task=task, strategy="wise-ft", size=256)]),
    ("Remedy: early stopping, keep the best epoch",
     "Held-out validation accuracy says when training stopped helping. With 'keep the best epoch' the run "
     "evaluates after every epoch and keeps the weights of the best one, so a late epoch that overfits (or "
     "forgets) is undone, and the result says which epoch it kept. Over the default three epochs on R8 at "
     f"n=256 it kept epochs {', '.join(str(e) for e in best['chosen_epochs'])} of {seeds(best)}: "
     f"{pct(best['in_domain'])} in-domain and {change(best)} points against {pct(full_256['in_domain'])} and "
     f"{change(full_256)} without it (validation accuracy was still rising or flat). Many epochs on little data "
     "give it more to choose from: this experiment runs 12 epochs on 64 examples, with and without it.",
     [RunConfig(task=task, strategy="full", size=64, epochs=12),
      RunConfig(task=task, strategy="full", size=64, epochs=12, best_epoch=True)]),
    ("Remedy: zero-shot, no training at all",
     "With no labelled data, the encoder can still classify: embed each label's name (or a short description "
     "of it) and give every text the label whose embedding is closest. Nothing trains, so nothing is forgotten: "
     "it is the left end of every size curve, and the bar that a few labelled examples have to clear. On R8 it "
     f"reaches {pct(zero_shot['in_domain'])} from the eight label names alone (the commonest label is "
     f"{pct(majority)} of the test texts); 64 labelled examples take feature extraction to {pct(fe_64['in_domain'], 0)} "
     f"and full fine-tuning to {pct(full_64['in_domain'], 0)} (docs/RESULTS.md).",
     [RunConfig(task=task, strategy="zero-shot", size=64), RunConfig(task=task, strategy="feature-extraction", size=64),
      RunConfig(task=task, strategy="full", size=64)]),
    ("Bias: leaning on the commonest label",
     "Guessing the commonest label is right more often than any other guess, so a model that has learned little "
     "guesses it more often than the data has it, and training on skewed or unrepresentative data can amplify "
     "an imbalance that is already there. After every run the lab says how often it predicted the test set's "
     "commonest label against how often the texts have it, paired over the same texts, above the per-class "
     f"view. On R8 at n=64, {lean_64['feature-extraction']['name']} is {pct(lean_64['feature-extraction']['true'])} "
     f"of the test texts; feature extraction predicted it for {pct(lean_64['feature-extraction']['predicted'])}, "
     f"LoRA for {pct(lean_64['lora']['predicted'])} and full fine-tuning for {pct(lean_64['full']['predicted'])} "
     "(three seeds each, docs/RESULTS.md). Run the two and compare what each leans on, then try a larger size.",
     [RunConfig(task=task, strategy="feature-extraction", size=64), RunConfig(task=task, strategy="full", size=64)]),
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
            except (ConfigError, DataError) as err:   # DataError: an upload's file gone
                ui.show_config_error(err)
                st.stop()
            ui.set_lab_config(configs[-1])
            st.switch_page("pages/lab.py")
