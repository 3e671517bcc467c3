"""`tfxp init`: a commented pipeline config inferred from a CSV file and its label column.

One streamed pass over the file(s), read with the preflight's own reader (`preflight.open_csv`,
`preflight.csv_header`: byte-order marks, .csv.gz, duplicate header names), keeps per column a
count, the missing-value markers seen, whether every value is a number (a whole one), an ISO
date or an epoch-like number, a running sum, and its distinct values up to `DISTINCT_CAP`. From
that each column becomes a numeric, categorical or timestamp feature, or is left out with its
reason (an ID unique per row, constant, empty, the label itself); the label's values give the
task. Columns are written by their CSV header; the config's parser maps each to its feature key
(contracts/column_names.py), which a feature's comment names where it differs. The text is
checked by the config's own parser before it is returned, so `tfxp run --config` takes it as it
is.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import pathlib
import re

import yaml

from contracts.column_names import feature_key
from pipeline import preflight
from pipeline.config import ConfigError, DataConfig, DataFormat, parse_config
from pipeline.data_files import files_at, is_glob, split_glob

# Rows with a label the default split (8:1:1 hash buckets) needs: the preflight's rule.
MIN_ROWS = preflight.MIN_ROWS_PER_SPLIT * 10
# Distinct values kept per column; beyond it a column counts as high-cardinality (and not unique
# per row: with more rows than that, an ID is told by never repeating a value before the cap).
DISTINCT_CAP = 10_000
# A text column with more distinct values than this gets a top_k vocabulary of this size.
TOP_K = 100
# A label of whole numbers with at most this many values is a class (multiclass), else a number.
MAX_INTEGER_CLASSES = 10
# A text label with more values than this is not a set of classes a first model can learn.
MAX_TEXT_CLASSES = 50
# A whole-number feature with at most this many values is categorical (codes, counts of few values).
MAX_INTEGER_CATEGORIES = 10
# A numeric column of values >= 0 whose skewness is above this is heavy-tailed (a few values many
# times the typical one: prices, counts, durations): the model reads log(1 + x) (log_transform).
HEAVY_TAIL_SKEWNESS = 2.0
# Epoch seconds the name and the range both suggest: 1973-03-03 to 2128-06-11.
EPOCH_RANGE = (1e8, 5e9)
EPOCH_NAME = re.compile(r"(time|date|epoch|_at$|_ts$|^ts$|timestamp)", re.IGNORECASE)
# Cells that mark a missing value beyond the project's defaults (data.missing_values), where a
# column is otherwise numbers or dates; in a text column they are values ('none' as a plan).
EXTRA_MARKERS = ("?", "-", "None", "none", "NULL", "n/a", "na", "nan", "#N/A", "missing")
DEFAULT_MARKERS = DataConfig.model_fields["missing_values"].default
# Values a binary label's positive class is named by, lower case.
POSITIVE_WORDS = ("yes", "y", "true", "t", "positive", "pos")


@dataclasses.dataclass
class ColumnStats:
    """What the pass keeps per column: counts and at most DISTINCT_CAP values, never the rows."""

    name: str
    present: int = 0
    markers: dict = dataclasses.field(default_factory=dict)  # marker -> count
    extras: dict = dataclasses.field(default_factory=dict)  # EXTRA_MARKERS seen -> count, until `settle`
    numeric: bool = True  # every present value is a finite number
    whole: bool = True  # ... and a whole one
    iso: bool = True  # every present value is an ISO-8601 date or instant
    total: float = 0.0
    mean: float = 0.0  # running moments of the numbers (Welford's, extended to the third)
    m2: float = 0.0
    m3: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    counts: dict = dataclasses.field(default_factory=dict)  # value -> rows, up to DISTINCT_CAP values
    overflow: bool = False  # more distinct values than DISTINCT_CAP
    repeated: bool = False  # some value seen twice

    def add(self, cell: str) -> None:
        self.present += 1
        value = cell.strip()
        if value in self.counts:
            self.counts[value] += 1
            self.repeated = True
        elif len(self.counts) < DISTINCT_CAP:
            self.counts[value] = 1
        else:
            self.overflow = True
        if self.numeric:
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not math.isfinite(number) or abs(number) > preflight.FLOAT32_MAX:
                self.numeric = self.whole = False
            else:
                self.total += number
                self._moments(number)
                self.minimum, self.maximum = min(self.minimum, number), max(self.maximum, number)
                self.whole = self.whole and number == int(number) and "." not in value and "e" not in value.lower()
        if self.iso:
            self.iso = preflight.is_iso_instant(value)

    def _moments(self, x: float) -> None:
        """Updates the mean and the second and third central moment sums with one more number."""
        n = self.present
        delta = x - self.mean
        delta_n = delta / n
        term = delta * delta_n * (n - 1)
        self.m3 += term * delta_n * (n - 2) - 3 * delta_n * self.m2
        self.m2 += term
        self.mean += delta_n

    @property
    def skewness(self) -> float:
        """The numbers' sample skewness (0 for fewer than 3 numbers or no spread)."""
        if self.present < 3 or self.m2 <= 0:
            return 0.0
        return math.sqrt(self.present) * self.m3 / self.m2**1.5

    def settle(self) -> None:
        """After the pass: EXTRA_MARKERS in a column of numbers or dates mark missing values; in
        a text column they are values like any other."""
        if self.present and not (self.numeric or self.iso):
            for value, count in self.extras.items():
                self.present += count
                self.repeated = self.repeated or count > 1
                if len(self.counts) < DISTINCT_CAP:
                    self.counts[value] = count
                else:
                    self.overflow = True
        else:
            self.markers.update(self.extras)
        self.extras = {}

    @property
    def distinct(self) -> int:
        return len(self.counts)

    @property
    def unique_per_row(self) -> bool:
        return self.present > 1 and not self.repeated


