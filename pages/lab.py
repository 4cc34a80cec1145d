"""Lab: pick a model, task, size and strategy; run it; watch it train; see where it lands.

Top to bottom: sidebar controls (each bound to the one configuration, st.session_state.lab_cfg)
-> the Run bar with what will run -> the running job (a fragment that polls the shared
JobManager) -> the last result's cards -> the trade-off plot.
"""
import contextlib

import streamlit as st

from pages import ui
from core.cli import command_line
from core.config import FIELD_TYPES, ConfigError, RunConfig
from core.errors import DataError
from core.estimate import LONG_RUN_S, STAGES, describe_accuracy
from core import stats, uploads
from core.data import RARE, row_accounting, thin_classes
from core.fmt import pct, pct_value, pts
from core.jobs import time_left
from core.strategies import STRATEGIES
from core.plan import plan
from core.urlstate import offered_models

ui.enter_page()      # first: a run that skipped app.py goes through it

presenter = ui.presenter()
bind = ui.bind


def knob_text(cfg, names, bold: bool = False) -> list[str]:
    """'lr 5e-05', 'epochs 3' (values in bold for the Run bar), for the fields of `names` that are set."""
    b = "**" if bold else ""

    def text(v):
        return f"{v:g}" if isinstance(v, float) else ",".join(v) if isinstance(v, (tuple, list)) else str(v)

    return [f"{k} {b}{text(getattr(cfg, k))}{b}" for k in names
            if getattr(cfg, k, None) is not None and getattr(cfg, k) is not False]


def number(name: str, label: str, step, fmt: str, hint: str, **kw):
    # value=None: the box may be emptied (it then means the default); its value comes from lab_cfg via bind
    return st.number_input(label, value=None, step=step, format=fmt, placeholder=hint, **bind(name), **kw)


def knob_widget(knob, hint_text: str):
    """The widget a strategy knob gets, from its declaration: its type, range and one-line help."""
    rng = knob.describe_range()
    help_text = knob.help + (f" ({rng})" if rng else "")
    kind = FIELD_TYPES[knob.name]
    label = knob.label[:1].upper() + knob.label[1:]        # "L2-SP alpha" keeps its capitals
    if knob.choices:
        st.multiselect(label, list(knob.choices), help=help_text, **bind(knob.name))
    elif kind.startswith("bool"):
        st.checkbox(label, help=help_text, **bind(knob.name))
    elif kind.startswith("int"):
        number(knob.name, label, int(knob.step or 1), "%d", hint_text, help=help_text)
    else:
        number(knob.name, label, knob.step or 0.01, "%g", hint_text, help=help_text)


@st.cache_data(show_spinner=False, max_entries=64)
def _thin(task: str, size, seed: int) -> dict | None:
    try:
        return thin_classes(task, size, seed)
    except ValueError:      # a DataError, or a stored run's size its task no longer has
        return None


def thin_classes_note(c, after: bool = False) -> None:
    """A label with fewer than a handful of training examples is learned from next to nothing: said
    before a run (the Run bar) and after it (its result), from the sample the run draws (core.data)."""
    if c.strategy == "zero-shot":        # reads no training texts
        return
    if not ui.painted():                 # drawing the sample imports scikit-learn (~1 s): after the first paint
        return
    got = _thin(c.task, c.size, c.seed or 0)
    if not got or not got["thin"]:
        return
    st.caption(f":material/warning: {'This run had' if after else 'At this size'} **{got['thin']} of "
               f"{got['labels']} labels with fewer than {got['below']} training examples**"
               + (f" ({got['none_or_one']} with 0 or 1)" if got["none_or_one"] else "")
               + ": little to learn them from, " + ("which pulls macro-F1 down." if after else "so expect a low macro-F1."))


if not presenter:       # presenter mode: the first screen is the run's and its plot's (the sidebar says "Lab")
    st.title("Fine-tuning lab")
    st.caption("Adapt a pre-trained encoder to a task and see both what it learns (in-domain accuracy) "
               "and what it forgets (a general benchmark it was never trained on).")
link_problems = ui.show_link_problems()      # what the link asked for and did not get, until dismissed

