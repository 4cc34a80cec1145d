"""Every figure the app draws, built with Plotly from RunResults. No streamlit here.

The central one is the trade-off plot: x = general-benchmark score (what the encoder still
knows), y = in-domain accuracy (what it learned). A run that moved left forgot; a run that
moved up learned. Trace names are stable ("strategy: full", "preset: full", "Pareto frontier")
so tests and the browser can find them.
"""
from __future__ import annotations

import math
import statistics

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import stats
from .fmt import pct, pct_value, pts
from .strategies import get_strategy
from .uploads import display_name

OTHER_COLOUR = "#7f7f7f"          # a strategy this code no longer has (an old stored run)
HOVER_FIELDS = ("lr", "head_lr", "epochs", "batch_size", "max_length", "freeze_layers", "layer_lr_decay",
                "lora_r", "lora_alpha", "feature_layer", "pooling", "lp_epochs", "l2sp_alpha", "wise_alpha",
                "best_epoch")
MAX_ARROWS = 40     # beyond this the arrows hide the points


def colour(strategy: str) -> str:
    try:
        return get_strategy(strategy).colour
    except ValueError:
        return OTHER_COLOUR


def marker_size(size: int) -> float:
    """Area grows with log2(training-set size): 16 -> small, 5000 -> large."""
    return 8 + 3 * max(0.0, math.log2(max(size, 1)) - 4)


