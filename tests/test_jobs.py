"""The job manager: runs in a worker process, one at a time, with stop and release.

Worker processes inherit FTLAB_HOME from conftest, so they share the session's feature and probe
caches; the quick jobs are feature-extraction runs on R8 with seeds no other test uses.
"""
import time

import pytest

from conftest import TINY
from core.config import ConfigError, RunConfig
from core.errors import DataError
from core.jobs import BACKOFF_S, DONE, FINISHED, QUEUED, RUNNING, STARTING, STOPPED, JobManager
from core.store import RunStore

WAIT_S = 240          # a generous bound on a tiny job: only there so that a hung worker fails the test


@pytest.fixture
def manager(tmp_path):
    m = JobManager(store_path=tmp_path / "jobs.sqlite", warm=False)
    yield m
    m.shutdown()


def quick(seed: int) -> RunConfig:
    return RunConfig(**{**TINY, "seed": seed}, strategy="feature-extraction")


def long_run() -> RunConfig:
    """Full fine-tuning that would take many minutes here: only ever stopped."""
    return RunConfig(**{**TINY, "size": 512, "epochs": 20}, strategy="full")


def wait_for(predicate, timeout=WAIT_S):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_submit_and_wait_until_done(manager, tmp_path):
    job_id = manager.submit(quick(21), owner="s1")
    job = manager.wait(job_id, timeout=WAIT_S)
    assert job.state == DONE, (job.state, job.error)
    assert job.result is not None and job.result.strategy == "feature-extraction" and job.result.seed == 21
    assert 0 <= job.result.in_domain_acc <= 1 and job.progress["fraction"] == 1.0
    assert job.error is None and job.position == 0 and job.started_at <= job.finished_at
    stored = RunStore(tmp_path / "jobs.sqlite").get(job.result.key)   # the worker wrote to the given store
    assert stored is not None and stored.in_domain_acc == job.result.in_domain_acc


def test_two_jobs_run_one_after_the_other(manager):
    first, second = manager.submit(quick(22), owner="s1"), manager.submit(quick(23), owner="s2")
    assert manager.get(second).position == 2 or manager.get(first).state != QUEUED
    positions = []
    while not manager.get(first).finished:
        if manager.get(first).state in (STARTING, RUNNING):
            positions.append(manager.get(second).position)
            assert manager.get(second).state == QUEUED          # never two at once
        time.sleep(0.05)
    a, b = manager.wait(first, timeout=WAIT_S), manager.wait(second, timeout=WAIT_S)
    assert a.state == DONE and b.state == DONE, (a.error, b.error)
    assert positions and set(positions) == {1}                   # next in line while the first ran
    assert b.started_at >= a.finished_at
    assert a.result.key != b.result.key


def test_stop_during_training(manager):
    job_id = manager.submit(long_run(), owner="s1")
    assert wait_for(lambda: manager.get(job_id).progress.get("stage") == "training"), manager.get(job_id)
    manager.stop(job_id)
    job = manager.wait(job_id, timeout=WAIT_S)                      # the loop checks before every step
    assert job.state == STOPPED and job.result is None and job.error_kind == "RunStopped"


def test_a_bad_config_fails_at_submit(manager):
    with pytest.raises(ConfigError, match="learning rate"):
        manager.submit(RunConfig(**TINY, lr=3.0), owner="s1")
    assert manager.jobs == {} and manager.queue_length() == 0


def test_release_stops_only_that_owners_jobs(manager):
    running = manager.submit(long_run(), owner="alice")
    queued = manager.submit(quick(24), owner="alice")
    other = manager.submit(quick(25), owner="bob")
    assert wait_for(lambda: manager.get(running).state in (STARTING, RUNNING))
    manager.release("alice")
    assert manager.get(queued).state == STOPPED and manager.get(queued).started_at is None   # dropped unstarted
    assert manager.get(other).state not in FINISHED            # bob's job is still there, next in line
    manager.stop(other)                                        # (only so that the test need not run it)
    assert manager.wait(running, timeout=WAIT_S).state == STOPPED
    assert manager.wait(other, timeout=WAIT_S).state == STOPPED


def test_a_stored_configuration_is_done_at_once_without_a_worker(manager, tmp_path):
    import dataclasses

    from core.data import load_task
    from core.model_registry import model_identity
    from core.presets import load_presets

    cfg = quick(31)
    key = cfg.resolved().key(model_identity(cfg.model), load_task(cfg.task).identity())
    preset = load_presets()[0][0].runs[0]
    RunStore(tmp_path / "jobs.sqlite").put(dataclasses.replace(preset, key=key, cached=False))
    job = manager.get(manager.submit(cfg, owner="s1"))
    assert job.state == DONE and job.result.key == key and job.result.cached
    assert manager.worker is None                     # nothing was started for it


