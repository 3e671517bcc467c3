"""Thin executor: TFX's CSV ExampleGen executor with the columnar conversion of `convert` and
the on-disk shuffle of `shuffle`.

Its `custom_config` (a Struct, set by pipeline/pipeline.py) may carry `missing_values`, the
cells read as missing, `required_columns`, the columns whose rows are dropped where they
are missing, and `allowed_values`, per column the values a row must hold to be kept;
without it the executor writes what TFX's does. Headers are read through Beam's file system,
so a `.gz` file is decompressed as its records are, and a UTF-8 byte-order mark is dropped.
"""

from __future__ import annotations

import os
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from google.protobuf import json_format, struct_pb2
from tfx.components.example_gen import utils, write_split
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv
from tfx.components.util import examples_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils

from components.content_fingerprint.spans import ResolvesSpans
from components.csv_example_gen import convert, shuffle

# Records per batch: big enough for Arrow to pay off, small enough that the batches of one
# file spread over the Beam workers.
BATCH_SIZE = 2048
# Output formats written here; others are left to TFX's executor (None: the default).
TF_EXAMPLE = (None, example_gen_pb2.FORMAT_TF_EXAMPLE)
TFRECORDS_GZIP = (None, example_gen_pb2.FILE_FORMAT_UNSPECIFIED, example_gen_pb2.FORMAT_TFRECORDS_GZIP)


class _InferColumnTypes(beam.CombineFn):
    """Batches of records in, column name to type out."""

    def __init__(self, column_names: list[str], options: dict):
        self._column_names = column_names
        self._options = options

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, accumulator: dict, records: list[str]) -> dict:
        columns = convert.parse(records, self._column_names, **self._options)
        return convert.merge_types([accumulator, convert.infer_types(columns, self._column_names)])

    def merge_accumulators(self, accumulators) -> dict:
        return convert.merge_types(accumulators)

    def extract_output(self, accumulator: dict) -> dict:
        return {name: accumulator.get(name, convert.ColumnType.UNKNOWN) for name in self._column_names}


def _to_examples(records: list[str], column_names: list[str], column_types: dict, options: dict) -> list[bytes]:
    return convert.to_examples(convert.parse(records, column_names, **options), column_names, column_types)


def csv_options(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """`convert.parse`'s missing_values, required columns and allowed values from the custom_config."""
    text = exec_properties.get(specs.CUSTOM_CONFIG_KEY)
    if not text:
        return {}
    custom = proto_utils.json_to_proto(text, example_gen_pb2.CustomConfig())
    struct = struct_pb2.Struct()
    if not custom.custom_config.Unpack(struct):
        raise ValueError(
            f"CsvExampleGen's custom_config holds a {custom.custom_config.type_url}, not a google.protobuf.Struct"
        )
    options = json_format.MessageToDict(struct)
    return {
        "missing_values": list(options.get("missing_values", [])),
        "required": list(options.get("required_columns", [])),
        "allowed": {name: list(values) for name, values in options.get("allowed_values", {}).items()},
    }


def _header(path: str) -> list[str]:
    with FileSystems.open(path) as f:  # compression from the file name, as the records are read
        return convert.header_names(f.readline().decode("utf-8"))


def _column_names(pattern: str) -> tuple[list[str], list[str]]:
    files = fileio.glob(pattern)
    if not files:
        raise RuntimeError(f"Split pattern {pattern} does not match any files.")
    names = _header(files[0])
    for path in files[1:]:
        if _header(path) != names:
            raise RuntimeError(f"Files in same split {pattern} have different header.")
    return files, names


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
        | "ReadRecordBatches" >> beam.FlatMap(convert.read_record_batches, BATCH_SIZE)
    )
    column_types = beam.pvalue.AsSingleton(
        records | "InferColumnTypes" >> beam.CombineGlobally(_InferColumnTypes(column_names, options))
    )
    return records | "ToSerializedExamples" >> beam.FlatMap(_to_examples, column_names, column_types, options)


@beam.ptransform_fn
def _ShuffleAndWrite(examples: beam.PCollection, split_uri: str, temp_dir: str) -> beam.pvalue.PDone:
    """TFX's WriteSplit (shuffle, then gzipped TFRecords) with the shuffle on disk."""
    return (
        examples
        | "Shuffle" >> shuffle.ShuffleOnDisk(temp_dir)
        | "Write"
        >> beam.io.WriteToTFRecord(os.path.join(split_uri, write_split.DEFAULT_FILE_NAME), file_name_suffix=".gz")
    )


class _CsvExecutor(tfx_csv.Executor):
    """Same inputs, outputs and splits as TFX's; the conversion and the shuffle differ."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _CsvToSerializedExamples

    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list], exec_properties: dict[str, Any]) -> None:
        """TFX's `Do` for tf.Examples in gzipped TFRecords, with `_ShuffleAndWrite`; other
        output formats go to TFX's."""
        if (
            exec_properties.get(specs.OUTPUT_DATA_FORMAT_KEY) not in TF_EXAMPLE
            or exec_properties.get(specs.OUTPUT_FILE_FORMAT_KEY) not in TFRECORDS_GZIP
        ):
            super().Do(input_dict, output_dict, exec_properties)
            return
        self._log_startup(input_dict, output_dict, exec_properties)
        input_config = proto_utils.json_to_proto(exec_properties[specs.INPUT_CONFIG_KEY], example_gen_pb2.Input())
        output_config = proto_utils.json_to_proto(exec_properties[specs.OUTPUT_CONFIG_KEY], example_gen_pb2.Output())
        outputs = output_dict[specs.EXAMPLES_KEY]
        artifact = artifact_utils.get_single_instance(outputs)
        artifact.split_names = artifact_utils.encode_split_names(
            utils.generate_output_split_names(input_config, output_config)
        )
        temp_root = os.path.join(artifact.uri, ".shuffle")
        try:
            with self._make_beam_pipeline() as pipeline:
                for name, split in self.GenerateExamplesByBeam(pipeline, exec_properties).items():
                    temp_dir = os.path.join(temp_root, name)
                    fileio.makedirs(temp_dir)
                    _ = split | f"WriteSplit[{name}]" >> _ShuffleAndWrite(
                        artifact_utils.get_split_uri(outputs, name), temp_dir
                    )
        finally:
            if fileio.exists(temp_root):
                fileio.rmtree(temp_root)
        examples_utils.set_payload_format(artifact, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(artifact, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))


class Executor(ResolvesSpans, _CsvExecutor):
    """The CSV executor, resolving {SPAN} itself where no ExampleGen driver ran."""