def hover_text(r, change: dict | None = None) -> str:
    """`change`: the run's general_change(), when the caller has it already."""
    cfg = r.config
    knobs = ", ".join(f"{k}={cfg[k]}" for k in HOVER_FIELDS if cfg.get(k) not in (None, False))
    change = change if change is not None else r.general_change()
    paired = "" if change is None else f" ± {pct_value(change['ci95']):.1f} (paired 95 %)"
    moved = "" if r.weight_distance is None else f"<br>weights moved {100 * r.weight_distance:.2f} %" + (
        f", kept epoch {r.chosen_epoch}" if r.chosen_epoch is not None else "")
    inside = r.in_domain_interval()
    return (f"<b>{r.strategy}</b> n={r.size} seed={r.seed}<br>in-domain {pct(r.in_domain_acc)} "
            f"(95 %: {pct(inside['low'])} to {pct(inside['high'])}, {r.n_eval:,} test texts), "
            f"general {pct(r.general['score'])} ({pts(r.general_delta)}{paired})<br>"
            f"train {pct(r.train_acc)}, trainable {r.trainable_params:,}{moved}<br>{knobs}")


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points no other point beats on both axes (higher is better on both), sorted by x."""
    front, best_y = [], -math.inf
    for x, y in sorted(points, key=lambda p: (-p[0], -p[1])):
        if y > best_y:
            front.append((x, y))
            best_y = y
    return sorted(front)


def _scatter(runs, name: str, strategy: str, hollow: bool) -> go.Scatter:
    # Bars: vertical, the in-domain accuracy's 95 % interval over the run's test texts (Wilson);
    # horizontal, the paired 95 % interval of the general change (results without the per-sentence
    # outcomes, stored before they were kept, get none).
    changes = [r.general_change() for r in runs]
    cis = [None if c is None else 100 * c["ci95"] for c in changes]
    error_x = dict(type="data", array=[c or 0 for c in cis], visible=True, thickness=1.5, width=4,
                   color=colour(strategy)) if any(c is not None for c in cis) else None
    inside = [r.in_domain_interval() for r in runs]
    error_y = dict(type="data", symmetric=False, visible=True, thickness=1.5, width=4, color=colour(strategy),
                   array=[100 * (i["high"] - r.in_domain_acc) for r, i in zip(runs, inside)],
                   arrayminus=[100 * (r.in_domain_acc - i["low"]) for r, i in zip(runs, inside)])
    return go.Scatter(
        x=[100 * r.general["score"] for r in runs], y=[100 * r.in_domain_acc for r in runs],
        mode="markers", name=name, legendgroup=name, error_x=error_x, error_y=error_y,
        marker=dict(size=[marker_size(r.size) for r in runs], color=colour(strategy),
                    symbol="circle-open" if hollow else "circle", line=dict(width=2 if hollow else 1,
                                                                                 color=colour(strategy))),
        text=[hover_text(r, c) for r, c in zip(runs, changes)], hovertemplate="%{text}<extra></extra>",
        customdata=[r.key for r in runs])


def curve_trace(r, showlegend: bool = True) -> go.Scatter:
    """A WiSE-FT run's whole curve: the encoder mixed at each scored a, from the pre-trained point
    (a = 0) to the fine-tuned one (a = 1), as one connected line labelled with its a values."""
    points = sorted(r.curve, key=lambda p: p["alpha"])
    return go.Scatter(
        x=[100 * p["general"] for p in points], y=[100 * p["in_domain_acc"] for p in points],
        mode="lines+markers+text", name="WiSE-FT curve (a = 0 … 1)", legendgroup="wise-ft curve",
        showlegend=showlegend, text=[f"a={p['alpha']:g}" for p in points], textposition="top center",
        line=dict(color=colour("wise-ft"), width=2), marker=dict(size=7, color=colour("wise-ft")),
        hovertemplate="WiSE-FT %{text}: in-domain %{y:.1f} %, general %{x:.1f} %<extra>"
                      + f"n={r.size} seed={r.seed}</extra>")


# The smallest spans the trade-off plot's axes show, in points. A paired general change's 95 %
# half-width is about 0.3-1 point at the default 1000 sentences per general task, and an in-domain
# accuracy's about 1.5-4 points on 500-2000 test texts: an axis a few of those wide draws a
# difference the size of the noise as small as it is. Narrower, autorange blew float noise (1e-7
# between a score and its reference) or half a point up to the plot's whole width or height.
MIN_SPAN_GENERAL = 4.0
REF_LABEL_ROW_PX = 20        # a row above the trade-off plot per pre-trained line's name
MIN_SPAN_IN_DOMAIN = 10.0
INTERVALS_LEGEND = "bars: 95 % intervals (↕ in-domain, ↔ general change)"


def comparable_key(r) -> tuple:
    """Runs that may share an aggregate or a Pareto frontier: the same task (its test texts), model and
    general benchmark (its version and sentences: the x axis's reference)."""
    b = r.benchmark or {}
    return (r.task, r.config.get("model"), b.get("version"), r.config.get("general_size"))


def group_label(key: tuple, keys) -> str:
    """'r8', or 'r8 · minilm' / 'r8 · benchmark v2, 500 sentences' where the groups differ in that."""
    keys = list(keys)
    parts = [display_name(str(key[0]))]
    if len({k[1] for k in keys}) > 1:
        parts.append(str(key[1]))
    if len({k[2:] for k in keys}) > 1:
        parts.append(f"benchmark v{key[2]}, {key[3]} sentences")
    return " · ".join(parts)


def groups(runs) -> dict:
    """Runs by comparable_key, in first-seen order."""
    out = {}
    for r in runs:
        out.setdefault(comparable_key(r), []).append(r)
    return out


def pareto_runs(runs) -> list:
    """The runs no other run beats on both axes, from the most general (right) to the least."""
    front, best = [], -math.inf
    for r in sorted(runs, key=lambda r: (-r.general["score"], -r.in_domain_acc)):
        if r.in_domain_acc > best:
            front.append(r)
            best = r.in_domain_acc
    return front


def distinct_front(front) -> tuple[list, int]:
    """(the frontier's runs each more than noise away from the last one kept, how many were skipped):
    a frontier step smaller than its 95 % intervals is no trade-off and gets no line."""
    if not front:
        return [], 0
    kept = [front[0]]
    for r in front[1:]:
        if stats.runs_differ(kept[-1], r):
            kept.append(r)
    return kept, len(front) - len(kept)


def _num_labels(r) -> int | None:
    return len(r.per_class) or len(r.confusion) or None


def _span(values, minimum: float, low_bound: float = -1.0, high_bound: float = 101.0) -> list[float]:
    """[low, high] around `values`, padded, at least `minimum` wide and inside the bounds."""
    low, high = min(values), max(values)
    pad = 0.06 * (high - low)
    low, high = low - pad, high + pad
    if high - low < minimum:
        centre = (low + high) / 2
        low, high = centre - minimum / 2, centre + minimum / 2
    if low < low_bound:
        low, high = low_bound, max(high, low_bound + minimum)
    if high > high_bound:
        low, high = min(low, high_bound - minimum), high_bound
    return [low, high]


def tradeoff_figure(runs, presets=(), highlight: str | None = None, title: str = "") -> go.Figure:
    """Live runs (filled) over preset runs (hollow), each with its 95 % intervals; a reference line at
    the pre-trained general score with an arrow from it to every live run; the majority-class and
    chance lines of each task; the Pareto frontier of each comparable group, through steps larger than
    their intervals. fig.layout.meta["caption"] says in words what was drawn."""
    fig = go.Figure()
    everyone = list(runs) + list(presets)
    for strategy in sorted({r.strategy for r in presets}):
        group = [r for r in presets if r.strategy == strategy]
        fig.add_trace(_scatter(group, f"preset: {strategy}", strategy, hollow=True))
    for strategy in sorted({r.strategy for r in runs}):
        group = [r for r in runs if r.strategy == strategy]
        fig.add_trace(_scatter(group, f"strategy: {strategy}", strategy, hollow=False))

    for i, r in enumerate([r for r in runs if len(r.curve) > 1]):
        fig.add_trace(curve_trace(r, showlegend=i == 0))
    caption = []
    if everyone:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=INTERVALS_LEGEND, hoverinfo="skip",
                                 marker=dict(symbol="cross-thin-open", size=16, color="#555",
                                             line=dict(width=2, color="#555"))))
        n_eval = sorted({r.n_eval for r in everyone})
        kinds = ("filled: this lab's runs; hollow: presets" if runs and presets else
                 "hollow: presets" if presets else "")
        caption.append(f"Each marker is a run{f' ({kinds})' if kinds else ''}; its size grows with the "
                       "training-set size. Bars are 95 % intervals: vertical, the in-domain accuracy over its "
                       f"{' or '.join(f'{n:,}' for n in n_eval)} test texts (Wilson); horizontal, the general change "
                       "against the pre-trained encoder, paired over the same sentences.")

    # Each run is drawn against the pre-trained score it was measured with, at exactly that value
    # (an unchanged encoder's point then sits on its line): runs with another model or general-benchmark
    # size have another reference, and get their own line.
    refs = {}
    for r in everyone:
        refs.setdefault(round(100 * r.pretrained_general["score"], 6), []).append(r)
    # Each line is named just above the plot, where no marker or line can cover its name; two lines
    # (two general sizes or models) take a row each, so their names never overlap however close they are.
    for row, (ref, members) in enumerate(sorted(refs.items())):
        sizes = sorted({r.config.get("general_size") for r in members if r.config.get("general_size")})
        label = "pre-trained encoder" + (f" (general size {', '.join(map(str, sizes))})" if len(refs) > 1 and sizes else "")
        fig.add_vline(x=100 * members[0].pretrained_general["score"], line=dict(color="grey", dash="dash"))
        fig.add_annotation(x=100 * members[0].pretrained_general["score"], y=1, xref="x", yref="paper",
                           yanchor="bottom", xanchor="center", text=label, showarrow=False,
                           yshift=2 + REF_LABEL_ROW_PX * row, font=dict(color="grey"))
    if refs:
        caption.append("Dashed line: the pre-trained encoder's general score; arrows run from it to each run, "
                       "left means forgotten.")

    # Baselines per task: always answering the commonest training label, and a blind guess among k labels.
    by_task = {}
    for r in everyone:
        by_task.setdefault(r.task, []).append(r)
    baselines, chances = [], []           # (name, value in points, dash)
    for task, members in by_task.items():
        prefix = f"{display_name(task)}: " if len(by_task) > 1 else ""
        for m in sorted({round(100 * r.majority_acc, 6) for r in members}):
            baselines.append((f"{prefix}majority class {pct_value(m / 100)} %", m, "dot"))
        k = next((_num_labels(r) for r in members if _num_labels(r)), None)
        if k:
            chances.append((f"{prefix}chance (1 in {k}) {pct_value(1 / k)} %", 100 / k, "dashdot"))

    # The y axis reaches down to the majority class, the baseline the cards quote. Chance lies at or
    # below it, on a many-label task far below (2 % of 52 labels): taking it in would squeeze every
    # run into the top of the plot, so a chance line outside the axis is named in the legend instead.
    xs, ys = [], [b[1] for b in baselines]
    for r in everyone:
        change = r.general_change()
        half = 100 * change["ci95"] if change else 0.0
        inside = r.in_domain_interval()
        xs += [100 * r.general["score"] - half, 100 * r.general["score"] + half]
        ys += [100 * inside["low"], 100 * inside["high"]]
        xs += [100 * p["general"] for p in r.curve or []]          # a WiSE-FT curve is drawn whole
        ys += [100 * p["in_domain_acc"] for p in r.curve or []]
    xs += [100 * m[0].pretrained_general["score"] for m in refs.values()]
    x_range = _span(xs, MIN_SPAN_GENERAL, -1, 101) if xs else None
    y_range = _span(ys, MIN_SPAN_IN_DOMAIN) if ys else None
    chances = [(name + ("" if y_range is None or value >= y_range[0] else ", below the axis"), value, dash)
               for name, value, dash in chances]
    baselines += chances
    if baselines:
        caption.append("Horizontal lines: the majority class (always answering the commonest training label) and "
                       "chance (a blind guess among the labels" + (", below the axis here)." if any(
                           "below the axis" in c[0] for c in chances) else ")."))
    for name, value, dash in baselines:
        fig.add_trace(go.Scatter(x=x_range, y=[value, value], mode="lines", name=name, hoverinfo="name",
                                 line=dict(color="#888", dash=dash, width=1.5)))

    fronts = []
    for i, (key, members) in enumerate(groups(everyone).items()):
        front = pareto_runs(members)
        kept, skipped = distinct_front(front)
        fronts.append((len(front), len(kept), skipped))
        if len(kept) > 1:
            fig.add_trace(go.Scatter(x=[100 * r.general["score"] for r in kept], y=[100 * r.in_domain_acc for r in kept],
                                     mode="lines", name="Pareto frontier", legendgroup="Pareto frontier",
                                     showlegend=not any(t.name == "Pareto frontier" for t in fig.data),
                                     line=dict(color="black", dash="dot", width=1.5), hoverinfo="skip"))
    drawn = [f for f in fronts if f[1] > 1]
    skipped = sum(f[2] for f in fronts)
    if drawn:
        caption.append("Dotted line: the Pareto frontier (runs no other run beats on both axes)"
                       + (f", leaving out {skipped} run(s) on it within the 95 % intervals of their neighbour." if skipped
                          else ", each step larger than the 95 % intervals."))
    elif any(f[0] > 1 for f in fronts):
        caption.append("No Pareto frontier drawn: the runs on it differ by less than their 95 % intervals.")

    for r in list(runs)[-MAX_ARROWS:]:
        x, y = 100 * r.general["score"], 100 * r.in_domain_acc
        fig.add_annotation(x=x, y=y, ax=100 * r.pretrained_general["score"], ay=y, xref="x", yref="y", axref="x",
                           ayref="y", showarrow=True, arrowhead=2, arrowwidth=2 if r.key == highlight else 1,
                           arrowcolor=colour(r.strategy), opacity=1.0 if r.key == highlight else 0.45, text="")
    if highlight:
        hit = [r for r in runs if r.key == highlight]
        if hit:
            r = hit[0]
            fig.add_trace(go.Scatter(x=[100 * r.general["score"]], y=[100 * r.in_domain_acc], mode="markers",
                                     name="latest run", marker=dict(size=marker_size(r.size) + 10, color="rgba(0,0,0,0)",
                                                                    line=dict(color="black", width=2)),
                                     hoverinfo="skip"))
    if everyone:
        caption.append(f"The axes span at least {MIN_SPAN_GENERAL:g} points (general) and {MIN_SPAN_IN_DOMAIN:g} "
                       "points (in-domain), so a difference of a point looks as small as it is.")
    fig.update_layout(
        title=title or "Learning vs forgetting", xaxis_title="general-benchmark score (%)  ← forgets",
        yaxis_title="in-domain accuracy (%)", legend_title="marker size = training-set size",
        height=480, margin=dict(l=60, r=20, t=60 + REF_LABEL_ROW_PX * len(refs), b=50), template="plotly_white", meta={"caption": " ".join(caption)})
    if x_range:
        fig.update_xaxes(range=x_range)
        fig.update_yaxes(range=y_range)
        middle = sum(x_range) / 2
        for a in fig.layout.annotations:      # a line's name runs inwards from it, never off the plot's edge
            if a.yref == "paper" and a.yanchor == "bottom":
                a.xanchor = "left" if a.x < middle else "right"
    return fig