# ---------------------------------------------------------------------------- the configuration
# The Run bar comes first in the script (it is what a speaker needs at once), before the sidebar;
# the widgets' callbacks have already written any change into lab_cfg before this runs.
lab = st.session_state.lab_cfg
models = offered_models()      # the registry, and what the server's FTLAB_MODELS lists: never typed in
if lab["model"] not in models:
    ui.set_field("model", models[0])
if lab["task"] not in ui.lab_tasks():
    ui.set_field("task", ui.IN_DOMAIN_TASKS[0])
try:
    info = ui.task_info(st.session_state.lab_cfg["task"])
except DataError as err:
    st.error(f"**The data could not be used.** {err}", icon=ui.ICON_ERROR)
    st.stop()
sizes = info["sizes"]
wanted = st.session_state.lab_cfg["size"] or sizes[-1]
shown_size = wanted if wanted in sizes else max([s for s in sizes if s <= wanted] or sizes[:1])
if shown_size != wanted or (shown_size == sizes[-1]) != (st.session_state.lab_cfg["size"] is None):
    ui.set_field("size", None if shown_size == sizes[-1] else shown_size)   # the nearest size not above
strategy = STRATEGIES[st.session_state.lab_cfg["strategy"]]

cfg = ui.lab_config()
ui.sync_query(cfg)

# ---------------------------------------------------------------------------- the Run bar
try:
    resolved = plan(cfg).config      # every check, more layers or examples than the model and task have too
    config_error = None
except (ConfigError, DataError) as err:      # DataError: an upload's file gone from this server
    resolved, config_error = None, err
run_estimate = ui.run_estimate(cfg) if config_error is None else None    # the one this run is announced with
estimate = run_estimate.total_s if run_estimate is not None else None
jobs = ui.session_jobs()
active = [j for j in jobs if not j.finished]
long_run = estimate is not None and estimate > LONG_RUN_S
run_col, what_col = st.columns([1, 3.5 if presenter else 4], vertical_alignment="center")
with what_col:
    if config_error:
        ui.show_config_error(config_error)
    else:
        knobs = strategy.uses if not presenter else [k for k in ("lr", "epochs", "batch_size", "freeze_layers", "lora_r",
                                                                   "lp_epochs", "l2sp_alpha", "wise_alpha")
                                                     if k in strategy.uses]       # a projector: the few that matter
        shown = knob_text(resolved, knobs, bold=True)
        st.markdown(f"**{strategy.title}** on {ui.task_title(resolved.task)}, n={shown_size:,} · "
                    + " · ".join(shown) + f" · **{run_estimate.text()}**" + (" here" if run_estimate.total_s else ""))
        thin_classes_note(resolved)          # labels with next to no training examples at this size
    if long_run:
        st.warning(f"This run will take about **{ui.duration(estimate)}** on this machine. Lower the training-set "
                   "size or the epochs for a quick look, or confirm to run it anyway.", icon=ui.ICON_WARNING)
        confirmed = st.checkbox(f"Run it anyway ({ui.duration(estimate)})", key="confirm_long_run")
    else:
        confirmed = True
with run_col:
    clicked = st.button("Run", key="run", icon=":material/play_arrow:", type="primary", width="stretch",
                        disabled=config_error is not None or not confirmed)
if clicked:
    try:
        ui.submit(cfg)
        ui.drop_link_problems(link_problems)      # a run is queued: the link's setup is behind us
        jobs = ui.session_jobs()
        active = [j for j in jobs if not j.finished]
    except (ConfigError, DataError) as err:
        ui.show_config_error(err)
if not presenter and config_error is None:      # the engineer's hand-over: the same run, outside the app
    with st.expander("The same run from the command line", icon=":material/terminal:"):
        st.code(command_line(cfg), language="bash", wrap_lines=True)
        st.caption("Run it from this folder (`python -m core run --help` lists every flag). For the real job, "
                   "`--size all` trains on the whole training split with the same evaluation; on a machine "
                   "with a GPU it runs there unchanged."
                   + (" `upload:…` names this lab's copy of your file; on another machine give the file itself, "
                      "its columns named text and label (and split, if it has one): `--task csv:your_file.csv`."
                      if cfg.task.startswith("upload:") else ""))


