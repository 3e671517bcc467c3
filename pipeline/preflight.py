"""Checks the data a config names, and the output directory, before any TFX component starts.

TFX would fail on these minutes later with a long traceback, or train on them without a
word; here each gets one line that says what is wrong (file, line, column, value) and how to
fix it. CSV files are read once, a row at a time: memory does not grow with the file.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import gzip
import math
import os
import re
import socket
import tempfile
from typing import IO, Iterator

from contracts.column_names import ColumnNameError, column_keys
from contracts.column_names import column_headers as header_names
from models.model_inputs import ISO_PATTERN
from pipeline.config import ConfigError, DataConfig, DataFormat, FeatureType, PipelineConfig, not_visible_hint
from pipeline.data_files import data_files, files_at

# The largest finite float32: ExampleGen writes floats as float32, so anything beyond is inf.
FLOAT32_MAX = 3.4028234663852886e38
# Each split's expected share of the rows (hash buckets) must be at least this many rows: at
# an expectation of 5 a split comes out empty with a chance below 1% (e^-5), and an empty
# split fails Transform or the Evaluator.
MIN_ROWS_PER_SPLIT = 5
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"


def label_sources(config: PipelineConfig) -> list[str]:
    """The columns the label is computed from: a row missing one of them has no label."""
    columns = [config.label.column]
    if config.label.greater_than_fraction_of:
        columns.append(config.label.greater_than_fraction_of)
    return list(dict.fromkeys(columns))


def required_columns(config: PipelineConfig) -> list[str]:
    return list(dict.fromkeys([*label_sources(config), *config.features]))


def task(config: PipelineConfig) -> str:
    """binary, multiclass or regression: `label.task`."""
    return config.label.task.value


def numeric_columns(config: PipelineConfig) -> list[str]:
    """Columns read as numbers: numeric and bucketized features, and the label's columns where
    the label is a number (regression) or its rule compares numbers (binary 0/1 classes, or
    greater_than_fraction_of); multiclass classes may be text."""
    columns = [
        name for name, spec in config.features.items() if spec.type in (FeatureType.NUMERIC, FeatureType.BUCKETIZED)
    ]
    if task(config) == "regression" or (task(config) == "binary" and not config.label.positive_values):
        columns.extend(label_sources(config))
    return list(dict.fromkeys(columns))


@contextlib.contextmanager
def open_csv(path: str) -> Iterator[IO[str]]:
    """The file as text: UTF-8 with or without a byte-order mark, gzip-decompressed when its
    name ends in .gz (as Beam's file system, which ExampleGen reads with, decides by the name)."""
    with open(path, "rb") as raw:
        magic = raw.read(4)
    if magic.startswith(_ZIP_MAGIC):
        raise ConfigError(
            f"data file {path} is a zip archive, not CSV text; unzip it and point data.path at the CSV inside"
        )
    if magic.startswith(_GZIP_MAGIC) and not path.endswith(".gz"):
        raise ConfigError(
            f"data file {path} is gzip-compressed but its name does not end in .gz "
            "(ExampleGen decompresses by the name); rename it to "
            f"{os.path.basename(path)}.gz"
        )
    if path.endswith(".gz") and not magic.startswith(_GZIP_MAGIC):
        raise ConfigError(f"data file {path} is named .gz but is not gzip-compressed; remove the .gz from its name")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8-sig") as f:
        yield f


def csv_header(path: str) -> list[str]:
    try:
        with open_csv(path) as f:
            reader = csv.reader(f)
            header = next(reader, None)
            first_row = next(reader, None)
    except UnicodeDecodeError:
        raise ConfigError(
            f"data file {path} is not UTF-8 text; convert it (for example with "
            "iconv -f LATIN1 -t UTF-8) or point data.path at the right file"
        ) from None
    except (OSError, EOFError) as err:  # a truncated or corrupt .gz
        raise ConfigError(
            f"data file {path} cannot be decompressed ({err}); recompress it with gzip, or give the plain CSV"
        ) from None
    if not header:
        raise ConfigError(f"data file {path} has no header line; add a first line naming the columns")
    if first_row is None:
        raise ConfigError(f"data file {path} has a header but no rows")
    names = [c.strip() for c in header]
    seen: dict[str, int] = {}
    for position, name in enumerate(names, 1):
        if name in seen:
            raise ConfigError(
                f"data file {path} has two columns named '{name}' (columns "
                f"{seen[name]} and {position} of the header); rename one of them"
            )
        seen[name] = position
    return names


OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "pipes"}


