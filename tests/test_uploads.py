"""Your own data: each readable format becomes a task; each unusable file gets a one-line reason;
the name a link carries is a hash looked up here, never a path."""
import io
import json

import pandas as pd
import pytest

from core import uploads
from core.data import load_task, row_accounting
from core.errors import DataError
from core.urlstate import config_from_query


def table(n_per_label: int = 12) -> pd.DataFrame:
    rows = [{"review": f"{word} product number {i}, {word} again", "stars": label, "part": "train" if i % 4 else "test"}
            for label, word in ((1, "awful"), (5, "lovely"), (3, "middling")) for i in range(n_per_label)]
    return pd.DataFrame(rows)


def as_bytes(df: pd.DataFrame, ext: str) -> bytes:
    if ext == ".csv":
        return df.to_csv(index=False).encode()
    if ext == ".tsv":
        return df.to_csv(index=False, sep="\t").encode()
    if ext == ".jsonl":
        return df.to_json(orient="records", lines=True).encode()
    buf = io.BytesIO()
    df.to_parquet(buf)
    return buf.getvalue()


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_each_format_becomes_a_task_like_the_shipped_ones(ext):
    data = as_bytes(table(), ext)
    read = uploads.read_table(data, f"reviews{ext}")
    assert list(read.columns) == ["review", "stars", "part"] and len(read) == 36
    assert uploads.check_columns(read, "review", "stars") == []        # numbers as labels are fine
    name = uploads.save_upload(data, f"reviews{ext}", "review", "stars", "part")
    assert uploads.NAME.match(name)
    assert uploads.save_upload(data, f"reviews{ext}", "review", "stars", "part") == name   # content-addressed
    task = load_task(name)
    assert sorted(task.label_names) == ["1", "3", "5"] and len(task.test_texts) == 9     # the split column's tests
    assert name in uploads.known_uploads()


def test_without_a_split_column_a_seeded_split_is_made_and_other_columns_another_task():
    data = as_bytes(table(), ".csv")
    with_split = uploads.save_upload(data, "r.csv", "review", "stars", "part")
    without = uploads.save_upload(data, "r.csv", "review", "stars")
    assert with_split != without
    task = load_task(without)
    assert len(task.train_texts) + len(task.val_texts) + len(task.test_texts) == 36


@pytest.mark.parametrize("data, name, why", [
    (b"", "x.csv", "is empty"),
    (b"\xff\xfe" + "text,label\nhé,a\n".encode("utf-16-le"), "x.csv", "binary data"),
    ("text,label\nh\xe9llo,a\n".encode("latin-1"), "x.csv", "not UTF-8"),
    (b"<!doctype html><html><body>hi</body></html>", "x.csv", "HTML"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "x.csv", "binary data"),
    (b"text,label\n", "x.csv", "no rows"),
    (b'text,label\n"unterminated,a\n', "x.csv", "cannot be read as CSV"),
    (b"not parquet at all", "x.parquet", "cannot be read as Parquet"),
    (b"text,label\na,b\n", "x.xlsx", "not '.xlsx'"),
])
def test_an_unusable_file_gets_a_one_line_reason(data, name, why):
    with pytest.raises(DataError, match=why) as err:
        uploads.read_table(data, name)
    assert "\n" not in str(err.value)


def test_a_file_over_the_limit_is_refused_with_both_sizes(monkeypatch):
    monkeypatch.setattr(uploads, "MAX_BYTES", 1024)
    with pytest.raises(DataError, match="the limit is"):
        uploads.read_table(b"text,label\n" + b"a,b\n" * 1000, "big.csv")


@pytest.mark.parametrize("columns, why", [
    (("review", "review"), "two different columns"),
    (("stars", "review"), "holds numbers, not text"),
    (("review", "part"), None),                   # two labels: usable
    (("review", "nope"), "no column 'nope'"),
])
def test_columns_that_cannot_make_a_task_are_said(columns, why):
    problems = uploads.check_columns(table(), *columns)
    assert (problems == []) if why is None else any(why in p for p in problems), problems


def test_one_label_only_and_single_example_labels_are_refused():
    df = table()
    one = df.assign(stars=1)
    assert any("at least two" in p for p in uploads.check_columns(one, "review", "stars"))
    rare = pd.concat([df, pd.DataFrame([{"review": "a lone one", "stars": 9, "part": "train"}])])
    assert any("single example" in p for p in uploads.check_columns(rare, "review", "stars"))
    with pytest.raises(DataError, match="at least two"):
        uploads.save_upload(as_bytes(one, ".csv"), "one.csv", "review", "stars")


