"""Layer by layer, before training (core/layers.py): every hidden state's features, a probe on each."""
import numpy as np
import torch

from conftest import TINY
from core.config import RunConfig
from core.features import encode, tokenize
from core.layers import encode_layers, probe_layers
from core.models import load_base


def test_layer_k_of_the_one_pass_is_what_a_run_with_feature_layer_k_reads():
    tokenizer, base = load_base("minilm")
    ids = tokenize(tokenizer, ["the bank raised its rates", "a quiet film about a family", "why is the sky blue?"], 32)
    every = encode_layers(base, ids, tokenizer.pad_token_id, torch.device("cpu"), None)
    assert every.shape == (base.config.num_hidden_layers + 1, 3, base.config.hidden_size)
    for k in (1, 3, base.config.num_hidden_layers):
        one = encode(base, ids, tokenizer.pad_token_id, torch.device("cpu"), None, layer=k)
        np.testing.assert_allclose(every[k], one, atol=1e-5)
    assert not np.allclose(every[1], every[-1])


def test_a_probe_on_every_layer_for_the_task_and_each_general_task(small_csv):
    cfg = RunConfig(**{**TINY, "task": f"csv:{small_csv}"})
    report = probe_layers(cfg)
    assert [r["layer"] for r in report.rows] == list(range(7))          # the embeddings, then six blocks
    for r in report.rows:
        assert 0 <= r["in_domain"]["low"] <= r["in_domain"]["acc"] <= r["in_domain"]["high"] <= 1
        assert set(r["general"]) == {"20ng", "cr", "trec6", "rt"}
        assert r["general_mean"] == np.mean(list(r["general"].values()))
    best = max((r for r in report.rows if r["layer"]), key=lambda r: r["in_domain"]["acc"])
    assert report.best_in_domain == best["layer"] and 1 <= report.best_general <= 6
    assert report.n_general_test == 50 and probe_layers(cfg).rows == report.rows     # the cache gives the same


def test_the_layers_command_prints_the_table_and_the_layer_to_use(small_csv, capsys):
    from core.cli import main

    assert main(["layers", "--task", f"csv:{small_csv}", "--size", "16", "--eval-size", "50",
                 "--general-size", "50", "--max-length", "32"]) == 0
    out = capsys.readouterr().out
    assert "| embeddings |" in out and "(best in-domain)" in out and "--feature-layer" in out


def test_several_seeds_make_one_table_written_to_its_section(small_csv, tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "results.md"
    out.write_text("# Results\n\nkept text\n")
    assert main(["layers", "--task", f"csv:{small_csv}", "--size", "16", "--eval-size", "50", "--general-size", "50",
                 "--max-length", "32", "--seeds", "0", "1", "--out", str(out), "--section", "layers-test"]) == 0
    assert "Best layer for the task (on the mean over the seeds):" in capsys.readouterr().out
    text = out.read_text()
    assert "kept text" in text and "<!-- sweep:layers-test -->" in text and "mean of 2 seeds" in text
    assert text.count("| embeddings |") == 1 and "of 2 seeds |" in text
