"""Trainable-parameter counts for the Lab's strategy list: computed off the page's path, kept on disk.

Counting needs torch and the model (seconds on a fresh process). The page asks `get()` and shows
"counting" until a background thread has had the classifier built exactly as a run would
(core.training.trainable_params) and written the count to $FTLAB_HOME/cache/param_counts.json, so
a later server start has every count it saw before at once. The building happens in a child
process at the lowest CPU priority: torch imported in a thread of the server held the server's
lock on Python for seconds (a second tab's first page took about 1 s longer) and kept torch's
memory in the server for good.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .config import RunConfig
from .paths import atomic_write, cache_dir
from .model_registry import model_identity

COUNTED_FIELDS = ("model", "strategy", "freeze_layers", "lora_r", "lora_targets", "feature_layer")


class ParamCounter:
    def __init__(self, path: str | Path | None = None, delay_s: float = 2.0):
        self.path = Path(path) if path else cache_dir() / "param_counts.json"
        self.delay_s = delay_s          # let the first page render before torch is imported beside it
        self.not_before = time.time() + delay_s
        self.lock = threading.Lock()
        self.known: dict[str, list] = self._read()
        self.errors: dict[str, str] = {}
        self.todo: dict[str, tuple] = {}
        self.thread: threading.Thread | None = None

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}                   # missing or damaged: counted again

    def key(self, cfg: RunConfig, num_labels: int) -> str:
        d = cfg.resolved().to_dict()
        fields = {k: d[k] for k in COUNTED_FIELDS}
        return json.dumps({**fields, "identity": model_identity(cfg.model), "num_labels": num_labels}, sort_keys=True)

    def get(self, cfg: RunConfig, num_labels: int) -> tuple[int, int] | str | None:
        """(trainable, total); an error message if it cannot be counted; None while counting."""
        key = self.key(cfg, num_labels)
        with self.lock:
            if key in self.known:
                return tuple(self.known[key])
            if key in self.errors:
                return self.errors[key]
            self.todo.setdefault(key, (cfg.to_dict(), num_labels))
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._work, daemon=True, name="param-counts")
                self.thread.start()
        return None

    def learn(self, results, num_labels: int) -> int:
        """Take the counts finished runs recorded (the store's, the shipped presets'): a run built its
        classifier exactly as counting would, so a configuration one of them had is known at once,
        without torch (on a fresh clone, the presets cover the strategies at their defaults).
        `num_labels`: their task's. Returns how many were new."""
        new = 0
        for r in results:
            try:
                key = self.key(RunConfig.from_dict(r.config), num_labels)
                count = [int(r.trainable_params), int(r.total_params)]
            except Exception:     # noqa: BLE001 - an old or foreign record: counted when asked instead
                continue
            with self.lock:
                if key not in self.known and count[1] > 0:
                    self.known[key] = count
                    new += 1
        return new

    def pending(self) -> bool:
        with self.lock:
            return bool(self.todo)

    def done_count(self) -> int:
        """How many counts (or errors) are known: it grows as each one arrives, so a page can show
        the counts one by one instead of waiting for the slowest."""
        with self.lock:
            return len(self.known) + len(self.errors)

    def start_now(self) -> None:
        """The page is on screen (its first paint is done): count now instead of after the delay."""
        with self.lock:
            self.not_before = min(self.not_before, time.time())

    def postpone(self, seconds: float | None = None) -> None:
        """A page is being drawn: import no torch in this process for `seconds` (default `delay_s`) more."""
        with self.lock:
            self.not_before = max(self.not_before, time.time() + (self.delay_s if seconds is None else seconds))

    def _work(self) -> None:
        while (wait := self.not_before - time.time()) > 0:
            time.sleep(min(wait, 0.1))        # start_now() ends the wait within 0.1 s
        while True:
            with self.lock:
                batch = [[key, cfg, num_labels] for key, (cfg, num_labels) in self.todo.items()]
            if not batch:
                return
            for key, count, error in _count_elsewhere(batch):
                with self.lock:
                    self.todo.pop(key, None)
                    if error is None:
                        self.known[key] = count
                        self._write()
                    else:
                        self.errors[key] = error

    def _write(self) -> None:
        atomic_write(self.path, json.dumps(self.known))    # a crash leaves the old file


COUNT_TIMEOUT_S = 600


def _count_elsewhere(batch: list):
    """(key, (trainable, total) or None, error or None) for each of [[key, config dict, num_labels], ...],
    counted by `python -m core.param_counts` at nice 19; yielded as each count is printed (the first
    one comes after torch's import and the model's load, the others a fraction of a second apart)."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    seen, problem = set(), None
    errors = tempfile.TemporaryFile("w+")       # a file, not a pipe: a chatty stderr never blocks the child
    try:
        child = subprocess.Popen([sys.executable, "-m", "core.param_counts"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=errors, text=True, env=env, cwd=root)
    except OSError as err:
        child, problem = None, f"the counting process failed: {err}"
    if child is not None:
        timer = threading.Timer(COUNT_TIMEOUT_S, child.kill)      # a hung child never blocks the counts for good
        timer.start()
        try:
            child.stdin.write(json.dumps(batch))
            child.stdin.close()
            for line in child.stdout:
                if line.startswith("["):
                    try:
                        key, count, error = json.loads(line)
                    except ValueError:
                        continue
                    seen.add(key)
                    yield key, count, error
            child.wait()
            errors.seek(0)
            problem = f"the counting process failed (exit code {child.returncode}): {errors.read().strip()[-300:]}"
        except OSError as err:
            problem = f"the counting process failed: {err}"
        finally:
            timer.cancel()
            if child.poll() is None:
                child.kill()
    errors.close()
    for key, _, _ in batch:
        if key not in seen:
            yield key, None, problem


def _die_with_parent() -> None:
    """Linux: end this child when the server that asked for the counts ends (no orphan importing torch)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _main() -> None:
    """The child: read the batch from stdin, print one JSON line per count as it is done."""
    try:
        os.nice(19)          # the page and the training worker come first
    except OSError:
        pass
    _die_with_parent()
    from .training import trainable_params   # torch: in this child only, never in the server

    for key, cfg, num_labels in json.loads(sys.stdin.read()):
        try:
            row = [key, list(trainable_params(RunConfig.from_dict(cfg), num_labels)), None]
        except Exception as err:   # noqa: BLE001 - a model that cannot load: say so on the page
            row = [key, None, str(err)]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    _main()
