"""A small job manager: training runs off the caller's thread, one at a time, in a worker process,
from one server-wide queue that is fair across owners (a browser, a CLI user).

Why a process: a Streamlit rerun or page switch never touches it, a Stop that the loop misses
can still kill it, an out-of-memory crash takes down the worker and not the app, and when the
process exits, every byte of model memory (CPU or GPU) goes with it.

Why warm: importing torch and loading the encoder take seconds. The next worker is started
while the app is idle and waits with the model loaded, so a run shows progress at once.

    manager = JobManager()
    job = manager.submit(RunConfig(strategy="lora", size=256), owner="session-1")
    manager.get(job).state / .progress / .result / .error / .position
    manager.stop(job)

Owners: a job belongs to whoever submitted it (the app passes a browser's id, kept in a cookie), not
to a page or a session: a reload or a closed tab ends nothing, and the next page finds the owner's
jobs with `jobs_of(owner)`. The queue serves owners in turn (see `_fair_order`) and holds at most
`max_queued` waiting runs in all; every job ends done, failed or stopped with a reason in `error`.
"""
from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import os
import signal
import sys
import threading
import types
import time
import traceback
from collections import deque
from dataclasses import dataclass, field

from pathlib import Path

from .config import RunConfig
from .errors import QueueFull
from .estimate import RunEstimate
from .paths import lab_home
from .benchmark import probe_sets
from .plan import plan
from .store import RunStore, stored_result
from .result import RunResult

QUEUED, STARTING, RUNNING, DONE, FAILED, STOPPED = "queued", "starting", "running", "done", "failed", "stopped"
FINISHED = (DONE, FAILED, STOPPED)
KILL_AFTER_S = 1.0      # a stopped worker that has not ended by then is terminated: Stop ends a run in ~1 s
MAX_QUEUED_PER_OWNER = 8  # one browser cannot hold the only worker with an endless queue (a lesson queues 4)
# The whole queue: a room of twenty sharing one worker. Tiny workshop runs take 10-60 s here, so 30
# waiting runs are already a wait of 5-30 min for the last one; past that a clear "try later" beats
# a place nobody will wait for. FTLAB_MAX_QUEUED overrides it for a server (the load script uses it).
MAX_QUEUED = 30
MAX_WARM_POSTPONE_S = 10.0   # pages being drawn delay a warm worker's start by at most this much
BACKOFF_S = (1, 2, 4, 8, 16, 30, 60)   # a worker that cannot start is retried after these waits, then every 60 s
LOG_NAME = "worker.log"   # beside the run store: every failed run's traceback and each worker's stderr


@dataclass
class Job:
    id: str
    config: RunConfig
    owner: str
    state: str = QUEUED
    progress: dict = field(default_factory=dict)
    result: object = None        # RunResult when done
    error: str | None = None
    error_kind: str | None = None
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    position: int = 0            # place in the queue: 0 = running or finished
    estimate_s: float | None = None   # the whole run's expected wall time, when submitted
    progress_at: float | None = None  # when the last progress came: time left counts down from there
    note: str | None = None      # something the user should know about how it ended
    signal: str | None = None    # the signal that ended its worker ("SIGKILL"), when one did
    stop_reason: str | None = None   # why a Stop was asked for while it ran (its page says so)
    announced: RunEstimate | None = None   # the estimate it was announced with: kept here, not in a page's
    #                                        session, so a reloaded page counts down the same one

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def estimate(self) -> RunEstimate:
        """The one time estimate of this run (the Run bar's, the panel's and the card's)."""
        return self.announced or RunEstimate(self.estimate_s)


def _seq(job_id: str) -> int:
    """The order jobs were submitted in (ids are job1, job2, ...; submission times can tie)."""
    return int(job_id[3:])


def _minutes(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))} min"


def _log_path(store_path) -> Path:
    return (Path(store_path).parent if store_path else lab_home()) / "logs" / LOG_NAME


def _send_stderr_to(path: Path) -> None:
    """The worker's stderr (warnings, a native crash's last words) appended to the log file."""
    import os

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
    except OSError:
        pass                                # no log then; the run itself is not affected