@dataclasses.dataclass
class Scan:
    rows: int
    columns: dict  # name -> ColumnStats, in header order
    files: list


def input_files(path: str) -> list[str]:
    """The CSV files at `path`: the file itself, a directory's *.csv / *.csv.gz, or a glob's
    matches; found as `tfxp run` finds data.path's (pipeline/data_files.py)."""
    return files_at(path, DataFormat.CSV, fix="give tfxp init")


def _header(path: str) -> list[str]:
    header = preflight.csv_header(path)
    if len(header) == 1:
        for delimiter, name in preflight.OTHER_DELIMITERS.items():
            if delimiter in header[0]:
                raise ConfigError(f"{path} separates its columns with {name}, not commas; convert it to CSV")
    return header


def scan_csv(files: list[str]) -> Scan:
    """One streamed pass over the files (the same header in each); ConfigError on unreadable input."""
    header = _header(files[0])
    columns = {name: ColumnStats(name) for name in header}
    stats = list(columns.values())
    defaults, extras = {m.strip() for m in DEFAULT_MARKERS}, set(EXTRA_MARKERS)
    rows = 0
    for path in files:
        if preflight.csv_header(path) != header:
            raise ConfigError(f"{files[0]} and {path} have different headers; every file needs the same columns")
        for _, row in preflight.csv_rows(path, len(header)):
            rows += 1
            for column, cell in zip(stats, row):
                value = cell.strip()
                if value in defaults:
                    column.markers[value] = column.markers.get(value, 0) + 1
                elif value in extras:
                    column.extras[value] = column.extras.get(value, 0) + 1
                else:
                    column.add(value)
    if not rows:
        raise ConfigError(f"{files[0]} has a header but no rows")
    for column in stats:
        column.settle()
    return Scan(rows, columns, files)


# --------------------------------------------------------------------------- inference


@dataclasses.dataclass
class Choice:
    """What a column becomes: options for `features:` or a reason it is left out."""

    options: dict | None = None
    note: str = ""  # a comment on the line
    left_out: str = ""  # why the column is not a feature


def _number_text(x: float) -> int | float:
    return int(x) if x == int(x) else float(f"{x:.6g}")


