"""`tfxp predict-batch` on the tiny sample, with a model trained on it (tests/serving/export_tiny_model.py,
once per module and task): its predictions are the model's own, in every input and output
format, and bad input is one line with nothing written."""

from __future__ import annotations

import csv
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from ops import batch_predict
from ops.batch_predict import BatchInputError, predict_batch
from pipeline.config import ConfigError, load_config
from tests.conftest import REGRESSION_CONFIG, TINY_CSV, _analyze_tiny, to_example
from tests.subprocesses import python

VERSION = 1796000000


def _push(transform_dir, out: pathlib.Path, model_name: str, *flags: str) -> pathlib.Path:
    """A model trained on the tiny sample, pushed as version VERSION under `out`'s serving directory."""
    version_dir = out / "serving" / model_name / str(VERSION)
    subprocess.run(
        [sys.executable, "-m", "tests.serving.export_tiny_model", str(transform_dir), str(version_dir), *flags],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return version_dir


@pytest.fixture(scope="module")
def binary(transform_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("binary")
    return load_config(None, [f"output_dir={out}"]), _push(transform_dir, out, "taxi")


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    out = tmp_path_factory.mktemp("regression")
    transform = _analyze_tiny(tmp_path_factory.mktemp("transform-regression"), f"--config={REGRESSION_CONFIG}")
    return load_config(REGRESSION_CONFIG, [f"output_dir={out}"]), _push(
        transform, out, "taxi_fare", f"--config={REGRESSION_CONFIG}"
    )


def _model_outputs(version_dir, key: str) -> np.ndarray:
    """The model's own serving_default output `key` for every row of the tiny sample, in file order."""
    with open(TINY_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    model = tf.saved_model.load(str(version_dir))
    examples = tf.constant([to_example(r).SerializeToString() for r in rows])
    return model.signatures["serving_default"](examples=examples)[key].numpy()


def _read(path: pathlib.Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix == ".tfrecord":
        rows = []
        for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            example = tf.train.Example.FromString(record)
            row = {}
            for name, feature in example.features.feature.items():
                kind = feature.WhichOneof("kind")
                value = getattr(feature, kind).value[0]
                row[name] = value.decode() if isinstance(value, bytes) else value
            rows.append(row)
        return rows
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _leftovers(directory: pathlib.Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_binary_predictions_are_the_models_with_class_names(binary, tmp_path):
    config, version_dir = binary
    output = tmp_path / "scores.csv"
    result = predict_batch(config, str(TINY_CSV), str(output))
    rows = sorted(_read(output), key=lambda r: int(r["row"]))
    assert (result.version, result.rows, len(rows)) == (VERSION, 80, 80)
    assert list(rows[0]) == ["row", "class", "probability", "probability_0", "probability_1"]
    assert [int(r["row"]) for r in rows] == list(range(2, 82))  # each row's CSV line
    expected = _model_outputs(version_dir, "probabilities")
    got = np.array([float(r["probability_1"]) for r in rows])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose([float(r["probability_0"]) for r in rows], 1 - expected, atol=1e-5)
    assert [r["class"] for r in rows] == ["1" if p > 0.5 else "0" for p in expected]
    assert all(float(r["probability"]) == max(float(r["probability_0"]), float(r["probability_1"])) for r in rows)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("out_name", ["scores.parquet", "scores.tfrecord"])
def test_every_input_format_gives_the_same_predictions_with_its_key_columns(binary, tmp_path, out_name):
    """CSV, Parquet (whose inferred types differ from the model's: whole-number float columns
    are int64 there) and TFRecord in, keyed by two input columns, Parquet or TFRecord out."""
    config, _ = binary
    reference = tmp_path / "reference.csv"
    predict_batch(config, str(TINY_CSV), str(reference), key_columns=["trip_start_timestamp", "company"])
    expected = {(r["trip_start_timestamp"], r["company"]): float(r["probability_1"]) for r in _read(reference)}
    table = pa_csv.read_csv(TINY_CSV)
    assert pa.types.is_integer(table.schema.field("trip_seconds").type)
    parquet = tmp_path / "rows.parquet"
    pq.write_table(table, parquet)
    tfrecord = tmp_path / "rows.tfrecord"
    with open(TINY_CSV, newline="") as f, tf.io.TFRecordWriter(str(tfrecord)) as writer:
        for row in csv.DictReader(f):
            writer.write(to_example(row).SerializeToString())
    for source in (parquet, tfrecord):
        output = tmp_path / f"{source.suffix[1:]}-{out_name}"
        predict_batch(config, str(source), str(output), key_columns=["trip_start_timestamp", "company"])
        rows = _read(output)
        assert len(rows) == 80
        got = {(r["trip_start_timestamp"], r["company"]): r["probability_1"] for r in rows}
        assert got.keys() == expected.keys()
        np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), atol=1e-5)


def test_a_glob_keys_rows_by_file_and_row(binary, tmp_path):
    config, _ = binary
    lines = TINY_CSV.read_text().splitlines(keepends=True)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("".join(lines[:11]))
    (tmp_path / "in" / "b.csv").write_text("".join([lines[0], *lines[11:]]))
    output = tmp_path / "scores.csv"
    predict_batch(config, str(tmp_path / "in" / "*.csv"), str(output))
    rows = _read(output)
    assert list(rows[0])[:2] == ["file", "row"]
    assert sorted((r["file"], int(r["row"])) for r in rows) == [("a.csv", n) for n in range(2, 12)] + [
        ("b.csv", n) for n in range(2, 72)
    ]


def test_regression_predictions_are_the_models_values(regression, tmp_path):
    config, version_dir = regression
    output = tmp_path / "fares.csv"
    predict_batch(config, str(TINY_CSV), str(output))
    rows = sorted(_read(output), key=lambda r: int(r["row"]))
    assert list(rows[0]) == ["row", "prediction"]
    np.testing.assert_allclose(
        [float(r["prediction"]) for r in rows], _model_outputs(version_dir, "predictions"), rtol=1e-5, atol=1e-4
    )


def _with_cell(tmp_path, line: int, column: str, value: str) -> pathlib.Path:
    rows = list(csv.reader(TINY_CSV.read_text().splitlines()))
    rows[line - 1][rows[0].index(column)] = value
    path = tmp_path / "rows.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def _without_column(tmp_path, column: str) -> pathlib.Path:
    rows = list(csv.reader(TINY_CSV.read_text().splitlines()))
    drop = rows[0].index(column)
    path = tmp_path / "rows.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([r[:drop] + r[drop + 1 :] for r in rows])
    return path


def test_a_cell_that_cannot_be_the_models_type_names_file_line_and_column(binary, tmp_path):
    config, _ = binary
    source = _with_cell(tmp_path, 40, "trip_miles", "12 miles")
    output = tmp_path / "out" / "scores.csv"
    output.parent.mkdir()
    with pytest.raises(BatchInputError) as err:
        predict_batch(config, str(source), str(output))
    assert str(err.value) == (
        f"{source}, line 40, column 'trip_miles': '12 miles' is not a number (the model expects DT_FLOAT)"
    )
    assert list(output.parent.iterdir()) == []  # nothing at OUTPUT, no staging left


def test_a_whole_number_column_refuses_a_fraction(binary, tmp_path):
    config, _ = binary
    source = _with_cell(tmp_path, 7, "trip_start_hour", "3.5")
    with pytest.raises(BatchInputError, match=r"line 7, column 'trip_start_hour': '3.5' is not a whole number"):
        predict_batch(config, str(source), str(tmp_path / "scores.csv"))
    assert not (tmp_path / "scores.csv").exists()


def test_a_missing_model_column_is_named(binary, tmp_path):
    config, _ = binary
    source = _without_column(tmp_path, "company")
    with pytest.raises(BatchInputError, match=rf"^{source}: the model's input column 'company' is missing"):
        predict_batch(config, str(source), str(tmp_path / "scores.csv"))
    assert not (tmp_path / "scores.csv").exists()


def test_a_tfrecord_feature_of_another_type_names_the_record(binary, tmp_path):
    config, _ = binary
    path = tmp_path / "rows.tfrecord"
    with open(TINY_CSV, newline="") as f, tf.io.TFRecordWriter(str(path)) as writer:
        for number, row in enumerate(csv.DictReader(f), 1):
            example = to_example(row)
            if number == 5:
                example.features.feature["trip_miles"].CopyFrom(
                    tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"far"]))
                )
            writer.write(example.SerializeToString())
    with pytest.raises(BatchInputError) as err:
        predict_batch(config, str(path), str(tmp_path / "scores.csv"))
    assert str(err.value).startswith(f"{path}, records 1-80: not tf.Examples with one type per feature")


