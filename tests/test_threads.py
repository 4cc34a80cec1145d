"""Sharing the CPU: a run's torch threads follow what the other processes leave free (core/threads.py)."""
import torch

from conftest import TINY
from core import threads
from core.config import RunConfig
from core.threads import ThreadGovernor
from core.training import run


def governed(monkeypatch, cores: int, samples: list):
    """A governor on `cores` cores fed (monotonic time, machine busy s, this process's s) per look."""
    monkeypatch.delenv(threads.PINNED_ENV, raising=False)      # the suite pins runs (conftest)
    monkeypatch.setattr(torch, "get_num_threads", lambda: cores)
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    feed = iter(samples)
    monkeypatch.setattr(ThreadGovernor, "_sample", lambda self: next(feed))
    return ThreadGovernor(), calls


def test_two_cores_give_one_up_while_another_process_keeps_one_busy(monkeypatch):
    """Two threads alone, one while the others use more than 0.6 of a core, two again once they
    use less than 0.3 (docs/PERFORMANCE.md, "Worker threading")."""
    g, calls = governed(monkeypatch, 2, [(0, 0, 0), (0.5, 0.9, 0.5), (1, 1.9, 1.0), (2, 3.9, 2.0), (3, 5.9, 2.9),
                                         (4, 6.9, 3.8), (5, 7.9, 4.8), (6, 9.1, 5.8)])
    seen = []
    for _ in range(7):
        g.poll()
        seen.append(g.threads)
    # look 1 too soon; others used 0.9, 1.0, 1.1 cores -> one thread; 0.1 -> two; 0.0 and 0.2: stays
    assert seen == [2, 1, 1, 1, 2, 2, 2] and calls == [1, 2] and g.switches == 2


def test_more_cores_give_up_only_what_the_others_take(monkeypatch):
    """On 8 cores one busy process costs one thread, not seven; three busy ones cost three."""
    g, calls = governed(monkeypatch, 8, [(0, 0, 0), (1, 1.9, 1.0), (2, 6.9, 3.0), (3, 8.0, 4.0)])
    seen = []
    for _ in range(3):
        g.poll()
        seen.append(g.threads)
    assert seen == [7, 5, 8] and calls == [7, 5, 8]
    g.threads = 5
    g.restore()
    assert calls[-1] == 8 and g.threads == 8


def test_one_core_is_left_alone(monkeypatch):
    g, calls = governed(monkeypatch, 1, [(0, 0, 0), (1, 2, 0)])
    g.poll()
    assert g.threads == 1 and calls == []


def test_every_run_shares_cores_and_gives_its_threads_back(small_csv, monkeypatch):
    """The CLI, a sweep and a Ray task all call training.run: the governor looks before every step
    and batch, and the thread count the run found is restored when it ends, however busy it was."""
    monkeypatch.delenv(threads.PINNED_ENV, raising=False)      # the suite pins runs (conftest)
    looks, restored = [], []
    poll, restore = ThreadGovernor.poll, ThreadGovernor.restore
    monkeypatch.setattr(threads.ThreadGovernor, "poll", lambda self: (looks.append(1), poll(self)))
    monkeypatch.setattr(threads.ThreadGovernor, "restore", lambda self: (restored.append(1), restore(self)))
    before = torch.get_num_threads()
    run(RunConfig(**{**TINY, "task": f"csv:{small_csv}", "strategy": "full"}))
    assert len(looks) > 10 and restored == [1]
    assert torch.get_num_threads() == before


def test_pinned_threads_never_change_however_busy_the_machine(monkeypatch):
    """FTLAB_THREADS=1: one thread from the start, none given up or taken back, the count restored after."""
    monkeypatch.setenv(threads.PINNED_ENV, "1")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    feed = iter([(0.0, 0.0, 0.0), (2.0, 4.0, 0.0), (4.0, 4.0, 0.0)])   # both cores busy, then both free
    monkeypatch.setattr(ThreadGovernor, "_sample", lambda self: next(feed))
    g = ThreadGovernor()
    g.poll(), g.poll()
    assert calls == [1] and g.threads == 1 and g.switches == 0
    g.restore()
    assert calls == [1, 2]


def test_fixed_keeps_the_count_the_process_has(monkeypatch):
    """A Ray task given one thread keeps one; nothing busy or free changes it."""
    monkeypatch.setenv(threads.PINNED_ENV, "fixed")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    g = ThreadGovernor()
    g.poll()
    g.restore()
    assert calls == [] and g.threads == 1 and g.fixed == 1


def test_a_pinned_count_that_is_not_a_number_is_refused(monkeypatch):
    import pytest

    from core.errors import ConfigError

    monkeypatch.setenv(threads.PINNED_ENV, "two")
    with pytest.raises(ConfigError, match="FTLAB_THREADS must be 'fixed' or a whole number of threads"):
        ThreadGovernor()
