"""Compare: every stored run in one filterable table, the plots across them, delete, export."""
import pandas as pd
import streamlit as st

from pages import ui
from core import plots
from core.store import to_csv, to_json

TABLE_COLUMNS = ["task", "strategy", "size", "seed", "in_domain_acc", "train_acc", "overfit_gap", "general",
                 "general_delta", "general_refit", "general_delta_refit", "trainable_params", "lr", "epochs",
                 "freeze_layers", "layer_lr_decay", "lora_r", "time_s", "device", "key"]

st.title("📊 Compare runs")
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

table = pd.DataFrame([r.summary() for r in shown], columns=None)
if not table.empty:
    st.dataframe(table[[c for c in TABLE_COLUMNS if c in table.columns]], hide_index=True, key="cmp_table")


def figure_with_download(fig, name: str, key: str) -> None:
    st.plotly_chart(fig, key=key)
    st.download_button(f"Download this plot (HTML)", fig.to_html(include_plotlyjs="cdn"), f"{name}.html",
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
