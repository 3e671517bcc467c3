"""The ServingCheck component: candidate model in, an InfraBlessing out, as TFX's
InfraValidator gives one, so TFX's Pusher (`infra_blessing`) pushes only what passed."""

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec

from components.serving_check import executor


class ServingCheckSpec(ComponentSpec):
    PARAMETERS = {}
    INPUTS = {"model": ChannelParameter(type=standard_artifacts.Model)}
    OUTPUTS = {"blessing": ChannelParameter(type=standard_artifacts.InfraBlessing)}


class ServingCheck(base_component.BaseComponent):
    """Loads the model on TF Serving's path and runs its warm-up records; fails the run if not."""

    SPEC_CLASS = ServingCheckSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model):
        super().__init__(
            spec=ServingCheckSpec(model=model, blessing=types.Channel(type=standard_artifacts.InfraBlessing))
        )
