"""InferenceRows' executor: reads the rows a batch at a time and writes them typed by the model
(rows.py holds the logic); bad rows fail the step with rows.RowsError's one line."""

from __future__ import annotations

import json
import os
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components.inference_rows import rows

SPLIT = "inference"  # the one split written; BulkInferrer's DataSpec names it


class Executor(base_beam_executor.BaseBeamExecutor):
    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        import apache_beam as beam
        import tensorflow as tf

        from components.serving_warmup.warmup import signature_defs

        model_dir = path_utils.serving_model_path(artifact_utils.get_single_instance(input_dict["model"]).uri)
        examples = artifact_utils.get_single_instance(output_dict["examples"])
        inputs = rows.raw_inputs(signature_defs(model_dir), model_dir)
        pattern, fmt = exec_properties["input_pattern"], exec_properties["data_format"]
        missing_values = tuple(json.loads(exec_properties.get("missing_values") or "[]"))
        files = rows.input_files(pattern)
        # Each file's columns: the model's typed as the model takes them, any other (an ID to join
        # the predictions back on) kept as its text; TFRecord examples name their own features.
        dtypes = {path: rows.file_dtypes(path, fmt, inputs) for path in files}

        def read(path: str):
            yield from rows.read_batches(path, fmt, list(dtypes[path]), missing_values)

        def encode(batch: rows.Batch) -> list[bytes]:
            return rows.typed_examples(batch, dtypes[batch.path])

        split_dir = os.path.join(examples.uri, f"Split-{SPLIT}")
        tf.io.gfile.makedirs(split_dir)
        try:
            with self._make_beam_pipeline() as pipeline:
                _ = (
                    pipeline
                    | "Files" >> beam.Create(files)
                    | "Read" >> beam.FlatMap(read)
                    | "Spread" >> beam.Reshuffle()
                    | "ToExamples" >> beam.FlatMap(encode)
                    | "Write"
                    >> beam.io.WriteToTFRecord(
                        os.path.join(split_dir, "data_tfrecord"), file_name_suffix=".gz", compression_type="gzip"
                    )
                )
        except Exception as err:
            message = rows.bad_input_in(err)
            if message is not None:
                raise rows.RowsError(message) from None
            raise
        examples.split_names = artifact_utils.encode_split_names([SPLIT])
