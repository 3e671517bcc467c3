"""The AnomaliesGate component: schema and drift anomalies in, nothing out; records the
statistics of an accepted span for the next span's drift check."""

from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.anomalies_gate import executor


class AnomaliesGateSpec(ComponentSpec):
    PARAMETERS = {
        "history_dir": ExecutionParameter(type=str, optional=True),
        # Stored with the execution in ML Metadata, so an accepted drift is on the record.
        "accept_drift": ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {
        "anomalies": ChannelParameter(type=standard_artifacts.ExampleAnomalies),
        "drift": ChannelParameter(type=standard_artifacts.ExampleAnomalies, optional=True),
        "statistics": ChannelParameter(type=standard_artifacts.ExampleStatistics, optional=True),
    }
    OUTPUTS: dict = {}


class AnomaliesGate(base_component.BaseComponent):
    """Fails (and so stops everything downstream) on schema anomalies, and on drift unless accepted."""

    SPEC_CLASS = AnomaliesGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self, anomalies, drift=None, statistics=None, history_dir: str | None = None, accept_drift: bool = False
    ):
        super().__init__(
            spec=AnomaliesGateSpec(
                anomalies=anomalies,
                drift=drift,
                statistics=statistics,
                history_dir=history_dir,
                accept_drift=int(accept_drift),
            )
        )