def test_key_columns_and_inputs_that_are_not_there(binary, tmp_path):
    config, _ = binary
    with pytest.raises(BatchInputError, match=r"key column 'trip_id' is not in its header"):
        predict_batch(config, str(TINY_CSV), str(tmp_path / "s.csv"), key_columns=["trip_id"])
    with pytest.raises(BatchInputError, match=rf"^input {tmp_path}/nothing\.csv does not exist$"):
        predict_batch(config, str(tmp_path / "nothing.csv"), str(tmp_path / "s.csv"))
    with pytest.raises(BatchInputError, match=r"matches no file$"):
        predict_batch(config, str(tmp_path / "*.parquet"), str(tmp_path / "s.csv"))
    with pytest.raises(BatchInputError, match=r"^output .*s\.json: cannot tell the format"):
        predict_batch(config, str(TINY_CSV), str(tmp_path / "s.json"))
    with pytest.raises(ConfigError, match=r"version 7 is not served from .*; served versions: 1796000000"):
        predict_batch(config, str(TINY_CSV), str(tmp_path / "s.csv"), version=7)
    assert list(tmp_path.iterdir()) == []


def test_the_command_says_one_line_and_writes_nothing(binary, tmp_path):
    config, _ = binary
    source = _with_cell(tmp_path, 12, "tips", "n/a?")
    output = tmp_path / "scores.csv"
    # tips is the label, not an input of the model: a bad cell there is no error.
    done = python(
        "-m", "tfxp", "predict-batch", str(source), "--output", str(output), "--set", f"output_dir={config.output_dir}"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"scored 80 rows with model 'taxi' version {VERSION} in ")
    output.unlink()
    source = _with_cell(tmp_path, 12, "trip_seconds", "n/a?")
    done = python(
        "-m", "tfxp", "predict-batch", str(source), "--output", str(output), "--set", f"output_dir={config.output_dir}"
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"error: {source}, line 12, column 'trip_seconds': 'n/a?' is not a whole number (the model expects DT_INT64)\n"
    )
    assert not output.exists() and _leftovers(tmp_path) == []


def test_the_version_is_chosen_in_one_place(binary):
    config, version_dir = binary
    model = batch_predict.pushed_model(config.serving_dir)
    assert (model.version, model.path, model.signature, model.classes) == (
        VERSION,
        str(version_dir),
        "classify",
        ("0", "1"),
    )
    assert model.inputs["company"] == "DT_STRING" and model.inputs["trip_miles"] == "DT_FLOAT"


def test_without_a_version_the_stable_label_is_scored_not_the_newest_canary(binary, tmp_path):
    from contracts.model_config import ModelConfig, write_config

    _, version_dir = binary
    serving = tmp_path / "serving" / "taxi"
    for number in (VERSION, VERSION + 1):
        shutil.copytree(version_dir, serving / str(number))
    assert batch_predict.pushed_model(str(serving), None, "taxi").version == VERSION + 1  # no config: the newest
    labels = {"stable": VERSION, "canary": VERSION + 1}
    write_config(str(serving), ModelConfig("taxi", str(serving), (VERSION, VERSION + 1), labels))
    assert batch_predict.pushed_model(str(serving), None, "taxi").version == VERSION
    assert batch_predict.pushed_model(str(serving), VERSION + 1, "taxi").version == VERSION + 1
