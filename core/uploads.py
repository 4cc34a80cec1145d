"""Your own data as a task: a table file read as data, kept content-addressed, named by its hash.

    table = read_table(data, "reviews.csv")        # CSV, TSV, JSON Lines or Parquet -> DataFrame
    problems = check_columns(table, "review", "stars")   # [] when it can become a task
    name = save_upload(data, "reviews.csv", "review", "stars")   # -> "upload:3fa9c1d2e4b5f607"
    load_task(name)                                 # a Task like the shipped ones (core.data)

The name is the only thing a link carries: `upload:` and 16 hex digits, looked up in this lab's
uploads folder ($FTLAB_HOME/uploads), never a path. The same bytes with the same columns give the
same name, so uploading a file twice stores it once. The CLI's `csv:PATH` reads through the same
`read_table` and `frame_rows`.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

from .config import atomic_write
from .errors import DataError

MAX_BYTES = 50 * 1024 * 1024      # the app's upload limit (.streamlit/config.toml says the same)
MAX_ROWS = 200_000
FORMATS = {".csv": "CSV", ".tsv": "TSV", ".tab": "TSV", ".jsonl": "JSON Lines", ".ndjson": "JSON Lines",
           ".parquet": "Parquet"}
NAME = re.compile(r"^upload:([0-9a-f]{16})$")
SPLITS = ("train", "test")


def uploads_dir() -> Path:
    from .config import lab_home

    path = lab_home() / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_table(data: bytes, filename: str):
    """The file as a DataFrame, or a DataError saying in one line why it cannot be read."""
    import pandas as pd

    ext = Path(filename).suffix.lower()
    if ext not in FORMATS:
        raise DataError(f"{filename}: the lab reads {', '.join(sorted(set(FORMATS.values())))} files "
                        f"({', '.join(FORMATS)}), not '{ext or 'no extension'}'")
    if not data:
        raise DataError(f"{filename} is empty (0 bytes)")
    if len(data) > MAX_BYTES:
        raise DataError(f"{filename} is {len(data) / 2**20:.0f} MB; the limit is {MAX_BYTES / 2**20:.0f} MB")
    kind = FORMATS[ext]
    if kind != "Parquet":
        if b"\x00" in data[:65536]:
            raise DataError(f"{filename} holds binary data, not {kind} text")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{filename} is not UTF-8 text (a byte that is not UTF-8 at position {err.start}); "
                            "save it as UTF-8 and upload it again") from None
        if data.lstrip()[:1] == b"<":
            raise DataError(f"{filename} looks like HTML or XML, not {kind}")
    try:
        if kind == "CSV":
            table = pd.read_csv(io.BytesIO(data))
        elif kind == "TSV":
            table = pd.read_csv(io.BytesIO(data), sep="\t")
        elif kind == "JSON Lines":
            table = pd.read_json(io.BytesIO(data), lines=True)
        else:
            table = pd.read_parquet(io.BytesIO(data))
    except Exception as err:      # noqa: BLE001 - every reader's own error, said in one line
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise DataError(f"{filename} cannot be read as {kind}: {first}") from None
    if table.empty or not len(table.columns):
        raise DataError(f"{filename} has no rows")
    if len(table) > MAX_ROWS:
        raise DataError(f"{filename} has {len(table):,} rows; the lab takes at most {MAX_ROWS:,}")
    table.columns = [str(c) for c in table.columns]
    return table


def frame_rows(table, text: str, label: str, split: str | None = None, source: str = "the file"):
    """(train texts, train labels, test texts, test labels) from the chosen columns; the test pair is
    None without a usable split column (core.data then makes a seeded stratified 80/20 split)."""
    for name in (text, label) + ((split,) if split else ()):
        if name not in table.columns:
            raise DataError(f"{source} has no column '{name}' (columns: {', '.join(table.columns)})")
    table = table[table[text].notna() & table[label].notna()]
    texts = table[text].astype(str).str.strip()
    keep = texts != ""
    table, texts = table[keep], texts[keep]
    labels = table[label].astype(str).str.strip()
    if split:
        where = table[split].astype(str).str.strip().str.lower()
        train, test = where == "train", where == "test"
        if train.any() and test.any():
            return list(texts[train]), list(labels[train]), list(texts[test]), list(labels[test])
    return list(texts), list(labels), None, None


def check_columns(table, text: str, label: str, split: str | None = None) -> list[str]:
    """Everything that keeps these columns from becoming a task, one sentence each ([]: usable)."""
    problems = []
    if text == label:
        return ["the text and the label must be two different columns"]
    try:
        tr_x, tr_y, te_x, te_y = frame_rows(table, text, label, split)
    except DataError as err:
        return [str(err)]
    column = table[text].dropna()
    if len(column) and column.map(lambda v: isinstance(v, (int, float))).mean() > 0.5:
        problems.append(f"the text column '{text}' holds numbers, not text")
    labels = tr_y + (te_y or [])
    counts = {y: labels.count(y) for y in set(labels)}
    if len(counts) < 2:
        problems.append(f"the label column '{label}' has {len(counts)} distinct value(s); a task needs at least two")
    elif len(counts) > 100:
        problems.append(f"the label column '{label}' has {len(counts):,} distinct values: is it really the label?")
    rare = sorted(y for y, n in counts.items() if n < 2)
    if rare and len(counts) <= 100:
        problems.append(f"label(s) with a single example cannot be split into train and test: {', '.join(rare[:8])}")
    if len(tr_x) < 10:
        problems.append(f"only {len(tr_x)} usable training rows; the lab needs at least 10")
    if split and te_x is None:
        problems.append(f"the split column '{split}' needs both 'train' and 'test' rows")
    return problems


def class_counts(table, label: str) -> dict:
    return table[label].dropna().astype(str).str.strip().value_counts().to_dict()


def save_upload(data: bytes, filename: str, text: str, label: str, split: str | None = None) -> str:
    """Store the file (once per content) and its column choice; returns the task's name."""
    table = read_table(data, filename)
    problems = check_columns(table, text, label, split)
    if problems:
        raise DataError("; ".join(problems))
    folder = uploads_dir()
    ext = Path(filename).suffix.lower()
    file_hash = hashlib.sha256(data).hexdigest()[:16]
    stored = folder / f"{file_hash}{ext}"
    if not stored.exists():
        atomic_write(stored, data)
    spec = {"file": stored.name, "name": Path(filename).name[:120], "text": text, "label": label, "split": split}
    task_hash = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    sidecar = folder / f"{task_hash}.json"
    if not sidecar.exists():
        atomic_write(sidecar, json.dumps(spec))
    return f"upload:{task_hash}"