def test_a_queued_job_says_when_it_will_start(manager):
    first = manager.submit(long_run(), owner="s1", estimate_s=300.0)
    second = manager.submit(quick(32), owner="s2", estimate_s=5.0)
    assert wait_for(lambda: manager.get(first).state in (STARTING, RUNNING))
    wait = manager.wait_estimate(second)
    assert wait is not None and 0 < wait <= 300.0          # what is left of the first run
    assert manager.running_job().owner == "s1"
    assert manager.wait_estimate(first) is None            # running, not waiting
    for job_id in (first, second):
        manager.stop(job_id)
    assert manager.wait(first, timeout=WAIT_S).state == STOPPED


# ---------------------------------------------------------------------------- failing loudly
# Worker stand-ins: module-level functions, so the spawned process can import them by name.


def _dies_at_start(conn, stop_event, store_path, model_name):
    raise SystemExit(3)


def _stores_then_hangs(conn, stop_event, store_path, model_name):
    """Finishes the run (stores its result) but never says so and ignores Stop: the kill case."""
    import dataclasses

    from core.presets import load_presets
    from core.store import RunStore
    from core.plan import plan

    conn.send({"type": "ready"})
    config = RunConfig.from_dict(conn.recv()["config"])
    key = plan(config).key
    preset = load_presets()[0][0].runs[0]
    RunStore(store_path).put(dataclasses.replace(preset, key=key))
    time.sleep(120)


def test_a_failed_run_leaves_its_traceback_in_the_log_and_the_message_points_there(manager, tmp_path):
    broken = tmp_path / "broken-model"        # a config.json the plan reads, no weights for the worker to load
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "bert", "num_hidden_layers": 6}')
    job = manager.submit(RunConfig(**TINY, model=str(broken)))
    done = manager.wait(job, timeout=WAIT_S)
    assert done.state == "failed" and str(manager.log_path) in done.error
    log = manager.log_path.read_text()
    assert f"{done.id} failed: ModelError" in log and "Traceback (most recent call last)" in log
    assert "broken-model" in log                     # the config that failed, for whoever reads the log


def test_a_run_its_plan_refuses_is_never_queued(manager, tmp_path):
    """A task that cannot be read, or a size it lacks, is said at submission, and nothing waits for it."""
    before = len(manager.jobs)
    with pytest.raises(DataError, match="no such file"):
        manager.submit(RunConfig(**{**TINY, "task": f"csv:{tmp_path / 'gone.csv'}"}))
    with pytest.raises(ConfigError, match="more than the task's"):
        manager.submit_all([RunConfig(**TINY), RunConfig(**{**TINY, "size": 10 ** 6})])
    assert len(manager.jobs) == before                # all or nothing: the good one was not queued either


def test_a_worker_that_cannot_start_is_reported_once_and_retried_with_back_off(tmp_path):
    m = JobManager(store_path=tmp_path / "jobs.sqlite", warm=True, worker_target=_dies_at_start)
    try:
        first = m.submit(quick(71))
        second = m.submit(quick(72))
        done = m.wait(first, timeout=WAIT_S)
        assert done.state == "failed" and "could not start (exit code 3)" in done.error
        assert wait_for(lambda: m.start_failures >= 3, timeout=WAIT_S)         # retried: 1 s, then 2 s, ...
        with m.lock:
            failures, problem = m.start_failures, m.start_problem
        wait = BACKOFF_S[min(failures, len(BACKOFF_S)) - 1]
        assert wait >= 4 and f"trying again in {wait} s" in problem           # each try waits longer
        assert m.get(second).state == QUEUED                                  # backing off, the next job kept
        assert m.log_path.read_text().count("worker could not start") == 1  # said once
    finally:
        m.shutdown()


def test_a_run_stored_before_the_kill_is_reported_as_stored(tmp_path):
    m = JobManager(store_path=tmp_path / "jobs.sqlite", warm=False, worker_target=_stores_then_hangs)
    try:
        job = m.submit(quick(73))
        assert wait_for(lambda: RunStore(tmp_path / "jobs.sqlite").list(all_versions=True))
        m.stop(job)
        done = m.wait(job, timeout=WAIT_S)
        assert done.state == DONE and done.result is not None and "stored just before" in done.note
    finally:
        m.shutdown()


