"""The ServingBaseline component: candidate model and serving directory in, baseline out."""

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.serving_baseline import executor


class ServingBaselineSpec(ComponentSpec):
    PARAMETERS = {
        "serving_dir": ExecutionParameter(type=str),
        # Differs on every local run: TFX has no per-node cache switch, and the served model
        # can change between runs while every other input stays the same.
        "lookup_token": ExecutionParameter(type=str, optional=True),
    }
    # The candidate: read only to run after training, so the served model is looked up late.
    INPUTS = {"model": ChannelParameter(type=standard_artifacts.Model)}
    OUTPUTS = {"baseline_model": ChannelParameter(type=standard_artifacts.Model)}


class ServingBaseline(base_component.BaseComponent):
    """Outputs the newest model under `serving_dir`, or an empty artifact if none is served."""

    SPEC_CLASS = ServingBaselineSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model, serving_dir: str, lookup_token: str | None = None):
        super().__init__(
            spec=ServingBaselineSpec(
                model=model,
                serving_dir=serving_dir,
                lookup_token=lookup_token,
                baseline_model=types.Channel(type=standard_artifacts.Model),
            )
        )