def caption_of(fig: go.Figure) -> str:
    """The words a figure carries about what it draws (tradeoff_figure's), or ''."""
    meta = fig.layout.meta
    return (meta or {}).get("caption", "") if isinstance(meta, dict) else ""


def curves_figure(curves: list[dict], title: str = "Per-epoch curves", n_epochs: int | None = None) -> go.Figure:
    """Train loss (right axis) with train and held-out validation accuracy (left axis). With
    `n_epochs` the x axis spans the whole run from the start, so a live curve grows into it."""
    epochs = [c["epoch"] for c in curves]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=epochs, y=[100 * c["train_acc"] for c in curves], name="train acc",
                             mode="lines+markers"), secondary_y=False)
    fig.add_trace(go.Scatter(x=epochs, y=[100 * c["val_acc"] for c in curves], name="held-out val acc",
                             mode="lines+markers"), secondary_y=False)
    fig.add_trace(go.Scatter(x=epochs, y=[c["train_loss"] for c in curves], name="train loss",
                             mode="lines+markers", line=dict(dash="dot")), secondary_y=True)
    last = max([n_epochs or 0] + epochs)
    fig.update_xaxes(title_text="epoch", dtick=1 if last <= 20 else None, range=[0.5, last + 0.5] if last else None)
    fig.update_yaxes(title_text="accuracy (%)", secondary_y=False)
    fig.update_yaxes(title_text="loss", secondary_y=True)
    fig.update_layout(title=title, height=320, margin=dict(l=50, r=50, t=50, b=40), template="plotly_white",
                      legend=dict(orientation="h", y=-0.25))
    return fig