def warming_note():
    """While no worker waits with the model loaded, say so, and go once one does: the caption drawn at
    a run's end (the next worker starts a few seconds after each run) stayed up long after it was warm."""
    manager = ui.job_manager()
    if manager.is_warm() or manager.queue_length() > 0:     # runs ahead: the queue panel says the wait
        if st.session_state.pop("_warming_shown", False):
            st.rerun()                    # the whole page, drawn without this note and its timer
        return
    st.session_state["_warming_shown"] = True
    st.caption("Worker warming up (loading the model); a run clicked now starts a few seconds later.")


if not active and not presenter and not ui.job_manager().is_warm() and not ui.job_manager().queue_length():
    st.fragment(run_every=2.0)(warming_note)()

# ---------------------------------------------------------------------------- the running job
n_finished = len(jobs) - len(active)
ui.sweep_panel()          # a Learn lesson or a Compare sweep on Ray (when the server has Ray)


def describe(job) -> str:
    """What a job trains, in the words of the Run bar."""
    try:
        c = job.config.resolved()
    except ConfigError:
        c = job.config
    knobs = knob_text(c, [k for k in ("lr", "epochs", "freeze_layers", "lora_r") if getattr(c, k, None) != 0])
    size = "all" if c.size is None else f"{c.size:,}"
    task = ui.task_title(c.task)
    return f"**{STRATEGIES[c.strategy].title}** on {task} · n={size} · seed {c.seed} · " + " · ".join(knobs)


def epochs_of(cfg) -> int:
    """Curve points a run draws: its epochs, after LP-FT's head-only ones."""
    return (cfg.epochs or 0) + (cfg.lp_epochs or 0)


def live_figures(job) -> list:
    """The per-epoch curves and, once the encoder has changed, its live path across the trade-off
    plane; rebuilt only when an epoch was added (a poll re-sends the same objects)."""
    curves = job.progress.get("curves") or []
    cache = st.session_state.get("_live_fig")
    if cache is None or cache[0] != (job.id, len(curves)):
        from core import plots   # plotly: imported when a chart is first drawn, not on the first page

        figs = [plots.curves_figure(curves, "Live per-epoch curves", n_epochs=epochs_of(job.config.resolved()))]
        if any(c.get("general_est") is not None for c in curves):
            figs.append(plots.live_tradeoff_figure(curves))
        cache = ((job.id, len(curves)), [plots.for_presenter(f, ui.PRESENTER_LIVE_PLOT_PX) if presenter else f
                                         for f in figs])
        st.session_state["_live_fig"] = cache
    return cache[1]


def job_panel():
    """Polls the manager; when one of this session's jobs ends, reruns the page for its results."""
    now = ui.session_jobs()
    live = [j for j in now if not j.finished]
    if len(now) - len(live) != n_finished:
        st.rerun()
    if not live:
        return
    job = live[0]
    manager = ui.job_manager()
    stop_at = None       # while it runs, Stop sits beside its progress bar (presenter mode: on the first screen)
    with st.container(border=True):
        if job.state == "queued":
            wait = manager.wait_estimate(job.id)
            other = manager.running_job()
            doing = "is starting" if other is not None and other.state == "starting" else "is training"
            who = ("the worker is getting ready" if other is None else
                   f"your earlier run {doing}" if other.owner == ui.session_owner() else f"another browser's run {doing}")
            ahead = job.position - 1
            turn = (f" and {ahead} more run{'s' if ahead != 1 else ''} ahead of it (the queue takes every browser's "
                    "runs in turn)" if ahead else "")
            st.info(f"**Queued, position {job.position}**: {who}{turn}; this one starts in about "
                    f"{ui.duration(wait)}, and then takes about {ui.duration(job.estimate_s)}.\n\n{describe(job)}",
                    icon=":material/hourglass_top:")
            if manager.start_problem:
                st.error(f"**The worker cannot start.** {manager.start_problem}", icon=ui.ICON_ERROR)
        else:
            p = job.progress
            stage = p.get("stage", "loading")
            at = STAGES.index(stage) if stage in STAGES else 0
            st.markdown(f"Training {describe(job)}")
            st.caption(" → ".join(f":material/check: {s}" if i < at else (f"**{s}**" if i == at else s)
                                  for i, s in enumerate(STAGES)))
            estimate = ui.job_estimate(job)          # the Run bar's, counted down and corrected by the run
            elapsed = ui.since(estimate.origin(job))
            left = time_left(job, estimate)
            if job.state == "starting":
                message = "starting the worker (loading the model)"
            else:
                message = p.get("message", "")
            fraction = float(p.get("fraction", 0.0))
            if left is not None and elapsed + left > 0:      # moves between the worker's reports too
                fraction = max(fraction, elapsed / (elapsed + left))
            fraction = max(fraction, st.session_state.get(f"_shown_{job.id}", 0.0))   # never backwards
            st.session_state[f"_shown_{job.id}"] = fraction
            if stage == STAGES[-1] and p.get("fraction", 0) >= 1:
                timing = " · sending the result"         # the worker is done; the page draws it next
            elif left is not None:
                timing = f" · about {ui.duration(left)} left"
            elif p.get("eta_s") is not None or estimate.total_s is not None:
                timing = " · longer than estimated, nearly done" if stage == STAGES[-1] else " · longer than estimated"
            else:
                timing = " · estimating the time left"
            announced = f" (announced {estimate.text()})" if estimate.total_s else ""
            bar, stop_at = st.columns([4, 1], vertical_alignment="bottom")
            bar.progress(fraction, text=f"**{stage}**: {message} · {ui.duration(elapsed)} elapsed{timing}{announced}")
            if p.get("curves"):
                figs = live_figures(job)
                for col, fig, key in zip(st.columns(len(figs)), figs, ("live_curves", "live_tradeoff")):
                    col.plotly_chart(fig, key=key)
        if len(live) > 1:
            st.caption(f"{len(live) - 1} more run(s) from this browser queued after it.")
        if (stop_at or st.container()).button("Stop", key=f"stop_{job.id}", icon=":material/stop:",
                                               width="stretch" if stop_at else "content"):
            manager.stop(job.id)
            st.toast("Stopping...")


