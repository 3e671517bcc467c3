"""InferenceRows (components/inference_rows): new rows typed by the model that scores them, not
by what the rows happen to hold, which an ExampleGen infers; and its executor's output."""

from __future__ import annotations

import json

import pytest
import tensorflow as tf

from components.inference_rows import rows
from components.inference_rows.executor import SPLIT, Executor

INPUTS = {"fare": "DT_FLOAT", "hour": "DT_INT64", "zip": "DT_STRING"}


def _csv(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _examples(paths) -> list[tf.train.Example]:
    return [
        tf.train.Example.FromString(r)
        for r in tf.data.TFRecordDataset([str(p) for p in paths], compression_type="GZIP").as_numpy_iterator()
    ]


def test_columns_are_typed_by_the_model_whatever_the_new_values_look_like(tmp_path):
    # fare's new values are all whole numbers and zip's all digits: an ExampleGen would infer
    # int64 for both; the model takes a float and a string.
    path = _csv(tmp_path / "new.csv", "trip_id,fare,hour,zip\na1,5,3,007\na2,12,,60601\n")
    dtypes = rows.file_dtypes(path, "csv", INPUTS)
    assert dtypes == {"trip_id": "DT_STRING", "fare": "DT_FLOAT", "hour": "DT_INT64", "zip": "DT_STRING"}
    (batch,) = rows.read_batches(path, "csv", list(dtypes), ("",))
    first, second = (tf.train.Example.FromString(e).features.feature for e in rows.typed_examples(batch, dtypes))
    assert list(first["fare"].float_list.value) == [5.0] and list(first["hour"].int64_list.value) == [3]
    assert list(first["zip"].bytes_list.value) == [b"007"]  # the text, not the number 7
    assert list(first["trip_id"].bytes_list.value) == [b"a1"]  # kept to join the predictions on
    assert not second["hour"].int64_list.value  # an empty cell: missing, as the model reads it


def test_a_model_column_missing_from_the_header_and_a_bad_cell_are_one_line(tmp_path):
    path = _csv(tmp_path / "new.csv", "fare,hour\n5,3\n")
    with pytest.raises(rows.RowsError, match=rf"^{path}: the model's input column 'zip' is missing"):
        rows.file_dtypes(path, "csv", INPUTS)
    path = _csv(tmp_path / "bad.csv", "fare,hour,zip\n5,3,1\n5,3.5,1\n")
    (batch,) = rows.read_batches(path, "csv", list(INPUTS), ("",))
    with pytest.raises(rows.RowsError) as err:
        rows.typed_examples(batch, INPUTS)
    assert str(err.value) == f"{path}, line 3, column 'hour': '3.5' is not a whole number (the model expects DT_INT64)"
    with pytest.raises(rows.RowsError, match=rf"^input {tmp_path}/none\.csv does not exist$"):
        rows.input_files(str(tmp_path / "none.csv"))


def test_the_executor_writes_one_inference_split_typed_by_the_model(tmp_path, monkeypatch):
    from tfx.types import standard_artifacts

    from components.inference_rows import executor as executor_module

    monkeypatch.setattr(executor_module.rows, "raw_inputs", lambda signatures, path: dict(INPUTS))
    monkeypatch.setattr("components.serving_warmup.warmup.signature_defs", lambda path: {})
    path = _csv(tmp_path / "new.csv", "fare,hour,zip\n5,3,007\n7,4,1\n")
    model, examples = standard_artifacts.Model(), standard_artifacts.Examples()
    model.uri, examples.uri = str(tmp_path / "model"), str(tmp_path / "examples")
    properties = {"input_pattern": path, "data_format": "csv", "missing_values": json.dumps([""])}
    Executor().Do({"model": [model]}, {"examples": [examples]}, properties)
    assert json.loads(examples.split_names) == [SPLIT]
    written = _examples((tmp_path / "examples" / f"Split-{SPLIT}").glob("*.gz"))
    assert sorted(list(e.features.feature["fare"].float_list.value) for e in written) == [[5.0], [7.0]]
    bad = _csv(tmp_path / "bad.csv", "fare,hour,zip\nfive,3,1\n")
    with pytest.raises(rows.RowsError, match=r"line 2, column 'fare': 'five' is not a number"):
        Executor().Do({"model": [model]}, {"examples": [examples]}, {**properties, "input_pattern": bad})
