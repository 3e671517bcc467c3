"""ServingWarmup: the trained model plus TF Serving warm-up requests built from real examples.

The component class is imported on first use, so `warmup` (plain TensorFlow) imports without
TFX: the serving check reads warm-up files with it in a side environment too.
"""


def __getattr__(name: str):
    if name == "ServingWarmup":
        from components.serving_warmup.component import ServingWarmup

        return ServingWarmup
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ServingWarmup"]
