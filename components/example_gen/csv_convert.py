"""CSV records to serialized tf.Examples, a batch at a time, with TFX's CSV semantics.

TFX's CsvExampleGen builds every tf.Example cell by cell in Python and its Beam graph holds
every parsed line until the column types are known. Here a batch of records becomes Arrow
columns, tfx_bsl's C++ encoder writes the examples, and only raw record text waits for the
types. The result is byte for byte what TFX writes (same types, same empty-cell features,
deterministic serialization), so the hash splits are the same as well.

Type rules (tfx_bsl's `ColumnTypeInferrer`): a column is INT when every non-empty cell is an
int64, FLOAT when every non-empty cell is a number, STRING otherwise; a column with no value
at all has no type and gets an empty feature. An empty cell is an empty value list.

Beyond TFX: cells that are missing-value markers (`data.missing_values`, e.g. `NA`) are read
as empty cells, rows missing a required column (the label, with `label.missing: drop`) and
rows whose value in a column is not one of its allowed values (the label's classes, with
`label.other_classes: drop`) are left out, before the types are inferred.
"""

from __future__ import annotations

import csv
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from tensorflow.core.example import example_pb2
from tfx.components.example_gen.csv_example_gen.executor import _CsvLineBuffer, _ReadCsvRecordsFromTextFile
from tfx_bsl.coders import csv_decoder, example_coder

ColumnType = csv_decoder.ColumnType

# Only a decimal literal can be an int64 that Arrow's float parser accepts too.
_DECIMAL_INT = r"^[+-]?[0-9]+$"


def _compressed_records(path: str) -> Iterator[str]:
    """TFX's `_ReadCsvRecordsFromTextFile` for a compressed file: TFX's iterates the file, and
    the CompressedFile Beam opens a .gz (.bz2, ...) file as has `readline` but no iterator. It
    uses TFX's (private) line buffer, so quoted line breaks are joined by the same rule."""
    with FileSystems.open(path) as f:
        f.readline()  # the header
        buffer = _CsvLineBuffer()
        for line in iter(f.readline, b""):
            buffer.write(line.decode("utf-8"))
            if buffer.is_complete_line():
                yield buffer.read()
        if not buffer.is_empty():
            raise ValueError(f"Csv record had unbalanced quotes. File: {path}")


def read_record_batches(path: str, batch_size: int) -> Iterator[list[str]]:
    """The file's CSV records (header skipped, quoted line breaks kept), `batch_size` at a time;
    compressed files are decompressed by their name's suffix, as Beam's file system does."""
    batch: list[str] = []
    compressed = CompressionTypes.detect_compression_type(path) != CompressionTypes.UNCOMPRESSED
    records = _compressed_records(path) if compressed else _ReadCsvRecordsFromTextFile().process(path)
    for record in records:
        batch.append(record)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def header_names(line: str) -> list[str]:
    """The column names of a header line: a UTF-8 byte-order mark (Excel's "CSV UTF-8") and
    the spaces around each name dropped, quotes read as CSV quotes (pipeline/preflight.py
    reads headers the same way)."""
    return [name.strip() for name in next(csv.reader([line.removeprefix("\ufeff")]), [])]


def parse(
    records: Sequence[str],
    column_names: Sequence[str],
    missing_values: Sequence[str] = (),
    required: Sequence[str] = (),
    allowed: Mapping[str, Sequence[str]] | None = None,
) -> list[pa.StringArray]:
    """Records to one string column per CSV column; blank records are skipped.

    Cells equal to one of `missing_values` (spaces around them ignored; with "" among them,
    blank cells too) become empty cells; rows with an empty cell in one of the `required`
    columns, or in a column of `allowed` a value (spaces around it ignored) not among that
    column's, are dropped. Raises ValueError naming the first record whose field count differs
    from the header's.
    """
    rows = [row for row in csv.reader(records) if row]
    for row in rows:
        if len(row) != len(column_names):
            raise ValueError(
                f"CSV record has {len(row)} fields but the header has {len(column_names)} "
                f"({', '.join(column_names)}): {row!r}. Every record needs one value per "
                "header column; quote values that contain commas."
            )
    columns = (
        [pa.array(cells, pa.string()) for cells in zip(*rows)]
        if rows
        else [pa.array([], pa.string()) for _ in column_names]
    )
    if missing_values and rows:
        marker_set = pa.array(list(missing_values), pa.string())
        columns = [
            pc.if_else(pc.is_in(pc.utf8_trim_whitespace(cells), value_set=marker_set), "", cells) for cells in columns
        ]
    if (required or allowed) and rows:
        index = {name: i for i, name in enumerate(column_names)}
        conditions = [pc.not_equal(columns[index[name]], "") for name in required]
        conditions += [
            pc.is_in(pc.utf8_trim_whitespace(columns[index[name]]), value_set=pa.array(list(values), pa.string()))
            for name, values in (allowed or {}).items()
        ]
        keep = conditions[0]
        for condition in conditions[1:]:
            keep = pc.and_(keep, condition)
        columns = [cells.filter(keep) for cells in columns]
    return columns