def test_one_session_can_queue_only_so_many_runs(manager):
    from core.errors import QueueFull
    from core.jobs import MAX_QUEUED_PER_OWNER

    ids = [manager.submit(long_run().replace(seed=100 + i), owner="greedy") for i in range(MAX_QUEUED_PER_OWNER)]
    with pytest.raises(QueueFull, match="runs waiting"):
        manager.submit(long_run().replace(seed=99), owner="greedy")
    manager.submit(quick(74), owner="someone else")                   # another session still may
    before = len(manager.queue)
    with pytest.raises(QueueFull, match="asks for 9 more"):             # a lesson or sweep: all or none
        manager.submit_all([long_run().replace(seed=200 + i) for i in range(MAX_QUEUED_PER_OWNER + 1)], owner="third")
    assert len(manager.queue) == before
    for job_id in ids:
        manager.stop(job_id)


def test_a_worker_killed_mid_run_is_a_clear_failure_and_the_store_opens(manager, tmp_path):
    import os
    import signal

    job = manager.submit(long_run().replace(seed=75))
    assert wait_for(lambda: manager.get(job).state == RUNNING and manager.get(job).progress.get("stage") == "training")
    os.kill(manager.worker.process.pid, signal.SIGKILL)
    done = manager.wait(job, timeout=WAIT_S)
    assert done.state == "failed" and done.signal == "SIGKILL" and "-9" in done.error
    assert "killed by SIGKILL" in done.error and "out of memory" not in done.error.lower()   # kill -9 is no OOM
    store = RunStore(tmp_path / "jobs.sqlite")
    assert store.list(all_versions=True) == [] and store.get("anything") is None    # intact, and it opens
    again = manager.submit(quick(76))                                                # the next run still works
    assert manager.wait(again, timeout=WAIT_S).state == DONE


def test_two_servers_on_one_data_folder_both_store_their_runs(tmp_path):
    """Two job managers (as two app servers would have) writing one run store at the same time."""
    path = tmp_path / "shared.sqlite"
    first, second = JobManager(store_path=path, warm=False), JobManager(store_path=path, warm=False)
    try:
        a, b = first.submit(quick(77)), second.submit(quick(78))
        assert first.wait(a, timeout=WAIT_S).state == DONE and second.wait(b, timeout=WAIT_S).state == DONE
        assert sorted(r.seed for r in RunStore(path).list()) == [77, 78]
    finally:
        first.shutdown()
        second.shutdown()


def test_a_page_being_drawn_postpones_the_warm_worker_but_never_a_submitted_job(tmp_path, monkeypatch):
    import core.jobs

    m = JobManager(store_path=tmp_path / "jobs.sqlite", warm=True, warm_after_s=0.2)
    try:
        m.postpone_warmup(600)                    # a page opened: no torch beside it for now
        time.sleep(1.0)                           # well past warm_after_s
        assert m.worker is None and not m.is_warm()
        job = m.wait(m.submit(quick(35), owner="s1"), timeout=WAIT_S)   # a click does not wait
        assert job.state == DONE, (job.state, job.error)
    finally:
        m.shutdown()
    monkeypatch.setattr(core.jobs, "MAX_WARM_POSTPONE_S", 1.0)
    capped = JobManager(store_path=tmp_path / "jobs.sqlite", warm=True, warm_after_s=0.2)
    try:
        for _ in range(3):                        # a tab reloaded again and again
            capped.postpone_warmup(600)
            time.sleep(0.2)
        assert wait_for(lambda: capped.worker is not None, timeout=WAIT_S)    # postponed, but not for good
    finally:
        capped.shutdown()