def test_a_name_is_a_hash_looked_up_here_never_a_path():
    for bad in ("upload:../../etc/passwd", "upload:0123", "upload:/etc/passwd", "upload:ABCDEF0123456789"):
        with pytest.raises(DataError, match="not an uploaded task's name"):
            load_task(bad)
    with pytest.raises(DataError, match="no uploaded data"):
        load_task("upload:0123456789abcdef")


def test_a_link_may_name_an_upload_of_this_server_only():
    name = uploads.save_upload(as_bytes(table(), ".csv"), "r.csv", "review", "stars")
    cfg, errors = config_from_query({"task": name, "size": "16"})
    assert cfg.task == name and cfg.size == 16 and errors == []
    cfg, errors = config_from_query({"task": "upload:0123456789abcdef"})
    assert cfg.task == "r8" and "not one of the lab's tasks" in errors[0]


def test_a_damaged_record_is_a_message():
    name = uploads.save_upload(as_bytes(table(8), ".csv"), "d.csv", "review", "stars")
    sidecar = uploads.uploads_dir() / f"{name.split(':')[1]}.json"
    sidecar.write_text(json.dumps({"file": "../../etc/passwd"}))
    load_task.cache_clear()
    with pytest.raises(DataError, match="damaged"):
        load_task(name)


def test_labels_that_are_numbers_and_strings_in_one_column_are_read_as_text():
    df = pd.DataFrame({"text": [f"row {i} about {w}" for i, w in enumerate(["x"] * 30)],
                       "label": [1, "1", "one"] * 10})
    assert uploads.check_columns(df, "text", "label") == []
    assert sorted(uploads.class_counts(df, "label")) == ["1", "one"]          # 1 and "1" are one label


def test_a_file_of_50000_rows_becomes_a_task_and_its_run_time_is_said():
    from core.estimate import estimate_config
    from core.config import RunConfig

    df = pd.DataFrame({"text": [f"note {i}: the {('red', 'green', 'blue')[i % 3]} one" for i in range(50_000)],
                       "label": [("red", "green", "blue")[i % 3] for i in range(50_000)]})
    name = uploads.save_upload(as_bytes(df, ".csv"), "big.csv", "text", "label")
    task = load_task(name)
    assert len(task.train_texts) + len(task.val_texts) + len(task.test_texts) == 50_000
    info = {"n_train": len(task.train_texts), "n_val": len(task.val_texts), "n_test": len(task.test_texts),
            "sample": task.train_texts[::200]}
    seconds = estimate_config(RunConfig(task=name, size=None, strategy="full"), info)
    assert seconds is not None and seconds > estimate_config(RunConfig(task=name, size=256, strategy="full"), info)


# ---------------------------------------------------------------------------- shown by the file's name
def test_an_upload_is_shown_by_its_file_name_with_hash_digits_only_where_two_share_it():
    data = as_bytes(table(), ".csv")
    solo = uploads.save_upload(data, "display-solo-reviews.csv", "review", "stars")
    assert uploads.display_name(solo) == "display-solo-reviews.csv"
    assert load_task(solo).title == "display-solo-reviews.csv"
    first = uploads.save_upload(data, "display-twin.csv", "review", "stars")
    second = uploads.save_upload(as_bytes(table(13), ".csv"), "display-twin.csv", "review", "stars")
    shown = {uploads.display_name(first), uploads.display_name(second)}
    assert len(shown) == 2, shown                                     # the two can be told apart
    for name in (first, second):
        label = uploads.display_name(name)
        file_name, digits = label.split(" #")
        assert file_name == "display-twin.csv" and 4 <= len(digits) < 16 and name.startswith(f"upload:{digits}")
    assert uploads.display_name(solo) == "display-solo-reviews.csv"  # another file's twins change nothing here
    assert uploads.display_name("r8") == "r8" and uploads.display_name("csv:/tmp/x.csv") == "csv:/tmp/x.csv"


def test_an_old_record_without_a_file_name_or_an_unknown_upload_shows_a_short_hash():
    name = uploads.save_upload(as_bytes(table(9), ".csv"), "display-old.csv", "review", "stars")
    sidecar = uploads.uploads_dir() / f"{name.split(':')[1]}.json"
    spec = json.loads(sidecar.read_text())
    del spec["name"]
    sidecar.write_text(json.dumps(spec))
    assert uploads.display_name(name) == name[:15]                     # "upload:" and 8 digits
    load_task.cache_clear()
    assert len(load_task(name).train_texts) > 0                        # still a task
    assert uploads.display_name("upload:00000000000000ff") == "upload:00000000"


# ---------------------------------------------------------------------------- columns guessed from content
def news(n_per_topic: int = 20) -> pd.DataFrame:
    """A JSON Lines news file as the issue met it: the label column (topic) before the text (body)."""
    topics = ("earn", "acq", "crude", "trade")
    return pd.DataFrame([{"id": f"{t}-{i}", "topic": t,
                          "body": f"{t.upper()} report {i}: the board said on Monday that {t} figures for the "
                                  f"quarter were {i * 7} million, and analysts expect more of the same."}
                         for i in range(n_per_topic) for t in topics])


