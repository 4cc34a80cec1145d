"""Compare: every stored run in one filterable table, the plots across them, delete, export."""
import pandas as pd
import streamlit as st

from pages import ui
from core import plots
from core.store import to_csv, to_json

PCT, PTS = "%.1f %%", "%+.1f pts"      # printf formats; these columns hold fractions, multiplied by 100 below
# Every column the table can show, in display order: (label, format or None for text, help).
COLUMNS = {
    "task": ("Task", None, "The in-domain task the encoder was fine-tuned on."),
    "strategy": ("Strategy", None, "How the encoder was adapted: feature extraction, full, LoRA or BitFit."),
    "size": ("Train size", "%d", "Number of labelled training examples."),
    "seed": ("Seed", "%d", "Random seed (data sample, head initialisation, batch order)."),
    "in_domain_acc": ("In-domain acc.", PCT, "Accuracy on the task's held-out test set: what the model learned."),
    "train_acc": ("Train acc.", PCT, "Accuracy on the training examples themselves."),
    "overfit_gap": ("Overfit gap", PTS, "Train minus in-domain accuracy; large means memorised, not learned."),
    "general": ("General (fixed)", PCT, "General-benchmark score with the probes fitted on the pre-trained "
                                        "encoder: how far the old features drifted."),
    "general_delta": ("Δ general", PTS, "General (fixed) minus the pre-trained encoder's; negative = forgot."),
    "general_refit": ("General (refit)", PCT, "General-benchmark score with the probes refitted on the adapted "
                                              "encoder: the information still there."),
    "general_delta_refit": ("Δ general (refit)", PTS, "General (refit) minus the pre-trained encoder's."),
    "trainable_params": ("Trainable params", "%,d", "Parameters the optimiser updated."),
    "lr": ("Learning rate", "%.1e", "Peak learning rate of the encoder."),
    "epochs": ("Epochs", "%d", "Passes over the training set."),
    "freeze_layers": ("Frozen layers", "%d", "Lowest encoder layers kept frozen."),
    "layer_lr_decay": ("Layer lr decay", "%.2f", "Learning-rate factor per layer going down (1 = none)."),
    "lora_r": ("LoRA rank", "%d", "Rank of the LoRA adapters (LoRA runs only)."),
    "time_s": ("Time (s)", "%.1f", "Wall-clock time of the whole run, evaluation included."),
    "device": ("Device", None, "Where the run was computed."),
    "key": ("Key", None, "The run's id in the store: a hash of its configuration, model and data."),
}
# What fits 1280 px beside the sidebar; "More columns" adds the rest.
DEFAULT_COLUMNS = ["task", "strategy", "size", "seed", "in_domain_acc", "general", "general_delta",
                   "general_delta_refit"]


def column_config(name: str):
    title, fmt, help_ = COLUMNS[name]
    width = "small" if name in ("task", "size", "seed") else None
    if fmt is None:
        return st.column_config.TextColumn(title, help=help_, width=width)
    return st.column_config.NumberColumn(title, help=help_, format=fmt, width=width)


st.title("Compare runs")
ui.sync_query()
runs = ui.store().list()
if not runs:
    st.info("No stored runs yet. Run something in the **Lab**, or queue a comparison from the **Learn** page.")
    st.stop()


def label(r) -> str:
    return f"{r.task} · {r.strategy} · n={r.size} · seed {r.seed} · {r.key[:8]}"


# ---------------------------------------------------------------------------- filters
cols = st.columns(3)
tasks = sorted({r.task for r in runs})
strategies = sorted({r.strategy for r in runs})
sizes = sorted({r.size for r in runs})
pick_tasks = cols[0].multiselect("Task", tasks, default=tasks, key="cmp_tasks")
pick_strategies = cols[1].multiselect("Strategy", strategies, default=strategies, key="cmp_strategies")
if len(sizes) > 1:
    low, high = cols[2].select_slider("Training-set size", sizes, value=(sizes[0], sizes[-1]), key="cmp_sizes")
else:
    low = high = sizes[0]
    cols[2].caption(f"Training-set size: {sizes[0]} (the only one stored)")
shown = [r for r in runs if r.task in pick_tasks and r.strategy in pick_strategies and low <= r.size <= high]
st.caption(f"{len(shown)} of {len(runs)} stored runs match.")

table = pd.DataFrame([r.summary() for r in shown])
if not table.empty:
    extra = st.multiselect("More columns", [c for c in COLUMNS if c not in DEFAULT_COLUMNS],
                           format_func=lambda c: COLUMNS[c][0], key="cmp_columns")
    picked = [c for c in COLUMNS if c in DEFAULT_COLUMNS or c in extra]
    view = table[picked].copy()
    for c in picked:
        if COLUMNS[c][1] in (PCT, PTS):
            view[c] = 100 * pd.to_numeric(view[c])      # the formats print the number as it is
    st.dataframe(view, hide_index=True, width="stretch", key="cmp_table",
                 column_config={c: column_config(c) for c in picked})


def figure_with_download(fig, name: str, key: str) -> None:
    st.plotly_chart(fig, key=key)
    # The HTML embeds plotly.js (about 4.8 MB) so it opens offline; a callable builds it only on a click,
    # not on every rerun.
    st.download_button("Download this plot (HTML)", lambda: fig.to_html(include_plotlyjs=True), f"{name}.html",
                       "text/html", key=f"dl_{key}")


if shown:
    if len(pick_tasks) > 1:
        st.caption("Several tasks are selected: in-domain accuracies of different tasks share one axis below.")
    figure_with_download(plots.tradeoff_figure(shown), "tradeoff", "cmp_tradeoff")
    figure_with_download(plots.size_figure(shown), "accuracy_vs_size", "cmp_size")
    figure_with_download(plots.general_breakdown_figure(shown), "general_per_task", "cmp_general")
    st.caption("For a PNG, use the camera button in each plot's toolbar (top right when you hover over it).")

# ---------------------------------------------------------------------------- export and delete
st.subheader("Export")
cols = st.columns(2)
cols[0].download_button("Download CSV", to_csv(shown), "runs.csv", "text/csv", key="dl_csv")
cols[1].download_button("Download JSON", to_json(shown), "runs.json", "application/json", key="dl_json")

st.subheader("Delete runs")
by_key = {r.key: r for r in shown}
doomed = st.multiselect("Runs to delete", list(by_key), format_func=lambda k: label(by_key[k]), key="cmp_delete")
if st.button("Delete selected", disabled=not doomed, key="cmp_delete_button"):
    n = ui.store().delete(doomed)
    st.session_state.pop("cmp_delete", None)
    st.toast(f"Deleted {n} run(s).")
    st.rerun()
