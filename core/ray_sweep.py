"""A sweep's runs as Ray tasks: the same `core.training.run` on the same RunConfig, on a laptop or a
cluster, with this process as the run store's only writer.

    results = run_sweep(labelled_configs, store, address=None, cpus_per_run=1)

Why plain tasks and not Ray Tune: a sweep here is a fixed grid whose every cell is a full run with
its own stored result; Tune's schedulers, searchers and trial checkpoints have nothing to do, and
its results would live in Tune's folders instead of the run store. One remote function is enough.

The app dispatches through the same function when its server is configured for Ray (`configured()`:
FTLAB_RAY_ADDRESS set to `local` or to a cluster's address, a setting of whoever starts the server,
never of a link): `RayDispatcher` runs each sweep in a thread of the server, which is then the
store's writer for it.

Without an address Ray starts on this machine (one worker per `cpus_per_run` cores); with one
(`host:port` of a cluster's head, or `ray://host:10001`) it joins that cluster, and each run asks
for `cpus_per_run` CPUs and, where the cluster has GPUs, one GPU. The nodes need the lab's packages
(requirements.txt: an image built with them, or a Ray runtime environment that installs them); the
lab's own code travels as the job's working directory. A node without them fails its run with a
message that says so.
"""
from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from .errors import ConfigError, RunError, RunStopped
from .plan import plan
from .result import RunResult
from .store import RunStore

ROOT = Path(__file__).resolve().parent.parent
CONNECT_TIMEOUT_S = 3.0
SHIPPED = [".venv", ".git", "tests/artifacts", "**/__pycache__", "docs/perf", "*.png"]   # not sent to a cluster


def _run_one(config: dict, threads: int) -> dict:
    """One run on a Ray worker: the lab's own run, nothing stored there (the driver stores it)."""
    try:
        import torch

        from core.config import RunConfig
        from core.training import run
    except ImportError as err:
        raise RuntimeError(f"this Ray node lacks the lab's packages ({err}); give the cluster an image built "
                           "from requirements.txt, or a runtime environment that installs it") from None
    torch.set_num_threads(max(1, threads))
    return run(RunConfig.from_dict(config)).to_dict()


def check_reachable(address: str) -> None:
    """A RunError at once (not after Ray's own minutes of retries) when nothing answers at `address`."""
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    host, port = parsed.hostname, parsed.port or (10001 if parsed.scheme == "ray" else 6379)
    if not host:
        raise RunError(f"--ray {address!r}: want host:port of the cluster's head (or ray://host:port)")
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        raise RunError(f"cannot reach a Ray cluster at {address} ({err.strerror or err}): is its head running, "
                       "and is the port open from here?") from None


def start(address: str | None, workers: int, cpus_per_run: int):
    """ray.init on this machine (`workers` runs at a time) or on the cluster at `address`."""
    try:
        import ray
    except ImportError:
        raise RunError("sweeps on Ray need the ray package: pip install -r requirements.txt") from None
    common = dict(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    if address:
        check_reachable(address)
        ray.init(address=address, runtime_env={"working_dir": str(ROOT), "excludes": SHIPPED}, **common)
    else:
        env = {"PYTHONPATH": str(ROOT), "FTLAB_HOME": os.environ.get("FTLAB_HOME", ""),
               "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "0"), "TOKENIZERS_PARALLELISM": "false"}
        ray.init(num_cpus=workers * cpus_per_run, num_gpus=0,
                 runtime_env={"env_vars": {k: v for k, v in env.items() if v}}, **common)
    return ray


def run_sweep(labelled, store, address: str | None = None, workers: int = 2, cpus_per_run: int = 1,
              on_result=None, stop_event=None, keep_ray: bool = False) -> list:
    """Run every (label, config) not already in `store` as a Ray task; store each result as it lands
    and call on_result(label, result, done, total). Returns [(label, result)] in the sweep's order.
    Ctrl-C, or `stop_event` set, cancels the runs still out (RunStopped for the latter); every
    finished one is already stored. `keep_ray`: leave a local Ray up for the next sweep (the app)."""
    keyed = [(label, cfg, plan(cfg).key) for label, cfg in labelled]
    results = {key: store.get(key) for _, _, key in keyed}
    for r in results.values():
        if r is not None:
            r.cached = True
    todo = [(label, cfg, key) for label, cfg, key in keyed if results[key] is None]
    total, done = len(keyed), len(keyed) - len(todo)
    for label, _, key in keyed:
        if results[key] is not None and on_result:
            on_result(label, results[key], None, total)
    if todo:
        ray = start(address, workers, cpus_per_run)
        gpus = 1 if address and ray.cluster_resources().get("GPU", 0) >= 1 else 0
        remote = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus, max_retries=0)(_run_one)
        pending = {remote.remote(cfg.to_dict(), cpus_per_run): (label, key) for label, cfg, key in todo}
        failures = []
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                if stop_event is not None and stop_event.is_set():
                    raise RunStopped(f"stopped: {done} of {total} runs are stored")
                if not ready:
                    continue
                label, key = pending.pop(ready[0])
                try:
                    result = RunResult.from_dict(ray.get(ready[0]))
                except Exception as err:          # noqa: BLE001 - one failed run is reported, the rest go on
                    cause = getattr(err, "cause", None) or err
                    failures.append(f"{label}: {str(cause).strip().splitlines()[-1][:300]}")
                    continue
                store.put(result)                     # the one writer: this process
                results[key] = result
                done += 1
                if on_result:
                    on_result(label, result, done, total)
        except BaseException:
            # A local Ray of this sweep's own goes down below, its workers with it: nothing to cancel.
            # Otherwise cancel without force: a force-cancel that crosses a run's own reply made Ray's
            # core abort the whole driver ("Tried to complete task that was not pending", seen once in
            # a Ctrl-C'd test sweep), and a plain cancel interrupts a run at its next Python step.
            if address or keep_ray:
                for ref in pending:
                    ray.cancel(ref, force=False)
            raise
        finally:
            if not address and not keep_ray:
                ray.shutdown()                        # the local cluster was this sweep's own
        if failures:
            raise RunError(f"{len(failures)} of {total} runs failed on Ray (the others are stored): "
                           + "; ".join(failures))
    return [(label, results[key]) for label, _, key in keyed]


# ---------------------------------------------------------------------------- the app's dispatcher

RAY_ENV = "FTLAB_RAY_ADDRESS"          # `local`, or host:port / ray://host:port of a cluster's head
WORKERS_ENV, CPUS_ENV = "FTLAB_RAY_WORKERS", "FTLAB_RAY_CPUS_PER_RUN"


def configured(env=None) -> dict | None:
    """The server's Ray setting from its environment: {"address": None for local, "workers", "cpus_per_run"},
    or None when the app runs everything on its own job manager. A bad value is a ConfigError."""
    env = os.environ if env is None else env
    address = (env.get(RAY_ENV) or "").strip()
    if not address:
        return None
    try:
        workers, cpus = int(env.get(WORKERS_ENV) or 2), int(env.get(CPUS_ENV) or 1)
    except ValueError:
        raise ConfigError(f"{WORKERS_ENV} and {CPUS_ENV} must be whole numbers") from None
    if workers < 1 or cpus < 1:
        raise ConfigError(f"{WORKERS_ENV} and {CPUS_ENV} must be at least 1")
    return {"address": None if address == "local" else address, "workers": workers, "cpus_per_run": cpus}


@dataclass
class Sweep:
    """One app sweep on Ray, as the pages show it."""
    id: str
    title: str
    owner: str
    total: int
    state: str = "starting"              # starting -> running -> done | stopped | failed
    landed: list = field(default_factory=list)     # (label, RunResult) in landing order
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    stop_event: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "stopped", "failed")


