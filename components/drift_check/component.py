"""The DriftCheck component: statistics and schema in, drift anomalies out."""

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.drift_check import executor


class DriftCheckSpec(ComponentSpec):
    PARAMETERS = {
        "history_dir": ExecutionParameter(type=str),
        "features": ExecutionParameter(type=str),  # JSON list of the checked features
        "categorical_threshold": ExecutionParameter(type=float),
        "numeric_threshold": ExecutionParameter(type=float),
        # Differs on every local run: the accepted spans can change while the inputs stay the same.
        "lookup_token": ExecutionParameter(type=str, optional=True),
        # Requests logged by the server (training-serving skew); optional.
        "serving_requests": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        "statistics": ChannelParameter(type=standard_artifacts.ExampleStatistics),
        "schema": ChannelParameter(type=standard_artifacts.Schema),
    }
    OUTPUTS = {"drift": ChannelParameter(type=standard_artifacts.ExampleAnomalies)}


class DriftCheck(base_component.BaseComponent):
    """Compares the train statistics with those of the newest accepted earlier span."""

    SPEC_CLASS = DriftCheckSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        statistics,
        schema,
        history_dir: str,
        features: str,
        categorical_threshold: float,
        numeric_threshold: float,
        lookup_token: str | None = None,
        serving_requests: str | None = None,
    ):
        super().__init__(
            spec=DriftCheckSpec(
                statistics=statistics,
                schema=schema,
                history_dir=history_dir,
                features=features,
                categorical_threshold=categorical_threshold,
                numeric_threshold=numeric_threshold,
                lookup_token=lookup_token,
                serving_requests=serving_requests,
                drift=types.Channel(type=standard_artifacts.ExampleAnomalies),
            )
        )
