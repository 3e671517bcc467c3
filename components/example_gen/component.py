"""The ExampleGen components: TFX's file-based ExampleGens with the content-fingerprint driver,
{SPAN} resolved where no driver ran and the stable write; CSV's with its executor swapped for
the columnar one."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

# Not tfx.v1 (pipeline/pipeline.py says why).
from tfx.components.example_gen.component import FileBasedExampleGen as _FileBasedExampleGen
from tfx.components.example_gen.csv_example_gen.component import CsvExampleGen as TfxCsvExampleGen
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.components.example_gen.import_example_gen.component import ImportExampleGen as TfxImportExampleGen
from tfx.dsl.components.base import executor_spec

from components.example_gen import csv_executor
from components.example_gen.driver import ContentFingerprintDriver
from components.example_gen.options import custom_config
from components.example_gen.span_resolution import ResolvesSpans
from components.example_gen.stable_write import StableOrderExecutor


class CsvExampleGen(TfxCsvExampleGen):
    """Same spec and parameters as TFX's `CsvExampleGen`, and the same output: the
    executor writes byte-identical examples into the same splits, shuffled as TFX shuffles
    them, faster and in bounded memory (README, Benchmarks). Its driver adds the files' contents
    to TFX's input fingerprint (driver).

    Beyond TFX's parameters, `missing_values` are the cells read as missing, rows missing a
    `required_columns` value are dropped, and so are rows whose value in a column of
    `allowed_values` is not one of that column's (options.csv_options); TFX's CsvExampleGen has no
    custom_config parameter, so this passes them as its base class's.
    """

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(csv_executor.Executor)
    DRIVER_CLASS = ContentFingerprintDriver

    def __init__(
        self,
        missing_values: Sequence[str] = (),
        required_columns: Sequence[str] = (),
        allowed_values: Mapping[str, Sequence[str]] | None = None,
        **kwargs: Mapping[str, Any],
    ):
        options = (
            custom_config(missing_values, required_columns, allowed_values)
            if missing_values or required_columns or allowed_values
            else None
        )
        _FileBasedExampleGen.__init__(self, custom_config=options, **kwargs)


class ImportExecutor(ResolvesSpans, StableOrderExecutor, import_executor.Executor):
    """TFX's ImportExampleGen executor, resolving {SPAN} itself where no driver ran, writing in
    the stable order."""


class ImportExampleGen(TfxImportExampleGen):
    DRIVER_CLASS = ContentFingerprintDriver
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(ImportExecutor)


class FileBasedExampleGen(_FileBasedExampleGen):
    DRIVER_CLASS = ContentFingerprintDriver
