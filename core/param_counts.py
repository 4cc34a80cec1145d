"""Trainable-parameter counts for the Lab's strategy list: computed off the page's path, kept on disk.

Counting needs torch and the model (seconds on a fresh process). The page asks `get()` and shows
"counting" until a background thread has built the classifier exactly as a run would
(core.models.trainable_params) and written the count to $FTLAB_HOME/cache/param_counts.json, so
a later server start has every count it saw before at once.
"""
from __future__ import annotations

import gc
import json
import threading
import time
from pathlib import Path

from .config import RunConfig, cache_dir
from .model_registry import model_identity

COUNTED_FIELDS = ("model", "strategy", "freeze_layers", "lora_r", "lora_targets", "feature_layer")


class ParamCounter:
    def __init__(self, path: str | Path | None = None, delay_s: float = 2.0):
        self.path = Path(path) if path else cache_dir() / "param_counts.json"
        self.delay_s = delay_s          # let the first page render before torch is imported beside it
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

    def pending(self) -> bool:
        with self.lock:
            return bool(self.todo)

    def _work(self) -> None:
        time.sleep(self.delay_s)
        from .models import trainable_params     # torch, once, in this thread

        gc.freeze()      # torch's and transformers' objects live for good: keep them out of every collection

        while True:
            with self.lock:
                if not self.todo:
                    return
                key, (cfg, num_labels) = next(iter(self.todo.items()))
            try:
                count, error = list(trainable_params(RunConfig.from_dict(cfg), num_labels)), None
            except Exception as err:   # noqa: BLE001 - a model that cannot load: say so on the page
                count, error = None, str(err)
            with self.lock:
                self.todo.pop(key, None)
                if error is None:
                    self.known[key] = count
                    self._write()
                else:
                    self.errors[key] = error

    def _write(self) -> None:
        from .config import atomic_write

        atomic_write(self.path, json.dumps(self.known))    # a crash leaves the old file
