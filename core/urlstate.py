"""Query string <-> RunConfig, so a whole setup can be shared as a link.

Only fields that differ from RunConfig's defaults go into the URL, written the way the CLI
takes them (`size=all`, `lora_targets=query,value`). Reading is forgiving: a value that cannot
be parsed is dropped with a message, and a config that does not validate falls back to the
defaults, also with a message; the page shows the messages, never a traceback.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Mapping

from .config import FIELD_TYPES, ConfigError, RunConfig, format_field, parse_field

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
    """(config, messages): keys that are not config fields are ignored (the app keeps its own there)."""
    values, errors = {}, []
    for name in FIELD_TYPES:
        if name not in params:
            continue
        raw = params[name]
        try:
            values[name] = parse_field(name, str(raw))
        except ValueError:
            errors.append(f"the link's value {name}={raw!r} is not a valid {FIELD_TYPES[name]}; using the default")
    cfg = RunConfig(**values)
    try:
        cfg.resolved()
    except ConfigError as err:
        errors.append(f"the link's configuration cannot run ({err}); using the defaults instead")
        cfg = RunConfig()
    return cfg, errors
