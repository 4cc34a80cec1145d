"""Cached look-ups for the pages: task facts, parameter counts, presets."""
from __future__ import annotations


import streamlit as st

from core.data import TASKS, load_task, log_sizes
from core.param_counts import ParamCounter
from core.presets import load_presets
from core.uploads import display_name, known_uploads
from core.urlstate import shipped_tasks

# ---------------------------------------------------------------------------- cached look-ups


@st.cache_data(show_spinner=False)
def task_info(name: str) -> dict:
    """The data card, two examples, the log-spaced sizes and the text lengths; a DataError propagates."""
    task = load_task(name)
    return {"card": task.card(), "examples": task.examples(2), "sizes": log_sizes(task),
            "num_labels": task.num_labels, "n_train": len(task.train_texts), "n_val": len(task.val_texts),
            "n_test": len(task.test_texts), "sample": task.train_texts[:: max(1, len(task.train_texts) // 256)]}


@st.cache_resource
def param_counter() -> ParamCounter:
    """Trainable-parameter counts, kept on disk and computed in a background thread: the first
    page never waits for torch or the model."""
    return ParamCounter(delay_s=3.0)


@st.cache_resource(ttl=60)
def presets():
    """(presets, problems) from assets/presets; re-read a minute later so a new file shows up."""
    return load_presets()


def preset_runs(task: str | None = None, names=None) -> list:
    """Preset runs measured the way this code measures (an older benchmark's are not comparable)."""
    found, _ = presets()
    return [r for p in found if names is None or p.name in names for r in p.runs
            if (task is None or r.task == task) and r.current]


def count_text(n: int) -> str:
    """A parameter count that fits a metric card: 22.7 M, 36.9 k, 296."""
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e4 else f"{n:,}"


def lab_tasks() -> list[str]:
    """The tasks the Lab offers: the shipped ones, then what was uploaded to this server (newest first)."""
    return IN_DOMAIN_TASKS + known_uploads()


def task_title(name: str) -> str:
    if name in TASKS:
        return TASKS[name].title
    if name.startswith("upload:"):         # the file's name (core.uploads.display_name), never the hash alone

        return f"{display_name(name)} (your data)"
    try:
        return f"{task_info(name)['card']['title']} (your data)"
    except Exception:     # noqa: BLE001 - a title never stops a page
        return name


IN_DOMAIN_TASKS = shipped_tasks()