def upload_spec(name: str) -> dict:
    """The stored column choice of `upload:<hash>`; a DataError for a malformed or unknown name."""
    m = NAME.match(name)
    if not m:
        raise DataError(f"'{name}' is not an uploaded task's name (upload: and 16 hex digits)")
    sidecar = uploads_dir() / f"{m.group(1)}.json"
    try:
        spec = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        raise DataError(f"no uploaded data '{name}' on this server (uploads live with the server that took "
                        "them: upload the file here)") from None
    if not isinstance(spec, dict) or not re.fullmatch(r"[0-9a-f]{16}\.[a-z]+", str(spec.get("file", ""))):
        raise DataError(f"the record of '{name}' is damaged: upload the file again")
    return spec


def load_upload(name: str):
    """(spec, raw rows) of an uploaded task, read through read_table and frame_rows."""
    spec = upload_spec(name)
    path = uploads_dir() / spec["file"]
    try:
        data = path.read_bytes()
    except OSError:
        raise DataError(f"the file of '{name}' is gone from this server: upload it again") from None
    table = read_table(data, spec["file"])
    return spec, frame_rows(table, spec["text"], spec["label"], spec.get("split"), spec["name"])


def known_uploads() -> list[str]:
    """Every uploaded task on this server, newest first."""
    files = sorted(uploads_dir().glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [f"upload:{p.stem}" for p in files if re.fullmatch(r"[0-9a-f]{16}", p.stem)]

