"""Lab: pick a model, task, size and strategy; run it; watch it train; see where it lands.

Top to bottom: sidebar controls -> the configuration it resolves to -> the running job (a
fragment that polls the shared JobManager) -> the last result's cards -> the trade-off plot.
"""
import streamlit as st

from pages import ui
from core import plots
from core.config import ConfigError, RunConfig
from core.data import DataError
from core.models import MODELS, ModelError
from core.strategies import STRATEGIES
from core.training import STAGES

P = ui.WIDGET_PREFIX
LORA_MODULES = ["query", "key", "value", "dense"]
presenter = st.session_state.get("presenter", False)
saved = ui.lab_config()


def init(name: str, value) -> None:
    """A widget keyed cfg_<name> starts from the saved config (session state survives page switches,
    widget state does not)."""
    st.session_state.setdefault(P + name, value)


def number(name: str, label: str, default_hint, step, fmt: str, **kw):
    init(name, getattr(saved, name))
    hint = f"strategy default: {default_hint:g}" if isinstance(default_hint, (int, float)) else default_hint
    return st.number_input(label, key=P + name, step=step, format=fmt, placeholder=hint, **kw)


st.title("🧪 Fine-tuning lab")
st.caption("Adapt a pre-trained encoder to a task and see both what it learns (in-domain accuracy) "
           "and what it forgets (a general benchmark it was never trained on).")
for msg in st.session_state.pop("url_errors", []):
    st.error(msg, icon="🔗")

# ---------------------------------------------------------------------------- sidebar: the basics
values = saved.to_dict()
for name in ("freeze_layers", "lora_r", "lora_targets"):   # the parameter counts need this run's values
    values[name] = st.session_state.get(P + name, values[name])
with st.sidebar:
    st.header("Run setup")
    init("model", saved.model)
    models = list(MODELS) + [m for m in [st.session_state[P + "model"]] if m not in MODELS]   # e.g. a hub id
    values["model"] = st.selectbox("Model", models, key=P + "model", accept_new_options=True,
                                   help="A registry name, a local folder, or a Hugging Face hub id (needs network).")
    init("task", saved.task if saved.task in ui.IN_DOMAIN_TASKS else ui.IN_DOMAIN_TASKS[0])
    values["task"] = st.selectbox("In-domain task", ui.IN_DOMAIN_TASKS, key=P + "task",
                                  format_func=lambda t: ui.TASKS[t].title)
    try:
        info = ui.task_info(values["task"])
    except DataError as err:
        st.error(f"**The data could not be used.** {err}", icon="🚫")
        st.stop()
    card = info["card"]
    st.caption(f"**{card['domain']}** · {card['train']:,} train / {card['test']:,} test · "
               f"{len(card['labels'])} labels: {', '.join(card['labels'][:8])}"
               + (" ..." if len(card["labels"]) > 8 else ""))
    for label, text in info["examples"]:
        st.caption(f"*{label}*: “{text[:140]}{'...' if len(text) > 140 else ''}”")

    sizes = info["sizes"]
    wanted = st.session_state.get(P + "size", saved.size or sizes[-1])
    if wanted not in sizes:      # a new task, or a size from a link: the nearest size not above it
        st.session_state[P + "size"] = max([s for s in sizes if s <= (wanted or sizes[-1])] or sizes[:1])
    init("size", sizes[-1] if saved.size is None else saved.size)
    size = st.select_slider("Training-set size", sizes, key=P + "size",
                            format_func=lambda n: f"all ({n:,})" if n == sizes[-1] else f"{n:,}")
    values["size"] = None if size == sizes[-1] else size

    def count_line(name: str) -> str:
        if values["model"] not in MODELS:
            return "parameters counted when it runs"
        probe = RunConfig(model=values["model"], strategy=name, freeze_layers=values["freeze_layers"],
                          lora_r=values["lora_r"], lora_targets=tuple(values["lora_targets"] or ("query",)))
        try:
            trainable, total = ui.param_count(probe.to_dict(), info["num_labels"])
        except (ConfigError, ModelError) as err:
            return f"cannot count: {err}"
        share = 100 * trainable / total
        return f"{trainable:,} trainable parameters ({share:.2g} % of {total / 1e6:.1f} M)" if share < 99.5 else \
            f"{trainable:,} trainable parameters (all of them)"

    init("strategy", saved.strategy)
    values["strategy"] = st.radio("Strategy", list(STRATEGIES), key=P + "strategy",
                                  format_func=lambda s: STRATEGIES[s].title,
                                  captions=[f"{STRATEGIES[s].summary} **{count_line(s)}**" for s in STRATEGIES])
    strategy = STRATEGIES[values["strategy"]]
    hints = strategy.defaults

    # ------------------------------------------------------------------------ advanced (hidden for talks)
    if not presenter:
        with st.expander("Advanced"):
            if "lr" in strategy.uses:
                values["lr"] = number("lr", "Learning rate (encoder / adapters)", hints.get("lr"), 1e-5, "%g")
            values["head_lr"] = number("head_lr", "Head learning rate", hints.get("head_lr"), 1e-4, "%g")
            values["epochs"] = number("epochs", "Epochs", hints.get("epochs"), 1, "%d")
            values["batch_size"] = number("batch_size", "Batch size", hints.get("batch_size"), 8, "%d")
            values["max_length"] = number("max_length", "Max length (tokens)", "", 16, "%d")
            values["seed"] = number("seed", "Seed", "", 1, "%d")
            if "freeze_layers" in strategy.uses:
                values["freeze_layers"] = number("freeze_layers", "Frozen bottom layers", "", 1, "%d")
                values["layer_lr_decay"] = number("layer_lr_decay", "Layer-wise lr decay (1 = none)", "", 0.05, "%g")
            if "lora_r" in strategy.uses:
                values["lora_r"] = number("lora_r", "LoRA rank", "", 1, "%d")
                values["lora_alpha"] = number("lora_alpha", "LoRA alpha", "", 1, "%d")
                init("lora_targets", list(saved.lora_targets or ()))
                values["lora_targets"] = st.multiselect("LoRA targets", LORA_MODULES, key=P + "lora_targets")
            init("feature_layer", saved.feature_layer)
            values["feature_layer"] = st.selectbox("Feature layer", [None, 1, 2, 3, 4, 5, 6], key=P + "feature_layer",
                                                   format_func=lambda v: "last" if v is None else str(v))
            init("pooling", saved.pooling)
            values["pooling"] = st.radio("Pooling", ["mean", "cls"], key=P + "pooling", horizontal=True)
            values["eval_size"] = number("eval_size", "Eval size (test texts; empty = all)", "all", 100, "%d")
            values["general_size"] = number("general_size", "General-benchmark size (per task)", "", 100, "%d")

