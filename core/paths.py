"""Where the lab keeps its files ($FTLAB_HOME), and writing them whole or not at all.

Kept apart from core.config so that every module that stores something (the data and feature caches,
uploads, the run store) can import it without importing what a run is.
"""
from __future__ import annotations

import os
from pathlib import Path


def lab_home() -> Path:
    """Where the run store and caches live: $FTLAB_HOME, else the user's data directory."""
    env = os.environ.get("FTLAB_HOME")
    if env:
        path = Path(env).expanduser()
    else:
        from platformdirs import user_data_dir

        path = Path(user_data_dir("finetune-lab", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write a file whole or not at all: a crash mid-write, or two processes writing at once, leave
    one complete file (the old one or the new one), never a half-written copy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    if isinstance(data, str):
        tmp.write_text(data)
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)


def cache_dir() -> Path:
    path = lab_home() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path