st.fragment(run_every=0.5 if active else None)(job_panel)()

def own_data() -> None:
    """Upload a table, pick its columns, see what it holds; 'Use this data' makes it a task (its link
    carries the content's hash, never a path)."""
    file = st.file_uploader(f"CSV, TSV, JSON Lines or Parquet, up to {uploads.MAX_BYTES // 2**20} MB",
                            type=[e.lstrip(".") for e in uploads.FORMATS], key="upload_file")
    if file is None:
        st.caption("One row per text, a column with the text and one with its label (and, if you like, a "
                   "split column of train/test). It stays on this server, under the lab's data folder.")
        return
    data = file.getvalue()

    # Read, guessed and counted once per file and column choice, not on every rerun of the Lab (a file
    # of 200,000 rows takes seconds); the table is only read, never changed, so one copy serves.
    @st.cache_resource(max_entries=2, show_spinner=False)
    def read(data: bytes, filename: str):
        table = uploads.read_table(data, filename)
        return table, uploads.guess_columns(table)       # from the content: names win only where they fit

    @st.cache_resource(max_entries=8, show_spinner=False)
    def examine(data: bytes, filename: str, text: str, label: str, split: str | None):
        table = read(data, filename)[0]
        problems = uploads.check_columns(table, text, label, split)
        counts = uploads.class_counts(table, label) if label != text else {}
        return problems, counts, None if problems else row_accounting(table, text, label, split)

    try:
        table, guess = read(data, file.name)
    except DataError as err:
        st.error(f"**This file cannot be used.** {err}", icon=ui.ICON_ERROR)
        return
    columns = list(table.columns)

    st.dataframe(table.head(5), hide_index=True, key="upload_preview")
    st.caption(f"{len(table):,} rows, {len(columns)} columns.")
    text = st.selectbox("Text column", columns, index=columns.index(guess["text"]), key="upload_text")
    label = st.selectbox("Label column", columns, index=columns.index(guess["label"]), key="upload_label")
    split = st.selectbox("Split column (optional: train/test)", [None] + columns,
                         index=columns.index(guess["split"]) + 1 if guess["split"] else 0,
                         format_func=lambda c: "none: a seeded 80/20 split" if c is None else c, key="upload_split")
    problems, counts, rows = examine(data, file.name, text, label, split)
    for problem in problems:
        st.error(problem, icon=ui.ICON_ERROR)
    if counts:
        st.caption("Classes: " + ", ".join(f"{uploads.short(k)} {v:,}" for k, v in list(counts.items())[:12])
                   + (f" and {len(counts) - 12} more" if len(counts) > 12 else ""))
    if rows:
        st.caption(f"{uploads.rows_text(rows)}. The test split is {rows['test_from']}.")
        if rows["rare"]:
            st.warning(f"{rows['rare']} of {rows['classes']} classes have fewer than {RARE} training "
                       "examples: the model can hardly learn them, and a smaller training-set size gives them "
                       "fewer still.", icon=":material/warning:")
    if st.button("Use this data", key="upload_use", disabled=bool(problems), icon=":material/upload:"):
        try:
            name = uploads.save_upload(data, file.name, text, label, split)
            ui.task_info(name)                     # built now: a problem shows here, not in the run
        except DataError as err:
            st.error(f"**This file cannot be used.** {err}", icon=ui.ICON_ERROR)
            return
        ui.set_field("task", name)
        st.rerun()