def live_tradeoff_figure(curves: list[dict], title: str = "Forgetting as it happens") -> go.Figure:
    """The run's path across the trade-off plane, epoch by epoch: x = the live general estimate
    (fixed probes on a few sentences per task), y = held-out validation accuracy. Left of the
    dashed pre-trained line is forgetting. Only the path's first and last points are labelled (a
    label per epoch overlapped where the points lie close, as they do on a projector's large type);
    hover names every epoch."""
    points = [c for c in curves if c.get("general_est") is not None]
    fig = go.Figure()
    xs = [100 * c["general_est"] for c in points]
    ys = [100 * c["val_acc"] for c in points]
    labelled = {0, len(points) - 1}
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers+text", name="this run, per epoch",
                             text=[f"e{c['epoch']}" if i in labelled else "" for i, c in enumerate(points)],
                             customdata=[c["epoch"] for c in points],
                             textposition=["bottom center" if i == 0 and len(points) > 1 else "top center"
                                           for i in range(len(points))],
                             line=dict(color="#d62728"), marker=dict(size=9), cliponaxis=False,
                             hovertemplate="epoch %{customdata}: general ≈ %{x:.1f} %, validation %{y:.1f} %"
                                           "<extra></extra>"))
    if points:
        ref = 100 * points[0]["general_ref"]
        # the axes keep room around the path and the line, so the labels and the line's name sit inside
        fig.add_vline(x=ref, line=dict(color="grey", dash="dash"))
        fig.add_annotation(x=ref, y=1, yref="paper", text="pre-trained", showarrow=False, xanchor="left",
                           yanchor="bottom", font=dict(color="grey"))
        # as wide as the trade-off plot's axes at least: a half-point wobble of the live estimate (a few
        # sentences per task) must not look like forgetting on an axis zoomed to 1.5 points
        fig.update_xaxes(range=_span(xs + [ref], MIN_SPAN_GENERAL, -1, 101))
        fig.update_yaxes(range=_span(ys, MIN_SPAN_IN_DOMAIN))
    fig.update_layout(title=title, height=320, template="plotly_white", showlegend=False,
                      xaxis_title="general score, live estimate (%)  ← forgets", yaxis_title="validation accuracy (%)",
                      margin=dict(l=50, r=20, t=50, b=40))
    return fig


