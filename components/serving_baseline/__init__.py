"""ServingBaseline: the model TF Serving serves now, as the Evaluator's baseline."""

from components.serving_baseline.component import ServingBaseline

__all__ = ["ServingBaseline"]