# ---------------------------------------------------------------------------- sidebar: the setup
with st.sidebar:
    st.header("Run setup")
    st.selectbox("Model", models, **bind("model"),
                 help="The registry's models, and the local folders or hub ids whoever started the server listed "
                      "in FTLAB_MODELS.")
    st.selectbox("In-domain task", ui.lab_tasks(), format_func=ui.task_title, **bind("task"))
    if not presenter:
        with st.expander("Your own data"):
            if ui.painted("Loading the upload box…"):      # its widget is heavy: after the first paint
                own_data()
    card = info["card"]
    upload = card["name"].startswith("upload:")        # an upload counts its file's rows (the tooltip: why)
    dropped = sum(card.get("dropped", {}).values()) if upload else 0
    st.caption(f"**{card['domain']}** · {card['train']:,} train / {card['validation']:,} validation / {card['test']:,} test"
               + (f" ({dropped:,} rows dropped)" if dropped else "") + f" · {len(card['labels'])} labels"
               + ("" if presenter else ": " + ", ".join(map(uploads.short, card["labels"][:8]))
                  + (" ..." if len(card["labels"]) > 8 else "")),
               help=uploads.rows_text(card) if upload else None)
    if not presenter:
        for label, text in info["examples"]:
            st.caption(f"*{label}*: “{text[:140]}{'...' if len(text) > 140 else ''}”")

    st.select_slider("Training-set size", sizes, format_func=lambda n: f"all ({n:,})" if n == sizes[-1] else f"{n:,}",
                     **bind("size", shown=shown_size, convert=lambda n: None if n == sizes[-1] else n))

    counter = ui.param_counter()
    if st.session_state.get("_counts_learned") != cfg.task:     # once per task and session: no torch needed
        counter.learn(ui.preset_runs(cfg.task) + ui.store().list(task=cfg.task), info["num_labels"])
        st.session_state["_counts_learned"] = cfg.task
    counting = []

    def count_line(name: str) -> str:
        cfg = RunConfig.from_dict({**st.session_state.lab_cfg, "strategy": name})
        try:
            got = counter.get(cfg, info["num_labels"])
        except ConfigError as err:
            return f"cannot count: {err}"
        if got is None:
            counting.append(name)
            return "counting trainable parameters..."
        if isinstance(got, str):
            return "parameters counted when it runs"
        trainable, total = got
        share = 100 * trainable / total
        return f"{trainable:,} trainable parameters ({share:.2g} % of {total / 1e6:.1f} M)" if share < 99.5 else \
            f"{trainable:,} trainable parameters (all of them)"

    def short_count(name: str) -> str:
        """'3.1 k trainable' for presenter mode's one-line options ('' until counted)."""
        line = count_line(name)          # "22,716,296 trainable parameters (all of them)", or still counting
        head = line.split(" ")[0].replace(",", "")
        return f" · {ui.count_text(int(head))} trainable" if head.isdigit() else ""

    if presenter:      # the list compact (one line each: title and count), the whole of it in view
        # the labels fixed for this run: a count landing in between must not change what the widget says it showed
        titles = {s: STRATEGIES[s].title.split(" (")[0] + short_count(s) for s in STRATEGIES}
        st.radio("Strategy", list(STRATEGIES), format_func=titles.get, **bind("strategy"))
    else:
        st.radio("Strategy", list(STRATEGIES), format_func=lambda s: STRATEGIES[s].title, **bind("strategy"),
                 captions=[STRATEGIES[s].summary + f" **{count_line(s)}**" for s in STRATEGIES])
    hints = strategy.defaults

    def hint(name):
        value = hints.get(name, ui.FIELD_DEFAULTS.get(name))
        return "" if value is None else f"default: {value:g}" if isinstance(value, (int, float)) else f"default: {value}"

    # ------------------------------------------------------------------------ advanced (hidden for talks)
    if not presenter:
        with st.expander("Advanced"):
            if ui.painted("Loading the advanced settings…"):   # a dozen widgets held the Run button back
                for knob in strategy.knobs:      # each strategy module declares its knobs (core/strategies)
                    knob_widget(knob, hint(knob.name))
                number("max_length", "Max length (tokens)", 16, "%d", hint("max_length"))
                number("seed", "Seed", 1, "%d", hint("seed"))
                st.selectbox("Feature layer", [None, 1, 2, 3, 4, 5, 6],
                             format_func=lambda v: "last" if v is None else str(v), **bind("feature_layer"))
                st.radio("Pooling", ["mean", "cls"], horizontal=True, **bind("pooling"))
                number("eval_size", "Eval size (test texts)", 100, "%d", hint("eval_size"))
                number("general_size", "General-benchmark size (per task)", 100, "%d", hint("general_size"))
    if counting:          # the counts arrive from a background thread: show each as it comes
        seen = counter.done_count()

        @st.fragment(run_every=0.5)
        def wait_for_counts():
            if counter.done_count() != seen or not counter.pending():
                st.rerun()
        wait_for_counts()


