"""Paired uncertainty (core/stats.py) and the per-sentence outcomes every run now keeps."""
import math

import numpy as np
import pytest

from conftest import TINY
from core import stats
from core.config import RunConfig
from core.training import live_epochs, run


def test_packed_outcomes_round_trip():
    rng = np.random.default_rng(0)
    for n in (1, 7, 8, 1000):
        bits = rng.random(n) < 0.5
        assert np.array_equal(stats.unpack(stats.pack(bits)), bits)
    assert stats.unpack(None) is None


def test_a_paired_change_is_far_tighter_than_two_independent_accuracies():
    # 1000 sentences, 80 % right before; the adapted encoder flips 20 right to wrong and 5 wrong to right
    before = np.zeros(1000, dtype=bool)
    before[:800] = True
    after = before.copy()
    after[:20] = False
    after[800:805] = True
    change, se = stats.paired_change(after, before)
    assert change == pytest.approx(-0.015)
    assert se == pytest.approx(math.sqrt((25 - 1000 * 0.015 ** 2) / 999) / math.sqrt(1000))   # sd of d / sqrt(n)
    unpaired = math.sqrt(0.8 * 0.2 / 1000 + 0.785 * 0.215 / 1000)
    assert se < unpaired / 3
    assert stats.verdict(change, se) == "distinguishable from zero"
    low, high = stats.paired_bootstrap(after, before)
    assert low < change < high < 0                            # the interval excludes zero too
    assert stats.verdict(0.001, se) == "within noise"
    with pytest.raises(ValueError):
        stats.paired_change(after, before[:10])


def test_general_change_pairs_each_task_and_adds_their_errors_in_quadrature():
    def side(rows):
        return {"per_task": {name: {"correct": stats.pack(bits)} for name, bits in rows.items()}}

    a = np.array([1, 1, 0, 0] * 50, dtype=bool)
    b = np.array([1, 0, 0, 0] * 50, dtype=bool)
    got = stats.general_change(side({"x": b, "y": a}), side({"x": a, "y": a}))
    x_change, x_se = stats.paired_change(b, a)
    assert got["per_task"]["y"] == {"change": 0.0, "se": 0.0}
    assert got["change"] == pytest.approx(x_change / 2) and got["se"] == pytest.approx(x_se / 2)
    assert stats.general_change(side({"x": a}), {"per_task": {"x": {"fixed": 0.5}}}) is None     # an old result


def test_every_run_keeps_its_outcomes_and_per_class_counts(small_csv):
    result = run(RunConfig(**{**TINY, "task": f"csv:{small_csv}", "strategy": "full", "epochs": 2}))
    correct = stats.unpack(result.test_correct)
    assert len(correct) == result.n_eval and correct.mean() == pytest.approx(result.in_domain_acc)
    change = result.general_change()
    assert change["change"] == pytest.approx(result.general_delta)          # the same change, now with its error
    assert change["se"] > 0 or change["change"] == 0
    assert sum(c["support"] for c in result.per_class) == result.n_eval
    assert sum(c["predicted"] for c in result.per_class) == result.n_eval
    hits = sum(round(c["recall"] * c["support"]) for c in result.per_class if c["support"])
    assert hits == round(result.in_domain_acc * result.n_eval)


def test_per_class_shows_a_majority_class_collapse():
    from core.result import per_class

    rows = per_class(np.array([0, 0, 0, 1, 2]), np.array([0, 0, 0, 0, 0]), ["a", "b", "c"])
    assert [(r["label"], r["recall"], r["predicted"]) for r in rows] == [("a", 1.0, 5), ("b", 0.0, 0), ("c", 0.0, 0)]
    assert rows[0]["precision"] == 0.6 and rows[1]["precision"] is None


