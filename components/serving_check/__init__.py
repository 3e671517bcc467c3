"""ServingCheck: the candidate model loaded and run the way TF Serving loads and runs it.

The component class is imported on first use, so the plain-TensorFlow modules of this
package (loader, tf_serving_requests, check, op_check) import without TFX, in a side
environment too.
"""


def __getattr__(name: str):
    if name == "ServingCheck":
        from components.serving_check.component import ServingCheck

        return ServingCheck
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ServingCheck"]
