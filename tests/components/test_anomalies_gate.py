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
    gate.check(
        {
            "train": _write(tmp_path / "train", anomalies_pb2.Anomalies()),
            "eval": _write(tmp_path / "eval", anomalies_pb2.Anomalies()),
        }
    )


def test_anomalies_fail_with_a_report(tmp_path):
    dirs = {
        "train": _write(tmp_path / "train", anomalies_pb2.Anomalies()),
        "eval": _write(tmp_path / "eval", _unexpected_value()),
    }
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
    assert gate.describe(anomalies, "test") == [
        "split 'test', whole dataset: Low num examples: The dataset has 3 examples."
    ]


def test_missing_anomalies_file_is_an_error(tmp_path):
    import tensorflow as tf

    with pytest.raises(tf.errors.NotFoundError):
        gate.load_anomalies(str(tmp_path))


def _drifted():
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info["fare"]
    info.short_description = "Drift from the previous span"
    reason = info.reason.add()
    reason.type = anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH
    reason.description = (
        "The approximate Jensen-Shannon divergence between current and previous is 0.41 "
        "(up to six significant digits), above the threshold 0.1."
    )
    return anomalies


def test_drift_fails_with_a_report_that_says_how_to_accept_it(tmp_path):
    clean = {"train": _write(tmp_path / "train", anomalies_pb2.Anomalies())}
    drifted = {"train": _write(tmp_path / "drift", _drifted())}
    with pytest.raises(gate.AnomaliesFound) as err:
        gate.check(clean, drifted)
    message = str(err.value)
    assert message.startswith("the data drifted (from the last accepted span, or from what serving receives):")
    assert "feature 'fare': Drift from the previous span: The approximate Jensen-Shannon divergence" in message
    assert "0.41" in message and "--set drift.accept=true" in message
    assert "does not match the schema" not in message


def test_accepted_drift_passes_and_is_returned(tmp_path):
    clean = {"train": _write(tmp_path / "train", anomalies_pb2.Anomalies())}
    drifted = {"train": _write(tmp_path / "drift", _drifted())}
    accepted = gate.check(clean, drifted, accept_drift=True)
    assert len(accepted) == 1 and "'fare'" in accepted[0]


def test_accepting_drift_does_not_let_schema_anomalies_through(tmp_path):
    bad = {"eval": _write(tmp_path / "eval", _unexpected_value())}
    drifted = {"train": _write(tmp_path / "drift", _drifted())}
    with pytest.raises(gate.AnomaliesFound, match="does not match the schema") as err:
        gate.check(bad, drifted, accept_drift=True)
    assert "drifted" not in str(err.value)