def test_per_class_and_confusion_from_scikit_learn_count_as_by_hand():
    """The per-class rows and the confusion matrix (scikit-learn's metrics) give the counts written out
    by hand: on random predictions over 6 labels, one never in the truth and one never predicted."""
    from core.result import confusion, per_class

    rng = np.random.default_rng(0)
    y_true, y_pred = rng.choice([0, 1, 2, 4, 5], 300), rng.choice([0, 1, 2, 3, 4], 300)
    matrix = confusion(y_true, y_pred, 6)
    for i in range(6):
        for j in range(6):
            assert matrix[i][j] == int(((y_true == i) & (y_pred == j)).sum())
    for i, row in enumerate(per_class(y_true, y_pred, list("abcdef"))):
        support, predicted, hit = (y_true == i).sum(), (y_pred == i).sum(), ((y_true == i) & (y_pred == i)).sum()
        assert (row["support"], row["predicted"]) == (support, predicted)
        assert row["recall"] == (hit / support if support else None)
        assert row["precision"] == (hit / predicted if predicted else None)
    assert per_class(y_true, y_pred, list("abcdef"))[3]["recall"] is None     # label 3 never in the truth
    assert per_class(y_true, y_pred, list("abcdef"))[5]["precision"] is None  # label 5 never predicted


def test_an_unchanged_encoder_has_a_paired_interval_of_exactly_zero(small_csv):
    result = run(RunConfig(**{**TINY, "task": f"csv:{small_csv}", "strategy": "feature-extraction"}))
    change = result.general_change()
    assert change["change"] == 0.0 and change["se"] == 0.0 and change["ci95"] == 0.0
    assert stats.verdict(change["change"], change["se"]) == "within noise"
    assert np.array(result.confusion).sum() == result.n_eval
    assert np.trace(np.array(result.confusion)) == round(result.in_domain_acc * result.n_eval)


def test_the_live_general_estimate_is_the_benchmarks_score_of_the_same_encoder(small_csv):
    # general_size 50 < LIVE_SENTENCES: the live estimate reads every test sentence, so on the epoch
    # whose weights the run keeps it must be exactly the score the general benchmark then gives them.
    # best_epoch may restore an earlier epoch: every epoch, the last included, is scored live.
    result = run(RunConfig(**{**TINY, "task": f"csv:{small_csv}", "strategy": "full", "epochs": 2, "best_epoch": True}))
    assert all("general_est" in c for c in result.curves) and result.timings["general_live"] > 0
    kept = result.curves[result.chosen_epoch - 1]
    assert kept["general_est"] == pytest.approx(result.general["score"], abs=1e-6)
    assert kept["general_ref"] == pytest.approx(result.pretrained_general["score"])


def test_the_walk_ends_on_the_general_benchmark_without_a_live_estimate_of_the_last_epoch(small_csv):
    result = run(RunConfig(**{**TINY, "task": f"csv:{small_csv}", "strategy": "lp-ft", "lp_epochs": 2, "epochs": 2}))
    head, trained = result.curves[:2], result.curves[2:]
    assert all("general_est" not in c for c in head)                    # the encoder did not change yet
    assert [c["general_ref"] for c in trained] == [pytest.approx(result.pretrained_general["score"])] * 2
    assert trained[-1]["general_est"] == round(result.general["score"], 6)      # the benchmark's own score
    assert 0 < result.timings["general_live"] < result.timings["training"]     # epoch 1 was scored live


def test_a_long_run_scores_the_live_estimate_on_a_few_epochs_ending_on_the_last(small_csv):
    assert [sorted(live_epochs(e)) for e in (1, 3, 4, 5, 10)] == [[1], [1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5],
                                                                  [3, 5, 8, 10]]
    assert [sorted(live_epochs(e, last_scored_after=True)) for e in (1, 2, 3, 10)] == [[], [1], [1, 2], [3, 6, 9]]
    result = run(RunConfig(**{**TINY, "task": f"csv:{small_csv}", "strategy": "full", "epochs": 6}))
    assert [c["epoch"] for c in result.curves if "general_est" in c] == [2, 4, 5, 6]
    assert result.curves[-1]["general_est"] == round(result.general["score"], 6)


def test_the_wilson_interval_of_an_accuracy():
    low, high = stats.wilson(45, 50)
    assert low < 0.9 < high and 0 <= low and high <= 1
    assert stats.wilson(0, 50)[0] == 0.0 and stats.wilson(0, 50)[1] > 0.05     # not zero-wide at 0/n
    assert stats.wilson(50, 50)[1] == 1.0 and stats.wilson(50, 50)[0] < 0.95
    narrow, wide = stats.wilson(1600, 2000), stats.wilson(40, 50)
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 4                       # 40x the texts: ~1/6 the width
    got = stats.accuracy_interval(0.8, 2000)
    assert (got["low"], got["high"]) == narrow and got["n"] == 2000
    # a simulated check of its coverage: 95 % intervals hold the true share about 95 % of the time
    rng = np.random.default_rng(0)
    hits = [lo <= 0.7 <= hi for lo, hi in (stats.wilson(k, 200) for k in rng.binomial(200, 0.7, size=2000))]
    assert 0.93 < np.mean(hits) < 0.97


