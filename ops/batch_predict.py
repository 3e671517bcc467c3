"""`tfxp predict-batch`: scores a file (or glob) of raw rows with a pushed version, through Beam.

The rows (CSV, Parquet, or TFRecord of tf.Examples) are read a batch at a time into Arrow
columns, each model input typed by the model's own `serve_raw` signature (the raw columns and
their dtypes), written as serialized tf.Examples by tfx_bsl's encoder and scored by tfx_bsl's
`RunInference` (the engine TFX's BulkInferrer runs) through the model's `classify` or `regress`
signature: TF Serving's classify and regress methods, which RunInference loads in a TF1 session
as TF Serving does, and which answer each class by its name. Batches stay whole through
RunInference (keyed lists), so the Beam graph moves a few thousand elements per million rows.

The output holds the input's key columns (default: `row`, the row's number in its file, and
`file` when several files matched) and the predictions: for classification the predicted
`class`, its `probability` and a `probability_<class>` column per class; for regression the
`prediction`. It is written under a hidden name beside OUTPUT and renamed into place when the
whole run succeeded, so a failed run leaves nothing at OUTPUT.

Bad input (a model column missing from a file, a cell that cannot be the model's type, a key
column that is not there, no file at all) is a `BatchInputError`: one line with the file, the
line or row, the column and the value.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import time
import uuid
from typing import Any, Iterator, Sequence

from contracts.column_names import column_keys, feature_key
from contracts.saved_model import (
    ASSETS_EXTRA,
    CLASSES_FILE,
    CLASSIFY_SIGNATURE,
    RAW_SIGNATURE,
    REGRESS_SIGNATURE,
    SERVE_TAG,
)
from pipeline.config import ConfigError, PipelineConfig

BATCH_ROWS = 2048  # rows per batch: one Beam element, one model call
INPUT_FORMATS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".parquet": "parquet",
    ".tfrecord": "tfrecord",
    ".tfrecord.gz": "tfrecord",
    ".tfrecords": "tfrecord",
    ".gz": "tfrecord",  # TFX's own example files: data_tfrecord-*.gz
}
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".tfrecord": "tfrecord", ".tfrecords": "tfrecord"}
# Shown before the message of an error raised inside a Beam worker, so that the launcher finds
# it in whatever the runner wraps it in (a traceback's text, on a remote runner).
_MARK = "tfxp-bad-input: "


class BatchInputError(ConfigError):
    """The input does not fit the model (or is not there); the message is one line."""

    def __str__(self) -> str:
        # A Beam runner appends the step's name to an error raised inside it.
        return super().__str__().removeprefix(_MARK).split(" [while running")[0]


@dataclasses.dataclass(frozen=True)
class ServedModel:
    """What scoring needs of a pushed version: where it is, the raw columns it takes (feature
    key -> TF dtype name, from `serve_raw`), its signature and its classes in output order."""

    version: int
    path: str
    inputs: dict[str, str]
    signature: str
    classes: tuple[str, ...]


def pushed_model(serving_dir: str, version: int | None = None, model_name: str | None = None) -> ServedModel:
    """The version to score with: `version`, else the one production traffic gets (the model
    config's `stable` label, else the newest served version; contracts/model_config.py).

    The one place a version is chosen.
    """
    import tensorflow as tf
    from tensorflow.core.framework import types_pb2

    from components.serving_warmup.warmup import signature_defs
    from contracts.model_config import stable_version
    from contracts.serving_dir import served_versions
    from ops.lineage import served_version

    if version is None and model_name:
        version = stable_version(serving_dir, model_name, served_versions(serving_dir))
    number = served_version(serving_dir, version)
    path = os.path.join(serving_dir, str(number))
    signatures = signature_defs(path)
    if RAW_SIGNATURE not in signatures:
        raise BatchInputError(f"{path} has no '{RAW_SIGNATURE}' signature to type raw rows by")
    inputs = {name: types_pb2.DataType.Name(spec.dtype) for name, spec in signatures[RAW_SIGNATURE].inputs.items()}
    if CLASSIFY_SIGNATURE in signatures:
        signature = CLASSIFY_SIGNATURE
        with tf.io.gfile.GFile(os.path.join(path, ASSETS_EXTRA, CLASSES_FILE)) as f:
            classes = tuple(line.rstrip("\n") for line in f if line.strip())
    elif REGRESS_SIGNATURE in signatures:
        signature, classes = REGRESS_SIGNATURE, ()
    else:
        raise BatchInputError(f"{path} has neither a '{CLASSIFY_SIGNATURE}' nor a '{REGRESS_SIGNATURE}' signature")
    return ServedModel(number, path, inputs, signature, classes)


def _format_of(path: str, formats: dict[str, str], what: str) -> str:
    for suffix in sorted(formats, key=len, reverse=True):
        if path.lower().endswith(suffix):
            return formats[suffix]
    raise BatchInputError(f"{what} {path}: cannot tell the format from its name; use one of {', '.join(formats)}")


def input_files(pattern: str) -> list[str]:
    """The files INPUT names (a file or a glob), sorted; one line when there are none."""
    import tensorflow as tf

    files = sorted(f for f in tf.io.gfile.glob(pattern) if not tf.io.gfile.isdir(f))
    if not files:
        what = "matches no file" if any(c in pattern for c in "*?[") else "does not exist"
        raise BatchInputError(f"input {pattern} {what}")
    return files


# --------------------------------------------------------------------------- reading


def _csv_header(path: str) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as f:
        line = io.TextIOWrapper(f, encoding="utf-8-sig", newline="").readline()
    return [name.strip() for name in next(csv.reader([line]), [])]


def file_columns(path: str, fmt: str) -> list[str] | None:
    """The columns a file holds (None for TFRecord: each example names its own)."""
    if fmt == "csv":
        try:
            return _csv_header(path)
        except UnicodeDecodeError:
            raise BatchInputError(f"{path} is not UTF-8 text; convert it, for example with iconv") from None
    if fmt == "parquet":
        import pyarrow.parquet as pq
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path) as f:
            try:
                return list(pq.read_schema(f).names)
            except Exception as err:  # noqa: BLE001 - pyarrow's errors have no common public base
                raise BatchInputError(f"{path} is not a Parquet file ({err})") from None
    return None


def check_columns(path: str, columns: Sequence[str] | None, model: ServedModel, keys: Sequence[str]) -> None:
    """A model input or key column that a file's header lacks: one line naming it."""
    if columns is None:
        return
    try:
        present = set(column_keys(columns, f"{path}'s header").values())
    except ValueError as err:
        raise BatchInputError(str(err)) from None
    for key in model.inputs:
        if key not in present:
            raise BatchInputError(
                f"{path}: the model's input column '{key}' is missing (the model takes: "
                f"{', '.join(sorted(model.inputs))}); add the column, empty cells are read as missing values"
            )
    for key in keys:
        if feature_key(key) not in present:
            raise BatchInputError(f"{path}: key column '{key}' is not in its header ({', '.join(columns)})")


@dataclasses.dataclass
class Batch:
    """Rows of one file: their positions (CSV lines, Parquet rows, TFRecord records) and the
    columns the scoring needs as Arrow arrays (absent: every row missing)."""

    path: str
    unit: str  # "line", "row" or "record"
    positions: list[int]
    columns: dict[str, Any]
    rows: int


def read_batches(path: str, fmt: str, wanted: Sequence[str], missing_values: Sequence[str]) -> Iterator[Batch]:
    """The file's rows, BATCH_ROWS at a time; `wanted` are the feature keys kept."""
    if fmt == "csv":
        yield from _csv_batches(path, wanted, missing_values)
    elif fmt == "parquet":
        yield from _parquet_batches(path, wanted)
    else:
        yield from _tfrecord_batches(path, wanted)


def _csv_batches(path: str, wanted: Sequence[str], missing_values: Sequence[str]) -> Iterator[Batch]:
    import pyarrow as pa
    from apache_beam.io.filesystems import FileSystems

    markers = {m.strip() for m in missing_values}
    with FileSystems.open(path) as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
        header = [name.strip() for name in next(reader, [])]
        keys = column_keys(header)
        index = {keys[name]: i for i, name in enumerate(header)}
        take = [(key, index[key]) for key in wanted if key in index]
        rows: list[list[str]] = []
        lines: list[int] = []

        def batch() -> Batch:
            cells = list(zip(*rows))
            columns = {
                key: pa.array([None if c.strip() in markers else c for c in cells[i]], pa.string()) for key, i in take
            }
            return Batch(path, "line", list(lines), columns, len(rows))

        for cells in reader:
            if not cells:
                continue
            if len(cells) != len(header):
                raise BatchInputError(
                    f"{_MARK}{path}, line {reader.line_num}: {len(cells)} fields, but the header has "
                    f"{len(header)}; quote values that contain commas"
                )
            rows.append(cells)
            lines.append(reader.line_num)
            if len(rows) == BATCH_ROWS:
                yield batch()
                rows, lines = [], []
        if rows:
            yield batch()


def _parquet_batches(path: str, wanted: Sequence[str]) -> Iterator[Batch]:
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as f:
        parquet = pq.ParquetFile(f)
        keys = column_keys(parquet.schema_arrow.names)
        names = {keys[name]: name for name in parquet.schema_arrow.names}
        start = 1
        for record_batch in parquet.iter_batches(
            batch_size=BATCH_ROWS, columns=[names[k] for k in wanted if k in names]
        ):
            columns = {feature_key(name): record_batch.column(name) for name in record_batch.schema.names}
            rows = record_batch.num_rows
            yield Batch(path, "row", list(range(start, start + rows)), columns, rows)
            start += rows


def _tfrecord_batches(path: str, wanted: Sequence[str]) -> Iterator[Batch]:
    import tensorflow as tf
    from tfx_bsl.coders import example_coder

    compression = "GZIP" if path.endswith(".gz") else ""
    decoder = example_coder.ExamplesToRecordBatchDecoder()  # each batch's types as its examples have them
    seen: set[str] = set()
    start, count = 1, 0
    records: list[bytes] = []

    def batch() -> Batch:
        try:
            decoded = decoder.DecodeBatch(records)
        except Exception as err:  # noqa: BLE001 - the decoder's errors are plain RuntimeErrors with TF's text
            raise BatchInputError(
                f"{_MARK}{path}, records {start}-{start + len(records) - 1}: not tf.Examples with one type "
                f"per feature ({err})"
            ) from None
        columns = {name: decoded.column(name) for name in decoded.schema.names if name in wanted}
        seen.update(columns)
        return Batch(path, "record", list(range(start, start + len(records))), columns, len(records))

    try:
        for record in tf.data.TFRecordDataset(path, compression_type=compression).as_numpy_iterator():
            records.append(record)
            if len(records) == BATCH_ROWS:
                yield batch()
                count += len(records)
                start, records = start + len(records), []
    except tf.errors.DataLossError as err:
        raise BatchInputError(f"{_MARK}{path}: not a TFRecord file ({err.message})") from None
    if records:
        yield batch()
        count += len(records)
    never = [key for key in wanted if key not in seen]
    if count and never:
        raise BatchInputError(
            f"{_MARK}{path}: feature '{never[0]}' of the model is in none of its {count} records; "
            "name the features as the model does"
        )


# --------------------------------------------------------------------------- typing


_ARROW_NAMES = {"DT_FLOAT": "float32", "DT_DOUBLE": "float32", "DT_INT64": "int64", "DT_INT32": "int64"}


def _expected(dtype: str) -> str:
    return "a whole number" if dtype.startswith("DT_INT") else "a number"


def _typed_values(values, dtype: str):
    """`values` (a flat Arrow array without nulls) as the model's dtype, or None where one cannot be."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if dtype == "DT_STRING":
        if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
            return values.cast(pa.binary())
        return pc.cast(values, pa.string()).cast(pa.binary())
    try:
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            values = pc.utf8_trim_whitespace(values)
        if pa.types.is_binary(values.type):
            values = values.cast(pa.string())
        if pa.types.is_boolean(values.type):
            return None
        numbers = pc.cast(values, pa.float64())
        if dtype.startswith("DT_INT"):
            if not pc.all(pc.equal(pc.floor(numbers), numbers)).as_py():
                return None
            return pc.cast(values, pa.int64()) if pa.types.is_integer(values.type) else pc.cast(numbers, pa.int64())
        return pc.cast(numbers, pa.float32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


def _first_bad(values, dtype: str) -> int:
    """The index of the first value of `values` that `_typed_values` refuses."""
    for i in range(len(values)):
        if _typed_values(values.slice(i, 1), dtype) is None:
            return i
    return 0


def typed_column(array, dtype: str, key: str, batch: Batch):
    """One model input of a batch as the list column tf.Example encoding takes: a value per row,
    or none where the row has none. BatchInputError names the first value that cannot be `dtype`."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if array is None:
        return pa.array([[]] * batch.rows, pa.list_(pa.binary() if dtype == "DT_STRING" else _ARROW_NAMES[dtype]))
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False)
        flat, owners = pc.list_flatten(array), np.repeat(np.arange(len(array)), lengths)
    else:
        present = pc.is_valid(array).to_numpy(zero_copy_only=False)
        lengths = present.astype(np.int64)
        flat, owners = array.filter(pa.array(present)), np.flatnonzero(present)
    typed = _typed_values(flat, dtype) if len(flat) else None
    if typed is None and len(flat):
        bad = _first_bad(flat, dtype)
        row, value = batch.positions[int(owners[bad])], flat[bad].as_py()
        raise BatchInputError(
            f"{_MARK}{batch.path}, {batch.unit} {row}, column '{key}': {value!r} is not {_expected(dtype)} "
            f"(the model expects {dtype})"
        )
    if typed is None:
        typed = pa.array([], pa.binary() if dtype == "DT_STRING" else _ARROW_NAMES[dtype])
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, typed)


