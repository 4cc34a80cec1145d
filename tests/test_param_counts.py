"""Trainable-parameter counts for the Lab's strategy list: known at once from recorded runs."""
from core.config import RunConfig
from core.param_counts import ParamCounter
from core.presets import load_presets


def test_counts_recorded_by_runs_are_known_without_counting(tmp_path):
    counter = ParamCounter(path=tmp_path / "counts.json", delay_s=3600)      # no counting in this test
    runs = [r for p in load_presets()[0] for r in p.runs if r.task == "r8"]
    assert counter.learn(runs, num_labels=8) >= 1
    assert counter.learn(runs, num_labels=8) == 0                           # once is enough
    seen = {r.strategy: r for r in runs}
    for strategy, r in seen.items():
        cfg = RunConfig.from_dict(r.config)
        assert counter.get(cfg, 8) == (r.trainable_params, r.total_params)   # at once: no thread, no torch
    assert counter.thread is None
    # another task's label count is another head: not taken from these runs
    lora = RunConfig.from_dict(seen["lora"].config)
    assert counter.get(lora, 3) is None and counter.pending()


def test_a_page_can_follow_the_counts_one_by_one(tmp_path):
    counter = ParamCounter(path=tmp_path / "counts.json", delay_s=3600)
    before = counter.done_count()
    runs = [r for p in load_presets()[0] for r in p.runs if r.task == "r8"]
    counter.learn(runs, 8)
    assert counter.done_count() > before