def test_the_general_interval_carries_its_ends_and_verdict():
    assert stats.general_interval(None) is None
    got = stats.general_interval({"change": -0.02, "se": 0.005, "ci95": stats.Z95 * 0.005})
    assert got["low"] == pytest.approx(-0.02 - stats.Z95 * 0.005) and got["high"] < 0
    assert got["verdict"] == "distinguishable from zero"
    assert stats.general_interval({"change": 0.0, "se": 0.0, "ci95": 0.0})["verdict"] == "within noise"


def test_thin_classes_counts_labels_with_a_handful_of_examples():
    labels = np.array([0] * 40 + [1] * 4 + [2] * 1)             # label 3 never appears
    got = stats.thin_classes(labels, 4)
    assert got == {"labels": 4, "below": 5, "thin": 3, "none_or_one": 2, "smallest": 0}
    assert stats.thin_classes(np.array([0] * 5 + [1] * 5), 2)["thin"] == 0


def test_the_change_against_the_majority_class_is_paired_over_the_same_texts():
    # 3 labels, 10 test texts: label 0 is the majority (6 texts). The run finds 5 of label 0, 3 of label 1, 0 of 2.
    y = np.array([0] * 6 + [1] * 3 + [2])
    pred = np.array([0, 0, 0, 0, 0, 1] + [1, 1, 1] + [0])
    from core.result import confusion

    got = stats.vs_majority(confusion(y, pred, 3), 0.6)
    run_right, majority_right = (y == pred), (y == 0)
    change, se = stats.paired_change(run_right, majority_right)
    assert got["change"] == pytest.approx(change) == pytest.approx(0.2)
    assert got["se"] == pytest.approx(se) and got["ci95"] == pytest.approx(stats.Z95 * se)
    assert stats.vs_majority([], 0.5) is None
    assert stats.vs_majority(confusion(y, pred, 3), 0.45) is None            # no label has that share


def test_the_lean_on_the_commonest_label_is_paired_over_the_same_texts():
    """Rows true labels, columns predicted: label 0 is commonest (60 of 100 texts) and predicted for 75."""
    confusion = [[55, 3, 2], [12, 13, 0], [8, 2, 5]]
    lean = stats.majority_lean(confusion)
    assert lean["label"] == 0 and lean["predicted"] == 0.75 and lean["true"] == 0.6
    assert abs(lean["change"] - 0.15) < 1e-12 and lean["verdict"] == "distinguishable from zero"
    d = np.array([1] * 20 + [-1] * 5 + [0] * 75)           # per text: +1 more, -1 fewer, 0 either way
    assert abs(lean["se"] - d.std(ddof=1) / np.sqrt(100)) < 1e-12
    fair = stats.majority_lean([[50, 10], [10, 30]])       # as often as the data has it: no lean
    assert fair["change"] == 0.0 and fair["verdict"] == "within noise"
    assert stats.majority_lean([]) is None


def test_feature_extraction_at_n64_leans_on_earn_as_results_says():
    """docs/RESULTS.md (per class, R8): at n=64 feature extraction predicts earn for 57.1 % of the test
    texts, which have it 49.8 %; the shipped preset runs say so through RunResult.majority_lean."""
    from core.presets import load_presets

    presets, _ = load_presets()
    runs = [r for p in presets if p.name == "r8" for r in p.runs if r.strategy == "feature-extraction" and r.size == 64]
    leans = [r.majority_lean() for r in runs]
    assert len(leans) == 3 and {lean["name"] for lean in leans} == {"earn"}
    assert round(100 * np.mean([lean["predicted"] for lean in leans]), 1) == 57.1
    assert round(100 * leans[0]["true"], 1) == 49.8
    assert all(lean["verdict"] == "distinguishable from zero" for lean in leans)
    assert "leans on the commonest label more than the data does" in runs[0].majority_lean_text()
