"""Compare: every stored run in one filterable table, the plots across them, delete, export."""
import pandas as pd
import streamlit as st

from pages import ui
from core import plots, stats
from core.config import ConfigError
from core.errors import DataError
from core.fmt import pct_value, pts
from core.store import to_csv, to_json
from core.uploads import display_name
from core.strategies import STRATEGIES
from core.sweeps import sweep_configs

ui.enter_page()      # first: a run that skipped app.py goes through it

PCT, PTS = "%.1f %%", "%+.1f pts"      # printf formats; these columns hold fractions, multiplied by 100 below
# Every column the table can show, in display order: (label, format or None for text, help).
COLUMNS = {
    "task": ("Task", None, "The in-domain task the encoder was fine-tuned on."),
    "strategy": ("Strategy", None, "How the encoder was adapted (python -m core list describes each)."),
    "size": ("Train size", "%d", "Number of labelled training examples."),
    "seed": ("Seed", "%d", "Random seed (data sample, head initialisation, batch order)."),
    "in_domain_acc": ("In-domain acc.", PCT, "Accuracy on the task's held-out test set: what the model learned."),
    "in_domain_ci": ("In-domain 95 %", None, "The in-domain accuracy's 95 % interval over the same test texts "
                                            "(Wilson): two runs of a task whose intervals overlap much may not differ."),
    "train_acc": ("Train acc.", PCT, "Accuracy on the training examples themselves."),
    "overfit_gap": ("Overfit gap", PTS, "Train minus in-domain accuracy; large means memorised, not learned."),
    "general": ("General (fixed)", PCT, "General-benchmark score with the probes fitted on the pre-trained "
                                        "encoder: how far the old features drifted."),
    "general_delta": ("Δ general", PTS, "General (fixed) minus the pre-trained encoder's; negative = forgot."),
    "general_delta_ci95": ("± (95 %)", "± %.1f pts", "Half-width of the paired 95 % interval of Δ general: the same "
                                                    "sentences before and after. A change inside it is noise."),
    "general_refit": ("General (refit)", PCT, "General-benchmark score with the probes refitted on the adapted "
                                              "encoder: the information still there."),
    "general_delta_refit": ("Δ general (refit)", PTS, "General (refit) minus the pre-trained encoder's."),
    "weight_distance": ("Weights moved", "%.2f %%", "How far the encoder moved from the pre-trained weights: "
                                                    "‖θ − θ₀‖ / ‖θ₀‖ at the end of the run."),
    "chosen_epoch": ("Kept epoch", "%d", "With 'keep the best epoch': the epoch whose weights were kept."),
    "trainable_params": ("Trainable params", "%,d", "Parameters the optimiser updated."),
    "lr": ("Learning rate", "%.1e", "Peak learning rate of the encoder."),
    "epochs": ("Epochs", "%d", "Passes over the training set."),
    "freeze_layers": ("Frozen layers", "%d", "Lowest encoder layers kept frozen."),
    "layer_lr_decay": ("Layer lr decay", "%.2f", "Learning-rate factor per layer going down (1 = none)."),
    "lora_r": ("LoRA rank", "%d", "Rank of the LoRA adapters (LoRA runs only)."),
    "lp_epochs": ("LP-FT head epochs", "%d", "LP-FT: head-only epochs before all layers train."),
    "l2sp_alpha": ("L2-SP alpha", "%g", "L2-SP: strength of the pull toward the pre-trained weights."),
    "wise_alpha": ("WiSE-FT a", "%.2f", "WiSE-FT: mix of the encoder, 0 = pre-trained, 1 = fine-tuned."),
    "time_s": ("Time (s)", "%.1f", "Wall-clock time of the whole run, evaluation included."),
    "device": ("Device", None, "Where the run was computed."),
    "key": ("Key", None, "The run's id in the store: a hash of its configuration, model and data."),
}
# What fits 1280 px beside the sidebar; "More columns" adds the rest.
DEFAULT_COLUMNS = ["task", "strategy", "size", "seed", "in_domain_acc", "in_domain_ci", "general", "general_delta",
                   "general_delta_ci95", "general_delta_refit"]