@dataclasses.dataclass
class _Column:
    """What the scan keeps per checked column: a count and a few values, never the rows."""

    index: int
    numeric: bool
    present: int = 0


@dataclasses.dataclass
class DataSummary:
    """What one pass over the files found (see `scan`)."""

    rows: int = 0  # data rows read
    rows_kept: int = 0  # rows ExampleGen writes (label present, or label.missing: error)
    label_missing: int = 0  # rows whose label (or a column it is computed from) is missing
    other_classes: int = 0  # rows of a class outside label.classes (dropped: label.other_classes)
    first_label_missing: str = ""  # "FILE, line N, column 'C'" of the first
    label_classes: dict = dataclasses.field(default_factory=dict)  # class -> first "FILE, line N"
    present: dict = dataclasses.field(default_factory=dict)  # feature -> rows (kept) with a value


def csv_rows(path: str, width: int) -> Iterator[tuple[int, list[str]]]:
    """The rows below a CSV file's header, each with its line number; blank lines are skipped.

    A row of another width than the header's, text that is not UTF-8 and a corrupt .gz file are
    one line each, naming the file and the line (ConfigError)."""
    line = 0
    try:
        with open_csv(path) as f:
            reader = csv.reader(f)
            next(reader, None)
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                if len(row) != width:
                    raise ConfigError(
                        f"data file {path}, line {line}: {len(row)} fields, but the header "
                        f"has {width} (a truncated file, another delimiter, or an "
                        "unquoted comma); fix or remove that line"
                    )
                yield line, row
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"data file {path} is not UTF-8 text (after line {line}: {err.reason}); "
            "convert it, for example with iconv -f LATIN1 -t UTF-8"
        ) from None
    except (OSError, EOFError) as err:
        raise ConfigError(
            f"data file {path} cannot be decompressed after line {line} ({err}); "
            "recompress it with gzip, or give the plain CSV"
        ) from None


def _number(cell: str) -> float | None:
    """The cell as Python's float() reads it (as ExampleGen types numbers), or None."""
    try:
        return float(cell)
    except ValueError:
        return None


def _label_class(config: PipelineConfig, values: dict[str, str]) -> object:
    """The class the label rule gives a row (models/preprocessing.py `_label`); for multiclass
    the value, for regression the number."""
    label = config.label
    if task(config) == "multiclass":
        return values[label.column].strip()
    if task(config) == "regression":
        return float(values[label.column])
    if label.greater_than_fraction_of:
        return int(float(values[label.column]) > label.fraction * float(values[label.greater_than_fraction_of]))
    if label.positive_values:
        return int(values[label.column] in label.positive_values)
    return int(float(values[label.column]) > 0.5)