def _key_text(array, rows: int) -> list[str]:
    import pyarrow as pa
    import pyarrow.compute as pc

    if array is None:
        return [""] * rows
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        array = pc.list_element(pc.if_else(pc.greater(pc.list_value_length(array), 0), array, None), 0)
    values = array.to_pylist()
    return ["" if v is None else v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]


def to_examples(batch: Batch, model: ServedModel, keys: Sequence[str], default_keys: Sequence[str]):
    """(the batch's key columns as text, its rows as serialized tf.Examples of the model's types)."""
    import pyarrow as pa
    from tfx_bsl.coders import example_coder

    columns = [typed_column(batch.columns.get(key), dtype, key, batch) for key, dtype in model.inputs.items()]
    examples = example_coder.RecordBatchToExamples(pa.RecordBatch.from_arrays(columns, list(model.inputs)))
    key_values: list[list[str]] = []
    for key in default_keys:
        key_values.append(
            [str(p) for p in batch.positions] if key == "row" else [os.path.basename(batch.path)] * batch.rows
        )
    for key in keys:
        key_values.append(_key_text(batch.columns.get(feature_key(key)), batch.rows))
    return key_values, list(examples)


# --------------------------------------------------------------------------- output


def output_columns(model: ServedModel, key_names: Sequence[str]) -> list[str]:
    if model.signature == REGRESS_SIGNATURE:
        predicted = ["prediction"]
    else:
        predicted = ["class", "probability", *(f"probability_{name}" for name in model.classes)]
    clash = sorted(set(predicted) & set(key_names))
    if clash:
        raise BatchInputError(f"key column '{clash[0]}' has the name of an output column; rename it in the input")
    return [*key_names, *predicted]