def oom_kills() -> dict:
    """The kernel's counts of processes it killed for lack of memory: machine-wide (/proc/vmstat,
    which also counts kills inside a container's memory limit) and this process's memory cgroup
    (v2 memory.events, v1 memory.oom_control). A count that went up while a worker ran, and the
    worker died of SIGKILL, is the evidence that memory ended it; nothing else is (a kill -9, a
    supervisor or a user sends the same signal, and an RSS "near the limit" is a guess)."""
    counts = {}

    def read(name, path, key):
        try:
            for line in Path(path).read_text().splitlines():
                k, _, v = line.partition(" ")
                if k == key:
                    counts[name] = int(v)
        except (OSError, ValueError):
            pass                            # not Linux, or not readable here: no evidence either way

    read("machine", "/proc/vmstat", "oom_kill")
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "":                        # cgroup v2
                read("cgroup", f"/sys/fs/cgroup{path.rstrip('/')}/memory.events", "oom_kill")
            elif "memory" in controllers.split(","):     # cgroup v1
                read("cgroup", f"/sys/fs/cgroup/memory{path.rstrip('/')}/memory.oom_control", "oom_kill")
    except (OSError, ValueError):
        pass
    return counts


SIGNAL_WORDS = {
    "SIGKILL": "was killed by SIGKILL (sent by another process or a person, e.g. kill -9)",
    "SIGTERM": "was terminated by SIGTERM (asked to end by another process, e.g. a shutdown)",
    "SIGINT": "was interrupted by SIGINT (Ctrl-C)",
    "SIGSEGV": "crashed with SIGSEGV (a segmentation fault in native code: torch or a library it uses)",
    "SIGBUS": "crashed with SIGBUS (a bad memory access in native code)",
    "SIGABRT": "aborted with SIGABRT (a native library gave up)",
    "SIGFPE": "crashed with SIGFPE (an arithmetic fault in native code)",
    "SIGILL": "crashed with SIGILL (an instruction this CPU does not have)",
}


def signal_name(code: int | None) -> str | None:
    """SIGKILL for a process's exit code -9 (multiprocessing's way to say a signal ended it)."""
    if code is None or code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def death_cause(code: int | None, oom_before: dict, oom_after: dict) -> dict:
    """Why a worker ended without a word: {"kind", "message", "signal"}. Out of memory only on
    evidence: a SIGKILL while the kernel's out-of-memory kill count went up."""
    sig = signal_name(code)
    went_up = {k: (oom_before[k], v) for k, v in oom_after.items() if k in oom_before and v > oom_before[k]}
    if sig == "SIGKILL" and went_up:
        where, (a, b) = next(iter(went_up.items()))
        where = {"machine": "the machine's", "cgroup": "its memory cgroup's"}.get(where, where)
        return {"kind": "OutOfMemoryError", "signal": sig,
                "message": f"out of memory: the kernel killed the training process (SIGKILL, exit code {code}) "
                           f"for lack of memory ({where} out-of-memory kill count went from {a} to {b} "
                           "during the run); lower the batch size or the max length and run again"}
    if sig is not None:
        words = SIGNAL_WORDS.get(sig, f"was ended by {sig}")
        memory = ""
        if sig == "SIGKILL":
            memory = ("; not for lack of memory: the kernel's out-of-memory kill count did not change"
                      if oom_before else "; whether memory ran short cannot be told on this system")
        return {"kind": "WorkerKilled", "signal": sig,
                "message": f"the training process {words}, exit code {code}{memory}"}
    return {"kind": "WorkerDied", "signal": None,
            "message": f"the training process ended unexpectedly with exit code {code}"}


def measure_speeds() -> None:
    """This machine's matmul speed in the precision its runs train in and in fp32 (core.machine: once per
    machine, about 0.3 s each, then read from the cache), so the page's first estimate fits the host."""
    from .machine import speed
    from .models import autocast_dtype, pick_device

    try:
        device = pick_device("auto")
        speed(device, autocast_dtype(device))
        speed(device, None)
    except Exception:                       # noqa: BLE001 - an estimate never stops a worker
        pass