# Presenter mode: read from the back of a room on a 1920x1080 projector.
PRESENTER_FONT = 22


def for_presenter(fig: go.Figure, height: int | None = None) -> go.Figure:
    """The same figure, with type, markers and lines large enough for a projector. `height`: the
    pixels the page gives it (the Lab sizes its plots so that a run fits one 1920x1080 screen)."""
    f = PRESENTER_FONT
    fig.update_layout(font=dict(size=f), title_font=dict(size=f + 6), legend=dict(font=dict(size=f)),
                      legend_title_font=dict(size=f), hoverlabel=dict(font_size=f),
                      height=height or max(560, (fig.layout.height or 450) + 200),
                      margin=dict(l=90, r=40, t=70, b=80))
    fig.update_xaxes(title_font=dict(size=f + 4), tickfont=dict(size=f))
    fig.update_yaxes(title_font=dict(size=f + 4), tickfont=dict(size=f))
    if fig.layout.legend.orientation == "h":   # below the x axis' title, not on it, at any height
        fig.update_layout(legend=dict(yref="container", y=0, yanchor="bottom"), margin=dict(b=120))
    for trace in fig.data:
        marker = getattr(trace, "marker", None)
        if marker is not None and marker.size is not None:
            size = marker.size
            trace.marker.size = [1.5 * m for m in size] if isinstance(size, (list, tuple)) else 1.5 * size
        elif marker is not None:
            trace.marker.size = 12
        line = getattr(trace, "line", None)
        if line is not None:
            trace.line.width = max(3, (line.width or 2) * 1.5)
    rows = 0
    for annotation in fig.layout.annotations:
        annotation.font = dict(size=f, color=annotation.font.color if annotation.font else None)
        if annotation.arrowwidth:
            annotation.arrowwidth = annotation.arrowwidth * 1.5
        if annotation.yref == "paper" and annotation.yanchor == "bottom" and annotation.yshift is not None:
            row = round((annotation.yshift - 2) / REF_LABEL_ROW_PX)        # a pre-trained line's name, above the plot
            annotation.yshift, rows = 2 + row * (f + 8), max(rows, row + 1)
    if rows:
        fig.update_layout(margin=dict(t=70 + rows * (f + 8)))
    return fig


