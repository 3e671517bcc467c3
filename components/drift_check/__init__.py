"""DriftCheck: compares the current span's statistics with the last accepted span's."""

from components.drift_check.component import DriftCheck

__all__ = ["DriftCheck"]
