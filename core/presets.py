"""The preset gallery: precomputed sweeps in assets/presets/*.json, drawn at once in a talk.

Each file is what `python -m core sweep ... --json-out FILE` writes:
{"command": "python -m core sweep ...", "runs": [RunResult.to_dict(), ...]}.
A file that cannot be read is reported and skipped; the others still load.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .training import RunResult

PRESET_DIR = Path(__file__).resolve().parent.parent / "assets" / "presets"


@dataclass
class Preset:
    name: str                 # file stem
    command: str
    runs: list = field(default_factory=list)   # RunResult

    @property
    def tasks(self) -> list[str]:
        return sorted({r.task for r in self.runs})


def load_presets(folder: str | Path = PRESET_DIR) -> tuple[list[Preset], list[str]]:
    """(presets, problems): every *.json in `folder`, sorted by name."""
    presets, problems = [], []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            doc = json.loads(path.read_text())
            runs = [RunResult.from_dict(d) for d in doc["runs"]]
        except (OSError, ValueError, KeyError, TypeError) as err:
            problems.append(f"preset {path.name} could not be read: {err}")
            continue
        presets.append(Preset(path.stem, doc.get("command", ""), runs))
    return presets, problems