def column_config(name: str):
    title, fmt, help_ = COLUMNS[name]
    width = "small" if name in ("size", "seed") else None   # a task's name (a file's, for an upload) needs room
    if fmt is None:
        return st.column_config.TextColumn(title, help=help_, width=width)
    return st.column_config.NumberColumn(title, help=help_, format=fmt, width=width)


st.title("Compare runs")
ui.sync_query()


def sweep_form() -> None:
    """Sizes x strategies x seeds on one task, everything else as the Lab is set: queued as one sweep on
    Ray when the server has it (FTLAB_RAY_ADDRESS), else run by the local worker one after the other."""
    dispatcher = ui.ray_dispatcher()
    where = f"on {dispatcher.where}" if dispatcher else "by this machine's worker, one after the other"
    with st.expander("Queue a sweep", expanded=bool(ui.session_sweeps())):
        base = ui.lab_config()
        st.caption(f"Sizes × strategies × seeds on one task; every other setting as in the Lab. Runs {where}; "
                   "a run already stored is not run again.")
        cols = st.columns([2, 2, 3, 1])
        tasks = ui.lab_tasks()
        task = cols[0].selectbox("Task", tasks, index=tasks.index(base.task) if base.task in tasks else 0,
                                 format_func=ui.task_title, key="sweep_task")
        sizes = ui.task_info(task)["sizes"]
        picked_sizes = cols[1].multiselect("Sizes", sizes, default=[s for s in sizes if s in (64, 256)] or sizes[:1],
                                           key="sweep_sizes")
        names = cols[2].multiselect("Strategies", list(STRATEGIES), default=["feature-extraction", "full"],
                                    format_func=lambda n: STRATEGIES[n].title, key="sweep_strategies")
        n_seeds = cols[3].number_input("Seeds", 1, 10, 1, key="sweep_seeds",
                                       help="How many seeds per cell, counting up from the Lab's seed.")
        first_seed = base.seed or 0
        labelled = sweep_configs(base.replace(task=task), picked_sizes, names,
                                 list(range(first_seed, first_seed + int(n_seeds))), {})
        configs = [c for _, c in labelled]
        estimates = [ui.estimate_seconds(c) for c in configs]
        total = None if None in estimates else sum(estimates)
        if st.button(f"Queue {len(configs)} runs (about {ui.duration(total)} of compute)", disabled=not configs,
                     key="sweep_queue", icon=":material/playlist_add:"):
            try:
                how = ui.queue_runs(configs, f"{ui.task_title(task)}: {len(configs)} runs")
            except (ConfigError, DataError) as err:   # DataError: an upload's file gone
                ui.show_config_error(err)
                return
            if how == "local":
                st.toast(f"Queued {len(configs)} runs; the Lab shows them training.")
    ui.sweep_panel()


sweep_form()
runs = ui.store().list()
older = len(ui.store().list(all_versions=True)) - len(runs)
if older and st.toggle(f"Also show {older} run(s) measured by an older version of the lab", key="cmp_old",
                       help="An older measurement is not comparable with the current one: they are left out of the "
                            "table, the plots and the export unless this is on."):
    runs = ui.store().list(all_versions=True)
if not runs:
    st.info("No stored runs yet. Run something in the **Lab**, or queue a comparison from the **Learn** page.")
    st.stop()


def label(r) -> str:
    return f"{display_name(r.task)} · {r.strategy} · n={r.size} · seed {r.seed} · {r.key[:8]}"


# ---------------------------------------------------------------------------- filters
cols = st.columns(3)
tasks = sorted({r.task for r in runs})
strategies = sorted({r.strategy for r in runs})
sizes = sorted({r.size for r in runs})
pick_tasks = cols[0].multiselect("Task", tasks, default=tasks, format_func=display_name, key="cmp_tasks")
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
    table["in_domain_ci"] = [f"{pct_value(lo):.1f} – {pct_value(hi):.1f}"
                             for lo, hi in zip(table["in_domain_low"], table["in_domain_high"])]
    view = table[picked].copy()
    if "task" in view:
        view["task"] = view["task"].map(display_name)        # an upload's file name, not its hash
    for c in picked:
        if COLUMNS[c][1] in (PCT, PTS) or c == "general_delta_ci95":
            # rounded here as the Lab rounds (core.fmt): the table's printf then prints the same digits
            view[c] = [pct_value(v) for v in pd.to_numeric(view[c])]
        elif c == "weight_distance":
            view[c] = 100 * pd.to_numeric(view[c])
    st.dataframe(view, hide_index=True, width="stretch", key="cmp_table",
                 column_config={c: column_config(c) for c in picked})


