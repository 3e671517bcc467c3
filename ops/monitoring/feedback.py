"""Ground truth for served predictions: a CSV of request ids and labels, joined to the request log.

The request log (`components/drift_check/request_log.py`, TF Serving `PredictionLog` records)
holds each request's serialized tf.Examples. A logged example is identified by

- the value of its feature `monitor.key_column`, when that is set (a business key the client
  sends, e.g. a trip id); else
- the value of its feature `monitor.id_column` (default `request_id`), when the logger or the
  client put one there; else
- its derived id: the first 16 hex digits of the SHA-256 of the serialized tf.Example as
  logged. It is stable (the bytes do not change) and `tfxp feedback --export-requests` lists
  it next to each request's features, for whoever collects the labels.

A logged example's time is its record's `log_metadata.timestamp_secs` (TF Serving's field),
or, where the logger left it unset, the log file's last modification.

The CSV carries the id column and the label as the data has it: the config's `label.column`
(and any other column only the label needs, e.g. `fare` for a fraction-of rule when it is not
a feature). A multiclass label is a class name or its index among the model's classes
(label.classes, else the served version's class names); a regression label is a number.
Joined rows are the logged examples with those columns added, written as JSON lines under
`<output_dir>/feedback/`; the monitor and the next span read them.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import glob
import hashlib
import json
import os
import time

from components.drift_check.request_log import LOG_PATTERN
from contracts.column_names import feature_key
from models.model_inputs import label_columns
from pipeline.config import ConfigError, PipelineConfig, Task

JOINED_PATTERN = "joined-*.jsonl"


@dataclasses.dataclass(frozen=True)
class LoggedExample:
    id: str
    logged_at: float  # seconds since the epoch
    example: bytes  # the serialized tf.Example as logged
    source: str  # the log file
    version: int | None = None  # the version that answered, where the log names it (the proxy's do)


def derived_id(example: bytes) -> str:
    return hashlib.sha256(example).hexdigest()[:16]


def requests_dir(config: PipelineConfig) -> str:
    directory = config.monitor.requests
    if not directory:
        raise ConfigError(
            "no request log configured: set monitor.requests (or drift.serving_requests) "
            "to the directory that `tfxp serve --log-requests DIR` writes"
        )
    return directory


def feature_text(example, name: str) -> str | None:
    feature = example.features.feature.get(name)
    if feature is None:
        return None
    kind = feature.WhichOneof("kind")
    values = list(getattr(feature, kind).value) if kind else []
    if not values:
        return None
    value = values[0]
    if kind == "bytes_list":
        return value.decode("utf-8", "replace")
    if kind == "float_list":
        import numpy as np

        return str(np.float32(value))  # the shortest text that reads back as the logged float32
    return str(value)


def _examples_of(record) -> list[bytes]:
    """The serialized tf.Examples of one PredictionLog: a Predict request's string inputs, or a
    Classify / Regress request's example list."""
    import tensorflow as tf

    kind = record.WhichOneof("log_type")
    if kind == "predict_log":
        found: list[bytes] = []
        for tensor in record.predict_log.request.inputs.values():
            if tensor.dtype == tf.string.as_datatype_enum:
                found.extend(tf.make_ndarray(tensor).reshape(-1).tolist())
        return found
    if kind in ("classify_log", "regress_log"):
        from components.serving_check.tf_serving_requests import serialized_examples

        return serialized_examples(getattr(record, kind).request.input)
    return []


def _version_of(record) -> int | None:
    kind = record.WhichOneof("log_type")
    spec = getattr(record, kind).request.model_spec if kind else None
    return spec.version.value if spec is not None and spec.HasField("version") else None


