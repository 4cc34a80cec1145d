"""Query string <-> RunConfig, so a whole setup can be shared as a link.

Only fields that differ from RunConfig's defaults go into the URL, written the way the CLI
takes them (`size=all`, `lora_targets=query,value`). A link is data, never an instruction: it
may name only the lab's own tasks and the models the server offers (the registry, plus what
whoever started the server listed in FTLAB_MODELS), and every field is checked against the task
and model it names, whatever the strategy (a value the link's strategy ignores is still one the
next strategy picked would use). Whatever cannot be used is dropped with a message naming the
parameter; the rest of the link still applies. The page shows the messages, never a traceback.
"""
from __future__ import annotations

import os
from dataclasses import fields
from typing import Mapping

from .config import FIELD_TYPES, ConfigError, RunConfig, format_field, parse_field
from .data import TASKS
from .errors import DataError
from .model_registry import MODELS
from .plan import plan
from .uploads import known_uploads

EXTRA_MODELS_ENV = "FTLAB_MODELS"    # comma-separated local folders or hub ids the server offers


def offered_models() -> list[str]:
    """The models a page may use: the registry's, then the server's own list (FTLAB_MODELS)."""
    extra = [m.strip() for m in os.environ.get(EXTRA_MODELS_ENV, "").split(",") if m.strip()]
    return list(MODELS) + [m for m in extra if m not in MODELS]


def shipped_tasks() -> list[str]:
    return [name for name, spec in TASKS.items() if not spec.general]


def linkable_tasks() -> list[str]:
    """What a link's task may name: the shipped tasks, and data uploaded to this server by its
    hash (core.uploads); never a path or a hub id."""
    return shipped_tasks() + known_uploads()


def config_to_query(cfg: RunConfig) -> dict[str, str]:
    """The fields of `cfg` that differ from RunConfig(), as strings."""
    default = RunConfig()
    out = {}
    for f in fields(RunConfig):
        value = getattr(cfg, f.name)
        if isinstance(value, list):
            value = tuple(value)
        if value != getattr(default, f.name):
            out[f.name] = format_field(f.name, value)
    return out


def config_from_query(params: Mapping[str, str]) -> tuple[RunConfig, list[str]]:
    """(config, messages). Keys that are not config fields are ignored (the app keeps its own there)."""
    values, errors = {}, []
    for name in FIELD_TYPES:          # task and model come before the fields checked against them
        if name not in params:
            continue
        raw = str(params[name])
        try:
            value = parse_field(name, raw)
        except ValueError:
            errors.append(f"the link's {name}={raw!r} is not a valid {FIELD_TYPES[name]}; ignored")
            continue
        if name == "task" and value not in linkable_tasks():
            errors.append(f"the link's task={raw!r} is not one of the lab's tasks ({', '.join(shipped_tasks())}) "
                          "nor data uploaded to this server; ignored")
            continue
        if name == "model" and value not in offered_models():
            errors.append(f"the link's model={raw!r} is not a model this server offers "
                          f"({', '.join(offered_models())}); ignored")
            continue
        candidate = {**values, name: value}
        try:   # a task is checked at its own size (the size field, if any, is checked against it next)
            plan(RunConfig(**({**candidate, "size": None} if name == "task" else candidate)), as_written=True)
        except (ConfigError, DataError) as err:
            errors.append(f"the link's {name}={raw!r} cannot be used: {err}; ignored")
            continue
        values = candidate
    return RunConfig(**values), errors
