"""Shared set-up for the core tests: an isolated lab home, offline hubs, tiny configurations.

The environment is set here, at import, before any test module imports `core`: the run store
and the feature/probe caches then live in one session-wide temporary folder (shared by every
test, so the pre-trained probes are fitted once) and the user's own store is never touched.
Set FTLAB_TEST_HOME to keep that folder between sessions (faster reruns while developing).
"""
from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:          # `pytest` as well as `python -m pytest` from anywhere
    sys.path.insert(0, str(ROOT))

_keep = os.environ.get("FTLAB_TEST_HOME")
HOME = Path(_keep) if _keep else Path(tempfile.mkdtemp(prefix="ftlab-tests-"))
HOME.mkdir(parents=True, exist_ok=True)
if not _keep:
    atexit.register(shutil.rmtree, HOME, ignore_errors=True)
os.environ["FTLAB_HOME"] = str(HOME)
os.environ["HF_HUB_OFFLINE"] = "1"           # no machine here reaches a hub: fail fast, never hang
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_DATASETS_CACHE"] = str(HOME / "hf-datasets")   # datasets' own cache, not ~/.cache
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Every run of the suite (and of the servers, workers and Ray tasks it starts) keeps its process's thread
# count, never fewer while another of its processes is busy: a seed then gives the same weights bit for
# bit (core/threads.py; tests/test_threads.py unsets it to test the sharing itself).
os.environ.setdefault("FTLAB_THREADS", "fixed")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from core.config import RunConfig  # noqa: E402

TINY = dict(task="r8", size=16, epochs=1, max_length=32, eval_size=50, general_size=50)


@pytest.fixture
def tiny() -> RunConfig:
    """The smallest run that still goes through every stage (strategy: the default, full)."""
    return RunConfig(**TINY)


@pytest.fixture
def store(tmp_path):
    from core.store import RunStore

    return RunStore(tmp_path / "runs.sqlite")


def write_csv(path: Path, per_label_train: int = 20, per_label_test: int = 8, test_labels=None) -> Path:
    """A small own-data CSV (text, label, split) of real SMS texts, ham and spam."""
    import pandas as pd

    from core.data import load_task

    task = load_task("sms-spam")
    rows = []
    for lab, name in enumerate(task.label_names):
        idx = np.flatnonzero(task.train_labels == lab)[:per_label_train]
        rows += [(task.train_texts[i], name, "train") for i in idx]
        if test_labels is None or name in test_labels:
            idx = np.flatnonzero(task.test_labels == lab)[:per_label_test]
            rows += [(task.test_texts[i], name, "test") for i in idx]
    pd.DataFrame(rows, columns=["text", "label", "split"]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("csv") / "sms_small.csv")


@contextlib.contextmanager
def capture_models():
    """Collect every EncoderClassifier that core.training.run builds, to look at its weights.

    run() returns only metrics; patching the name it builds the classifier with is enough to see
    the trained model afterwards without changing the run API.
    """
    from core import training
    from core.models import EncoderClassifier

    made = []

    class Recording(EncoderClassifier):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "EncoderClassifier", Recording)
        yield made


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a test that runs whole jobs or drives the app end to end")
    config.addinivalue_line("markers", "browser: a test that needs a real browser (chromium)")
