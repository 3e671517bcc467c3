"""The gate's logic as plain functions: read the anomalies and judge them.

TFX's ExampleValidator (schema) and our DriftCheck (drift from the last accepted span) record
anomalies but let the pipeline go on; the gate turns them into a failure with a report that
says which feature, what is wrong, and what to change. Drift can be accepted for one run.
"""

from __future__ import annotations

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2

ANOMALIES_FILE = "SchemaDiff.pb"


class AnomaliesFound(RuntimeError):
    """The data does not match the schema; the message is the report."""


def load_anomalies(split_dir: str) -> anomalies_pb2.Anomalies:
    """Reads the binary Anomalies proto that ExampleValidator wrote for one split."""
    import tensorflow as tf  # gfile reads local paths and object stores alike

    anomalies = anomalies_pb2.Anomalies()
    with tf.io.gfile.GFile(os.path.join(split_dir, ANOMALIES_FILE), "rb") as f:
        anomalies.ParseFromString(f.read())
    return anomalies


def describe(anomalies: anomalies_pb2.Anomalies, split: str) -> list[str]:
    """One line per anomalous feature (and one for the dataset), naming what is wrong."""
    lines = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        reasons = "; ".join(r.description or r.short_description for r in info.reason) or info.description
        lines.append(f"split '{split}', feature '{feature}': {info.short_description}: {reasons}")
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"split '{split}', whole dataset: {info.short_description}: {info.description}")
    return lines


SCHEMA_ADVICE = (
    "Fix the data, or, if the change is expected, curate the schema (schema.path in the "
    "config; `tfxp export-schema` writes the inferred one) so that it allows it."
)
DRIFT_ADVICE = (
    "If the new data is right, accept the drift for this run with --set drift.accept=true "
    "(recorded in ML Metadata), or raise drift.categorical_threshold / drift.numeric_threshold."
)


def report(problems: list[str], drifted: list[str] | None = None) -> str:
    parts = []
    if problems:
        parts.append("the data does not match the schema:\n  " + "\n  ".join(problems) + "\n" + SCHEMA_ADVICE)
    if drifted:
        parts.append(
            "the data drifted (from the last accepted span, or from what serving receives):\n  "
            + "\n  ".join(drifted)
            + "\n"
            + DRIFT_ADVICE
        )
    return "\n".join(parts)


def _problems(split_dirs: dict[str, str]) -> list[str]:
    return [line for split, path in sorted(split_dirs.items()) for line in describe(load_anomalies(path), split)]


def check(
    split_dirs: dict[str, str], drift_dirs: dict[str, str] | None = None, accept_drift: bool = False
) -> list[str]:
    """Raises AnomaliesFound with a report for schema anomalies, and for drift unless accepted.

    Returns the accepted drift lines (empty when there was none).
    """
    problems = _problems(split_dirs)
    drifted = _problems(drift_dirs or {})
    if problems or (drifted and not accept_drift):
        raise AnomaliesFound(report(problems, [] if accept_drift else drifted))
    return drifted
