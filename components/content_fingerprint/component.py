"""TFX's file-based ExampleGens with the content-fingerprint driver and the stable write of
components/example_gen_write (CSV: csv_example_gen)."""

from tfx import v1 as tfx
from tfx.components import FileBasedExampleGen as _FileBasedExampleGen
from tfx.components.example_gen.custom_executors import parquet_executor
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.dsl.components.base import executor_spec

from components.content_fingerprint.driver import ContentFingerprintDriver
from components.content_fingerprint.spans import ResolvesSpans
from components.example_gen_write.executor import StableOrderExecutor


class ImportExecutor(ResolvesSpans, StableOrderExecutor, import_executor.Executor):
    """TFX's ImportExampleGen executor, resolving {SPAN} itself where no driver ran, writing in
    the stable order."""


class ParquetExecutor(ResolvesSpans, StableOrderExecutor, parquet_executor.Executor):
    """TFX's Parquet executor, resolving {SPAN} itself where no driver ran, writing in the
    stable order."""


class ImportExampleGen(tfx.components.ImportExampleGen):
    DRIVER_CLASS = ContentFingerprintDriver
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(ImportExecutor)


class FileBasedExampleGen(_FileBasedExampleGen):
    DRIVER_CLASS = ContentFingerprintDriver