def _worker_main(conn, stop_event, store_path, model_name):
    """Worker process: load the model, wait for one job, run it, report, exit."""
    _send_stderr_to(_log_path(store_path))
    try:
        from .models import load_base
        from .training import run

        try:
            load_base(model_name)          # warm: the first progress then comes at once
        except Exception:
            pass                            # the job itself will report a model error clearly
        measure_speeds()                    # this host's matmul speeds, for the page's first estimate
        try:                                # and the general benchmark's sentences: every task read and
            probe_sets(RunConfig().general_size)   # checked for overlap (seconds), before the click
        except Exception:
            pass                            # a data problem is the job's to report, too
        try:
            conn.send({"type": "ready"})
            msg = conn.recv()
        except (EOFError, OSError):         # the app went away while this worker waited: just exit
            return
        if msg is None:
            return
        config = RunConfig.from_dict(msg["config"])
        store = RunStore(store_path) if store_path is not None else RunStore()
        result = run(config, on_progress=lambda ev: conn.send({"type": "progress", "progress": ev}),
                     should_stop=stop_event.is_set, store=store)
        conn.send({"type": "result", "result": result.to_dict()})
    except BaseException as err:            # noqa: BLE001 - everything goes back to the manager
        kind = type(err).__name__
        if kind == "RunStopped":
            reply = {"type": "stopped"}
        else:
            message = str(err) or kind
            if kind == "OutOfMemoryError" or "out of memory" in message.lower():
                message = "out of memory: lower the batch size or the max length and run again"
            reply = {"type": "error", "kind": kind, "message": message, "traceback": traceback.format_exc(limit=8)}
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):  # nobody left to tell
            pass
    finally:
        try:
            conn.close()
        except Exception:
            pass


@contextlib.contextmanager
def _hidden_main_script():
    """Spawn re-runs the parent's __main__ *file* in the child before the target. Under Streamlit
    (and its AppTest) __main__ is the app script, which would build a JobManager inside the worker
    and fail; while the worker starts, __main__ is an empty module, so the child imports only core."""
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None or not getattr(main, "__file__", None):
        yield
        return
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class _Worker:
    def __init__(self, ctx, store_path, model_name, target=_worker_main):
        self.parent_conn, child_conn = ctx.Pipe(duplex=True)
        self.stop_event = ctx.Event()
        self.process = ctx.Process(target=target, args=(child_conn, self.stop_event, store_path, model_name),
                                   daemon=True, name="finetune-lab-worker")
        with _hidden_main_script():
            self.process.start()
        child_conn.close()
        self.ready = False

    def kill(self):
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(2)
            if self.process.is_alive():
                self.process.kill()


