"""The trade-off plot reads correctly on its own (issue 23): a run with no change on its reference
line, axes that never zoom below a meaningful span, 95 % intervals as bars and in the legend, the
majority and chance lines, no Pareto line through differences inside their intervals, a caption of
what is drawn; and Compare's aggregates never pool tasks. Figures from preset runs: nothing trains.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core import plots, stats
from core.presets import load_presets


def r8_runs():
    return [r for p in load_presets()[0] if p.name == "r8" for r in p.runs]


def unchanged(run, key="fe"):
    """A feature-extraction run: its general score is the pre-trained one, to the last bit."""
    return dataclasses.replace(run, key=key, strategy="feature-extraction", general=dict(run.pretrained_general))


def by_name(fig, name):
    return next(t for t in fig.data if t.name == name)


def test_a_run_with_no_change_is_drawn_on_the_pretrained_line_on_a_readable_axis():
    fe = unchanged(next(r for r in r8_runs() if r.strategy == "feature-extraction"))
    fig = plots.tradeoff_figure([fe])
    point = by_name(fig, "strategy: feature-extraction")
    (line,) = [s.x0 for s in fig.layout.shapes]
    assert point.x[0] == line == 100 * fe.pretrained_general["score"]       # exactly: no float noise between
    low, high = fig.layout.xaxis.range
    assert high - low >= plots.MIN_SPAN_GENERAL and low < point.x[0] < high
    assert abs((low + high) / 2 - point.x[0]) < 0.5                          # in the middle, not at an edge
    ylow, yhigh = fig.layout.yaxis.range
    assert yhigh - ylow >= plots.MIN_SPAN_IN_DOMAIN


def test_close_runs_get_an_axis_of_several_points_not_their_difference():
    base = next(r for r in r8_runs() if r.strategy == "full")
    a = dataclasses.replace(base, key="a", in_domain_acc=0.192, majority_acc=0.19, per_class=[], confusion=[])
    b = dataclasses.replace(base, key="b", in_domain_acc=0.197, majority_acc=0.19, per_class=[], confusion=[])
    fig = plots.tradeoff_figure([a, b])
    low, high = fig.layout.yaxis.range
    assert high - low >= plots.MIN_SPAN_IN_DOMAIN            # 0.5 points is a twentieth of the height at most


def test_every_run_has_its_in_domain_interval_and_the_legend_names_the_bars():
    runs = r8_runs()
    fig = plots.tradeoff_figure([], runs)
    for trace in fig.data:
        if not trace.name.startswith("preset: "):
            continue
        members = [r for r in runs if f"preset: {r.strategy}" == trace.name]
        for r, up, down in zip(members, trace.error_y.array, trace.error_y.arrayminus):
            want = stats.accuracy_interval(r.in_domain_acc, r.n_eval)
            assert (100 * r.in_domain_acc + up, 100 * r.in_domain_acc - down) == pytest.approx(
                (100 * want["high"], 100 * want["low"]))
    assert any(t.name == plots.INTERVALS_LEGEND for t in fig.data)
    caption = plots.caption_of(fig)
    assert "95 % intervals" in caption and "Wilson" in caption and "paired" in caption


def test_majority_and_chance_lines_are_drawn_and_named():
    runs = r8_runs()
    fig = plots.tradeoff_figure([], runs)
    majority = [t for t in fig.data if t.name.startswith("majority class")]
    chance = [t for t in fig.data if t.name.startswith("chance (1 in 8)")]
    assert len(majority) == 1 and list(majority[0].y) == [pytest.approx(100 * runs[0].majority_acc)] * 2
    assert len(chance) == 1 and list(chance[0].y) == [12.5, 12.5]
    low, high = fig.layout.yaxis.range
    assert low <= 100 * runs[0].majority_acc                    # the baseline the cards quote is on the axis
    assert "below the axis" in chance[0].name and low > 12.5      # chance far below: named, not squeezing the runs
    assert "majority class" in plots.caption_of(fig) and "chance" in plots.caption_of(fig)


def test_no_pareto_line_through_differences_inside_their_intervals():
    base = next(r for r in r8_runs() if r.strategy == "full" and r.test_correct)
    bits = stats.unpack(base.test_correct)
    flipped = bits.copy()
    flipped[np.flatnonzero(~bits)[:2]] = True                     # two more texts right: noise
    general = {**base.general, "score": base.general["score"] - 0.0005}
    close = dataclasses.replace(base, key="close", test_correct=stats.pack(flipped),
                                in_domain_acc=float(flipped.mean()), general=general)
    fig = plots.tradeoff_figure([base, close])
    assert not any(t.name == "Pareto frontier" for t in fig.data)
    assert "No Pareto frontier drawn" in plots.caption_of(fig)

    much = bits.copy()
    much[np.flatnonzero(~bits)[:40]] = True                        # 40 of 2,000 texts: two points, real
    better = dataclasses.replace(close, key="better", test_correct=stats.pack(much), in_domain_acc=float(much.mean()))
    fig = plots.tradeoff_figure([base, better])
    front = by_name(fig, "Pareto frontier")
    assert len(front.x) == 2 and "Pareto frontier" in plots.caption_of(fig)


def test_the_size_plot_and_the_breakdown_never_average_across_tasks():
    base = [r for r in r8_runs() if r.strategy == "full" and r.size == 256]
    other = [dataclasses.replace(r, key=f"sms{i}", task="sms-spam", in_domain_acc=0.05 + 0.01 * i)
             for i, r in enumerate(base)]
    fig = plots.size_figure(base + other)
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"r8 · full", "sms-spam · full"}
    assert traces["r8 · full"].y[list(traces["r8 · full"].x).index(256)] == pytest.approx(
        100 * np.mean([r.in_domain_acc for r in base]))
    assert traces["sms-spam · full"].y[0] == pytest.approx(100 * np.mean([r.in_domain_acc for r in other]))
    assert "never averaged across tasks" in fig.layout.title.text
    breakdown = plots.general_breakdown_figure(base + other)
    assert {t.name for t in breakdown.data} == {"r8 · full (fixed)", "r8 · full (refit)", "sms-spam · full (fixed)",
                                                 "sms-spam · full (refit)"}
    assert [t.name for t in plots.size_figure(base).data] == ["full"]       # one task: names as before


def test_one_rounding_everywhere():
    from core.fmt import pct, pct_value, pts

    assert pct(77 / 400) == "19.3 %" and pct_value(77 / 400) == 19.3          # 19.25: half away from zero
    assert pct(0.1924) == "19.2 %"
    assert pts(0.0) == "0.0 pts" and pts(-0.00001) == "0.0 pts" and pts(0.005) == "+0.5 pts"
    assert pts(-0.012, unit="") == "-1.2"


def test_exports_write_created_at_as_iso_8601_with_its_time_zone():
    import csv
    import io
    import json

    from core.result import RunResult
    from core.store import to_csv, to_json

    run = dataclasses.replace(r8_runs()[0], created_at=1_780_000_000.25)
    row = next(csv.DictReader(io.StringIO(to_csv([run]))))
    assert row["created_at"] == "2026-05-28T20:26:40+00:00"
    data = json.loads(to_json([run]))[0]
    assert data["created_at"] == "2026-05-28T20:26:40.250000+00:00"
    assert RunResult.from_dict(data).created_at == run.created_at           # reads back
    assert data["intervals"]["in_domain"]["n"] == run.n_eval


def test_a_wise_ft_curve_is_inside_the_axes_whole():
    """The axes take in every scored mix of a WiSE-FT curve, not only the run's own marker."""
    wise = next(r for p in load_presets()[0] for r in p.runs if r.curve and len(r.curve) > 2)
    fig = plots.tradeoff_figure([wise])
    (xlow, xhigh), (ylow, yhigh) = fig.layout.xaxis.range, fig.layout.yaxis.range
    for p in wise.curve:
        assert xlow <= 100 * p["general"] <= xhigh and ylow <= 100 * p["in_domain_acc"] <= yhigh, p


