"""ServingBaseline: the model TF Serving serves now, as the Evaluator's baseline.

The component class is imported on first use, so `baseline` imports without TFX. The served
versions and their atomic publishing are contracts/serving_dir.py's.
"""


def __getattr__(name: str):
    if name == "ServingBaseline":
        from components.serving_baseline.component import ServingBaseline

        return ServingBaseline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ServingBaseline"]
