"""AnomaliesGate: stops the pipeline before training when ExampleValidator found anomalies."""

from components.anomalies_gate.component import AnomaliesGate

__all__ = ["AnomaliesGate"]
