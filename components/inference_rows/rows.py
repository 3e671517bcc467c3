"""Raw rows typed by a model: the reading and typing that `tfxp predict-batch` (ops/batch_predict.py)
and the pipeline's InferenceRows step (component.py) share.

The rows (CSV, Parquet, or TFRecord of tf.Examples) are read a batch at a time into Arrow
columns, and each column the model takes is typed by the model's own `serve_raw` signature (its
raw columns and their dtypes), so a column's type never depends on which values a file happens to
hold: a float feature whose new values are all whole numbers stays a float, and a string feature
of digits keeps its text ("007"). Bad input (a model column missing from a file's header, a cell
that cannot be the model's type, a CSV line with the wrong number of fields) is a `RowsError`:
one line with the file, the line or row, the column and the value.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any, Iterator, Mapping, Sequence

from contracts.column_names import column_keys, feature_key
from contracts.saved_model import RAW_SIGNATURE

BATCH_ROWS = 2048  # rows per batch: one Beam element, one model call
# Shown before the message of an error raised inside a Beam worker, so that the caller finds
# it in whatever the runner wraps it in (a traceback's text, on a remote runner).
MARK = "tfxp-bad-input: "


class RowsError(ValueError):
    """Rows that do not fit the model (or are not there); the message is one line."""

    def __str__(self) -> str:
        # A Beam runner appends the step's name to an error raised inside it.
        return super().__str__().removeprefix(MARK).split(" [while running")[0]


def raw_inputs(signatures: Mapping[str, Any], path: str) -> dict[str, str]:
    """The raw columns a model takes and their TF dtype names, from its `serve_raw` signature
    (`signatures`: components.serving_warmup.warmup.signature_defs of the SavedModel at `path`)."""
    from tensorflow.core.framework import types_pb2

    if RAW_SIGNATURE not in signatures:
        raise RowsError(f"{path} has no '{RAW_SIGNATURE}' signature to type raw rows by")
    return {name: types_pb2.DataType.Name(spec.dtype) for name, spec in signatures[RAW_SIGNATURE].inputs.items()}


def input_files(pattern: str) -> list[str]:
    """The files a file name or glob names, sorted; one line when there are none."""
    import tensorflow as tf

    files = sorted(f for f in tf.io.gfile.glob(pattern) if not tf.io.gfile.isdir(f))
    if not files:
        what = "matches no file" if any(c in pattern for c in "*?[") else "does not exist"
        raise RowsError(f"input {pattern} {what}")
    return files


def file_dtypes(path: str, fmt: str, inputs: Mapping[str, str]) -> dict[str, str]:
    """The columns to keep of a file and their dtypes: the model's `inputs` as it takes them, any
    other column of a CSV or Parquet header as text (DT_STRING); RowsError names a model input
    the header lacks. TFRecord examples name their own features: the model's inputs."""
    columns = file_columns(path, fmt)
    check_columns(path, columns, inputs, ())
    if columns is None:
        return dict(inputs)
    keys = column_keys(columns, f"{path}'s header").values()
    return {key: inputs.get(key, "DT_STRING") for key in keys}


def bad_input_in(err: BaseException) -> str | None:
    """The RowsError message a runner's error carries, if any."""
    seen = err
    while seen is not None:
        if isinstance(seen, RowsError):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    text = str(err)
    at = text.find(MARK)
    if at < 0:
        return None
    line = text[at + len(MARK) :].splitlines()[0]
    return line.split(" [while running")[0].rstrip("'\" ")


# --------------------------------------------------------------------------- reading


def csv_header(path: str) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as f:
        line = io.TextIOWrapper(f, encoding="utf-8-sig", newline="").readline()
    return [name.strip() for name in next(csv.reader([line]), [])]


def file_columns(path: str, fmt: str) -> list[str] | None:
    """The columns a file holds (None for TFRecord: each example names its own)."""
    if fmt == "csv":
        try:
            return csv_header(path)
        except UnicodeDecodeError:
            raise RowsError(f"{path} is not UTF-8 text; convert it, for example with iconv") from None
    if fmt == "parquet":
        import pyarrow.parquet as pq
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path) as f:
            try:
                return list(pq.read_schema(f).names)
            except Exception as err:  # noqa: BLE001 - pyarrow's errors have no common public base
                raise RowsError(f"{path} is not a Parquet file ({err})") from None
    return None


def check_columns(path: str, columns: Sequence[str] | None, inputs: Mapping[str, str], keys: Sequence[str]) -> None:
    """A model input or key column that a file's header lacks: one line naming it."""
    if columns is None:
        return
    try:
        present = set(column_keys(columns, f"{path}'s header").values())
    except ValueError as err:
        raise RowsError(str(err)) from None
    for key in inputs:
        if key not in present:
            raise RowsError(
                f"{path}: the model's input column '{key}' is missing (the model takes: "
                f"{', '.join(sorted(inputs))}); add the column, empty cells are read as missing values"
            )
    for key in keys:
        if feature_key(key) not in present:
            raise RowsError(f"{path}: key column '{key}' is not in its header ({', '.join(columns)})")


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
                raise RowsError(
                    f"{MARK}{path}, line {reader.line_num}: {len(cells)} fields, but the header has "
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
            raise RowsError(
                f"{MARK}{path}, records {start}-{start + len(records) - 1}: not tf.Examples with one type "
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
        raise RowsError(f"{MARK}{path}: not a TFRecord file ({err.message})") from None
    if records:
        yield batch()
        count += len(records)
    never = [key for key in wanted if key not in seen]
    if count and never:
        raise RowsError(
            f"{MARK}{path}: feature '{never[0]}' of the model is in none of its {count} records; "
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
    or none where the row has none. RowsError names the first value that cannot be `dtype`."""
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
        raise RowsError(
            f"{MARK}{batch.path}, {batch.unit} {row}, column '{key}': {value!r} is not {_expected(dtype)} "
            f"(the model expects {dtype})"
        )
    if typed is None:
        typed = pa.array([], pa.binary() if dtype == "DT_STRING" else _ARROW_NAMES[dtype])
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, typed)


def key_text(array, rows: int) -> list[str]:
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


def typed_examples(batch: Batch, dtypes: Mapping[str, str]) -> list[bytes]:
    """The batch's rows as serialized tf.Examples, each feature key of `dtypes` typed as its
    dtype (TF dtype names, DT_STRING for text)."""
    import pyarrow as pa
    from tfx_bsl.coders import example_coder

    columns = [typed_column(batch.columns.get(key), dtype, key, batch) for key, dtype in dtypes.items()]
    return list(example_coder.RecordBatchToExamples(pa.RecordBatch.from_arrays(columns, list(dtypes))))