def _mean_sd(values):
    values = list(values)
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def size_figure(runs, metric: str = "in_domain_acc") -> go.Figure:
    """Accuracy against training-set size, one line per strategy and comparable group (task, model,
    benchmark: never an average across tasks), error bars = sd over seeds."""
    fig = go.Figure()
    by_group = groups(runs)
    for g, (key, members) in enumerate(by_group.items()):
        prefix = f"{group_label(key, by_group)} · " if len(by_group) > 1 else ""
        for strategy in sorted({r.strategy for r in members}):
            by_size = {}
            for r in members:
                if r.strategy == strategy:
                    by_size.setdefault(r.size, []).append(getattr(r, metric))
            sizes = sorted(by_size)
            stats_ = [_mean_sd(by_size[s]) for s in sizes]
            fig.add_trace(go.Scatter(
                x=sizes, y=[100 * m for m, _ in stats_], name=prefix + strategy, mode="lines+markers",
                line=dict(color=colour(strategy), dash=DASHES[g % len(DASHES)]),
                error_y=dict(type="data", array=[100 * sd for _, sd in stats_], visible=True),
                text=[f"{len(by_size[s])} seed(s)" for s in sizes],
                hovertemplate="n=%{x}: %{y:.1f} ± %{error_y.array:.1f} %<br>%{text}<extra>" + prefix + strategy
                              + "</extra>"))
    fig.update_xaxes(type="log", title_text="training-set size (log scale)")
    fig.update_layout(title="In-domain accuracy vs training-set size (mean ± sd over seeds"
                            + ("; one line per task and strategy, never averaged across tasks)" if len(by_group) > 1
                               else ")"),
                      yaxis_title="in-domain accuracy (%)", height=420, template="plotly_white")
    return fig


