"""AnomaliesGate's logic, on Anomalies protos written the way ExampleValidator writes them."""

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.anomalies_gate import gate


def _write(directory, anomalies):
    directory.mkdir(parents=True)
    (directory / gate.ANOMALIES_FILE).write_bytes(anomalies.SerializeToString())
    return str(directory)


def _unexpected_value():
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info["payment_type"]
    info.short_description = "Unexpected string values"
    reason = info.reason.add()
    reason.description = "Examples contain values missing from the schema: Bitcoin (~2%)."
    return anomalies


def test_clean_splits_pass(tmp_path):
    gate.check({"train": _write(tmp_path / "train", anomalies_pb2.Anomalies()),
                "eval": _write(tmp_path / "eval", anomalies_pb2.Anomalies())})


def test_anomalies_fail_with_a_report(tmp_path):
    dirs = {"train": _write(tmp_path / "train", anomalies_pb2.Anomalies()),
            "eval": _write(tmp_path / "eval", _unexpected_value())}
    with pytest.raises(gate.AnomaliesFound) as err:
        gate.check(dirs)
    message = str(err.value)
    assert "split 'eval', feature 'payment_type': Unexpected string values" in message
    assert "Bitcoin" in message and "curate the schema" in message
    assert "'train'" not in message


def test_dataset_level_anomaly(tmp_path):
    anomalies = anomalies_pb2.Anomalies()
    anomalies.dataset_anomaly_info.short_description = "Low num examples"
    anomalies.dataset_anomaly_info.description = "The dataset has 3 examples."
    assert gate.describe(anomalies, "test") == ["split 'test', whole dataset: Low num examples: "
                                                "The dataset has 3 examples."]


def test_missing_anomalies_file_is_an_error(tmp_path):
    with pytest.raises(Exception):
        gate.load_anomalies(str(tmp_path))
