"""Thin executor mix-in: TFX's ExampleGen `Do` with `shuffle.ShuffleAndWrite` in place of TFX's
WriteSplit, for every file-based ExampleGen here (CSV, Parquet, TFRecord import).

TFX's WriteSplit (tfx/components/example_gen/write_split.py) serializes, shuffles with Beam's
Reshuffle and writes with WriteToTFRecord: the same input gives another order on every run.
This writes the same examples into the same splits, in an order that depends on them alone,
and serializes protos deterministically (map fields sorted by key) so their bytes, which the
order is taken from, are the same in every process. Output formats other than gzipped
TFRecords of tf.Examples are left to TFX's `Do`.
"""

from __future__ import annotations

import os
from typing import Any

import apache_beam as beam
from tfx.components.example_gen import utils, write_split
from tfx.components.util import examples_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils

from components.example_gen import shuffle

# Output formats written here (None: the default).
TF_EXAMPLE = (None, example_gen_pb2.FORMAT_TF_EXAMPLE)
TFRECORDS_GZIP = (None, example_gen_pb2.FILE_FORMAT_UNSPECIFIED, example_gen_pb2.FORMAT_TFRECORDS_GZIP)
# Below the examples artifact's directory, beside the splits; removed when `Do` ends.
TEMP_DIR = ".shuffle"


def serialized(example: Any) -> bytes:
    """A record as it is written: bytes as they are, a proto serialized with sorted map keys."""
    if isinstance(example, bytes):
        return example
    return example.SerializeToString(deterministic=True)


class StableOrderExecutor:
    """Mix-in for a BaseExampleGenExecutor: its `Do`, writing each split with ShuffleAndWrite."""

    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list], exec_properties: dict[str, Any]) -> None:  # noqa: N802 - TFX's name
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
        temp_root = os.path.join(artifact.uri, TEMP_DIR)
        try:
            with self._make_beam_pipeline() as pipeline:
                for name, split in self.GenerateExamplesByBeam(pipeline, exec_properties).items():
                    temp_dir = os.path.join(temp_root, name)
                    fileio.makedirs(temp_dir)
                    prefix = os.path.join(artifact_utils.get_split_uri(outputs, name), write_split.DEFAULT_FILE_NAME)
                    _ = (
                        split
                        | f"Serialize[{name}]" >> beam.Map(serialized)
                        | f"WriteSplit[{name}]" >> shuffle.ShuffleAndWrite(prefix, temp_dir)
                    )
        finally:
            if fileio.exists(temp_root):
                fileio.rmtree(temp_root)
        examples_utils.set_payload_format(artifact, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(artifact, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))