def test_parameter_counts_come_from_a_child_process_and_never_import_torch_here(tmp_path):
    import subprocess
    import sys

    code = f"""
import sys, time
from core.config import RunConfig
from core.param_counts import ParamCounter
pc = ParamCounter(path={str(tmp_path / 'counts.json')!r}, delay_s=0)
lora = RunConfig(task="r8", strategy="lora")
assert pc.get(lora, 8) is None
while pc.pending():
    time.sleep(0.1)
print(pc.get(lora, 8), "torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=WAIT_S, check=True)
    trainable, total, torch_here = out.stdout.split()
    assert trainable.strip("(,") == "76808" and total.strip(")") == "22716296" and torch_here == "False"
    assert (tmp_path / "counts.json").exists()


# ---------------------------------------------------------------------------- a room on one server
# Stand-in workers (no torch): each takes one job and ends it in a fraction of a second, so the
# order the queue serves owners in, its cap and the words for a worker's death are fast to test.


def _ends_each_job(conn, stop_event, store_path, model_name):
    """Takes the job, then reports a run error: enough to free the worker for the next one."""
    conn.send({"type": "ready"})
    conn.recv()
    time.sleep(0.05)
    conn.send({"type": "error", "kind": "RunError", "message": "stand-in worker: nothing trained"})


def _holds_until_stopped(conn, stop_event, store_path, model_name):
    conn.send({"type": "ready"})
    conn.recv()
    conn.send({"type": "progress", "progress": {"stage": "training", "fraction": 0.1}})
    stop_event.wait(120)
    conn.send({"type": "stopped"})


def _killed_by(sig):
    import os

    def target(conn, stop_event, store_path, model_name):
        conn.send({"type": "ready"})
        conn.recv()
        conn.send({"type": "progress", "progress": {"stage": "training", "fraction": 0.1}})
        os.kill(os.getpid(), sig)
        time.sleep(30)
    return target


def _sigkill_self(conn, stop_event, store_path, model_name):
    import signal
    _killed_by(signal.SIGKILL)(conn, stop_event, store_path, model_name)


def _sigsegv_self(conn, stop_event, store_path, model_name):
    import signal
    _killed_by(signal.SIGSEGV)(conn, stop_event, store_path, model_name)


def test_owners_take_turns_and_positions_and_waits_follow_the_real_order(tmp_path):
    """One browser queues eight runs, two others one or two each: the others do not wait for all
    eight; nobody runs twice in a row while another owner waits; each job's position when queued
    is its place in the order the worker then took them; the wait estimate grows along that order."""
    m = JobManager(store_path=tmp_path / "jobs.sqlite", warm=False, worker_target=_ends_each_job)
    try:
        with m.lock:                       # all queued before the worker takes the first: one snapshot
            greedy = m.submit_all([quick(300 + i) for i in range(8)], owner="greedy", estimates=[10.0] * 8)
            b1 = m.submit(quick(310), owner="b", estimate_s=10.0)
            c1 = m.submit(quick(311), owner="c", estimate_s=10.0)
            b2 = m.submit(quick(312), owner="b", estimate_s=10.0)
            positions = {j: m.jobs[j].position for j in m.queue}
        order = sorted(positions, key=positions.get)
        assert order[:5] == [greedy[0], b1, c1, greedy[1], b2]          # one each per round
        assert order[5:] == greedy[2:]
        waits = [m.wait_estimate(j) for j in order]
        assert all(w is not None for w in waits) and waits == sorted(waits) and waits[-1] > waits[1]
        ids = greedy + [b1, c1, b2]
        for j in ids:
            assert m.wait(j, timeout=WAIT_S).finished, m.get(j)
        jobs = [m.get(j) for j in ids]
        ran = sorted(jobs, key=lambda j: j.started_at)
        assert [j.id for j in ran] == order                             # positions were the real order
        for before, job in zip(ran, ran[1:]):
            if job.owner == before.owner:                               # twice in a row only when alone
                assert not [o for o in jobs if o.owner != job.owner and o.submitted_at < job.started_at < o.started_at]
        assert all(j.state == "failed" and "stand-in" in j.error for j in jobs)   # every one ended with a reason
    finally:
        m.shutdown()


def test_a_new_owner_goes_before_the_second_run_of_one_already_served(tmp_path):
    m = JobManager(store_path=tmp_path / "jobs.sqlite", warm=False, worker_target=_holds_until_stopped)
    try:
        first = m.submit(quick(320), owner="a")
        assert wait_for(lambda: m.get(first).state == RUNNING)
        later = [m.submit(quick(321 + i), owner="a") for i in range(3)]
        newcomer = m.submit(quick(330), owner="z")
        assert m.get(newcomer).position == 1 and [m.get(j).position for j in later] == [2, 3, 4]
        m.stop(first)
        assert m.wait(first, timeout=WAIT_S).state == STOPPED
        assert wait_for(lambda: m.get(newcomer).state == RUNNING)      # the newcomer ran next
        for j in later + [newcomer]:
            m.stop(j)
    finally:
        m.shutdown()


def test_the_whole_queue_has_a_cap_with_a_clear_message_all_or_none(tmp_path):
    from core.errors import QueueFull

    m = JobManager(store_path=tmp_path / "jobs.sqlite", warm=False, worker_target=_holds_until_stopped,
                   max_queued=4)
    try:
        running = m.submit(quick(340), owner="a", estimate_s=60.0)
        assert wait_for(lambda: m.get(running).state == RUNNING)       # running: not waiting, not counted
        waiting = [m.submit(quick(341 + i), owner=o, estimate_s=60.0) for i, o in enumerate("bcde")]
        with pytest.raises(QueueFull, match=r"queue is full: 4 runs from 4 browsers .* at most 4 .*about 4 min"):
            m.submit(quick(350), owner="f")
        m.stop(waiting[0])                                             # a place frees
        with pytest.raises(QueueFull, match="2 runs need 2 free places"):
            m.submit_all([quick(351), quick(352)], owner="f")          # all or none
        assert len(m.queue) == 3
        taken = m.submit(quick(353), owner="f")
        assert m.get(taken).state == QUEUED and len(m.queue) == 4
        for j in [running] + waiting + [taken]:
            m.stop(j)
        assert m.get(waiting[0]).error == "stopped by the user (before it started)"
    finally:
        m.shutdown()


def test_the_cap_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FTLAB_MAX_QUEUED", "7")
    m = JobManager(store_path=tmp_path / "jobs.sqlite", warm=False)
    try:
        assert m.max_queued == 7
    finally:
        m.shutdown()


def test_a_browsers_jobs_are_found_again_and_outlive_their_page(tmp_path):
    """What a reloaded page does: ask the manager for its browser's jobs; nothing ends them."""
    m = JobManager(store_path=tmp_path / "jobs.sqlite", warm=False, worker_target=_holds_until_stopped)
    try:
        mine = [m.submit(quick(360), owner="browser-1"), m.submit(quick(361), owner="browser-1")]
        other = m.submit(quick(362), owner="browser-2")
        assert [j.id for j in m.jobs_of("browser-1")] == mine and [j.id for j in m.jobs_of("browser-2")] == [other]
        assert wait_for(lambda: m.get(mine[0]).state == RUNNING)
        m.stop(mine[0])
        assert m.wait(mine[0], timeout=WAIT_S).error == "stopped by the user"    # the reason stays with the job
        for j in (mine[1], other):
            m.stop(j)
    finally:
        m.shutdown()
    assert m.get(mine[1]).state == STOPPED and m.get(mine[1]).error.startswith("stopped")