def prediction_rows(key_values: list[list[str]], logs: list, model: ServedModel) -> list[list[Any]]:
    """One output row per PredictionLog: the keys, then the class and its probabilities or the value."""
    rows = []
    for i, log in enumerate(logs):
        keys = [values[i] for values in key_values]
        if model.signature == REGRESS_SIGNATURE:
            rows.append([*keys, float(log.regress_log.response.result.regressions[0].value)])
            continue
        scores = {c.label: float(c.score) for c in log.classify_log.response.result.classifications[0].classes}
        best = max(model.classes, key=lambda name: scores[name])
        rows.append([*keys, best, scores[best], *(scores[name] for name in model.classes)])
    return rows


def _csv_text(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().removesuffix("\n")


def _arrow_table(rows: list[list[Any]], names: Sequence[str], schema):
    import pyarrow as pa

    return pa.Table.from_arrays(
        [pa.array([r[i] for r in rows], schema.field(i).type) for i in range(len(names))], schema=schema
    )


def _examples_of(rows: list[list[Any]], names: Sequence[str]) -> list[bytes]:
    import tensorflow as tf

    out = []
    for row in rows:
        features = {}
        for name, value in zip(names, row):
            if isinstance(value, float):
                features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
            else:
                features[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode()]))
        out.append(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    return out


def _parquet_schema(names: Sequence[str], key_count: int):
    import pyarrow as pa

    fields = [pa.field(n, pa.string()) for n in names[:key_count]]
    for name in names[key_count:]:
        fields.append(pa.field(name, pa.string() if name == "class" else pa.float64()))
    return pa.schema(fields)


# --------------------------------------------------------------------------- the run


@dataclasses.dataclass(frozen=True)
class Result:
    output: str
    version: int
    rows: int
    seconds: float


def _bad_input_in(err: BaseException) -> str | None:
    """The BatchInputError message a runner's error carries, if any."""
    seen = err
    while seen is not None:
        if isinstance(seen, BatchInputError):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    text = str(err)
    at = text.find(_MARK)
    if at < 0:
        return None
    line = text[at + len(_MARK) :].splitlines()[0]
    return line.split(" [while running")[0].rstrip("'\" ")


def predict_batch(
    config: PipelineConfig,
    input_pattern: str,
    output: str,
    version: int | None = None,
    key_columns: Sequence[str] = (),
    beam_args: Sequence[str] | None = None,
) -> Result:
    """Scores INPUT with a pushed version (default the newest) on the config's Beam runner."""
    import apache_beam as beam
    import tensorflow as tf
    from apache_beam.metrics import Metrics
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions
    from tfx_bsl.public.beam import RunInference
    from tfx_bsl.public.proto import model_spec_pb2

    out_format = _format_of(output, OUTPUT_FORMATS, "output")
    files = input_files(input_pattern)
    formats = {path: _format_of(path, INPUT_FORMATS, "input") for path in files}
    model = pushed_model(config.serving_dir, version, config.model_name)
    keys = [k.strip() for k in key_columns if k.strip()]
    default_keys = [] if keys else (["file", "row"] if len(files) > 1 else ["row"])
    for path in files:
        check_columns(path, file_columns(path, formats[path]), model, keys)
    names = output_columns(model, [*default_keys, *keys])
    wanted = sorted(set(model.inputs) | {feature_key(k) for k in keys})
    missing_values = tuple(config.data.missing_values)

    out_dir = os.path.dirname(os.path.abspath(output)) if "://" not in output else output.rsplit("/", 1)[0]
    if not tf.io.gfile.isdir(out_dir):
        raise BatchInputError(f"output directory {out_dir} does not exist")
    staging = f"{out_dir}/.{os.path.basename(output)}.tmp-{uuid.uuid4().hex[:8]}"
    staged = f"{staging}/{os.path.basename(output)}"
    spec = model_spec_pb2.InferenceSpecType(
        saved_model_spec=model_spec_pb2.SavedModelSpec(
            model_path=model.path, signature_name=[model.signature], tag=[SERVE_TAG]
        ),
        # One of our batches (a keyed list) per model call.
        batch_parameters=model_spec_pb2.BatchParameters(min_batch_size=1, max_batch_size=1),
    )
    rows_counter = Metrics.counter("tfxp", "rows")

    def read(path):
        yield from read_batches(path, formats[path], wanted, missing_values)

    def encode(batch: Batch):
        key_values, examples = to_examples(batch, model, keys, default_keys)
        rows_counter.inc(batch.rows)
        return key_values, examples

    def score(keyed):
        key_values, logs = keyed
        return prediction_rows(key_values, logs, model)

    options = PipelineOptions(list(beam_args if beam_args is not None else config.beam.args()))
    started = time.monotonic()
    tf.io.gfile.makedirs(staging)
    try:
        try:
            with beam.Pipeline(options=options) as p:
                rows = (
                    p
                    | "Files" >> beam.Create(files)
                    | "Read" >> beam.FlatMap(read)
                    | "Spread" >> beam.Reshuffle()
                    | "ToExamples" >> beam.Map(encode)
                    | "RunInference" >> RunInference(spec)
                    | "Predictions" >> beam.Map(score)
                )
                if out_format == "csv":
                    _ = (
                        rows
                        | "Csv" >> beam.Map(_csv_text)
                        | "Write"
                        >> beam.io.WriteToText(staged, shard_name_template="", num_shards=1, header=_csv_text([names]))
                    )
                elif out_format == "parquet":
                    schema = _parquet_schema(names, len(names) - len(output_columns(model, [])))
                    _ = (
                        rows
                        | "Arrow" >> beam.Map(_arrow_table, names, schema)
                        | "Write" >> beam.io.WriteToParquetBatched(staged, schema, shard_name_template="", num_shards=1)
                    )
                else:
                    _ = (
                        rows
                        | "Examples" >> beam.FlatMap(_examples_of, names)
                        | "Write" >> beam.io.WriteToTFRecord(staged, shard_name_template="", num_shards=1)
                    )
            result = p.result
        except Exception as err:
            message = _bad_input_in(err)
            if message is not None:
                raise BatchInputError(message) from None
            raise
        counted = result.metrics().query(MetricsFilter().with_name("rows"))["counters"]
        total = sum(c.committed or c.attempted or 0 for c in counted)
        if not tf.io.gfile.exists(staged):
            raise OSError(f"the run wrote no {staged}")
        tf.io.gfile.rename(staged, output, overwrite=True)
    finally:
        if tf.io.gfile.exists(staging):
            tf.io.gfile.rmtree(staging)
    return Result(output, model.version, total, time.monotonic() - started)
