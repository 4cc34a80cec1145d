"""Fine-tuning lab core: adapt a pre-trained encoder by several strategies and measure what it
learns (in-domain accuracy) and what it forgets (a general benchmark). No streamlit here.

`import core` (and `import core.config`, `core.store`, ...) does not import torch: the app's
first page needs none of it. `core.run` and the rest load on first use."""
from .config import RunConfig
from .errors import ConfigError, DataError, ModelError, RunError, RunStopped
from .result import RunResult

__all__ = ["RunConfig", "RunResult", "run", "ConfigError", "DataError", "ModelError", "RunError", "RunStopped"]


def __getattr__(name):
    if name == "run":
        from .training import run

        return run
    raise AttributeError(f"module 'core' has no attribute {name!r}")