blank = [k for k in ("max_length", "seed", "freeze_layers", "layer_lr_decay", "lora_r", "lora_alpha",
                     "general_size") if values.get(k) is None]
for name in blank:       # an emptied box: say so and use the default rather than crash
    st.error(f"**{name.replace('_', ' ')}** needs a value; using the default {getattr(RunConfig(), name)}.")
    values[name] = getattr(RunConfig(), name)
cfg = RunConfig.from_dict({**values, "lora_targets": tuple(values["lora_targets"] or ())})
st.session_state.lab_cfg = cfg.to_dict()
ui.sync_query(cfg)

# ---------------------------------------------------------------------------- what will run
try:
    resolved = cfg.resolved()
    config_error = None
except ConfigError as err:
    resolved, config_error = None, err
if config_error:
    ui.show_config_error(config_error)
else:
    shown = [f"{k} **{getattr(resolved, k):g}**" if isinstance(getattr(resolved, k), float)
             else f"{k} **{getattr(resolved, k)}**" for k in strategy.uses if getattr(resolved, k) is not None]
    st.caption(f"**{strategy.title}** on {resolved.task}, n={size:,}: " + " · ".join(shown))

if st.sidebar.button("▶ Run", type="primary", disabled=config_error is not None, width="stretch"):
    try:
        ui.submit(cfg)
    except ConfigError as err:
        ui.show_config_error(err)

# ---------------------------------------------------------------------------- the running job
jobs = ui.session_jobs()
active = [j for j in jobs if not j.finished]
n_finished = len(jobs) - len(active)
if not active and not ui.job_manager().is_warm():
    st.sidebar.caption("Worker warming up (loading the model); a run clicked now starts in a few seconds.")