def read_logged(config: PipelineConfig, since: float | None = None, until: float | None = None) -> list[LoggedExample]:
    """Every logged example (in [since, until) when given), oldest file first."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    directory = requests_dir(config)
    mon = config.monitor
    found = []
    for path in sorted(glob.glob(os.path.join(directory, LOG_PATTERN))):
        file_time = os.path.getmtime(path)
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
            record = prediction_log_pb2.PredictionLog.FromString(raw)
            logged_at = float(record.log_metadata.timestamp_secs or file_time)
            if (since is not None and logged_at < since) or (until is not None and logged_at >= until):
                continue
            version = _version_of(record)
            for serialized in _examples_of(record):
                example = tf.train.Example.FromString(serialized)
                key = (
                    feature_text(example, mon.key_column)
                    if mon.key_column
                    else (feature_text(example, mon.id_column) or derived_id(serialized))
                )
                if key is not None:
                    found.append(LoggedExample(key, logged_at, serialized, path, version))
    return found


def class_names(config: PipelineConfig) -> list[str]:
    """A multiclass model's classes in output order: label.classes, else the stable version's
    ([] when neither names them)."""
    if config.label.classes:
        return list(config.label.classes)
    from components.evaluator.results import class_names as written_class_names
    from contracts.model_config import stable_version
    from contracts.serving_dir import served_versions

    versions = served_versions(config.serving_dir) if os.path.isdir(config.serving_dir) else []
    stable = stable_version(config.serving_dir, config.model_name, versions)
    return written_class_names(os.path.join(config.serving_dir, str(stable))) if stable is not None else []


def _is_integer(text: str) -> bool:
    return text.lstrip("+-").isdigit()


def _number(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _class_value(text: str, names: list[str]):
    """A multiclass label given as a class name or as its index among `names`, typed as the
    data has it: integer classes (every name an integer, as CSV ExampleGen then reads the
    column) as int, others as text. Integer class names are never read as indices."""
    integers = bool(names) and all(_is_integer(n) for n in names)
    if names and text not in names:
        if integers or not _is_integer(text) or not 0 <= int(text) < len(names):
            listed = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
            index = "" if integers else f" nor a class index 0-{len(names) - 1}"
            raise ValueError(f"not one of the classes ({listed}){index}")
        text = names[int(text)]
    if integers or (not names and _is_integer(text)):
        return int(text)
    return text


def column_types(config: PipelineConfig, columns: list[str]) -> dict[str, str]:
    """{column: INT, FLOAT or BYTES} of the schema the stable version was trained with
    ({} when no lineage names one): a label the data holds as integers must be logged as
    integers, for the served model's transform parses it with that schema."""
    from contracts.model_config import stable_version
    from contracts.serving_dir import served_versions
    from ops.lineage import lineage

    versions = served_versions(config.serving_dir) if os.path.isdir(config.serving_dir) else []
    if not versions:
        return {}
    try:
        found = lineage(
            config.metadata_path,
            config.pipeline_name,
            config.serving_dir,
            stable_version(config.serving_dir, config.model_name, versions),
        )
    except ConfigError:
        return {}
    if not found.schema or not os.path.isfile(found.schema):
        return {}
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = tfdv.load_schema_text(found.schema)
    return {f.name: schema_pb2.FeatureType.Name(f.type) for f in schema.feature if f.name in columns}