def wise_mixer(result) -> None:
    """WiSE-FT: pick another mix a; a scored one shows at once, another is scored from the kept
    fine-tuned weights (evaluation only) through the same queue as every run."""
    with st.container(border=True):
        st.markdown("**WiSE-FT: mix the encoder again, without retraining**")
        scored = {round(p["alpha"], 2): p for p in result.curve}
        a = round(st.slider("Mixing a (0 = the pre-trained encoder, 1 = the fine-tuned one)", 0.0, 1.0,
                            float(result.config.get("wise_alpha") or 0.5), 0.05, key=f"wise_mix_{result.key}"), 2)
        if a in scored:
            p = scored[a]
            st.markdown(f"At a = {a:g}: in-domain **{pct(p['in_domain_acc'])}**, general "
                        f"**{pct(p['general'])}** ({pts(p['general'] - result.pretrained_general['score'])} "
                        "vs pre-trained); " + ("scored by this run, drawn as its curve on the plot below."
                                                   if len(result.curve) > 1 else "re-scored from the kept weights."))
            return
        kept = ui.weights_kept(result.training_key)
        mix = RunConfig.from_dict(result.config).replace(wise_alpha=a)
        seconds = ui.estimate_seconds(mix, rescoring=kept)
        what = ("evaluation only: the fine-tuned weights are kept" if kept else
                "the kept weights were evicted for newer ones, so this trains again")
        if st.button(f"Score a = {a:g} (about {ui.duration(seconds)}; {what})", key="wise_rescore",
                     icon=":material/tune:"):
            try:
                ui.submit(mix, rescoring=kept)
            except (ConfigError, DataError) as err:
                ui.show_config_error(err)
                return
            ui.set_lab_config(mix)
            st.rerun()


# ---------------------------------------------------------------------------- the last outcome
finished = [j for j in jobs if j.finished]
latest = max(finished, key=lambda j: j.finished_at or 0) if finished else None   # another tab's may end later
if latest is not None and latest.result is None:
    ui.show_job_outcome(latest)
if latest is not None and latest.note:
    st.info(latest.note, icon=ui.ICON_STOPPED)