def job_panel():
    """Polls the manager; when one of this session's jobs ends, reruns the page for its results."""
    now = ui.session_jobs()
    if len(now) - len([j for j in now if not j.finished]) != n_finished:
        st.rerun()
    live = [j for j in now if not j.finished]
    if not live:
        return
    job = live[0]
    with st.container(border=True):
        if job.state == "queued":
            st.info(f"**Queued, position {job.position}**: another run is training; this one starts after it.",
                    icon="⏳")
        else:
            p = job.progress
            eta = p.get("eta_s")
            left = f" · about {eta:.0f} s left" if eta else ""
            stage = p.get("stage", "loading")
            at = STAGES.index(stage) if stage in STAGES else 0
            st.caption(" → ".join(f"✅ {s}" if i < at else (f"**▶ {s}**" if i == at else s)
                                  for i, s in enumerate(STAGES)))
            st.markdown(f"**{stage}** — {p.get('message', '')}")
            st.progress(min(1.0, float(p.get("fraction", 0.0))),
                        text=f"{100 * p.get('fraction', 0):.0f} % · {p.get('elapsed_s', 0):.0f} s elapsed{left}")
            if p.get("curves"):
                st.plotly_chart(plots.curves_figure(p["curves"], "Live per-epoch curves"), key="live_curves")
        if len(live) > 1:
            st.caption(f"{len(live) - 1} more run(s) from this session queued after it.")
        if st.button("⏹ Stop", key=f"stop_{job.id}"):
            ui.job_manager().stop(job.id)
            st.toast("Stopping...")


st.fragment(run_every=0.5 if active else None)(job_panel)()

# ---------------------------------------------------------------------------- the last outcome
finished = [j for j in jobs if j.finished]
latest = finished[-1] if finished else None
if latest is not None and latest.result is None:
    ui.show_job_outcome(latest)
result = latest.result if latest is not None else None
if result is not None:
    for warning in result.warnings:
        st.warning(warning, icon="⚠️")
    st.subheader(f"Result: {result.strategy}, n={result.size}, seed {result.seed}"
                 + (" (answered from the run store)" if result.cached else ""))
    row = st.columns(4)
    row[0].metric("In-domain accuracy", f"{100 * result.in_domain_acc:.1f} %",
                  f"{100 * (result.in_domain_acc - result.majority_acc):+.1f} pts vs majority class",
                  help=f"{result.n_eval} test texts; macro-F1 {100 * result.in_domain_f1:.1f} %")
    row[1].metric("Train accuracy", f"{100 * result.train_acc:.1f} %",
                  f"overfitting gap {100 * result.overfit_gap:+.1f} pts", delta_color="inverse")
    row[2].metric("General score (fixed probe)", f"{100 * result.general['score']:.1f} %",
                  f"{100 * result.general_delta:+.1f} pts vs pre-trained",
                  help="Probes fitted on the pre-trained encoder, scored on the adapted one's features.")
    row[3].metric("General score (refit probe)", f"{100 * result.general['score_refit']:.1f} %",
                  f"{100 * result.general_delta_refit:+.1f} pts vs pre-trained",
                  help="Probes fitted anew on the adapted encoder's features: information really lost.")
    row = st.columns(4)
    row[0].metric("Time", f"{result.timings.get('total', 0):.1f} s")
    row[1].metric("Device", f"{result.device} · {result.precision}")
    row[2].metric("Trainable parameters", f"{result.trainable_params:,}",
                  f"{100 * result.trainable_params / result.total_params:.3g} % of all", delta_color="off")
    row[3].metric("Macro-F1", f"{100 * result.in_domain_f1:.1f} %")
    if result.curves and not presenter:
        st.plotly_chart(plots.curves_figure(result.curves), key="result_curves")

# ---------------------------------------------------------------------------- the trade-off plot
st.subheader(f"Trade-off on {cfg.task}: what each run learned vs what it forgot")
found, problems = ui.presets()
for problem in problems:
    st.warning(problem)
names = [p.name for p in found if cfg.task in p.tasks]
chosen = st.multiselect("Presets drawn (hollow markers)", names, default=names, key="lab_presets") if names else []
runs = ui.store().list(task=cfg.task)
preset_runs = ui.preset_runs(cfg.task, chosen)
if runs or preset_runs:
    fig = plots.tradeoff_figure(runs, preset_runs, highlight=result.key if result else None)
    st.plotly_chart(fig, key="tradeoff")
    st.caption("Dashed line: the pre-trained encoder's general score. Arrows run from it to each run: "
               "left means forgotten. Marker size grows with the training-set size; hover for the config.")
else:
    st.info("No runs on this task yet: press **Run** in the sidebar, or try a one-click comparison on the "
            "**Learn** page.")
