"""tfxp feedback: ground truth joined to the request log, and its bad input."""

from __future__ import annotations

import csv
import json

import pytest

from components.drift_check.request_log import RequestLogger
from ops.monitoring import feedback
from pipeline.config import ConfigError, load_config
from tests.conftest import to_example
from tfxp.commands import EXIT_BAD_INPUT
from tfxp.main import main


@pytest.fixture
def logged(tmp_path, tiny_rows):
    """Twenty tiny rows sent as two requests and logged; the rows keep their true tips."""
    logger = RequestLogger(str(tmp_path / "requests"))
    rows = tiny_rows[:20]
    examples = [to_example(row, drop=("tips",)).SerializeToString() for row in rows]
    logger.log("taxi", "serving_default", examples[:12])
    logger.log("taxi", "serving_default", examples[12:])
    logger.close()
    return rows, examples


def _config(tmp_path, *overrides):
    return load_config(
        None, [f"output_dir={tmp_path / 'out'}", f"monitor.requests={tmp_path / 'requests'}", *overrides]
    )


def _write(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def test_logged_examples_carry_derived_ids_and_the_logging_time(tmp_path, logged):
    import time

    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    _, examples = logged
    [log_file] = (tmp_path / "requests").glob("requests-*.tfrecord")
    records = [
        prediction_log_pb2.PredictionLog.FromString(r)
        for r in tf.data.TFRecordDataset(str(log_file)).as_numpy_iterator()
    ]
    assert all(abs(r.log_metadata.timestamp_secs - time.time()) < 60 for r in records)  # TF Serving's field
    found = feedback.read_logged(_config(tmp_path))
    assert [e.example for e in found] == examples
    assert [e.id for e in found] == [feedback.derived_id(e) for e in examples]
    assert len({e.id for e in found}) == len(examples)
    assert all(abs(e.logged_at - found[0].logged_at) < 5 for e in found)
    assert feedback.read_logged(_config(tmp_path), since=found[0].logged_at + 10) == []


def test_feedback_joins_labels_and_counts_unmatched_rows(tmp_path, logged, capsys):
    import tensorflow as tf

    rows, examples = logged
    csv_rows = [[feedback.derived_id(e), row["tips"]] for e, row in zip(examples, rows)][:15]
    csv_rows += [["0123456789abcdef", "1.5"], ["fedcba9876543210", "0"]]
    path = _write(tmp_path / "truth.csv", ["request_id", "tips"], csv_rows)
    code = main(
        [
            "feedback",
            path,
            "--set",
            f"output_dir={tmp_path / 'out'}",
            "--set",
            f"monitor.requests={tmp_path / 'requests'}",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "joined 15 of 17 feedback rows" in out
    assert "2 rows match no logged request (first: line 17, id 0123456789abcdef)" in out
    [unmatched] = (tmp_path / "out/feedback").glob("unmatched-*.csv")
    assert unmatched.read_text().splitlines() == ["line,id", "17,0123456789abcdef", "18,fedcba9876543210"]
    joined = feedback.joined_rows(_config(tmp_path))
    assert len(joined) == 15
    first = tf.train.Example.FromString(joined[0].example)
    assert first.features.feature["tips"].float_list.value[0] == pytest.approx(float(rows[0]["tips"]))
    assert first.features.feature["fare"].float_list.value[0] == pytest.approx(float(rows[0]["fare"]))


def test_a_later_feedback_file_replaces_an_earlier_label(tmp_path, logged):
    rows, examples = logged
    config = _config(tmp_path)
    key = feedback.derived_id(examples[0])
    feedback.join(config, _write(tmp_path / "a.csv", ["request_id", "tips"], [[key, "1.0"]]))
    feedback.join(config, _write(tmp_path / "b.csv", ["request_id", "tips"], [[key, "9.0"]]))
    [row] = feedback.joined_rows(config)
    assert row.labels == {"tips": 9.0}


@pytest.mark.parametrize(
    "header, body, message",
    [
        (["request_id", "tips"], [["x", "1.0"], ["y", "lots"]], "line 3 (id y): column 'tips' is 'lots', not a number"),
        (["request_id", "tips"], [["x", ""]], "line 2 (id x): column 'tips' is empty"),
        (["id", "tips"], [["x", "1"]], "missing column(s) request_id; the header is id, tips"),
        (["request_id", "tips"], [["nope", "1"]], "none of the 1 ids in"),
    ],
)
def test_bad_feedback_is_one_line_and_writes_nothing(tmp_path, logged, capsys, header, body, message):
    path = _write(tmp_path / "bad.csv", header, body)
    code = main(
        [
            "feedback",
            path,
            "--set",
            f"output_dir={tmp_path / 'out'}",
            "--set",
            f"monitor.requests={tmp_path / 'requests'}",
        ]
    )
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "out/feedback").exists()


def test_a_binary_label_column_takes_zero_or_one(tmp_path, logged, capsys):
    _, examples = logged
    key = feedback.derived_id(examples[0])
    path = _write(tmp_path / "bad.csv", ["request_id", "tips"], [[key, "0.5"]])
    code = main(
        [
            "feedback",
            path,
            "--set",
            f"output_dir={tmp_path / 'out'}",
            "--set",
            f"monitor.requests={tmp_path / 'requests'}",
            "--set",
            "label.greater_than_fraction_of=null",
        ]
    )
    assert code == EXIT_BAD_INPUT
    assert "column 'tips' is '0.5', not 0 or 1" in capsys.readouterr().err


def test_a_key_column_joins_on_a_logged_feature(tmp_path, logged):
    rows, _ = logged
    config = _config(tmp_path, "monitor.key_column=trip_start_timestamp")
    first = {}
    for row in rows:  # the first row of each timestamp: the one the join keeps is the latest
        first.setdefault(row["trip_start_timestamp"], row)
    path = _write(tmp_path / "k.csv", ["trip_start_timestamp", "tips"], [[ts, "2.5"] for ts in first])
    result = feedback.join(config, path)
    assert result.joined == len(first) and not result.unmatched


def test_exported_requests_list_ids_and_features(tmp_path, logged):
    rows, examples = logged
    out = tmp_path / "requests.csv"
    assert feedback.export_requests(_config(tmp_path), str(out)) == 20
    with open(out, newline="") as f:
        exported = list(csv.DictReader(f))
    assert exported[0]["request_id"] == feedback.derived_id(examples[0])
    assert exported[0]["company"] == rows[0]["company"]
    assert float(exported[0]["fare"]) == pytest.approx(float(rows[0]["fare"]))
    assert "tips" not in exported[0]
    json.dumps(exported)


def _task_config(tmp_path, path, *overrides):
    return load_config(
        path, [f"output_dir={tmp_path / 'out'}", f"monitor.requests={tmp_path / 'requests'}", *overrides]
    )


def test_a_multiclass_label_is_a_class_name_or_its_index(tmp_path, logged):
    import tensorflow as tf

    _, examples = logged
    config = _task_config(tmp_path, "pipeline/configs/taxi_multiclass.yaml")
    ids = [feedback.derived_id(e) for e in examples[:3]]
    path = _write(
        tmp_path / "f.csv", ["request_id", "payment_type"], [[ids[0], "Credit Card"], [ids[1], "2"], [ids[2], "0"]]
    )
    feedback.join(config, path)
    rows = {r.id: r for r in feedback.joined_rows(config)}
    assert [rows[i].labels["payment_type"] for i in ids] == ["Credit Card", "No Charge", "Cash"]
    example = tf.train.Example.FromString(rows[ids[1]].example)
    assert example.features.feature["payment_type"].bytes_list.value == [b"No Charge"]
    bad = _write(tmp_path / "bad.csv", ["request_id", "payment_type"], [[ids[0], "Pcard"]])
    with pytest.raises(
        ConfigError,
        match=r"column 'payment_type' is 'Pcard', not one of the classes "
        r"\(Cash, Credit Card, No Charge, Unknown\) nor a class index 0-3$",
    ):
        feedback.join(config, bad)
    with pytest.raises(ConfigError, match="is '4', not one of the classes"):
        feedback.join(config, _write(tmp_path / "bad.csv", ["request_id", "payment_type"], [[ids[0], "4"]]))


def test_integer_class_names_are_never_read_as_indices():
    assert feedback._class_value("5", ["3", "5", "7"]) == 5
    with pytest.raises(ValueError, match=r"^not one of the classes \(3, 5, 7\)$"):
        feedback._class_value("1", ["3", "5", "7"])
    assert feedback._class_value("b", ["a", "b"]) == "b"
    assert feedback._class_value("1", ["a", "b"]) == "b"


def test_a_regression_label_is_a_finite_number(tmp_path, logged):
    _, examples = logged
    config = _task_config(tmp_path, "pipeline/configs/taxi_regression.yaml")
    key = feedback.derived_id(examples[0])
    feedback.join(config, _write(tmp_path / "f.csv", ["request_id", "fare"], [[key, "12.5"]]))
    assert [r.labels for r in feedback.joined_rows(config)] == [{"fare": 12.5}]
    for text, message in (("abc", "not a number"), ("inf", "not a finite number")):
        with pytest.raises(ConfigError, match=f"column 'fare' is '{text}', {message}$"):
            feedback.join(config, _write(tmp_path / "bad.csv", ["request_id", "fare"], [[key, text]]))
