"""Your own data as a task: a table file read as data, kept content-addressed, named by its hash.

    table = read_table(data, "reviews.csv")        # CSV, TSV, JSON Lines or Parquet -> DataFrame
    guess_columns(table)                            # {"text": "review", "label": "stars", "split": None}
    problems = check_columns(table, "review", "stars")   # [] when it can become a task
    rows_text(data.row_accounting(table, "review", "stars"))  # every row of the file to the splits
    name = save_upload(data, "reviews.csv", "review", "stars")   # -> "upload:3fa9c1d2e4b5f607"
    load_task(name)                                 # a Task like the shipped ones (core.data)
    display_name(name)                              # -> "reviews.csv" (what pages and the CLI show)

The name is the only thing a link carries: `upload:` and 16 hex digits, looked up in this lab's
uploads folder ($FTLAB_HOME/uploads), never a path. The same bytes with the same columns give the
same name, so uploading a file twice stores it once. People see the file's name instead
(display_name), with the hash's first digits only where two uploads share a file name. The CLI's
`csv:PATH` reads through the same `read_table` and `frame_rows`.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter
from pathlib import Path

from .paths import atomic_write, lab_home
from .errors import DataError

MAX_BYTES = 50 * 1024 * 1024      # the app's upload limit (.streamlit/config.toml says the same)
MAX_ROWS = 200_000
FORMATS = {".csv": "CSV", ".tsv": "TSV", ".tab": "TSV", ".jsonl": "JSON Lines", ".ndjson": "JSON Lines",
           ".parquet": "Parquet"}
NAME = re.compile(r"^upload:([0-9a-f]{16})$")
SPLITS = ("train", "test")


def uploads_dir() -> Path:
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
    return framed(table, text, label, split, source)[0]


def framed(table, text: str, label: str, split: str | None = None, source: str = "the file"):
    """frame_rows' rows and {reason: rows dropped} for the rows of the file that are in neither
    split, so the upload box can account for every row (core.data adds the duplicates)."""
    for name in (text, label) + ((split,) if split else ()):
        if name not in table.columns:
            raise DataError(f"{source} has no column '{name}' (columns: {', '.join(table.columns)})")
    dropped = {}
    texts = table[text].astype(str).str.strip().where(table[text].notna(), "")
    labels = table[label].astype(str).str.strip().where(table[label].notna(), "")
    no_text = texts == ""
    no_label = (labels == "") & ~no_text          # a row with neither is counted once, as empty text
    dropped["empty text"], dropped["missing label"] = int(no_text.sum()), int(no_label.sum())
    keep = ~no_text & ~no_label
    table, texts, labels = table[keep], texts[keep], labels[keep]
    if split:
        where = table[split].astype(str).str.strip().str.lower()
        train, test = where == "train", where == "test"
        if train.any() and test.any():
            # Rows marked validation, dev or anything else are in neither split: said, not hidden.
            dropped[f"'{split}' neither train nor test"] = int((~train & ~test).sum())
            return (list(texts[train]), list(labels[train]), list(texts[test]), list(labels[test])), dropped
    return (list(texts), list(labels), None, None), dropped


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
    counts = Counter(tr_y + (te_y or []))
    rows = sum(counts.values())
    if len(counts) < 2:
        problems.append(f"the label column '{label}' has {len(counts)} distinct value(s); a task needs at least two")
    elif 2 * len(counts) > rows:
        # A text column picked as the label: (nearly) every row its own class, nothing to learn. Said
        # alone: a list of its single-example "labels" would print whole texts.
        problems.append(f"the label column '{label}' has {len(counts):,} distinct values in {rows:,} rows (fewer "
                        "than two rows per value): it looks like text, not a label; pick the column that names "
                        "each row's class")
        return problems
    elif len(counts) > MAX_CLASSES:
        problems.append(f"the label column '{label}' has {len(counts):,} distinct values: is it really the label?")
    rare = sorted(y for y, n in counts.items() if n < 2)
    if rare and len(counts) <= MAX_CLASSES:
        problems.append("label(s) with a single example cannot be split into train and test: "
                        + ", ".join(short(y) for y in rare[:8]))
    if len(tr_x) < 10:
        problems.append(f"only {len(tr_x)} usable training rows; the lab needs at least 10")
    if split and te_x is None:
        problems.append(f"the split column '{split}' needs both 'train' and 'test' rows")
    return problems


def class_counts(table, label: str) -> dict:
    return table[label].dropna().astype(str).str.strip().value_counts().to_dict()


def short(value, limit: int = 40) -> str:
    """A label as a class list shows it: one line, cut at `limit` characters (a text column picked as
    the label would otherwise print whole articles)."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ---------------------------------------------------------------------------- guessing the columns
TEXT_NAMES = ("text", "sentence", "review", "content", "body", "document", "message", "tweet")
LABEL_NAMES = ("label", "labels", "category", "class", "topic", "target", "sentiment", "intent")
SPLIT_VALUES = {"train", "test", "validation", "valid", "val", "dev"}
MAX_CLASSES = 100     # check_columns questions more distinct labels than this
GUESS_ROWS = 5000     # guess_columns looks at this many rows of a larger file


def _is_text(column) -> bool:
    values = column.dropna()
    return len(values) > 0 and values.map(lambda v: isinstance(v, str)).mean() > 0.5


def _is_split(column) -> bool:
    values = set(column.dropna().astype(str).str.strip().str.lower())
    return {"train", "test"} <= values <= SPLIT_VALUES