def general_breakdown_figure(runs) -> go.Figure:
    """Per general task, each strategy's change against the pre-trained encoder in points (mean ± sd
    over its runs), fixed probe solid, refitted probe hatched; one set of bars per comparable group
    (task, model, benchmark), never pooled across them. Fixed shows drift of the old features;
    refit, lost information. Changes of a point or two are the story, so the axis fits the changes."""
    fig = go.Figure()
    if not runs:
        return fig
    by_group = groups(runs)
    spread = [0.0]                     # every bar end and error-bar end, to scale the axis
    for key, members in by_group.items():
        prefix = f"{group_label(key, by_group)} · " if len(by_group) > 1 else ""
        tasks = list(members[0].general["per_task"])
        for strategy in sorted({r.strategy for r in members}):
            group = [r for r in members if r.strategy == strategy]
            for probe, pattern in (("fixed", ""), ("refit", "/")):
                # each run against its own pre-trained reference
                stats_ = [_mean_sd(100 * (r.general["per_task"][t][probe] - r.pretrained_general["per_task"][t][probe])
                                   for r in group) for t in tasks]
                sds = [sd if len(group) > 1 else None for _, sd in stats_]
                spread += [m + s * (sd or 0) for m, sd in stats_ for s in (-1, 1)]
                name = f"{prefix}{strategy} ({probe})"
                fig.add_trace(go.Bar(
                    x=tasks, y=[m for m, _ in stats_], name=name,
                    marker=dict(color=colour(strategy), pattern_shape=pattern),
                    error_y=dict(type="data", array=sds, visible=len(group) > 1),
                    hovertemplate="%{x}: %{y:+.1f}" + (" ± %{error_y.array:.1f}" if len(group) > 1 else "")
                    + f" pts ({len(group)} run(s))<extra>{name}</extra>"))
    low, high = min(spread), max(spread)
    pad = max(0.1 * (high - low), 0.5)         # 0 stays inside with room on both sides: the zero line shows
    fig.update_layout(barmode="group", height=420, template="plotly_white",
                      title="General benchmark per task: change against the pre-trained encoder (points)",
                      yaxis=dict(title="change in probe accuracy (points)", range=[low - pad, high + pad],
                                 zeroline=True, zerolinewidth=2, zerolinecolor="#444"))
    return fig