result = latest.result if latest is not None else None
tradeoff_slot = None
if result is not None:
    for warning in result.warnings:
        st.warning(warning, icon=ui.ICON_WARNING)
    st.subheader(f"Result: {result.strategy}, n={result.size}, seed {result.seed}"
                 + (" (answered from the run store)" if result.cached else "")
                 + (" (kept fine-tuned weights re-scored, no training)" if result.rescored else ""))
    inside, change = result.in_domain_interval(), result.general_change()
    noise = change is None or stats.verdict(change["change"], change["se"]) == "within noise"
    above, majority = result.beats_majority(), result.vs_majority()
    # coloured only when the run is told apart from the majority class (better, or worse: red)
    told = above or (majority is not None and majority["verdict"] != "within noise")
    row = st.columns(4)
    row[0].metric("In-domain accuracy", pct(result.in_domain_acc),
                  pts(result.in_domain_acc - result.majority_acc, unit="")
                  + (f" ± {pct_value(majority['ci95']):.1f}" if majority else "") + " pts vs majority",     # one line at presenter size
                  delta_color="normal" if told else "off", delta_arrow="auto" if told else "off",
                  help=f"95 % interval {pct(inside['low'])} to {pct(inside['high'])} over {result.n_eval:,} test "
                       f"texts (Wilson). The majority class: always answering the commonest training label, "
                       f"{pct(result.majority_acc)}" + ("; the ± is paired over the same texts." if majority else "."))
    if result.trained:
        row[1].metric("Train accuracy", pct(result.train_acc), f"overfitting gap {pts(result.overfit_gap)}",
                      delta_color="inverse")
    else:
        row[1].metric("Train accuracy", pct(result.train_acc), "nothing trained (zero-shot)",
                      delta_color="off", delta_arrow="off",
                      help="Zero-shot fits nothing to the training texts: this is a score on texts it never learned from, "
                           "so there is no overfitting gap to read.")
    row[2].metric("General score (fixed probe)", pct(result.general["score"]),
                  pts(result.general_delta, unit="")
                  + (f" ± {pct_value(change['ci95']):.1f}" if change else "") + " pts vs pre-trained",
                  delta_color="off" if noise else "normal", delta_arrow="off" if noise else "auto",
                  help="Probes fitted on the pre-trained encoder, scored on the adapted one's features. "
                       + ("A change inside its paired 95 % interval is not told apart from zero: no arrow."
                          if noise else ""))
    # no colour or arrow: the refit probe keeps no per-sentence outcomes, so it has no paired interval
    # to tell its change from noise (the fixed probe's card carries that verdict)
    row[3].metric("General score (refit probe)", pct(result.general["score_refit"]),
                  f"{pts(result.general_delta_refit)} vs pre-trained", delta_color="off", delta_arrow="off",
                  help="Probes fitted anew on the adapted encoder's features: information really lost. It has no "
                       "interval of its own: read it beside the fixed probe's, whose ± says what is noise.")
    row = st.columns(4)
    took = result.timings.get("total", 0)
    if result.cached:
        # a short value: "from the store" was cut to "from th…" at presenter size
        row[0].metric("Time", "stored", f"answered from the run store; the run itself took {ui.duration(took)}",
                      delta_color="off", delta_arrow="off")
    else:
        # the job's wall time, start to result: what the Run bar announced and the panel counted down
        announced = ui.job_estimate(latest)
        began = announced.origin(latest)
        wall = latest.finished_at - began if began and latest.finished_at else took
        said = announced.compare(wall) or describe_accuracy(result.estimate.get("before_training_s"), took)
        row[0].metric("Time", f"{wall:.1f} s", said or None, delta_color="off", delta_arrow="off",
                      help=f"From {'the click' if announced.from_submit else 'the start of the job'} to its "
                           f"result, as announced on the Run bar; the run itself took {took:.1f} s (the rest: "
                           "starting the worker, sending the result).")
    row[1].metric("Device", f"{result.device} · {result.precision}")
    row[2].metric("Trainable parameters", ui.count_text(result.trainable_params), help=f"{result.trainable_params:,}",
                  delta=f"{100 * result.trainable_params / result.total_params:.3g} % of all", delta_color="off",
                  delta_arrow="off")
    row[3].metric("Macro-F1", pct(result.in_domain_f1),
                  help="The F1 score of each label, averaged with every label weighing the same, rare ones too.")
    if presenter:
        tradeoff_slot = st.container()    # the trade-off plot goes right under the cards: one screen for both
    missed, present = result.labels_missed()
    st.caption(
        f"**In-domain accuracy {pct(result.in_domain_acc)}** (95 %: {pct(inside['low'])} to {pct(inside['high'])} over "
        f"{result.n_eval:,} test texts). Always answering the commonest label scores {pct(result.majority_acc)}: "
        + (f"this run is {pct_value(result.in_domain_acc - result.majority_acc):.1f} points above that. "
           if above else "this run is not told apart from that. ")
        + f"**Macro-F1 {pct(result.in_domain_f1)}** weighs every label equally, however rare"
        + ("; far below the accuracy, it says the common labels carry the accuracy while rare ones are missed"
           + (f" ({missed} of {present} labels never found)." if missed else ".")
           if result.labels_uneven else
           ": close to the accuracy, the labels are learned about evenly."))
    thin_classes_note(RunConfig.from_dict(result.config), after=True)
    if change is not None:
        st.caption(f"General change **{pts(change['change'], unit='')} ± {pct_value(change['ci95']):.1f} points** (paired 95 % "
                   f"interval over the same {sum(v['n_test'] for v in result.general['per_task'].values()):,} "
                   f"sentences before and after): **{stats.verdict(change['change'], change['se'])}**.")
    if result.weight_distance:
        st.caption(f"The encoder's weights moved **{100 * result.weight_distance:.2f} %** from the pre-trained ones "
                   "(‖θ − θ₀‖ / ‖θ₀‖)" + (f"; the best validation epoch was kept: **epoch {result.chosen_epoch}**"
                                          if result.chosen_epoch is not None else "") + ".")
    if result.curve:
        wise_mixer(result)
    if result.curves:
        walked = any(c.get("general_est") is not None for c in result.curves)
        left, right = st.columns(2) if walked else (st.container(), None)
        with left:
            ui.chart(lambda plots: plots.curves_figure(result.curves, n_epochs=len(result.curves)), "result_curves")
        if walked:
            with right:
                ui.chart(lambda plots: plots.live_tradeoff_figure(result.curves, "Its path, epoch by epoch"),
                         "result_path")
    if result.per_class and not presenter:
        lean = result.majority_lean_text()      # does it lean on the commonest label more than the data does?
        if lean:
            st.caption(lean)
        with st.expander("Per class: what the run found of each label, and what it predicted"):
            ui.chart(lambda plots: plots.per_class_figure(result), "per_class")
            if result.confusion:
                ui.chart(lambda plots: plots.confusion_figure(result), "confusion")

