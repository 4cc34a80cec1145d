"""Fine-tuned weights kept for re-scoring: WiSE-FT's mix at another `a` without training again.

One safetensors file per training (named by the config's training key, which leaves out what acts
only after training: the mixing strength and the evaluation sizes), holding the fine-tuned encoder
and head, with the per-epoch curves and counts as metadata. The pre-trained half of the mix is the
registry model itself. The folder sits beside the run store, under the lab's data folder, never in
the repository; only the newest KEEP files stay, as each is the size of the model (about 90 MB for
MiniLM). safetensors, not pickle: reading a file never runs code.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

KEEP = 3


class WeightStore:
    def __init__(self, folder: str | Path, keep: int = KEEP):
        self.folder = Path(folder)
        self.keep = keep

    @classmethod
    def beside(cls, store) -> "WeightStore | None":
        """The weight store next to a run store (None without one: nothing is kept then)."""
        return None if store is None else cls(Path(store.path).parent / "weights")

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.safetensors"

    def save(self, key: str, tensors: dict, meta: dict) -> None:
        from safetensors.torch import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path(key).with_suffix(".tmp")
        save_file({n: t.detach().contiguous().cpu() for n, t in tensors.items()}, str(tmp),
                  metadata={"meta": json.dumps(meta)})
        os.replace(tmp, self.path(key))      # a crash mid-write leaves no half file under the real name
        self.evict()

    def load(self, key: str) -> tuple[dict, dict] | None:
        """(tensors by name, meta), or None when this training's weights are not kept (or unreadable)."""
        from safetensors import safe_open

        path = self.path(key)
        if not path.exists():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                tensors = {n: f.get_tensor(n) for n in f.keys()}
                meta = json.loads(f.metadata()["meta"])
        except Exception:        # a truncated or foreign file: train again rather than fail
            return None
        path.touch()             # recently used: the last to be evicted
        return tensors, meta

    def has(self, key: str) -> bool:
        return self.path(key).exists()

    def evict(self) -> None:
        files = sorted(self.folder.glob("*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[self.keep:]:
            old.unlink(missing_ok=True)
