"""The ServingWarmup component: trained model and raw examples in, model with warm-up out."""

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.serving_warmup import executor


class ServingWarmupSpec(ComponentSpec):
    PARAMETERS = {
        "model_name": ExecutionParameter(type=str),
        "split": ExecutionParameter(type=str),
        "num_examples": ExecutionParameter(type=int),
        "drop_columns": ExecutionParameter(type=str),  # comma-separated: the label's raw columns
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "examples": ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {"serving_model": ChannelParameter(type=standard_artifacts.Model)}


class ServingWarmup(base_component.BaseComponent):
    """Outputs the trained model with assets.extra/tf_serving_warmup_requests added."""

    SPEC_CLASS = ServingWarmupSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self, model, examples, model_name: str, drop_columns: list[str], split: str = "eval", num_examples: int = 8
    ):
        super().__init__(
            spec=ServingWarmupSpec(
                model=model,
                examples=examples,
                model_name=model_name,
                split=split,
                num_examples=num_examples,
                drop_columns=",".join(drop_columns),
                serving_model=types.Channel(type=standard_artifacts.Model),
            )
        )
