"""The run store: SQLite, one row per run, keyed by the hash of config + model + data.

WAL journaling and one transaction per write: a crash (or a killed worker) mid-run leaves
every earlier run readable. The location is $FTLAB_HOME/runs.sqlite, by default under the
user's data directory, never in the repository.
"""
from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from pathlib import Path

from .paths import lab_home
from .result import RunResult
from .plan import plan

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    task TEXT NOT NULL,
    strategy TEXT NOT NULL,
    size INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    in_domain_acc REAL,
    general REAL,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_task ON runs(task, strategy, size);
"""


def default_path() -> Path:
    return lab_home() / "runs.sqlite"


class RunStore:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def put(self, result: RunResult) -> None:
        row = (result.key, result.created_at or time.time(), result.task, result.strategy, result.size,
               result.seed, result.in_domain_acc, result.general["score"], json.dumps(result.to_dict()))
        db = self._connect()
        try:
            with db:
                db.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?)", row)
        finally:
            db.close()

    def get(self, key: str) -> RunResult | None:
        db = self._connect()
        try:
            row = db.execute("SELECT result FROM runs WHERE key = ?", (key,)).fetchone()
        finally:
            db.close()
        return RunResult.from_dict(json.loads(row[0])) if row else None

    def list(self, task: str | None = None, strategy: str | None = None, all_versions: bool = False) -> list[RunResult]:
        """Stored runs, oldest first; only those measured by the current RESULT_VERSION unless
        `all_versions` (an older measurement is not comparable: it must not share a plot)."""
        query, args = "SELECT result FROM runs WHERE 1=1", []
        if task:
            query += " AND task = ?"
            args.append(task)
        if strategy:
            query += " AND strategy = ?"
            args.append(strategy)
        db = self._connect()
        try:
            rows = db.execute(query + " ORDER BY created_at", args).fetchall()
        finally:
            db.close()
        out = []
        for (blob,) in rows:
            try:
                result = RunResult.from_dict(json.loads(blob))
            except (ValueError, TypeError):
                continue   # a row from an incompatible version: skip it, keep the rest
            if all_versions or result.current:
                out.append(result)
        return out

    def delete(self, keys) -> int:
        keys = [keys] if isinstance(keys, str) else list(keys)
        db = self._connect()
        try:
            with db:
                n = sum(db.execute("DELETE FROM runs WHERE key = ?", (k,)).rowcount for k in keys)
        finally:
            db.close()
        return n

    def clear(self) -> int:
        db = self._connect()
        try:
            with db:
                return db.execute("DELETE FROM runs").rowcount
        finally:
            db.close()


def to_csv(results: list[RunResult]) -> str:
    rows = [r.summary() for r in results]
    columns = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns or ["key"])
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def to_json(results: list[RunResult]) -> str:
    return json.dumps([r.export_dict() for r in results], indent=1)   # created_at as ISO 8601


def stored_result(store: RunStore, config) -> RunResult | None:
    """The stored result of `config` (under its plan's key, as core.training.run stores it), or None."""
    hit = store.get(plan(config).key)
    if hit is not None:
        hit.cached = True
    return hit
