"""DriftCheck: compares the current span's statistics with the last accepted span's.

The component class is imported on first use, so `request_log` and `drift` import without
TFX: the commands that read the request log need neither TFX nor its start-up.
"""


def __getattr__(name: str):
    if name == "DriftCheck":
        from components.drift_check.component import DriftCheck

        return DriftCheck
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DriftCheck"]