def per_class_figure(r) -> go.Figure:
    """Per label of the in-domain test set: recall (the share of its texts found) beside the share
    of all predictions that went to it, against its share of the texts. A run that learned nothing
    beyond the majority label shows one tall 'predicted' bar and the rest at 0."""
    rows = r.per_class
    labels = [c["label"] for c in rows]
    total = max(1, sum(c["support"] for c in rows))
    fig = go.Figure()
    fig.add_trace(go.Bar(x=labels, y=[100 * (c["recall"] or 0) for c in rows], name="recall (found of its texts)",
                         marker_color="#1f77b4", hovertemplate="%{x}: recall %{y:.1f} %<extra></extra>"))
    fig.add_trace(go.Bar(x=labels, y=[100 * c["predicted"] / total for c in rows], name="share of predictions",
                         marker_color="#ff7f0e", hovertemplate="%{x}: %{y:.1f} % of predictions<extra></extra>"))
    fig.add_trace(go.Scatter(x=labels, y=[100 * c["support"] / total for c in rows], name="share of test texts",
                             mode="markers", marker=dict(symbol="line-ew-open", size=28, color="black",
                                                         line=dict(width=2)),
                             hovertemplate="%{x}: %{y:.1f} % of test texts<extra></extra>"))
    fig.update_layout(barmode="group", height=360, template="plotly_white", title="In-domain test set per class",
                      yaxis=dict(title="%", range=[0, 105]), legend=dict(orientation="h", y=-0.25),
                      margin=dict(l=50, r=20, t=50, b=40))
    return fig


def confusion_figure(r) -> go.Figure:
    """The in-domain test set's confusion matrix, each row as shares of that label's texts (so a
    rare label's row reads as clearly as the majority's), with the counts on hover."""
    labels = [c["label"] for c in r.per_class] or [str(i) for i in range(len(r.confusion))]
    counts = r.confusion
    shares = [[100 * v / max(1, sum(row)) for v in row] for row in counts]
    fig = go.Figure(go.Heatmap(
        z=shares, x=labels, y=labels, colorscale="Blues", zmin=0, zmax=100, customdata=counts,
        text=[[f"{v:.0f}" for v in row] for row in shares], texttemplate="%{text}",
        hovertemplate="true %{y}, predicted %{x}: %{customdata} texts (%{z:.1f} % of the row)<extra></extra>",
        colorbar=dict(title="% of row")))
    fig.update_layout(title="Confusion matrix (rows: true label, % of its texts)", height=420, template="plotly_white",
                      xaxis=dict(title="predicted"), yaxis=dict(title="true", autorange="reversed"),
                      margin=dict(l=80, r=20, t=50, b=60))
    return fig


def per_class_change_figure(a, b) -> go.Figure:
    """Recall per label of run A minus run B, in points, with each label's support in the hover:
    which classes a strategy gains and which it sacrifices."""
    rb = {c["label"]: c for c in b.per_class}
    rows = [(c, rb[c["label"]]) for c in a.per_class if c["label"] in rb and c["support"]]
    fig = go.Figure(go.Bar(
        x=[ca["label"] for ca, _ in rows], y=[100 * ((ca["recall"] or 0) - (cb["recall"] or 0)) for ca, cb in rows],
        marker_color=["#2ca02c" if (ca["recall"] or 0) >= (cb["recall"] or 0) else "#d62728" for ca, cb in rows],
        customdata=[ca["support"] for ca, _ in rows],
        hovertemplate="%{x}: %{y:+.1f} pts recall (%{customdata} test texts)<extra></extra>"))
    fig.update_layout(title="Recall per class, A − B (points)", height=360, template="plotly_white",
                      yaxis=dict(title="points", zeroline=True, zerolinewidth=2, zerolinecolor="#444"),
                      margin=dict(l=50, r=20, t=50, b=60))
    return fig