def scan(config: PipelineConfig, path: str, header: list[str], summary: DataSummary) -> DataSummary:
    """Reads every row of one CSV file once (streamed) and adds what it finds to `summary`.

    Raises ConfigError for the first row with the wrong field count, a cell that is not UTF-8,
    text in a numeric column, or a number a float32 cannot hold; missing labels, the row count,
    empty features and a constant label are judged once every file is read (`judge`).
    """
    markers = {m.strip() for m in config.data.missing_values}
    numeric = set(numeric_columns(config))
    positions = {key: i for i, key in enumerate(header_keys(header, path))}
    columns = {name: _Column(positions[name], name in numeric) for name in required_columns(config)}
    sources = label_sources(config)
    drop = config.label.missing == "drop"
    # multiclass with its classes listed: a row of another class stops the run, or is dropped.
    classes = set(config.label.classes) if task(config) == "multiclass" else set()
    # A 0/1 label column holding text most likely names its classes in words.
    hint = {name: "make the feature categorical" for name in config.features}
    timestamps = {
        name: spec.format or "epoch"
        for name, spec in config.features.items()
        if spec.type is FeatureType.TIMESTAMP and name in columns
    }
    if task(config) == "binary" and not config.label.greater_than_fraction_of:
        hint[config.label.column] = "set label.positive_values to the values of the positive class"
    for line, row in csv_rows(path, len(header)):
        summary.rows += 1
        values = {}
        for column_name, column in columns.items():
            cell = row[column.index]
            if cell.strip() in markers:
                continue
            if column.numeric:
                _check_number(path, line, header[column.index], cell, hint.get(column_name))
            elif column_name in timestamps:
                _check_timestamp(path, line, header[column.index], cell, timestamps[column_name])
            values[column_name] = cell
        missing = [c for c in sources if row[columns[c].index].strip() in markers]
        if missing:
            summary.label_missing += 1
            where = f"{path}, line {line}, column '{header[columns[missing[0]].index]}'"
            summary.first_label_missing = summary.first_label_missing or where
            if drop:
                continue
        elif classes and values[config.label.column].strip() not in classes:
            if config.label.other_classes == "drop":
                summary.other_classes += 1
                continue
            raise ConfigError(
                f"data file {path}, line {line}, column '{header[columns[config.label.column].index]}': the label "
                f"'{values[config.label.column].strip()}' is not one of label.classes "
                f"({', '.join(config.label.classes)}); add it to label.classes or remove the row "
                "(label.other_classes: drop leaves out every such row)"
            )
        if not missing and len(summary.label_classes) < 2:  # two classes are all `judge` asks for
            summary.label_classes.setdefault(_label_class(config, values), f"{path}, line {line}")
        summary.rows_kept += 1
        for column_name in values:
            summary.present[column_name] = summary.present.get(column_name, 0) + 1
    return summary


def _check_number(path: str, line: int, column: str, cell: str, fix: str | None) -> None:
    number = _number(cell)
    if number is None:
        raise ConfigError(
            f"data file {path}, line {line}, column '{column}': '{cell}' is not a number, "
            f"but '{column}' is read as one; fix the value"
            + (
                f", add it to data.missing_values if it marks a missing value, or {fix}"
                if fix
                else " or add it to data.missing_values if it marks a missing value"
            )
        )
    if not math.isfinite(number) or abs(number) > FLOAT32_MAX:
        what = "is not finite" if not math.isfinite(number) else "overflows a 32-bit float"
        raise ConfigError(
            f"data file {path}, line {line}, column '{column}': '{cell}' {what}; "
            "give a finite number, or leave the cell empty to use the feature's default"
        )


_ISO = re.compile(ISO_PATTERN, re.ASCII)
_WHOLE_NUMBER = re.compile(r"[+-]?\d+", re.ASCII)


def is_iso_instant(text: str) -> bool:
    """Whether models/derived.py reads `text` as an instant (the same pattern and ranges)."""
    match = _ISO.fullmatch(text.strip())
    if not match:
        return False
    year, month, day, hour, minute, second, _, offset_hours, offset_minutes = (
        int(g) if g and g.isdigit() else 0 for g in match.groups()
    )
    try:
        datetime.datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return False
    return second <= 60 and offset_hours <= 23 and offset_minutes <= 59


def _check_timestamp(path: str, line: int, column: str, cell: str, fmt: str) -> None:
    """A timestamp the transform could not read would be a missing value: stop on it instead."""
    where = f"data file {path}, line {line}, column '{column}'"
    if fmt == "iso" and not is_iso_instant(cell):
        raise ConfigError(
            f"{where}: '{cell}' is not an ISO-8601 date or date and time (such as 2019-03-01, 2019/03/01 or "
            "2019-03-01T14:05:00+02:00); fix the value, add it to data.missing_values if it marks "
            f"a missing value, or set features.{column}.format: epoch for seconds since 1970"
        )
    if fmt == "epoch" and not _WHOLE_NUMBER.fullmatch(cell.strip()):
        raise ConfigError(
            f"{where}: '{cell}' is not a whole number of seconds since 1970 (features.{column} "
            "is a timestamp of format epoch; decimals are read as 32-bit floats, off by up to a "
            f"minute); fix or round the value, or set features.{column}.format: iso for "
            "ISO-8601 dates"
        )