class RayDispatcher:
    """The app's sweeps on Ray: each `submit` runs `run_sweep` in a thread of this (server) process,
    which stores every result as it lands; a sweep goes on when the tab that queued it closes (its
    runs are in the store for Compare), and `stop` cancels what is still out."""

    def __init__(self, address: str | None, workers: int = 2, cpus_per_run: int = 1, store_path=None):
        self.address, self.workers, self.cpus_per_run = address, workers, cpus_per_run
        self.store_path = store_path
        self.sweeps: dict[str, Sweep] = {}
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self.ray_ready: threading.Event | None = None
        self.ray_error: str | None = None

    @property
    def where(self) -> str:
        return f"the Ray cluster at {self.address}" if self.address else f"a local Ray ({self.workers} at a time)"

    def submit(self, configs: list, owner: str = "", title: str = "") -> str:
        """Queue `configs` (RunConfig) as one sweep; a bad value raises ConfigError here, at once."""
        for cfg in configs:
            plan(cfg)
        sweep = Sweep(id=f"sweep-{next(self.ids)}", title=title or f"{len(configs)} runs", owner=owner,
                      total=len(configs))
        with self.lock:
            self.sweeps[sweep.id] = sweep
        labelled = [(cfg.strategy, cfg) for cfg in configs]
        threading.Thread(target=self._run, args=(sweep, labelled), daemon=True, name=sweep.id).start()
        return sweep.id

    def get(self, sweep_id: str) -> Sweep | None:
        with self.lock:
            return self.sweeps.get(sweep_id)

    def sweeps_of(self, owner: str) -> list[Sweep]:
        """The sweeps `owner` (a browser's id) queued, oldest first: a reloaded page shows them again."""
        with self.lock:
            return [s for s in self.sweeps.values() if s.owner == owner]

    def stop(self, sweep_id: str) -> None:
        sweep = self.get(sweep_id)
        if sweep is not None:
            sweep.stop_event.set()

    def _ensure_ray(self) -> None:
        """ray.init in a thread that lives as long as the server. A local Ray's processes die with the
        thread that started them (they are its children with a parent-death signal), so a sweep's own
        thread, which ends with the sweep, took the local cluster down with it."""
        with self.lock:
            if self.ray_ready is None or self.ray_error is not None:      # first sweep, or retry after a failure
                self.ray_ready, self.ray_error = threading.Event(), None
                threading.Thread(target=self._ray_home, args=(self.ray_ready,), daemon=True, name="ray-home").start()
            ready = self.ray_ready
        ready.wait()
        if self.ray_error is not None:
            raise RunError(self.ray_error)

    def _ray_home(self, ready: threading.Event) -> None:
        try:
            start(self.address, self.workers, self.cpus_per_run)
        except Exception as err:      # noqa: BLE001 - every waiting sweep reports it
            self.ray_error = str(err)
            ready.set()
            return
        ready.set()
        threading.Event().wait()      # never returns: this thread keeps the local Ray alive

    def _run(self, sweep: Sweep, labelled) -> None:
        def landed(label, result, done, total):
            sweep.landed.append((label, result))

        try:
            self._ensure_ray()                 # once; later sweeps reuse it
            sweep.state = "running"
            store = RunStore(self.store_path) if self.store_path else RunStore()
            run_sweep(labelled, store, self.address, self.workers, self.cpus_per_run, on_result=landed,
                      stop_event=sweep.stop_event, keep_ray=True)
            sweep.state = "done"
        except RunStopped:
            sweep.state = "stopped"
        except Exception as err:      # noqa: BLE001 - the page says what went wrong; the stored runs stay
            sweep.state, sweep.error = "failed", str(err)
        finally:
            sweep.finished_at = time.time()
