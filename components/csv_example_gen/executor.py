"""Thin executor: TFX's CSV ExampleGen executor with the columnar conversion of `convert`."""

from __future__ import annotations

import os
from typing import Any

import apache_beam as beam
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs
from tfx.utils import io_utils

from components.csv_example_gen import convert

# Records per batch: big enough for Arrow to pay off, small enough that the batches of one
# file spread over the Beam workers.
BATCH_SIZE = 2048


class _InferColumnTypes(beam.CombineFn):
    """Batches of records in, column name to type out."""

    def __init__(self, column_names: list[str]):
        self._column_names = column_names

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, accumulator: dict, records: list[str]) -> dict:
        columns = convert.parse(records, self._column_names)
        return convert.merge_types([accumulator, convert.infer_types(columns, self._column_names)])

    def merge_accumulators(self, accumulators) -> dict:
        return convert.merge_types(accumulators)

    def extract_output(self, accumulator: dict) -> dict:
        return {name: accumulator.get(name, convert.ColumnType.UNKNOWN) for name in self._column_names}


def _to_examples(records: list[str], column_names: list[str], column_types: dict) -> list[bytes]:
    return convert.to_examples(convert.parse(records, column_names), column_names, column_types)


def _column_names(pattern: str) -> tuple[list[str], list[str]]:
    files = fileio.glob(pattern)
    if not files:
        raise RuntimeError(f"Split pattern {pattern} does not match any files.")
    names = io_utils.load_csv_column_names(files[0])
    for path in files[1:]:
        if io_utils.load_csv_column_names(path) != names:
            raise RuntimeError(f"Files in same split {pattern} have different header.")
    return files, names


@beam.ptransform_fn
def _CsvToSerializedExamples(pipeline: beam.Pipeline, exec_properties: dict[str, Any],
                             split_pattern: str) -> beam.PCollection:
    """Raw records are read once and kept until the types are known; parsed cells never are."""
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    files, column_names = _column_names(pattern)
    records = (pipeline
               | "CreateFilenames" >> beam.Create(files)
               | "ReadRecordBatches" >> beam.FlatMap(convert.read_record_batches, BATCH_SIZE))
    column_types = beam.pvalue.AsSingleton(
        records | "InferColumnTypes" >> beam.CombineGlobally(_InferColumnTypes(column_names)))
    return records | "ToSerializedExamples" >> beam.FlatMap(_to_examples, column_names, column_types)


class Executor(tfx_csv.Executor):
    """Same inputs, outputs and splits as TFX's; only the conversion differs."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _CsvToSerializedExamples