def judge(config: PipelineConfig, summary: DataSummary, source: str) -> None:
    """What only the whole data can show: missing labels, too few rows, empty features, one class."""
    label = config.label
    label_text = " and ".join(f"'{c}'" for c in label_sources(config))
    if not summary.rows:
        raise ConfigError(f"{source} has a header but no rows")
    if summary.label_missing == summary.rows:
        raise ConfigError(
            f"no row of {source} has a label (from {label_text}: empty or one of "
            "data.missing_values); set label.column to the column that holds the label"
        )
    if summary.label_missing and label.missing == "error":
        raise ConfigError(
            f"the label (from {label_text}) is missing in {summary.label_missing} of "
            f"{summary.rows} rows (first: {summary.first_label_missing}); fill them, or "
            "set label.missing: drop to leave those rows out"
        )
    data = config.data
    buckets = {"train": data.train_buckets, "eval": data.eval_buckets, "test": data.test_buckets}
    total = sum(buckets.values())
    needed = math.ceil(MIN_ROWS_PER_SPLIT * total / min(buckets.values()))
    if summary.rows_kept < needed:
        dropped = [
            f"{summary.label_missing} without a label" if label.missing == "drop" and summary.label_missing else "",
            f"{summary.other_classes} of other classes" if summary.other_classes else "",
        ]
        dropped = f" ({' and '.join(d for d in dropped if d)} dropped)" if any(dropped) else ""
        smallest = min(buckets, key=buckets.get)
        raise ConfigError(
            f"{source} has {summary.rows_kept} rows{dropped}; the "
            f"{':'.join(str(b) for b in buckets.values())} train:eval:test split needs at "
            f"least {needed} so that the {smallest} split expects {MIN_ROWS_PER_SPLIT}; "
            "add rows, or give that split more of data.*_buckets"
        )
    for name in config.features:
        if not summary.present.get(name):
            raise ConfigError(
                f"feature '{name}' has no value in any of the {summary.rows_kept} rows of "
                f"{source} (empty or one of data.missing_values); remove it from features "
                "or fill the column"
            )
    if len(summary.label_classes) == 1:
        ((only, _),) = summary.label_classes.items()
        if task(config) != "binary":
            raise ConfigError(
                f"label column '{label.column}' is {only!r} in all {summary.rows_kept} rows of "
                f"{source}; a model cannot learn from one value: check label.column"
            )
        rule = (
            f"{label.column} > {label.fraction} * {label.greater_than_fraction_of}"
            if label.greater_than_fraction_of
            else f"{label.column} in {list(label.positive_values)}"
            if label.positive_values
            else f"{label.column} > 0.5"
        )
        raise ConfigError(
            f"label '{label.name}' is {only} in all {summary.rows_kept} rows of {source} "
            f"({rule}); a classifier needs both classes: check label.column and its rule"
        )


def header_keys(header: list[str], source: str) -> list[str]:
    """The feature keys of a header's columns (contracts/column_names.py), as ExampleGen writes
    them; two columns that map to one key are one line naming both."""
    try:
        return list(column_keys(header, source).values())
    except ColumnNameError as err:
        raise ConfigError(str(err)) from None


def column_headers(config: PipelineConfig) -> dict[str, str]:
    """{feature key: CSV header name} of the columns of the config's data whose key differs from
    the name (contracts/column_names.py), for showing a column as the user names it; {} where
    the data is not CSV or cannot be read now."""
    if config.data.format is not DataFormat.CSV:
        return {}
    try:
        header = csv_header(data_files(config)[0])
        return {key: name for key, name in header_names(header).items() if key != name}
    except (ConfigError, ColumnNameError, OSError):
        return {}