def test_columns_are_guessed_from_their_content_not_their_order():
    read = uploads.read_table(as_bytes(news(), ".jsonl"), "news.jsonl")
    assert list(read.columns) == ["id", "topic", "body"]
    assert uploads.guess_columns(read) == {"text": "body", "label": "topic", "split": None}
    assert uploads.check_columns(read, "body", "topic") == []


def test_names_win_where_they_fit_and_lose_where_they_do_not():
    df = table().rename(columns={"review": "text", "stars": "label"})          # named and fitting
    df["note"] = [f"a longer free-text note number {i} that is not the text" * 2 for i in range(len(df))]
    assert uploads.guess_columns(df) == {"text": "text", "label": "label", "split": "part"}
    swapped = news().rename(columns={"body": "label", "topic": "text"})       # named, but the content says otherwise
    guess = uploads.guess_columns(swapped)
    assert (guess["text"], guess["label"]) == ("label", "text")


def test_a_label_column_with_a_value_per_row_is_refused_in_one_short_sentence():
    read = news()
    problems = uploads.check_columns(read, "topic", "body")
    assert len(problems) == 1 and "looks like text, not a label" in problems[0], problems
    assert "board said" not in problems[0]                                  # no article printed
    assert uploads.short("x" * 500) == "x" * 39 + "…" and uploads.short("a\n b") == "a b"


# ---------------------------------------------------------------------------- every row accounted for
def test_every_row_of_the_file_is_counted_to_the_splits_or_a_reason():
    df = table(20)
    extra = pd.DataFrame([
        {"review": "   ", "stars": 1, "part": "train"},                              # empty text
        {"review": None, "stars": 5, "part": "train"},                               # no text
        {"review": "no label here", "stars": None, "part": "train"},                 # missing label
        {"review": df.review[1], "stars": 1, "part": "train"},                       # duplicate in train
        {"review": df.review[2], "stars": 1, "part": "test"},                        # a test text seen in train
        {"review": "held back for later", "stars": 3, "part": "dev"},                # neither train nor test
    ])
    full = pd.concat([df, extra], ignore_index=True)
    acc = row_accounting(full, "review", "stars", "part")
    assert acc["rows"] == len(full) == 66
    assert acc["dropped"] == {"empty text": 2, "missing label": 1, "'part' neither train nor test": 1,
                              "duplicate text": 1, "test text also in train": 1}
    assert acc["rows"] == sum(acc["dropped"].values()) + acc["train"] + acc["validation"] + acc["test"]
    assert acc["validation"] > 0 and acc["test_from"] == "the 'part' column"
    line = uploads.rows_text(acc)
    assert line.startswith("66 rows: ") and "validation (taken from train)" in line and "6 dropped" in line
    # the stored task says the same (the sidebar's facts read it)
    name = uploads.save_upload(as_bytes(full, ".csv"), "accounted.csv", "review", "stars", "part")
    card = load_task(name).card()
    assert (card["train"], card["validation"], card["test"]) == (acc["train"], acc["validation"], acc["test"])
    assert card["dropped"] == acc["dropped"] and uploads.rows_text(card) == line


def test_classes_with_fewer_than_five_training_examples_are_counted():
    df = pd.concat([table(20), pd.DataFrame([{"review": f"rare one {i}", "stars": 7, "part": "train"}
                                             for i in range(3)])], ignore_index=True)
    acc = row_accounting(df, "review", "stars")
    assert acc["classes"] == 4 and acc["rare"] == 1 and acc["test_from"] == "a seeded 20 % of the rows"
    assert row_accounting(table(20), "review", "stars")["rare"] == 0


def test_an_upload_s_name_is_shown_as_data_never_as_markup_or_escapes(tmp_path):
    """Every browser on a server sees every upload's name: a Markdown link, HTML or a terminal escape
    in one person's file name is shown as plain characters."""
    import pandas as pd

    from core import uploads

    df = pd.DataFrame({"text": [f"note {i} about {w}" for i in range(20) for w in ("cats", "dogs")],
                       "label": [w for i in range(20) for w in ("cats", "dogs")]})
    name = uploads.save_upload(df.to_csv(index=False).encode(), "[Slides](https://evil)<b>\x1b[31m.csv", "text", "label")
    shown = uploads.display_name(name)
    assert not set(shown) & set("[]<>:/\x1b") and shown.endswith(".csv"), shown
    assert uploads.shown_name("reviews (2).csv") == "reviews (2).csv"
