"""The AnomaliesGate component: its spec (anomalies in, nothing out) and executor binding."""

from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec

from components.anomalies_gate import executor


class AnomaliesGateSpec(ComponentSpec):
    PARAMETERS: dict = {}
    INPUTS = {"anomalies": ChannelParameter(type=standard_artifacts.ExampleAnomalies)}
    OUTPUTS: dict = {}


class AnomaliesGate(base_component.BaseComponent):
    """Fails (and so stops everything downstream) when the anomalies are not empty."""

    SPEC_CLASS = AnomaliesGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, anomalies):
        super().__init__(spec=AnomaliesGateSpec(anomalies=anomalies))
