"""Thin executor: TFX's CSV ExampleGen executor with the columnar conversion of `csv_convert`
and the write of `stable_write` (the same order on every run).

Its `custom_config` (a Struct, set by pipeline/pipeline.py) may carry the row options of
`options`: `missing_values`, the cells read as missing, `required_columns`, the columns whose
rows are dropped where they are missing, and `allowed_values`, per column the values a row must
hold to be kept; without it the executor writes what TFX's does. Headers are read through Beam's
file system, so a `.gz` file is decompressed as its records are, and a UTF-8 byte-order mark is
dropped. Beyond TFX, each column's feature is keyed by its name's feature key
(contracts/column_names.py: `trip miles` becomes `trip_miles`); a valid name is its own key.
"""

from __future__ import annotations

import os
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs as specs

from components.example_gen import csv_convert
from components.example_gen.options import csv_options
from components.example_gen.span_resolution import ResolvesSpans
from components.example_gen.stable_write import StableOrderExecutor
from contracts.column_names import column_keys

# Records per batch: big enough for Arrow to pay off, small enough that the batches of one
# file spread over the Beam workers.
BATCH_SIZE = 2048


class _InferColumnTypes(beam.CombineFn):
    """Batches of records in, column name to type out."""

    def __init__(self, column_names: list[str], options: dict):
        self._column_names = column_names
        self._options = options

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, accumulator: dict, records: list[str]) -> dict:
        columns = csv_convert.parse(records, self._column_names, **self._options)
        return csv_convert.merge_types([accumulator, csv_convert.infer_types(columns, self._column_names)])

    def merge_accumulators(self, accumulators) -> dict:
        return csv_convert.merge_types(accumulators)

    def extract_output(self, accumulator: dict) -> dict:
        return {name: accumulator.get(name, csv_convert.ColumnType.UNKNOWN) for name in self._column_names}


def _to_examples(records: list[str], column_names: list[str], column_types: dict, options: dict) -> list[bytes]:
    return csv_convert.to_examples(csv_convert.parse(records, column_names, **options), column_names, column_types)


def _header(path: str) -> list[str]:
    with FileSystems.open(path) as f:  # compression from the file name, as the records are read
        return csv_convert.header_names(f.readline().decode("utf-8"))


def _column_names(pattern: str) -> tuple[list[str], list[str]]:
    """The split's files and their columns' feature keys (contracts/column_names.py): the
    examples are keyed as the model, its signatures and the client name the columns."""
    files = fileio.glob(pattern)
    if not files:
        raise RuntimeError(f"Split pattern {pattern} does not match any files.")
    names = _header(files[0])
    for path in files[1:]:
        if _header(path) != names:
            raise RuntimeError(f"Files in same split {pattern} have different header.")
    return files, list(column_keys(names, files[0]).values())


@beam.ptransform_fn
def _CsvToSerializedExamples(
    pipeline: beam.Pipeline, exec_properties: dict[str, Any], split_pattern: str
) -> beam.PCollection:
    """Raw records are read once and kept until the types are known; parsed cells never are."""
    pattern = os.path.join(exec_properties[specs.INPUT_BASE_KEY], split_pattern)
    files, column_names = _column_names(pattern)
    options = csv_options(exec_properties)
    records = (
        pipeline
        | "CreateFilenames" >> beam.Create(files)
        | "ReadRecordBatches" >> beam.FlatMap(csv_convert.read_record_batches, BATCH_SIZE)
    )
    column_types = beam.pvalue.AsSingleton(
        records | "InferColumnTypes" >> beam.CombineGlobally(_InferColumnTypes(column_names, options))
    )
    return records | "ToSerializedExamples" >> beam.FlatMap(_to_examples, column_names, column_types, options)


class _CsvExecutor(StableOrderExecutor, tfx_csv.Executor):
    """Same inputs, outputs and splits as TFX's; the conversion and the write's order differ."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _CsvToSerializedExamples


class Executor(ResolvesSpans, _CsvExecutor):
    """The CSV executor, resolving {SPAN} itself where no ExampleGen driver ran."""