def check_data(config: PipelineConfig) -> list[str]:
    """Validates the data against the config; returns the input files."""
    files = data_files(config)
    if config.data.format is DataFormat.CSV:
        headers = {f: csv_header(f) for f in files}
        for f, header in headers.items():
            if len(header) == 1:
                for delimiter, name in OTHER_DELIMITERS.items():
                    if delimiter in header[0]:
                        raise ConfigError(
                            f"data file {f} separates its columns with {name}, not commas; "
                            "convert it to comma-separated CSV"
                        )
        first_file, first = next(iter(headers.items()))
        for f, header in headers.items():
            if header != first:
                raise ConfigError(
                    f"data files {first_file} and {f} have different headers; "
                    "every CSV file of a dataset needs the same columns"
                )
        check_columns(config, first, first_file)
        summary = DataSummary()
        for f, header in headers.items():
            scan(config, f, header, summary)
        judge(config, summary, first_file if len(files) == 1 else f"the {len(files)} files of {config.data.path}")
    elif config.data.format is DataFormat.PARQUET:
        import pyarrow.parquet as pq

        check_columns(config, pq.read_schema(files[0]).names, files[0])
    elif tuple(config.data.missing_values) != DataConfig(path="").missing_values:
        # tf.Examples hold typed values, which ExampleGen imports as they are: no cell to match.
        raise ConfigError(
            "data.missing_values does not apply to data.format tfrecord (its tf.Examples "
            "are imported as they are: leave a value out of the example to make it "
            "missing); remove data.missing_values from the config"
        )
    if config.inference.data_path:
        check_inference_data(config)
    if config.schema.path and not os.path.isfile(config.schema.path):
        raise ConfigError(
            f"schema file {config.schema.path} does not exist{not_visible_hint(config.schema.path)}; "
            "set schema.path to a schema.pbtxt, or remove it to infer the schema"
        )
    return files


def check_inference_data(config: PipelineConfig) -> list[str]:
    """inference.data_path names files of its format that hold every feature (not the label)."""
    data_format = config.inference.format or config.data.format
    fix = "set inference.data_path in the config (or --set inference.data_path=...) to"
    files = files_at(config.inference.data_path, data_format, fix)
    if data_format is DataFormat.TFRECORD:
        return files
    if data_format is DataFormat.CSV:
        columns = csv_header(files[0])
    else:
        import pyarrow.parquet as pq

        columns = pq.read_schema(files[0]).names
    keys = header_keys(columns, files[0])
    missing = [c for c in config.features if c not in keys]
    if missing:
        raise ConfigError(
            f"inference.data_path: feature column(s) {', '.join(repr(c) for c in missing)} of the model "
            f"are not in {files[0]} (columns: {', '.join(columns)}); the rows to score need every feature"
        )
    return files


def check_columns(config: PipelineConfig, columns: list[str], source: str) -> None:
    """The config's columns (feature keys, however the config named them) are among the file's."""
    keys = header_keys(columns, source)
    label = config.label
    if label.column not in keys:
        raise ConfigError(
            f"label column '{label.column}' is not in {source} (columns: "
            f"{', '.join(columns)}); set label.column to one of them"
        )
    missing = [c for c in required_columns(config) if c not in keys]
    if missing:
        raise ConfigError(
            f"feature column(s) {', '.join(repr(c) for c in missing)} named in the "
            f"config are not in {source} (columns: {', '.join(columns)}); "
            "fix the names under features or remove them"
        )


def check_output(config: PipelineConfig) -> None:
    """The output directory must be a directory this process can create and write files in."""
    path = config.output_dir
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        where = f" ({err.filename})" if err.filename and err.filename != path else ""
        raise ConfigError(
            f"output directory {path} cannot be written: {err.strerror}{where}; "
            "set output_dir (or --set output_dir=...) to a directory you can write"
        ) from None


def check_job_endpoint(config: PipelineConfig, timeout: float = 5.0) -> None:
    """A portable runner's job server (`--job_endpoint=HOST:PORT` in beam.extra_args) must answer.

    Beam would otherwise find out inside the first Beam component (ExampleGen), after a minute of
    retries, with a gRPC traceback. A TCP connection is all this asks: it says nothing of the
    job server's Beam version (docs/beam.md).
    """
    if config.beam.runner == "DirectRunner":
        return
    for arg in config.beam.extra_args:
        if not arg.startswith("--job_endpoint="):
            continue
        endpoint = arg.split("=", 1)[1]
        if endpoint == "embed":  # Beam starts a job server in the process itself
            return
        host, _, port = endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"beam.extra_args: {arg} is not HOST:PORT; write e.g. --job_endpoint=localhost:8099")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
        except OSError as err:
            raise ConfigError(
                f"beam.extra_args: nothing answers at {arg} ({err.strerror or err}); start the job server "
                "(`make flink-cluster` or `make spark-cluster` for the local clusters) or fix the endpoint"
            ) from None