def feature_choice(column: ColumnStats, rows: int) -> Choice:
    """A column's feature type (or why it is left out), from what the pass saw of it."""
    if not column.present:
        return Choice(left_out="empty: no value in any row")
    if column.distinct == 1 and not column.overflow:
        ((value, _),) = column.counts.items()
        return Choice(left_out=f"constant: '{value}' in every row that has a value")
    missing = rows - column.present
    missing_note = f"; {missing} missing" if missing else ""
    # Timestamps first: an instant per row is as unique as an ID, yet its hour, weekday and month repeat.
    if column.iso:
        return Choice({"type": "timestamp", "format": "iso"}, f"ISO-8601 dates{missing_note}")
    if (
        column.whole
        and EPOCH_NAME.search(column.name)
        and EPOCH_RANGE[0] <= column.minimum <= column.maximum <= EPOCH_RANGE[1]
    ):
        return Choice({"type": "timestamp", "format": "epoch"}, f"seconds since 1970{missing_note}")
    # Text unique per row, or whole numbers unique per row and dense like a row counter (1, 2, ...,
    # with gaps): a count or an amount that happens not to repeat in a sample stays a number.
    dense = column.whole and column.maximum - column.minimum < 2 * rows
    if column.unique_per_row and column.present == rows and (dense or not column.numeric):
        return Choice(left_out="unique in every row, like an ID: nothing to learn that carries over to new rows")
    if column.numeric:
        if column.whole and not column.overflow and column.distinct <= MAX_INTEGER_CATEGORIES:
            return Choice({"type": "categorical"}, f"{column.distinct} whole-number values{missing_note}")
        options: dict = {"type": "numeric"}
        note = f"numbers from {_number_text(column.minimum)} to {_number_text(column.maximum)}"
        if heavy_tailed(column):
            options["log_transform"] = True
            note += f", skewness {column.skewness:.1f}: the model reads log(1 + x)"
        if missing:
            options["default"] = _number_text(column.total / column.present)
            note += f"; {missing} missing, filled with the mean"
        return Choice(options, note)
    if column.overflow or column.distinct > TOP_K:
        many = f"more than {DISTINCT_CAP}" if column.overflow else str(column.distinct)
        # The one-pass approximate analyzer is exact only up to top_k distinct values; above
        # that, which values make the cut changed from run to run (the bench zoo's cars names).
        return Choice(
            {"type": "categorical", "top_k": TOP_K, "num_oov_buckets": 5, "vocabulary": "exact"},
            f"{many} distinct values: the {TOP_K} most frequent (exact count, the same every run), "
            f"the rest share 5 buckets{missing_note}",
        )
    return Choice({"type": "categorical"}, f"{column.distinct} distinct values{missing_note}")


def heavy_tailed(column: ColumnStats) -> bool:
    """Numbers >= 0 with a long right tail (skewness above HEAVY_TAIL_SKEWNESS), which the
    z-score alone squeezes into a narrow band with a few far outliers."""
    return column.numeric and column.minimum >= 0 and column.skewness > HEAVY_TAIL_SKEWNESS


def _class_order(column: ColumnStats) -> list[str]:
    """Classes in a stable sorted order, which new rows do not reshuffle: numbers by value, text
    by Unicode code point (Python's string order)."""
    if column.numeric:
        return sorted(column.counts, key=float)
    return sorted(column.counts)