class JobManager:
    """A server-wide queue of training jobs, fair across owners, served by one worker process at a time."""

    def __init__(self, store_path=None, model_name: str = "minilm", warm: bool = True, warm_after_s: float = 0.0,
                 worker_target=_worker_main, max_queued: int | None = None):
        """`warm_after_s`: wait this long before starting a warm worker (unless a job comes), so that
        a page renders before torch is imported beside it; `postpone_warmup` moves that time on for
        every page that opens (importing torch and the model takes about 5 s of a core, and on two
        cores it held a second tab's first page back by up to 2 s: docs/PERFORMANCE.md). A submitted
        job never waits for it. `worker_target`: the worker process's function (tests give one that
        fails on purpose). `max_queued`: waiting runs in all (default $FTLAB_MAX_QUEUED or MAX_QUEUED)."""
        self.store_path = str(store_path) if store_path is not None else None
        self.log_path = _log_path(self.store_path)
        self.worker_target = worker_target
        self.start_failures = 0               # workers in a row that died before they were ready
        self.next_start_at = 0.0              # back-off: no new worker before this time
        self.start_problem: str | None = None  # what the last failed start said (None once one starts)
        self.warm_after_s = warm_after_s
        self.warm_not_before = time.time() + warm_after_s   # no warm worker started before this, unless a job waits
        self.warm_due_at = self.warm_not_before              # when the next warm worker fell due (caps postponing)
        self.model_name = model_name
        self.ctx = mp.get_context("spawn")   # fork would copy the parent's torch threads and locks
        self.lock = threading.Condition()
        self.jobs: dict[str, Job] = {}
        self.queue: deque[str] = deque()     # waiting job ids in the order they will run (_fair_order)
        self.served_at: dict[str, float] = {}  # owner -> when the worker last took one of its jobs
        self.max_queued = max_queued if max_queued is not None else int(os.environ.get("FTLAB_MAX_QUEUED", MAX_QUEUED))
        self.current: str | None = None
        self.worker: _Worker | None = None
        self.ids = itertools.count(1)
        self.closed = False
        self.warm = warm
        self.thread = threading.Thread(target=self._serve, daemon=True, name="finetune-lab-jobs")
        self.thread.start()

    # ------------------------------------------------------------------ public

    def submit(self, config: RunConfig, owner: str = "", estimate_s: float | RunEstimate | None = None) -> str:
        """Queue a run; one the store already has is done at once, without the worker. `estimate_s`:
        its expected wall time, or the whole RunEstimate it was announced with."""
        return self.submit_all([config], owner, [estimate_s])[0]

    def submit_all(self, configs: list, owner: str = "", estimates: list | None = None) -> list[str]:
        """Queue several runs, all or none: a bad value fails here, in the caller, and so does a set
        that would take `owner` past MAX_QUEUED_PER_OWNER waiting runs, or the whole queue past
        `max_queued` (QueueFull, nothing queued). The ones the store already has are done at once,
        without the worker, and count for nothing."""
        estimates = list(estimates) if estimates is not None else [None] * len(configs)
        for config in configs:
            plan(config)                 # every check: a run that cannot go is refused here, with the reason
        stored = [self._stored(c) for c in configs]
        with self.lock:
            waiting = sum(1 for j in self.queue if self.jobs[j].owner == owner)
            new = sum(1 for found in stored if found is None)
            if new and len(self.queue) + new > self.max_queued:
                owners = len({self.jobs[j].owner for j in self.queue})
                drain = self._queue_time()
                raise QueueFull(f"the server's queue is full: {len(self.queue)} runs from {owners} "
                                f"browser{'s' if owners != 1 else ''} are waiting for the one training process, and it "
                                f"holds at most {self.max_queued}"
                                + (f" (about {_minutes(drain)} of work)" if drain is not None else "")
                                + ". Nothing was queued: try again when some have run"
                                + (f" ({new} runs need {new} free places)" if new > 1 else "") + ".")
            if owner and new and waiting + new > MAX_QUEUED_PER_OWNER:
                raise QueueFull(f"this browser has {waiting} runs waiting and asks for {new} more; one browser may "
                                f"queue at most {MAX_QUEUED_PER_OWNER}: wait for them, stop some, or queue fewer")
            ids = []
            for config, found, estimate in zip(configs, stored, estimates):
                announced = estimate if isinstance(estimate, RunEstimate) else RunEstimate(estimate)
                job = Job(id=f"job{next(self.ids)}", config=config, owner=owner, estimate_s=announced.total_s,
                          announced=announced)
                self.jobs[job.id] = job
                ids.append(job.id)
                if found is not None:
                    found.cached = True
                    job.result, job.started_at = found, time.time()
                    job.progress = {"stage": "general", "fraction": 1.0, "message": "answered from the run store"}
                    self._finish(job, DONE)
                else:
                    self.queue.append(job.id)
            self._renumber()
            self.lock.notify_all()
            return ids

    def _stored(self, config: RunConfig):
        """The stored result of this configuration, if any (the same key as core.training.run's)."""
        try:
            return stored_result(RunStore(self.store_path) if self.store_path else RunStore(), config)
        except Exception:                     # noqa: BLE001 - unknown task, model missing...: the run says why
            return None

    def wait_estimate(self, job_id: str) -> float | None:
        """Seconds until a queued job starts: what is left of the running job plus the estimates of
        the jobs ahead of it (None if any of those is unknown)."""
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None or job.id not in self.queue:
                return None
            ahead = [self.jobs[j] for j in itertools.takewhile(lambda j: j != job_id, self.queue)]
            running = self.jobs.get(self.current) if self.current else None
        total = 0.0
        for other in ahead:
            if other.estimate_s is None:
                return None
            total += other.estimate_s
        if running is not None:
            left = time_left(running)
            if left is None:
                return None
            total += left
        return total

    def _queue_time(self) -> float | None:
        """(Under the lock.) Seconds of work waiting in the queue, from the estimates (None: unknown)."""
        estimates = [self.jobs[j].estimate_s for j in self.queue]
        return None if any(e is None for e in estimates) else float(sum(estimates))

    def jobs_of(self, owner: str) -> list[Job]:
        """Every job `owner` submitted to this server, oldest first: a reloaded page finds its runs here."""
        with self.lock:
            return [j for j in self.jobs.values() if j.owner == owner]

    def running_job(self) -> Job | None:
        """The job the worker has taken (starting or running), if any."""
        with self.lock:
            return self.jobs[self.current] if self.current else None

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def stop(self, job_id: str, reason: str = "stopped by the user") -> None:
        """Stop a job (`reason` is what its page will say); a queued one is dropped before it starts."""
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None or job.finished:
                return
            if job.id in self.queue:          # never started: just drop it
                self.queue.remove(job.id)
                self._finish(job, STOPPED, reason + " (before it started)", "RunStopped")
                self._renumber()
            elif job.id == self.current and self.worker is not None:
                self.worker.stop_event.set()
                job.stop_reason = reason
                job.progress = {**job.progress, "message": "stopping"}
            self.lock.notify_all()

    def release(self, owner: str, reason: str = "stopped: its owner went away") -> None:
        """Stop what `owner` started and drop what it queued (the app no longer calls this when a tab
        closes: a run outlives its tab)."""
        with self.lock:
            ids = [j.id for j in self.jobs.values() if j.owner == owner and not j.finished]
        for job_id in ids:
            self.stop(job_id, reason)

    def is_warm(self) -> bool:
        """True when a worker has loaded the model and waits: a job submitted now starts at once.
        (Peeks at the worker's pipe for its "ready" message without taking it.)"""
        with self.lock:
            worker, busy = self.worker, self.current is not None or bool(self.queue)
        if busy or worker is None or not worker.process.is_alive():
            return False                     # a used worker's closed pipe also "polls" readable
        try:
            return worker.ready or worker.parent_conn.poll(0)
        except (OSError, EOFError):
            return False

    def queue_length(self) -> int:
        with self.lock:
            return len(self.queue) + (1 if self.current else 0)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        deadline = None if timeout is None else time.time() + timeout
        with self.lock:
            while not self.jobs[job_id].finished:
                left = None if deadline is None else deadline - time.time()
                if left is not None and left <= 0:
                    break
                self.lock.wait(left if left is not None else 1.0)
            return self.jobs[job_id]

    def shutdown(self) -> None:
        with self.lock:
            self.closed = True
            for job_id in list(self.queue):
                self._finish(self.jobs[job_id], STOPPED, "stopped: the server shut down before it started", "RunStopped")
            self.queue.clear()
            if self.worker is not None:
                self.worker.stop_event.set()
                if self.current:
                    self.jobs[self.current].stop_reason = "stopped: the server shut down"
            self.lock.notify_all()
        self.thread.join(KILL_AFTER_S + 3)
        if self.worker is not None:
            self.worker.kill()

    # ------------------------------------------------------------------ internals

    def _fair_order(self) -> list[str]:
        """(Under the lock.) The waiting jobs in the order they will run: owners take turns, one job
        each per round, so one browser's eight runs do not hold back another's one. The owner served
        longest ago goes first in a round (one never served before all), ties by who has waited
        longest; each owner's own jobs keep the order they were queued in."""
        mine: dict[str, list[str]] = {}
        for job_id in sorted(self.queue, key=_seq):
            mine.setdefault(self.jobs[job_id].owner, []).append(job_id)
        owners = sorted(mine, key=lambda o: (self.served_at.get(o, 0.0), _seq(mine[o][0])))
        order = []
        for turn in range(max((len(v) for v in mine.values()), default=0)):
            order += [mine[o][turn] for o in owners if turn < len(mine[o])]
        return order

    def _renumber(self):
        """(Under the lock.) Put the queue in its fair order and give every waiting job its place."""
        self.queue = deque(self._fair_order())
        for pos, job_id in enumerate(self.queue, start=1):
            self.jobs[job_id].position = pos

    def _finish(self, job: Job, state: str, error: str | None = None, kind: str | None = None):
        job.state, job.error, job.error_kind = state, error, kind
        job.finished_at = time.time()
        job.position = 0
        self.lock.notify_all()

    def postpone_warmup(self, seconds: float | None = None) -> None:
        """A page is being drawn: start no warm worker for `seconds` (default: `warm_after_s`) more, but
        never later than MAX_WARM_POSTPONE_S after it fell due (pages opened again and again, a tab
        reloaded every few seconds, must not keep the worker cold for good)."""
        with self.lock:
            wanted = time.time() + (self.warm_after_s if seconds is None else seconds)
            self.warm_not_before = max(self.warm_not_before, min(wanted, self.warm_due_at + MAX_WARM_POSTPONE_S))

    def _serve(self):
        while True:
            with self.lock:
                if self.closed:
                    return
                if not self.queue and time.time() < self.warm_not_before:
                    self.lock.wait(min(0.5, self.warm_not_before - time.time()))   # a submit's notify ends it
                    continue
                if (self.worker is None or not self.worker.process.is_alive()) and (self.warm or self.queue):
                    if time.time() < self.next_start_at:          # backing off after failed starts
                        self.lock.wait(min(0.5, self.next_start_at - time.time()))
                        continue
                    self.worker = _Worker(self.ctx, self.store_path, self.model_name, self.worker_target)
                if not self.queue:
                    self.lock.wait(0.5)
                    continue
                worker = self.worker
            self._wait_ready(worker)
            if not worker.ready:
                self._failed_start(worker)
                continue
            with self.lock:
                if self.closed or not self.queue:
                    continue
                job = self.jobs[self.queue.popleft()]
                self.current = job.id
                self.served_at[job.owner] = time.time()      # its next job waits for the others' turn
                job.state, job.started_at, job.position = STARTING, time.time(), 0
                job.progress = {"stage": "loading", "fraction": 0.0, "message": "starting", "elapsed_s": 0.0}
                self._renumber()
                self.lock.notify_all()
            self._run(worker, job)
            with self.lock:
                self.current = None
                self.worker = None           # a fresh process per run frees all its memory
                # the finished run's page redraws its results now: the next worker warms after that
                self.warm_not_before = max(self.warm_not_before, time.time() + self.warm_after_s)
                self.warm_due_at = self.warm_not_before
                self.lock.notify_all()

    def _wait_ready(self, worker: _Worker):
        while not worker.ready and worker.process.is_alive():
            if worker.parent_conn.poll(0.1):
                try:
                    msg = worker.parent_conn.recv()
                except EOFError:
                    break
                worker.ready = msg.get("type") == "ready"
        if worker.ready:
            with self.lock:
                self.start_failures, self.next_start_at, self.start_problem = 0, 0.0, None

    def _failed_start(self, worker: _Worker) -> None:
        """A worker died before it was ready: say so once (to the job at the head of the queue, and in
        `start_problem` and the log), and wait longer before each next try."""
        worker.process.join(1)
        code = worker.process.exitcode
        with self.lock:
            wait = BACKOFF_S[min(self.start_failures, len(BACKOFF_S) - 1)]
            self.start_failures += 1
            self.next_start_at = time.time() + wait
            first = self.start_problem is None
            sig = signal_name(code)
            self.start_problem = (f"the training process could not start (exit code {code}"
                                  + (f", {sig}" if sig else "") + f"); trying again in "
                                  f"{wait} s. Details: {self.log_path}")
            if first:
                self._log(f"worker could not start, exit code {code}")
            if self.queue and first:
                job = self.jobs[self.queue.popleft()]
                self._renumber()
                self._finish(job, FAILED, self.start_problem, "WorkerDied")
            self.worker = None
            self.lock.notify_all()

    def _log(self, text: str) -> None:
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a") as f:
                f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
        except OSError:
            pass

    def _run(self, worker: _Worker, job: Job):
        conn = worker.parent_conn
        oom_before = oom_kills()              # the kernel's count now: the evidence if the worker dies
        try:
            conn.send({"config": job.config.to_dict()})
        except (BrokenPipeError, OSError):
            pass
        stop_seen_at = None
        outcome = None

        def died() -> dict:
            worker.process.join(1)
            if worker.stop_event.is_set():
                return {"type": "stopped"}
            return {"type": "error", **death_cause(worker.process.exitcode, oom_before, oom_kills())}

        while outcome is None:
            if worker.stop_event.is_set():
                stop_seen_at = stop_seen_at or time.time()
                if time.time() - stop_seen_at > KILL_AFTER_S:
                    worker.kill()                 # the loop did not notice: end it the hard way
                    outcome = {"type": "stopped"}
                    break
            try:
                has = conn.poll(0.1)
                msg = conn.recv() if has else None
            except (EOFError, OSError):
                msg = None
                if not worker.process.is_alive():
                    outcome = died()
                    break
            if msg is None:
                if not worker.process.is_alive() and not conn.poll(0):
                    outcome = died()
                continue
            if msg["type"] == "progress":
                with self.lock:
                    job.state = RUNNING
                    job.progress, job.progress_at = msg["progress"], time.time()
                    self.lock.notify_all()
            else:
                outcome = msg
        stored = self._stored(job.config) if outcome["type"] != "result" else None
        if outcome["type"] == "error":
            self._log(f"{job.id} failed: {outcome.get('kind')}: {outcome.get('message')}\nconfig: "
                      f"{job.config.to_dict()}\n{outcome.get('traceback') or '(no traceback: the process died)'}")
        with self.lock:
            if outcome["type"] == "result":
                job.result = RunResult.from_dict(outcome["result"])
                job.progress = {**job.progress, "fraction": 1.0, "message": "done"}
                self._finish(job, DONE)
            elif stored is not None:      # it finished and was stored just before the stop or the crash
                job.result = stored
                stored.cached = False
                job.progress = {**job.progress, "fraction": 1.0, "message": "done"}
                job.note = ("The run had finished and was stored just before the worker ended "
                            + ("(the stop came too late to matter)." if outcome["type"] == "stopped" else
                               "(the process then failed; its result is whole)."))
                self._finish(job, DONE)
            elif outcome["type"] == "stopped":
                self._finish(job, STOPPED, job.stop_reason or "stopped by the user", "RunStopped")
            else:
                job.signal = outcome.get("signal")
                self._finish(job, FAILED, f"{outcome.get('message')} (details: {self.log_path})", outcome.get("kind"))
        worker.process.join(5)
        if worker.process.is_alive():
            worker.kill()


def time_left(job: Job, estimate=None) -> float | None:
    """The whole run's time left now, from its one estimate (core.estimate.RunEstimate: given, or
    made from the total announced at submission): the worker's last estimate counted down since it
    came, before that the announced total less the time since the start; None once it has overrun."""
    est = estimate if estimate is not None else job.estimate()
    now = time.time()
    p = job.progress or {}
    eta = p.get("eta_s") if job.progress_at is not None else None
    return est.left(now - (est.origin(job) or now), p.get("stage"), eta,
                    now - job.progress_at if job.progress_at is not None else 0.0)
