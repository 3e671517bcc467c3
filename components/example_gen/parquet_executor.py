"""TFX's Parquet executor with `data.missing_values` and the label's row filters.

Parquet columns carry their types, so a marker can only be a string: a string cell equal to
one of the markers (spaces around it ignored) is read as missing, as the CSV executor reads
it. Rows missing a required column (`label.missing: drop`) and rows whose value in a column is
not one of its allowed values (`label.other_classes: drop`) are left out. The options come in
the same custom_config as the CSV executor's (`options`); without it the executor writes what
TFX's does, but for each column keyed by its name's feature key (contracts/column_names.py).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

import apache_beam as beam
from tfx.components.example_gen import utils
from tfx.components.example_gen.custom_executors import parquet_executor as tfx_parquet
from tfx.types import standard_component_specs as specs

from components.example_gen.options import csv_options
from components.example_gen.span_resolution import ResolvesSpans
from components.example_gen.stable_write import StableOrderExecutor
from contracts.column_names import feature_key


def _is_missing(value: Any, markers: frozenset[str]) -> bool:
    if value is None:
        return True
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return isinstance(value, str) and value.strip() in markers


def row_filter(
    missing_values: Sequence[str] = (),
    required: Sequence[str] = (),
    allowed: Mapping[str, Sequence[str]] | None = None,
) -> Callable[[Mapping[str, Any]], dict[str, Any] | None]:
    """`clean_row` with its options prepared once, for every row of a split."""
    markers = frozenset(m.strip() for m in missing_values)
    allowed_sets = {name: frozenset(values) for name, values in (allowed or {}).items()}

    def clean(row: Mapping[str, Any]) -> dict[str, Any] | None:
        cleaned = {name: None if _is_missing(value, markers) else value for name, value in row.items()}
        if any(cleaned.get(name) is None for name in required):
            return None
        for name, values in allowed_sets.items():
            value = cleaned.get(name)
            value = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            if value is None or str(value).strip() not in values:
                return None
        return cleaned

    return clean


def clean_row(
    row: Mapping[str, Any],
    missing_values: Sequence[str] = (),
    required: Sequence[str] = (),
    allowed: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any] | None:
    """The row with marker strings as None (TFX's dict_to_example writes an empty feature for
    it), or None where a `required` column is missing or an `allowed` column holds another value."""
    return row_filter(missing_values, required, allowed)(row)


def _kept(row: Mapping[str, Any], clean: Callable[[Mapping[str, Any]], dict[str, Any] | None]) -> list[dict[str, Any]]:
    cleaned = clean(row)
    return [] if cleaned is None else [cleaned]


@beam.ptransform_fn
def _ParquetToExample(pipeline: beam.Pipeline, exec_properties: dict[str, Any], split_pattern: str) -> beam.PCollection:
    """TFX's `_ParquetToExample` with `clean_row` between reading and converting."""
    options = csv_options(exec_properties)
    rows = pipeline | "ReadFromParquet" >> beam.io.ReadFromParquet(
        os.path.join(exec_properties[specs.INPUT_BASE_KEY], split_pattern)
    )
    # Each column under its feature key (contracts/column_names.py), as the CSV executor writes them.
    rows = rows | "FeatureKeys" >> beam.Map(lambda row: {feature_key(name): value for name, value in row.items()})
    if options:
        rows = rows | "CleanRows" >> beam.FlatMap(_kept, row_filter(**options))
    return rows | "ToTFExample" >> beam.Map(utils.dict_to_example)


class Executor(ResolvesSpans, StableOrderExecutor, tfx_parquet.Executor):
    """TFX's Parquet executor with `clean_row`, resolving {SPAN} itself where no driver ran,
    writing in the stable order."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ParquetToExample
