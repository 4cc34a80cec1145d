"""What the measurement scripts (default_run, busy_neighbour, ray_scaling) share: the kept sections
they write into docs/PERFORMANCE.md (`python -m core bench` keeps them), the CPU's name, a commit."""
from __future__ import annotations

import subprocess
from pathlib import Path

END = "<!-- /kept -->"


def write_kept(doc: Path, text: str) -> None:
    """Put `text` (which starts with its own `<!-- kept:NAME -->` line and ends with END) in place of
    the section of that name in `doc`, or at its end."""
    start = text.split("\n", 1)[0]
    old = doc.read_text() if doc.exists() else ""
    if start in old:
        head, rest = old.split(start, 1)
        old = head.rstrip("\n") + "\n" + rest.split(END, 1)[1]
    doc.write_text(old.rstrip("\n") + "\n\n" + text + "\n")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def commit_of(root: Path) -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                          text=True).stdout.strip()


def save(result: dict, json_path: Path, doc: str | None, before: str | None, section) -> None:
    """The measurement as JSON, and with `doc` its kept section: section(the `before` JSON or None, result)."""
    import json

    json_path.write_text(json.dumps(result, indent=1) + "\n")
    if doc:
        earlier = json.loads(Path(before).read_text()) if before else None
        write_kept(Path(doc), section(earlier, result))
    print("wrote", json_path)