def label_section(column: ColumnStats, rows: int, source: str) -> tuple[dict, str]:
    """The label's section and a comment on the task, from the label column's values."""
    if not column.present:
        raise ConfigError(f"label column '{column.name}' of {source} has no value in any row; choose another --label")
    if column.distinct == 1 and not column.overflow:
        ((value, _),) = column.counts.items()
        raise ConfigError(
            f"label column '{column.name}' of {source} is '{value}' in every row; a model cannot "
            "learn from one value: choose another --label"
        )
    label: dict = {"column": column.name, "task": ""}
    counts = ", ".join(f"{v}: {column.counts[v]}" for v in _class_order(column)[:MAX_TEXT_CLASSES])
    if column.distinct == 2 and not column.overflow:
        values = _class_order(column)
        if column.numeric and {float(v) for v in values} == {0.0, 1.0}:
            note = f"binary: 0/1 ({counts})"
        else:
            named = [v for v in values if v.lower() in POSITIVE_WORDS]
            positive = named[0] if named else min(values, key=lambda v: (column.counts[v], v))
            label["positive_values"] = [positive]
            why = "named so" if named else "the rarer of the two"
            note = f"binary: '{positive}' is the positive class ({why}; {counts})"
        label["task"] = "binary"
    elif not column.numeric or (column.whole and not column.overflow and column.distinct <= MAX_INTEGER_CLASSES):
        if column.overflow or column.distinct > MAX_TEXT_CLASSES:
            many = f"more than {DISTINCT_CAP}" if column.overflow else column.distinct
            raise ConfigError(
                f"label column '{column.name}' of {source} holds {many} distinct text values, too many "
                f"classes for a first model (at most {MAX_TEXT_CLASSES}); choose another --label, or "
                "group its values into fewer classes"
            )
        label["task"] = "multiclass"
        label["classes"] = _class_order(column)
        order = "by value" if column.numeric else "sorted by Unicode code point"
        note = f"multiclass: {column.distinct} classes, {order}, the model's output order ({counts})"
    else:
        label["task"] = "regression"
        note = f"regression: numbers from {_number_text(column.minimum)} to {_number_text(column.maximum)}"
        if heavy_tailed(column):
            label["log_transform"] = True
            note += f", skewness {column.skewness:.1f}: the model learns log(1 + y)"
    missing = rows - column.present
    if missing:
        label["missing"] = "drop"
        note += f"; {missing} rows without a label are left out"
    return label, note


def _slug(text: str, separator: str) -> str:
    return re.sub(r"[^a-z0-9]+", separator, text.lower()).strip(separator) or "model"


def _data_path(files: list[str], given: str, output: str | None) -> str:
    """data.path as written: relative to the config file's directory when the data is below it,
    absolute otherwise (pipeline/config.py resolves a relative data.path against the config file)."""
    target = os.path.abspath(files[0] if len(files) == 1 and not is_glob(given) else given)
    if output:
        base = os.path.dirname(os.path.abspath(output))
        relative = os.path.relpath(target, base)
        if not relative.startswith(os.pardir):
            return relative
    return target


def _closest(name: str, names: list[str]) -> str:
    """The header name closest to `name` (case aside), or ''."""
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else ""


def infer_config(path: str, label: str, output: str | None = None) -> str:
    """The commented YAML config for the CSV at `path` (a file, a directory or a glob) with the
    label in column `label`; `output` is where it will be written (None: stdout)."""
    files = input_files(path)
    header = _header(files[0])
    source = files[0] if len(files) == 1 else f"the {len(files)} files of {path}"
    keys = dict(zip(header, preflight.header_keys(header, files[0])))  # two columns, one key: one line
    # --label by the column's header or its feature key.
    label = {key: name for name, key in keys.items()}.get(feature_key(label), label) if label not in header else label
    if label not in header:
        closest = _closest(label, header)
        raise ConfigError(
            f"label column '{label}' is not in {files[0]}; "
            + (f"did you mean '{closest}'?" if closest else f"the columns are: {', '.join(header)}")
        )
    scan = scan_csv(files)
    labelled = scan.columns[label].present
    if labelled < MIN_ROWS:
        raise ConfigError(
            f"{source} has {labelled} rows with a label; the default 8:1:1 train:eval:test split needs at "
            f"least {MIN_ROWS} (each split must expect {preflight.MIN_ROWS_PER_SPLIT}); add rows"
        )
    label_options, label_note = label_section(scan.columns[label], scan.rows, source)
    features: dict[str, Choice] = {}
    left_out: dict[str, str] = {label: "the label"}
    for name, column in scan.columns.items():
        if name == label:
            continue
        choice = feature_choice(column, scan.rows)
        if choice.left_out:
            left_out[name] = choice.left_out
        else:
            if keys[name] != name:
                choice.note = f"feature key {keys[name]}; {choice.note}"
            features[name] = choice
    if not features:
        raise ConfigError(
            f"no column of {source} but the label can be a feature ("
            + "; ".join(f"{k}: {v}" for k, v in left_out.items() if k != label)
            + "); give data with feature columns"
        )
    if label_options.get("name", "label") in {keys[name] for name in features}:
        label_options["name"] = f"{_slug(label, '_')}_label"
    seen = sorted({m for c in scan.columns.values() for m in c.markers})
    named = (
        files[0]
        if len(files) == 1 and not is_glob(path)
        else split_glob(os.path.abspath(path))[0]
        if is_glob(path)
        else path
    )
    stem = re.sub(r"(\.csv)?(\.gz)?$", "", os.path.basename(os.path.abspath(named)))
    text = render(
        config_name=output or "THIS_FILE",
        pipeline_name=_slug(stem, "-"),
        model_name=_slug(stem, "_"),
        data_path=_data_path(files, path, output),
        markers=seen,
        rows=scan.rows,
        source=source,
        label=label_options,
        label_note=label_note,
        features=features,
        left_out=left_out,
    )
    base = pathlib.Path(os.path.dirname(os.path.abspath(output))) if output else pathlib.Path.cwd()
    parse_config(yaml.safe_load(text), base=base)  # the parser's own one-line errors, should one remain
    return text