# ---------------------------------------------------------------------------- the trade-off plot
placed = contextlib.ExitStack()          # presenter mode: drawn in the slot under the result's cards
if tradeoff_slot is not None:
    placed.enter_context(tradeoff_slot)
st.subheader(f"Trade-off on {ui.task_title(cfg.task)}: what each run learned vs what it forgot")
found, problems = ui.presets()
for problem in problems:
    st.warning(problem, icon=ui.ICON_WARNING)
names = [p.name for p in found if cfg.task in p.tasks]
# the task's own gallery by default (r8.json for R8); the remedies' and other sweeps' on request
default_presets = [n for n in names if n == cfg.task] or names
if not names:
    chosen = []
elif ui.painted():      # the picker comes with the plot: one widget type less to fetch before the Run button
    # presenter mode: in the sidebar, the speaker's controls (the plot keeps its place on the first screen)
    chosen = (st.sidebar if presenter else st).multiselect("Presets drawn (hollow markers)", names,
                                                           default=default_presets, key="lab_presets")
else:
    chosen = default_presets
runs = ui.store().list(task=cfg.task)
preset_runs = ui.preset_runs(cfg.task, chosen)
if runs or preset_runs:
    drawn = []

    def tradeoff(plots):
        drawn.append(plots.tradeoff_figure(runs, preset_runs, highlight=result.key if result else None))
        return drawn[-1]

    ui.chart(tradeoff, "tradeoff",
             presenter_height=ui.PRESENTER_TRADEOFF_PX if result else ui.PRESENTER_TRADEOFF_ALONE_PX)
    if drawn:       # the figure's own words: what it drew (intervals, lines, frontier, axes)
        from core.plots import caption_of

        st.caption(caption_of(drawn[-1]) + " Hover a marker for its configuration.")
else:
    st.info("No runs on this task yet: press **Run**, or try a one-click comparison on the **Learn** page.")
placed.close()
ui.draw_waiting_charts()