def figure_with_download(fig, name: str, key: str) -> None:
    st.plotly_chart(fig, key=key)
    # The HTML embeds plotly.js (about 4.8 MB) so it opens offline; a callable builds it only on a click,
    # not on every rerun.
    st.download_button("Download this plot (HTML)", lambda: fig.to_html(include_plotlyjs=True), f"{name}.html",
                       "text/html", key=f"dl_{key}")


if shown:
    # One trade-off plot per task, model and benchmark: their accuracies, references and frontiers
    # are not comparable across those, so they never share one.
    by_group = plots.groups(shown)
    named = {plots.group_label(k, by_group): k for k in by_group}
    picked_group = next(iter(named))
    if len(named) > 1:
        picked_group = st.selectbox(f"Trade-off plot of ({len(named)} groups: each task, model and benchmark apart)",
                                    list(named), key="cmp_tradeoff_group")
    fig = plots.tradeoff_figure(by_group[named[picked_group]])
    figure_with_download(fig, "tradeoff", "cmp_tradeoff")
    st.caption(plots.caption_of(fig))
    figure_with_download(plots.size_figure(shown), "accuracy_vs_size", "cmp_size")
    figure_with_download(plots.general_breakdown_figure(shown), "general_per_task", "cmp_general")
    st.caption("For a PNG, use the camera button in each plot's toolbar (top right when you hover over it).")

# ---------------------------------------------------------------------------- two runs, paired
if len(shown) >= 2:
    st.subheader("Two runs, paired")
    st.caption("Both runs scored on the same texts: each text counts as right or wrong for each, and the "
               "interval comes from the texts on which they differ (a paired standard error, and a paired "
               "bootstrap for the in-domain change).")
    by_key = {r.key: r for r in shown}
    keys = list(by_key)
    cols = st.columns(2)
    a_key = cols[0].selectbox("Run A", keys, index=0, format_func=lambda k: label(by_key[k]), key="cmp_pair_a")
    b_key = cols[1].selectbox("Run B (the baseline)", keys, index=1, format_func=lambda k: label(by_key[k]),
                              key="cmp_pair_b")
    a, b = by_key[a_key], by_key[b_key]
    inside = stats.in_domain_change(a.test_correct, b.test_correct) if stats.same_test_texts(a, b) else None
    general = stats.general_change(a.general, b.general) if stats.same_benchmark(a, b) else None
    cols = st.columns(2)
    if inside is not None:
        low, high = inside["bootstrap95"]
        cols[0].metric("In-domain accuracy, A − B", pts(inside['change']),
                       f"± {pct_value(inside['ci95']):.1f} (95 %): {stats.verdict(inside['change'], inside['se'])}",
                       delta_color="off", delta_arrow="off",
                       help=f"Paired bootstrap 95 % interval: {pts(low)} to {pts(high)} "
                            f"over the same {a.n_eval:,} test texts.")
    else:
        cols[0].info("In-domain: no paired comparison. The two runs were not scored on the same test texts "
                     "(another task, eval size or split), or one was stored before per-text outcomes were kept.")
    if general is not None:
        cols[1].metric("General score (fixed probe), A − B", pts(general['change']),
                       f"± {pct_value(general['ci95']):.1f} (95 %): {stats.verdict(general['change'], general['se'])}",
                       delta_color="off", delta_arrow="off")
    else:
        cols[1].info("General score: no paired comparison (another model, benchmark or benchmark size, or a run stored "
                     "before per-sentence outcomes were kept).")
    if a.task == b.task and a.per_class and b.per_class:
        figure_with_download(plots.per_class_change_figure(a, b), "per_class_change", "cmp_per_class")

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