def _flow(value: object) -> str:
    """A value as YAML flow text on one line."""
    return (
        yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True, sort_keys=False)
        .strip()
        .removesuffix("...")
        .strip()
    )


def render(
    *,
    config_name: str,
    pipeline_name: str,
    model_name: str,
    data_path: str,
    markers: list[str],
    rows: int,
    source: str,
    label: dict,
    label_note: str,
    features: dict[str, Choice],
    left_out: dict[str, str],
) -> str:
    """The config's text: each inferred choice with the reason beside it."""
    lines = [
        f"# Written by tfxp init from {source} ({rows} rows). Check the choices, then run:",
        f"#   scripts/runtime.sh tfxp run --config {config_name}",
        f"pipeline_name: {pipeline_name}",
        f"model_name: {model_name}",
        "output_dir: output          # relative to the directory you run from",
        "",
        "data:",
        f"  path: {_flow(data_path)}" + ("      # relative to this file" if not os.path.isabs(data_path) else ""),
        "  format: csv",
    ]
    extra = [m for m in markers if m not in DEFAULT_MARKERS]
    if markers:
        shown = ", ".join("empty cells" if not m else repr(m) for m in markers)
        lines.append(f"  # Missing values seen as: {shown} (data.missing_values).")
    if extra:
        lines.append(f"  missing_values: {_flow(list(DEFAULT_MARKERS) + extra)}")
    lines += ["", f"# {label_note}", f"label: {_flow(label)}", "", "features:"]
    width = max(len(name) for name in features) + 2
    for name, choice in features.items():
        entry = f"  {_flow(name)}: {_flow(choice.options)}"
        lines.append(f"{entry:<{width + 40}}  # {choice.note}" if choice.note else entry)
    if left_out:
        lines += ["", "# Columns left out:"]
        lines += [f"#   {name}: {why}" for name, why in left_out.items()]
    lines += [
        "",
        "# Training follows the data (models/training_plan.py): the batch size from the train",
        "# split's rows, epochs until the eval loss stops improving (early stopping, the best epoch's",
        "# weights kept), the learning rate halving on plateaus; the Tuner's trials and widths sized",
        "# to the rows. Categorical inputs with more than 64 ids are embedded, the others one-hot.",
        "# Set trainer.train_steps, trainer.batch_size or tuner.budget (trials or minutes) to choose.",
        "",
        "# No evaluator thresholds: a first model is judged by the task's defaults (README, Task",
        "# types); set evaluator.min_auc, min_accuracy, max_mae, ... to judge it by your own.",
        "",
    ]
    return "\n".join(lines)
