"""TFX's file-based ExampleGens with the content-fingerprint driver (CSV: csv_example_gen)."""

from tfx import v1 as tfx
from tfx.components import FileBasedExampleGen as _FileBasedExampleGen
from tfx.components.example_gen.custom_executors import parquet_executor
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.dsl.components.base import executor_spec

from components.content_fingerprint.driver import ContentFingerprintDriver
from components.content_fingerprint.spans import ResolvesSpans


class ImportExecutor(ResolvesSpans, import_executor.Executor):
    """TFX's ImportExampleGen executor, resolving {SPAN} itself where no driver ran."""


class ParquetExecutor(ResolvesSpans, parquet_executor.Executor):
    """TFX's Parquet executor, resolving {SPAN} itself where no driver ran."""


class ImportExampleGen(tfx.components.ImportExampleGen):
    DRIVER_CLASS = ContentFingerprintDriver
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(ImportExecutor)


class FileBasedExampleGen(_FileBasedExampleGen):
    DRIVER_CLASS = ContentFingerprintDriver
