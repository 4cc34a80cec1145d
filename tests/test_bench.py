"""The bench's pieces on tiny configurations: they run and return sane figures (no timing assertions)."""
import math

import pytest
import torch

from core import bench


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("FTLAB_HOME", str(tmp_path / "lab"))


def test_flop_formulas():
    p, tr, t = 10_000_000, 80_000, 1_000
    assert bench.train_flops("full", p, p, t) == 6 * p * t
    assert bench.train_flops("lora", p, tr, t) == 4 * p * t + 6 * tr * t
    assert bench.train_flops("feature-extraction", p, 0, t) == 2 * p * t
    assert bench.train_flops("forward", p, 0, t) == 2 * p * t
    with pytest.raises(ValueError):
        bench.train_flops("nope", p, tr, t)
    assert set(bench.FLOP_FORMULAS) >= {"full", "lora", "feature-extraction", "forward"}


def test_non_embedding_params_of_the_default_model():
    from core.models import load_base

    p = bench.non_embedding_params(load_base("minilm")[1])
    assert 10e6 < p < 11.5e6          # 6 blocks of hidden 384: ~10.6 M, embeddings left out


def test_matmul_peak_small():
    g = bench.matmul_gflops(128, 128, 128, torch.float32, "cpu", reps=1, trials=1)
    assert g > 0 and math.isfinite(g)
    peaks = bench.measure_peaks("cpu", quick=True, square=256)
    assert set(peaks["peak"]) == {"fp32", "bf16"}
    assert peaks["peak"]["fp32"] > 0


def test_loglog_slope():
    x = [64, 128, 256, 512]
    assert bench.loglog_slope(x, [2 * v for v in x]) == pytest.approx(1.0)
    assert bench.loglog_slope(x, [v ** 2 for v in x]) == pytest.approx(2.0)
    assert math.isnan(bench.loglog_slope([1], [1]))


def test_trainer_baseline_and_project_side_tiny():
    from core.models import load_base

    cfg = bench.bench_config("full", 16, eval_size=20, general_size=50).replace(epochs=1)
    data = bench._Data(cfg)
    params = bench.non_embedding_params(load_base("minilm")[1])
    tr = bench.trainer_baseline(cfg, data, params)
    assert tr["side"] == "trainer" and 0 <= tr["acc"] <= 1
    assert tr["train_s"] > 0 and tr["eval_s"] > 0 and tr["general_s"] is None
    assert 0 <= tr["train_pad"] < 1 and 0 <= tr["eval_pad"] < 1
    assert tr["real_tokens"] == data.tokens("train")
    assert tr["trainable"] > 20e6     # every weight trains
    pr = bench.project_run(cfg, data, params)
    assert pr["side"] == "project" and 0 <= pr["acc"] <= 1 and pr["general_s"] >= 0
    assert pr["flops_train"] > bench.train_flops("full", params, 0, data.tokens("train"))
    s = bench.summarise({"full": {"project": [pr], "trainer": [tr]}})
    assert s["full"]["ratio"] > 0
    g = bench.goals(s, {"peak": {"bf16": 800.0}}, {"peak_rss_gb": 1.0, "returncode": 0})
    memory = next(x for x in g if "memory" in x["goal"])
    assert memory["met"] is True and memory["value"] == 1.0            # 1.0 GB against a 2.5 GB budget
    ratio = next(x for x in g if "project/Trainer" in x["goal"])         # only full fine-tuning was summarised
    assert ratio["value"] == s["full"]["ratio"] and ratio["met"] == (s["full"]["ratio"] <= 0.5)
    assert (ratio["miss"] == "") if ratio["met"] else ("x the target" in ratio["miss"])


def test_trainer_baseline_lora_trains_the_head_and_adapters_only():
    from core.models import load_base

    cfg = bench.bench_config("lora", 16, eval_size=10, general_size=50).replace(epochs=1)
    tr = bench.trainer_baseline(cfg, bench._Data(cfg), bench.non_embedding_params(load_base("minilm")[1]))
    assert 50_000 < tr["trainable"] < 200_000     # r8 adapters on query/value plus the head copy


