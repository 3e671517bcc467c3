"""Thin executor: TFX's Transform with its transformed examples written by
`components.example_gen.shuffle.ShuffleAndWrite`, in an order that depends on the examples alone.

TFX's Transform writes each transformed split with Beam's WriteToTFRecord
(tfx/components/transform/executor.py `TransformProcessor._EncodeAndWrite`): the records land in
the order the bundles finished. Over one input file that is the input's order; over several (a
split ExampleGen wrote as several shards, read by several workers) it changes from run to run,
and the seeded Trainer then reads other batches and trains another model. Written here as
ExampleGen writes its splits (each example serialized with its features in name order, since
the order is taken from the bytes), the same input gives the same files on every run, runner
and worker count. Parquet output, which this pipeline does not ask for, is left to TFX.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import apache_beam as beam
from tfx.components.transform import executor as tfx_transform
from tfx.components.transform import labels
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as specs

from components.example_gen import shuffle

# Beside each transformed split's files, removed when `Do` ends.
TEMP_DIR = ".shuffle"
# TFX's class, kept before `_stable_processor` points its module's name at ours.
_TFX_PROCESSOR = tfx_transform.TransformProcessor


def canonical(record: bytes) -> bytes:
    """A serialized tf.Example with its features in name order. TFX's encoder (tfx_bsl's
    RecordBatchToExamplesEncoder) writes the feature map in an order that changes from process
    to process; the write's order is taken from the bytes, so they must be the same in each."""
    from tensorflow.core.example import example_pb2  # a Beam worker's import, not the launcher's

    return example_pb2.Example.FromString(record).SerializeToString(deterministic=True)


def _temp_dir(output_path: str) -> str:
    return os.path.join(os.path.dirname(output_path), TEMP_DIR)


class StableOrderProcessor(_TFX_PROCESSOR):
    """TFX's TransformProcessor with ShuffleAndWrite as its TFRecord write."""

    # TFX's own method name: `_RunBeamImpl` calls `self._EncodeAndWrite` for every transformed
    # split, and no public option chooses the write (TFX 1.21).
    @staticmethod
    @beam.ptransform_fn
    def _EncodeAndWrite(  # noqa: N802 - TFX's name
        pcoll: beam.PCollection, schema: Any, file_format: str, output_path: str
    ) -> beam.PCollection:
        if file_format != labels.FORMAT_TFRECORD:
            return pcoll | "EncodeAndWriteByTFX" >> _TFX_PROCESSOR._EncodeAndWrite(
                schema=schema, file_format=file_format, output_path=output_path
            )
        temp_dir = _temp_dir(output_path)
        fileio.makedirs(temp_dir)
        return (
            pcoll
            | "EncodeAndSerialize" >> beam.ParDo(_TFX_PROCESSOR._RecordBatchToExamplesFn(schema))
            | "ExtractExamples" >> beam.Values()
            | "Canonical" >> beam.Map(canonical)
            | "ShuffleAndWrite" >> shuffle.ShuffleAndWrite(output_path, temp_dir)
        )


@contextlib.contextmanager
def _stable_processor() -> Iterator[None]:
    """TFX's `Executor.Do` builds `TransformProcessor()` by its module's name, with no argument
    or hook to pass another (TFX 1.21), so the name points at ours while `Do` runs; the launcher
    runs one executor at a time in its process."""
    tfx_transform.TransformProcessor = StableOrderProcessor
    try:
        yield
    finally:
        tfx_transform.TransformProcessor = _TFX_PROCESSOR


class Executor(tfx_transform.Executor):
    """TFX's Transform executor, writing transformed examples in a stable order."""

    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list], exec_properties: dict[str, Any]) -> None:  # noqa: N802 - TFX's name
        try:
            with _stable_processor():
                super().Do(input_dict, output_dict, exec_properties)
        finally:
            for artifact in output_dict.get(specs.TRANSFORMED_EXAMPLES_KEY, []):
                for split in artifact_utils.decode_split_names(artifact.split_names or "[]"):
                    temp_dir = os.path.join(artifact_utils.get_split_uri([artifact], split), TEMP_DIR)
                    if fileio.exists(temp_dir):
                        fileio.rmtree(temp_dir)
