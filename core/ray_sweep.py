"""A sweep's runs as Ray tasks: the same `core.training.run` on the same RunConfig, on a laptop or a
cluster, with this process as the run store's only writer.

    results = run_sweep(labelled_configs, store, address=None, cpus_per_run=1)

Why plain tasks and not Ray Tune: a sweep here is a fixed grid whose every cell is a full run with
its own stored result; Tune's schedulers, searchers and trial checkpoints have nothing to do, and
its results would live in Tune's folders instead of the run store. One remote function is enough.

Without an address Ray starts on this machine (one worker per `cpus_per_run` cores); with one
(`host:port` of a cluster's head, or `ray://host:10001`) it joins that cluster, and each run asks
for `cpus_per_run` CPUs and, where the cluster has GPUs, one GPU. The nodes need the lab's packages
(requirements.txt: an image built with them, or a Ray runtime environment that installs them); the
lab's own code travels as the job's working directory. A node without them fails its run with a
message that says so.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from .errors import RunError

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
              on_result=None) -> list:
    """Run every (label, config) not already in `store` as a Ray task; store each result as it lands
    and call on_result(label, result, done, total). Returns [(label, result)] in the sweep's order.
    Ctrl-C cancels the runs still out; every finished one is already stored."""
    from .result import RunResult
    from .training import resolve

    keyed = [(label, cfg, resolve(cfg)[4]) for label, cfg in labelled]
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
                ready, _ = ray.wait(list(pending), num_returns=1)
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
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            if not address:
                ray.shutdown()                        # the local cluster was this sweep's own
        if failures:
            raise RunError(f"{len(failures)} of {total} runs failed on Ray (the others are stored): "
                           + "; ".join(failures))
    return [(label, results[key]) for label, _, key in keyed]
