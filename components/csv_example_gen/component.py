"""TFX's CsvExampleGen with its executor swapped for the columnar one."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from google.protobuf import any_pb2, struct_pb2
from tfx import v1 as tfx
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components.content_fingerprint.driver import ContentFingerprintDriver
from components.csv_example_gen import executor


def custom_config(
    missing_values: Sequence[str] = (),
    required_columns: Sequence[str] = (),
    allowed_values: Mapping[str, Sequence[str]] | None = None,
) -> example_gen_pb2.CustomConfig:
    """The executor's options (executor.csv_options reads them) as ExampleGen's custom_config."""
    struct = struct_pb2.Struct()
    struct.update({"missing_values": list(missing_values), "required_columns": list(required_columns)})
    if allowed_values:
        struct.update({"allowed_values": {name: list(values) for name, values in allowed_values.items()}})
    packed = any_pb2.Any()
    packed.Pack(struct)
    return example_gen_pb2.CustomConfig(custom_config=packed)


class CsvExampleGen(tfx.components.CsvExampleGen):
    """Same spec and parameters as `tfx.components.CsvExampleGen`, and the same output: the
    executor writes byte-identical examples into the same splits, shuffled as TFX shuffles
    them, faster and in bounded memory (README, Benchmarks). Its driver adds the files' contents
    to TFX's input fingerprint (components/content_fingerprint).

    Beyond TFX's parameters, `missing_values` are the cells read as missing, rows missing a
    `required_columns` value are dropped, and so are rows whose value in a column of
    `allowed_values` is not one of that column's (executor.csv_options); TFX's CsvExampleGen has no
    custom_config parameter, so this passes them as its base class's.
    """

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
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
        FileBasedExampleGen.__init__(self, custom_config=options, **kwargs)