def guess_columns(table) -> dict:
    """{"text", "label", "split"}: the columns the upload box starts with, guessed from their content.
    The text is a string column with many distinct values and the longest typical value (then the
    most distinct values); the label a column with few distinct values for the rows (at least two, at
    most MAX_CLASSES and half the rows; the fewest, then the first); a split column holds train and
    test. A column named like a text (a label) wins where its content fits."""
    if len(table) > GUESS_ROWS:                 # a seeded sample decides as well, in a fraction of the time
        table = table.sample(n=GUESS_ROWS, random_state=0)
    rows, columns = len(table), list(table.columns)
    splits = [c for c in columns if _is_split(table[c])]
    split = "split" if "split" in splits else (splits[0] if splits else None)
    rest = [c for c in columns if c != split] or columns
    distinct = {c: table[c].dropna().astype(str).str.strip().nunique() for c in rest}
    most = min(MAX_CLASSES, max(2, rows // 2))
    strings = [c for c in rest if _is_text(table[c])]
    texts = [c for c in strings if distinct[c] > most] or strings or rest

    def typical_length(c):
        values = table[c].dropna().astype(str)
        return (float(values.str.len().median()) if len(values) else 0.0, distinct[c])

    named = [c for n in TEXT_NAMES for c in texts if c.lower() == n]
    text = named[0] if named else max(texts, key=typical_length)
    labels = [c for c in rest if c != text and 2 <= distinct[c] <= most]
    named = [c for n in LABEL_NAMES for c in labels if c.lower() == n]
    if named:
        label = named[0]
    elif labels:
        label = min(labels, key=lambda c: distinct[c])
    else:                                           # nothing fits: another column, and check_columns says why
        label = next((c for c in rest if c != text), text)
    return {"text": text, "label": label, "split": split}


def rows_text(card: dict) -> str:
    """One line for a task's rows: "30,776 rows: 23,367 train · 1,000 validation (taken from train) ·
    6,092 test · 317 dropped (317 duplicate text)". `card` is row_accounting's or Task.card()'s."""
    dropped = card.get("dropped") or {}
    total = card["train"] + card["validation"] + card["test"] + sum(dropped.values())
    why = ", ".join(f"{n:,} {reason}" for reason, n in dropped.items())
    return (f"{total:,} rows: {card['train']:,} train · {card['validation']:,} validation (taken from train) · "
            f"{card['test']:,} test · " + (f"{sum(dropped.values()):,} dropped ({why})" if dropped else "none dropped"))


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
    """(spec, raw rows, {reason: rows dropped}) of an uploaded task, read through read_table and framed."""
    spec = upload_spec(name)
    path = uploads_dir() / spec["file"]
    try:
        data = path.read_bytes()
    except OSError:
        raise DataError(f"the file of '{name}' is gone from this server: upload it again") from None
    table = read_table(data, spec["file"])
    rows, dropped = framed(table, spec["text"], spec["label"], spec.get("split"), spec.get("name", "the file"))
    return (spec, rows, dropped)


def known_uploads() -> list[str]:
    """Every uploaded task on this server, newest first."""
    files = sorted(uploads_dir().glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [f"upload:{p.stem}" for p in files if re.fullmatch(r"[0-9a-f]{16}", p.stem)]



# ---------------------------------------------------------------------------- the name people see
_NAMES: dict = {}     # uploads folder -> ((mtime, entries), {hash: file name}): re-read only after a change


def _file_names() -> dict[str, str]:
    """{task hash: the uploaded file's name} of this server's uploads ("" for an old record without one)."""
    folder = uploads_dir()
    entries = sorted(p.name for p in folder.glob("*.json"))
    stamp = (folder.stat().st_mtime_ns, tuple(entries))
    cached = _NAMES.get(str(folder))
    if cached and cached[0] == stamp:
        return cached[1]
    names = {}
    for entry in entries:
        stem = entry[:-5]
        if NAME.match(f"upload:{stem}"):
            try:
                spec = json.loads((folder / entry).read_text())
                names[stem] = shown_name(spec.get("name")) if isinstance(spec, dict) else ""
            except (OSError, ValueError):
                names[stem] = ""
    _NAMES[str(folder)] = (stamp, names)
    return names


def shown_name(filename) -> str:
    """An uploaded file's name as pages and the terminal show it: letters, digits and . - _ ( ) and
    spaces only, 80 characters at most. Every browser on the server sees every upload's name, so a
    name is data: no Markdown link, HTML or terminal escape of one person reaches the others."""
    text = re.sub(r"[^\w.\- ()]+", "_", " ".join(str(filename or "").split()))
    return text[:80].strip()


def display_name(task: str) -> str:
    """The name a person sees for a task: an upload's file name ("reviews.csv"), with the first digits
    of its hash where another upload has the same file name ("reviews.csv #3fa9"), or "upload:3fa9c1d2"
    for an upload this server has no name for; every other task name as it is. Links, the store and
    the CLI's --task still take the full `upload:<hash>`."""
    m = NAME.match(task)
    if not m:
        return task
    digest = m.group(1)
    names = _file_names()
    name = names.get(digest)
    if not name:
        return f"upload:{digest[:8]}"
    twins = [h for h, n in names.items() if n == name and h != digest]
    if not twins:
        return name
    digits = 4
    while any(h[:digits] == digest[:digits] for h in twins):
        digits += 1
    return f"{name} #{digest[:digits]}"