def test_pretrained_lines_are_named_above_the_plot_one_row_each_running_inwards():
    """Two reference lines (another general size) used to share the bottom-left corner: the names
    overlapped and the left one ran off the plot. Each name now sits above the plot in a row of its
    own, running from its line towards the middle; in presenter mode the rows grow with the type."""
    base = next(r for r in r8_runs() if r.strategy == "full")
    small = dataclasses.replace(base, key="small", config={**base.config, "general_size": 50},
                                pretrained_general={**base.pretrained_general, "score": 0.64},
                                general={**base.general, "score": 0.635})
    fig = plots.tradeoff_figure([small, base])
    names = [a for a in fig.layout.annotations if a.text and a.text.startswith("pre-trained encoder")]
    assert sorted(a.text for a in names) == ["pre-trained encoder (general size 1000)",
                                             "pre-trained encoder (general size 50)"]
    assert all(a.yref == "paper" and a.y == 1 and a.yanchor == "bottom" for a in names)     # above the plot
    assert len({a.yshift for a in names}) == 2                                             # a row each
    left, right = sorted(names, key=lambda a: a.x)
    assert (left.xanchor, right.xanchor) == ("left", "right")                               # inwards
    big = plots.for_presenter(fig)
    shifts = sorted(a.yshift for a in big.layout.annotations if a.text and a.text.startswith("pre-trained"))
    assert shifts[1] - shifts[0] >= plots.PRESENTER_FONT and big.layout.margin.t >= 70 + 2 * plots.PRESENTER_FONT
    one = plots.tradeoff_figure([base])
    assert [a.text for a in one.layout.annotations if a.yref == "paper"] == ["pre-trained encoder"]


def test_every_strategy_brings_its_own_colour_and_an_unknown_one_is_grey():
    """A strategy is one unit: its colour comes with it (no list in the plots to keep in step)."""
    from core.strategies import STRATEGIES

    colours = [plots.colour(name) for name in STRATEGIES]
    assert len(set(colours)) == len(STRATEGIES) and plots.OTHER_COLOUR not in colours
    assert plots.colour("a-strategy-of-an-old-run") == plots.OTHER_COLOUR


def test_the_live_path_is_drawn_on_axes_as_wide_as_the_trade_off_plots():
    """Seen on a presenter screenshot: the live estimate half a point under the pre-trained line on an
    axis of 1.5 points looked like forgetting; the axes now span at least what the trade-off plot's do."""
    curves = [{"epoch": 1, "general_est": 0.635, "general_ref": 0.64, "val_acc": 0.675},
              {"epoch": 2, "general_est": 0.637, "general_ref": 0.64, "val_acc": 0.70}]
    fig = plots.live_tradeoff_figure(curves)
    low, high = fig.layout.xaxis.range
    assert high - low >= plots.MIN_SPAN_GENERAL and low < 63.5 and high > 64.0
    low, high = fig.layout.yaxis.range
    assert high - low >= plots.MIN_SPAN_IN_DOMAIN and low < 67.5 and high > 70.0
