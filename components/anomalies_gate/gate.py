"""The gate's logic as plain functions: read ExampleValidator's anomalies and judge them.

TFX's ExampleValidator records anomalies but lets the pipeline go on; the gate turns them
into a failure with a report that says which feature, what is wrong, and what to change.
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


def report(problems: list[str]) -> str:
    return ("the data does not match the schema:\n  " + "\n  ".join(problems) +
            "\nFix the data, or, if the change is expected, curate the schema (schema.path in the "
            "config) so that it allows it.")


def check(split_dirs: dict[str, str]) -> None:
    """Raises AnomaliesFound with a report when any split has anomalies."""
    problems = [line for split, path in sorted(split_dirs.items())
                for line in describe(load_anomalies(path), split)]
    if problems:
        raise AnomaliesFound(report(problems))