def test_encoder_throughput_tiny_on_cpu():
    from transformers import BertConfig

    cfg = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                     vocab_size=100)
    out = bench.encoder_throughput("cpu", cfg, batch=2, seq=8, steps=1, warmup=1)
    assert out["train_ex_s"] > 0 and out["forward_ex_s"] > 0


def test_render_with_minimal_context(tmp_path):
    from core.config import RunConfig

    row = {"train_s": 1.0, "eval_s": 0.5, "general_s": 2.0, "setup_s": 0.1, "total_s": 4.0, "acc": 0.9,
           "train_ex_s": 10.0, "eval_ex_s": 20.0, "flops_s": 1e11, "train_pad": 0.05, "eval_pad": 0.02,
           "trainable": 100, "precision": "bf16"}
    runs = {s: {"project": [dict(row)], "trainer": [dict(row, train_s=3.0, general_s=None)]} for s in bench.STRATEGIES}
    summary = bench.summarise(runs)
    peaks = {"shapes": {"fp32": {"a": 100.0}, "bf16": {"a": 500.0}}, "peak": {"fp32": 100.0, "bf16": 500.0}}
    facts = {"cpu": "x", "logical_cores": 2, "usable_cores": 2, "torch_threads": 2, "torch_interop_threads": 2,
             "avx512_bf16": True, "amx": False, "mkldnn_bf16": True, "device": "cpu", "cuda": None,
             "versions": {"torch": "t"}, "load_avg_start": (1.0, 1.0, 1.0)}
    ctx = {"command": "python -m core bench --quick", "date": "today", "quick": True, "facts": facts,
           "peaks": peaks, "summary": summary, "fe_cold": dict(row), "goals": bench.goals(summary, peaks, None),
           "configs": {s: RunConfig(strategy=s).resolved() for s in bench.STRATEGIES}, "size": 16, "repeats": 1,
           "n_eval": 20, "seed": 0, "params": 10_000_000, "lora_trainable": 70_000, "profile": None, "rss": None,
           "scaling": {"full": {64: {"train_s": 1.0}, 128: {"train_s": 2.0}}, "lora": {},
                       "feature-extraction": {64: {"train_s": 0.1, "cold_train_s": 1.0}}},
           "evals": {125: {"eval_s": 1.0}, 250: {"eval_s": 2.0}}, "png_name": "x.png", "gpu": None,
           "stage_s": {"a": 1.0}, "bench_s": 10.0}
    text = bench.render(ctx)
    assert "No GPU was available" in text and "python -m core bench --quick" in text
    bench.plot_scaling(ctx["scaling"], ctx["evals"], tmp_path / "x.png")
    assert (tmp_path / "x.png").stat().st_size > 1000


def test_a_missed_ratio_is_explained_with_the_matmul_floor():
    """The 'why' of a missed project/Trainer goal gives the time the counted matmul work needs at the
    measured peak, and what a ratio of 0.5 would leave for everything else."""
    row = {"flops_train": 9.0e12, "flops_eval": 3.0e12}
    summary = {"full": {"project": {"train_eval_s": 30.0, "train_pad": 0.02, "eval_pad": 0.01, "flops_s": 3e11},
                        "trainer": {"train_eval_s": 40.0, "train_pad": 0.08, "eval_pad": 0.05, "flops_s": 2e11}}}
    ctx = {"runs": {"full": {"project": [row]}}, "peaks": {"peak": {"bf16": 1000.0}}, "summary": summary}
    text = bench.why_missed(bench.LABEL["full"] + ": project/Trainer, training+evaluation wall", ctx)
    assert "12.0 TFLOP) takes 12.0 s of its 30.0 s" in text
    assert "a ratio of 0.5 (20.0 s) would leave 8.0 s" in text and "which takes 18.0 s now" in text


def test_the_bench_keeps_sections_other_scripts_wrote(tmp_path):
    """tests/app_speed.py writes its section into docs/PERFORMANCE.md; core bench rewrites the rest."""
    from core.bench import kept_sections

    doc = tmp_path / "PERFORMANCE.md"
    doc.write_text("# old report\n\ntext\n\n<!-- kept:app-speed -->\n## The app\n| a | b |\n<!-- /kept -->\n\ntail\n")
    kept = kept_sections(doc)
    assert "## The app" in kept and "old report" not in kept and "tail" not in kept
    assert kept_sections(tmp_path / "missing.md") == ""