def test_shutdown_says_why_each_run_ended(tmp_path):
    m = JobManager(store_path=tmp_path / "jobs.sqlite", warm=False, worker_target=_holds_until_stopped)
    running, queued = m.submit(quick(370), owner="a"), m.submit(quick(371), owner="b")
    assert wait_for(lambda: m.get(running).state == RUNNING)
    m.shutdown()
    assert m.get(queued).error == "stopped: the server shut down before it started"
    assert m.get(running).state == STOPPED and m.get(running).error == "stopped: the server shut down"


@pytest.mark.parametrize("target, sig, words", [(_sigkill_self, "SIGKILL", "killed by SIGKILL"),
                                                (_sigsegv_self, "SIGSEGV", "segmentation fault")])
def test_a_worker_ended_by_a_signal_is_named_and_not_called_out_of_memory(tmp_path, target, sig, words):
    m = JobManager(store_path=tmp_path / "jobs.sqlite", warm=False, worker_target=target)
    try:
        done = m.wait(m.submit(quick(380), owner="a"), timeout=WAIT_S)
        assert done.state == "failed" and done.error_kind == "WorkerKilled" and done.signal == sig
        assert words in done.error and "out of memory" not in done.error.lower()
    finally:
        m.shutdown()


def test_a_sigkill_is_out_of_memory_only_when_the_kernels_oom_count_went_up(tmp_path, monkeypatch):
    import itertools

    import core.jobs

    counts = itertools.count(5)        # the kernel's oom_kill: read before the run, and again after the death
    monkeypatch.setattr(core.jobs, "oom_kills", lambda: {"cgroup": next(counts)})
    m = JobManager(store_path=tmp_path / "jobs.sqlite", warm=False, worker_target=_sigkill_self)
    try:
        done = m.wait(m.submit(quick(381), owner="a"), timeout=WAIT_S)
        assert done.error_kind == "OutOfMemoryError" and done.signal == "SIGKILL"
        assert done.error.startswith("out of memory") and "went from 5 to 6" in done.error
    finally:
        m.shutdown()


def test_death_causes_in_words():
    from core.jobs import death_cause

    assert "exit code 3" in death_cause(3, {}, {})["message"] and death_cause(3, {}, {})["kind"] == "WorkerDied"
    term = death_cause(-15, {"machine": 1}, {"machine": 2})     # only a SIGKILL is the OOM killer's
    assert term["signal"] == "SIGTERM" and term["kind"] == "WorkerKilled"
    unknown = death_cause(-9, {}, {})                           # no counter readable: no claim either way
    assert "cannot be told" in unknown["message"] and unknown["kind"] == "WorkerKilled"
