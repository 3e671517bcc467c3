"""End to end: a run with `inference.data_path` scores the tiny sample with the model it blessed
(TFX's BulkInferrer), and `tfxp predict-batch` scores the same rows with the pushed version to
the same probabilities."""

from __future__ import annotations

import csv
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import TINY_CSV
from tests.e2e.test_task_configs import _tfxp_run, data_dir  # noqa: F401 - data_dir is a fixture

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def new_rows(tmp_path_factory) -> pathlib.Path:
    """The tiny sample with every `fare` and `trip_miles` a whole number: float features whose
    new values an ExampleGen would type as int64, which the model does not parse."""
    path = tmp_path_factory.mktemp("e2e-inference-rows") / "new_rows.csv"
    with open(TINY_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for column in ("fare", "trip_miles"):
            row[column] = str(round(float(row[column]))) if row[column] else ""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def run(data_dir, new_rows, tmp_path_factory):  # noqa: F811 - the imported fixture
    work = tmp_path_factory.mktemp("e2e-inference")
    result = _tfxp_run("taxi.yaml", data_dir, work, f"inference.data_path={new_rows}")
    assert result.returncode == 0, result.stderr[-3000:]
    return work / "out", result


def _bulk_inferrer_rows(out: pathlib.Path) -> list[tf.train.Example]:
    files = sorted((out / "pipelines/taxi-big-tipper/BulkInferrer/output_examples").glob("*/Split-inference/*.gz"))
    assert files
    return [
        tf.train.Example.FromString(record)
        for record in tf.data.TFRecordDataset([str(f) for f in files], compression_type="GZIP").as_numpy_iterator()
    ]


def test_the_bulk_inferrer_scores_every_new_row_with_the_blessed_model(run):
    out, result = run
    assert "BulkInferrer done" in result.stdout and "InferenceRows done" in result.stdout
    assert "blessed: yes" in result.stdout
    rows = _bulk_inferrer_rows(out)
    assert len(rows) == 80
    for example in rows:
        features = example.features.feature
        assert list(features["classes"].bytes_list.value) == [b"0", b"1"]
        scores = list(features["scores"].float_list.value)
        assert len(scores) == 2 and abs(sum(scores) - 1) < 1e-5
        assert "trip_miles" in features  # the row itself, with its predictions
        assert features["fare"].HasField("float_list")  # typed by the model, not by its whole-number values


def test_predict_batch_gives_the_pushed_version_the_same_scores(run, new_rows):
    out, _ = run
    output = out.parent / "scores.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfxp",
            "predict-batch",
            str(new_rows),
            "--output",
            str(output),
            "--key-columns",
            "trip_start_timestamp",
            "--set",
            f"output_dir={out}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("scored 80 rows with model 'taxi' version ")
    with open(output, newline="") as f:
        scored = list(csv.DictReader(f))
    assert len(scored) == 80
    ours = sorted(float(r["probability_1"]) for r in scored)
    bulk = sorted(e.features.feature["scores"].float_list.value[1] for e in _bulk_inferrer_rows(out))
    np.testing.assert_allclose(ours, bulk, atol=1e-5)