def _present(cells: pa.StringArray) -> pa.StringArray:
    return cells.filter(pc.not_equal(cells, ""))


def _cast(values: pa.Array, to: pa.DataType) -> pa.Array | None:
    """`values` as `to`, or None where Arrow cannot parse one of them."""
    try:
        return pc.cast(values, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def column_type(cells: pa.StringArray) -> ColumnType:
    """The type of one column's cells: Arrow decides the common cases, tfx_bsl's per-cell rule
    the rest (whitespace, underscores, int literals beyond int64)."""
    present = _present(cells)
    if len(present) == 0:
        return ColumnType.UNKNOWN
    if _cast(present, pa.int64()) is not None:
        return ColumnType.INT
    decimal_ints = present.filter(pc.match_substring_regex(present, _DECIMAL_INT))
    if _cast(present, pa.float64()) is not None and _cast(decimal_ints, pa.int64()) is not None:
        return ColumnType.FLOAT
    inferred = ColumnType.UNKNOWN
    for cell in present.to_pylist():
        inferred = max(inferred, csv_decoder._InferValueType(cell.encode()))  # pylint: disable=protected-access
        if inferred == ColumnType.STRING:
            break
    return inferred


def infer_types(columns: Sequence[pa.StringArray], column_names: Sequence[str]) -> dict[str, ColumnType]:
    """Column name to type for one batch; `merge_types` combines batches."""
    return {name: column_type(cells) for name, cells in zip(column_names, columns)}


def merge_types(batches: Iterable[Mapping[str, ColumnType]]) -> dict[str, ColumnType]:
    """The widest type per column (INT < FLOAT < STRING), as TFX merges partitions."""
    merged: dict[str, ColumnType] = {}
    for types in batches:
        for name, kind in types.items():
            merged[name] = max(merged.get(name, ColumnType.UNKNOWN), kind)
    return merged


def _values(present: pa.StringArray, kind: ColumnType) -> pa.Array:
    if kind == ColumnType.STRING:
        return present.cast(pa.binary())
    if kind == ColumnType.INT:
        ints = _cast(present, pa.int64())
        return ints if ints is not None else pa.array([int(c) for c in present.to_pylist()], pa.int64())
    # Through float64, as Python's float() then the proto's float32 do.
    floats = _cast(present, pa.float64())
    if floats is None:
        floats = pa.array([float(c) for c in present.to_pylist()], pa.float64())
    return pc.cast(floats, pa.float32())


def _feature_column(cells: pa.StringArray, kind: ColumnType) -> pa.ListArray:
    if kind == ColumnType.UNKNOWN:  # no value anywhere: a feature with no kind, as TFX writes
        return pa.array([None] * len(cells), pa.list_(pa.binary()))
    present = pc.not_equal(cells, "")
    offsets = np.concatenate([[0], np.cumsum(present.to_numpy(zero_copy_only=False))])
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), _values(cells.filter(present), kind))


def to_examples(
    columns: Sequence[pa.StringArray], column_names: Sequence[str], column_types: Mapping[str, ColumnType]
) -> list[bytes]:
    """Serialized tf.Examples, one per row, keyed by column name, deterministically ordered."""
    if not columns or len(columns[0]) == 0:
        return []
    batch = pa.RecordBatch.from_arrays(
        [_feature_column(cells, column_types[name]) for name, cells in zip(column_names, columns)], list(column_names)
    )
    return [
        example_pb2.Example.FromString(encoded).SerializeToString(deterministic=True)
        for encoded in example_coder.RecordBatchToExamples(batch)
    ]
