"""The InferenceRows component: a model and a file (or glob) of raw rows in, the rows as
tf.Examples typed by that model out, in one split `inference`, for TFX's BulkInferrer.

An ExampleGen would infer each CSV column's type from the new rows themselves, so a float feature
whose new values happen to be whole numbers would reach the model as int64 and fail; this step
types every column the model takes by the model's `serve_raw` signature instead
(components/inference_rows/rows.py, the same code as `tfxp predict-batch`).
"""

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.inference_rows import executor

SPLIT = executor.SPLIT


class InferenceRowsSpec(ComponentSpec):
    PARAMETERS = {
        "input_pattern": ExecutionParameter(type=str),  # a file or a glob
        "data_format": ExecutionParameter(type=str),  # csv, parquet or tfrecord
        "missing_values": ExecutionParameter(type=str),  # JSON list: CSV cells read as missing
    }
    INPUTS = {"model": ChannelParameter(type=standard_artifacts.Model)}
    OUTPUTS = {"examples": ChannelParameter(type=standard_artifacts.Examples)}


class InferenceRows(base_beam_component.BaseBeamComponent):
    """Outputs the rows at `input_pattern` as Examples (split `inference`) typed by `model`."""

    SPEC_CLASS = InferenceRowsSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, model, input_pattern: str, data_format: str, missing_values: str):
        super().__init__(
            spec=InferenceRowsSpec(
                model=model,
                input_pattern=input_pattern,
                data_format=data_format,
                missing_values=missing_values,
                examples=types.Channel(type=standard_artifacts.Examples),
            )
        )
