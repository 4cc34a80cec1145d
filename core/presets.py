"""The preset gallery: precomputed sweeps in assets/presets/*.json, drawn at once in a talk.

Each file is what `python -m core sweep ... --json-out FILE` writes:
{"command": "python -m core sweep ...", "runs": [RunResult.to_dict(), ...]}.
A file that cannot be read is reported and skipped; the others still load.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from .result import RunResult

PRESET_DIR = Path(__file__).resolve().parent.parent / "assets" / "presets"


@dataclass
class Preset:
    name: str                 # file stem
    command: str
    runs: list = field(default_factory=list)   # RunResult

    @property
    def tasks(self) -> list[str]:
        return sorted({r.task for r in self.runs})


def preset_dir() -> Path:
    """assets/presets, or $FTLAB_PRESETS (tests, or a talk's own gallery)."""
    return Path(os.environ.get("FTLAB_PRESETS") or PRESET_DIR)


def load_presets(folder: str | Path | None = None) -> tuple[list[Preset], list[str]]:
    """(presets, problems): every *.json in `folder` (default: preset_dir()), sorted by name."""
    folder = preset_dir() if folder is None else folder
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


# Fields that do not change what a run trains or measures the same way: ignored when matching.
UNMATCHED = ("seed", "device", "precision")


def measured(config, runs) -> dict | None:
    """What the preset runs with `config`'s settings (any seed) measured, or None when no preset run
    has them: {"runs", "in_domain", "general_delta", "ci95" (the general change's paired interval),
    "weight_distance", "chosen_epochs" (best_epoch's, per seed), "curve" ({a: {"in_domain",
    "general_delta"}}, WiSE-FT's), "lean" (the commonest label's name, predicted and true shares: core.stats.
    majority_lean)}, means over the runs. `config` is resolved first, so a lesson's
    short config matches the full one stored with each run."""
    try:
        want = config.resolved().to_dict()
    except ValueError:
        return None
    # a field an older run's config lacks did not exist then: it ran as that field's default does now
    defaults = type(config)().to_dict()
    same = [r for r in runs if all(r.config.get(k, defaults[k]) == v for k, v in want.items() if k not in UNMATCHED)]
    if not same:
        return None
    changes = [r.general_change() for r in same]
    distances = [r.weight_distance for r in same]
    alphas = sorted({c["alpha"] for r in same for c in r.curve})
    leans = [r.majority_lean() for r in same]
    return {"runs": len(same), "in_domain": mean(r.in_domain_acc for r in same),
            "general_delta": mean(r.general_delta for r in same),
            "ci95": mean(c["ci95"] for c in changes) if None not in changes else None,
            "weight_distance": mean(distances) if None not in distances else None,
            "chosen_epochs": [r.chosen_epoch for r in same],
            "lean": None if None in leans else {"name": leans[0]["name"], "true": leans[0]["true"],
                                                "predicted": mean(lean["predicted"] for lean in leans)},
            "curve": {a: {"in_domain": mean(c["in_domain_acc"] for r in same for c in r.curve if c["alpha"] == a),
                          "general_delta": mean(c["general"] - r.pretrained_general["score"]
                                                for r in same for c in r.curve if c["alpha"] == a)} for a in alphas}}
