"""Fine-tuning lab core: adapt a pre-trained encoder by several strategies and measure what it
learns (in-domain accuracy) and what it forgets (a general benchmark). No streamlit here."""
from .config import ConfigError, RunConfig
from .data import DataError
from .models import ModelError
from .training import RunError, RunResult, RunStopped, run

__all__ = ["RunConfig", "RunResult", "run", "ConfigError", "DataError", "ModelError", "RunError", "RunStopped"]