def _typed(value, kind: str | None):
    """A number as the schema's column type has it (an integer column takes whole numbers)."""
    if kind == "INT" and isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not a whole number (the data's column holds integers)")
        return int(value)
    if kind == "FLOAT" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _label_value(config: PipelineConfig, column: str, text: str, names: list[str]):
    """The typed value of a label-only column, or a ValueError saying what it should be."""
    label = config.label
    if column != label.column or label.task is Task.REGRESSION or label.greater_than_fraction_of:
        return _number(text)
    if label.task is Task.MULTICLASS:
        return _class_value(text, names)
    if label.positive_values:
        return text
    if text not in ("0", "1"):
        raise ValueError("not 0 or 1 (the label's classes)")
    return int(text)


@dataclasses.dataclass
class FeedbackResult:
    rows: int  # data rows in the CSV
    joined: int
    unmatched: list[tuple[int, str]]  # (CSV line, id) of rows no logged request has
    duplicates: int  # later rows for an id already given (the last label is kept)
    path: str | None  # the joined rows written
    unmatched_path: str | None


def read_feedback(config: PipelineConfig, path: str) -> tuple[list[str], dict[str, tuple[int, dict]]]:
    """{id: (CSV line, {column: typed value})} from a feedback CSV; ConfigError on bad input."""
    mon = config.monitor
    id_column = mon.key_column or mon.id_column
    needed = label_columns(config)
    names = class_names(config) if config.label.task is Task.MULTICLASS else []
    types = column_types(config, needed)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            # The label's columns by their CSV header or feature key (contracts/column_names.py).
            header = reader.fieldnames or []
            keyed = {name: name if name == id_column else feature_key(name.strip()) for name in header}
            reader.fieldnames = [keyed[name] for name in header]
            missing = [c for c in [id_column, *needed] if c not in reader.fieldnames]
            if missing:
                raise ConfigError(
                    f"{path}: missing column(s) {', '.join(missing)}; the header is "
                    f"{', '.join(header) or '(empty)'}; feedback needs the id column "
                    f"'{id_column}' and {', '.join(repr(c) for c in needed)}"
                )
            rows: dict[str, tuple[int, dict]] = {}
            order: list[str] = []
            for row in reader:
                line = reader.line_num
                key = (row.get(id_column) or "").strip()
                if not key:
                    raise ConfigError(f"{path}, line {line}: the id column '{id_column}' is empty")
                values = {}
                for column in needed:
                    text = (row.get(column) or "").strip()
                    if not text:
                        raise ConfigError(
                            f"{path}, line {line} (id {key}): column '{column}' is empty; "
                            "every feedback row needs its label"
                        )
                    try:
                        values[column] = _typed(_label_value(config, column, text, names), types.get(column))
                    except ValueError as err:
                        raise ConfigError(
                            f"{path}, line {line} (id {key}): column '{column}' is {text!r}, {err}"
                        ) from None
                if key not in rows:
                    order.append(key)
                rows[key] = (line, values)
    except FileNotFoundError:
        raise ConfigError(f"feedback file {path} does not exist") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    return order, rows


def labelled_example(serialized: bytes, labels: dict) -> bytes:
    """The logged tf.Example with the label columns added, typed as the training data has them."""
    import tensorflow as tf

    example = tf.train.Example.FromString(serialized)
    for column, value in labels.items():
        set_feature(example.features.feature[column], value)
    return example.SerializeToString()


def set_feature(feature, value: str | int | float) -> None:
    """Makes the tf.train.Feature hold `value` alone, typed as CsvExampleGen types a CSV cell:
    text as bytes, whole numbers as int64, other numbers as float."""
    feature.Clear()
    if isinstance(value, str):
        feature.bytes_list.value.append(value.encode())
    elif isinstance(value, int):
        feature.int64_list.value.append(value)
    else:
        feature.float_list.value.append(value)


def _write_atomically(path: str, lines: list[str]) -> None:
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
        f.writelines(lines)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def join(config: PipelineConfig, feedback_csv: str) -> FeedbackResult:
    """Joins a feedback CSV to the request log; writes the joined (and unmatched) rows."""
    order, rows = read_feedback(config, feedback_csv)
    if not rows:
        raise ConfigError(f"{feedback_csv} holds no feedback rows")
    logged: dict[str, LoggedExample] = {}
    for entry in read_logged(config):
        logged[entry.id] = entry  # the same id twice is the same example: the latest time is kept
    with open(feedback_csv, newline="", encoding="utf-8") as f:
        data_rows = sum(1 for _ in csv.DictReader(f))
    joined, unmatched = [], []
    for key in order:
        line, values = rows[key]
        entry = logged.get(key)
        if entry is None:
            unmatched.append((line, key))
            continue
        joined.append(
            json.dumps(
                {
                    "id": key,
                    "logged_at": entry.logged_at,
                    "labels": values,
                    "version": entry.version,
                    "example": base64.b64encode(labelled_example(entry.example, values)).decode(),
                }
            )
            + "\n"
        )
    if not joined:
        raise ConfigError(
            f"none of the {len(rows)} ids in {feedback_csv} matches a logged request in "
            f"{requests_dir(config)} ({len(logged)} logged examples); check the id column "
            f"'{config.monitor.key_column or config.monitor.id_column}' (ids are listed by "
            "`tfxp feedback --export-requests FILE`)"
        )
    os.makedirs(config.feedback_dir, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
    path = os.path.join(config.feedback_dir, f"joined-{stamp}.jsonl")
    unmatched_path = None
    if unmatched:
        unmatched_path = os.path.join(config.feedback_dir, f"unmatched-{stamp}.csv")
        _write_atomically(unmatched_path, ["line,id\n"] + [f"{line},{key}\n" for line, key in unmatched])
    _write_atomically(path, joined)
    return FeedbackResult(
        rows=data_rows,
        joined=len(joined),
        unmatched=unmatched,
        duplicates=data_rows - len(rows),
        path=path,
        unmatched_path=unmatched_path,
    )


@dataclasses.dataclass(frozen=True)
class JoinedRow:
    id: str
    logged_at: float
    labels: dict
    example: bytes  # the labelled tf.Example
    version: int | None = None


def joined_rows(config: PipelineConfig, since: float | None = None, until: float | None = None) -> list[JoinedRow]:
    """Every joined row (logged in [since, until) when given); a later feedback file's label
    for an id replaces an earlier one."""
    by_id: dict[str, JoinedRow] = {}
    for path in sorted(glob.glob(os.path.join(config.feedback_dir, JOINED_PATTERN))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                by_id[row["id"]] = JoinedRow(
                    row["id"], row["logged_at"], row["labels"], base64.b64decode(row["example"]), row.get("version")
                )
    return [
        r for r in by_id.values() if (since is None or r.logged_at >= since) and (until is None or r.logged_at < until)
    ]


def export_requests(config: PipelineConfig, path: str) -> int:
    """Writes the logged requests as CSV: id, time, and every raw feature column; returns the count."""
    import tensorflow as tf

    columns = list(config.features)
    entries = read_logged(config)
    id_column = config.monitor.key_column or config.monitor.id_column
    lines = []
    seen = set()
    for entry in entries:
        if entry.id in seen:
            continue
        seen.add(entry.id)
        example = tf.train.Example.FromString(entry.example)
        lines.append(
            [
                entry.id,
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.logged_at)),
                *[feature_text(example, c) or "" for c in columns],
            ]
        )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    partial = path + ".partial"
    with open(partial, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        header = [id_column, "logged_at", *[c for c in columns if c != id_column]]
        writer.writerow(header)
        for line in lines:
            writer.writerow(
                line
                if id_column not in columns
                else [line[0], line[1], *[v for c, v in zip(columns, line[2:]) if c != id_column]]
            )
    os.replace(partial, path)
    return len(lines)
