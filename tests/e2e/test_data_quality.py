"""End to end: a CSV as spreadsheets and R write them trains and pushes.

A slice of the taxi sample with every empty cell written `NA` (and some numbers too), a few
labels missing (label.missing: drop), saved by Excel's "CSV UTF-8" (a byte-order mark) and
gzip-compressed, runs through every component; ExampleGen writes the rows with a label, with
the `NA` cells as missing values of their column's number type.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import pathlib

import pytest

from tests.e2e.test_local_pipeline import SAMPLE_ROWS, latest_run, pushed_versions, tfxp

pytestmark = pytest.mark.slow

# Every 7th trip_seconds and every 11th trip_miles become NA; every 30th label is missing.
NA_EVERY = {"trip_seconds": 7, "trip_miles": 11}
NO_LABEL_EVERY = 30


@pytest.fixture(scope="module")
def messy(tmp_path_factory, taxi_config):
    work = tmp_path_factory.mktemp("messy")
    with open(pathlib.Path(taxi_config.data.path, "data.csv"), newline="") as f:
        rows = list(csv.reader(f))[: SAMPLE_ROWS + 1]
    header = rows[0]
    for n, row in enumerate(rows[1:], 1):
        for i, cell in enumerate(row):
            if cell == "" or (header[i] in NA_EVERY and n % NA_EVERY[header[i]] == 0):
                row[i] = "NA"
        if n % NO_LABEL_EVERY == 0:
            row[header.index("tips")] = ""
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    (work / "data").mkdir()
    path = work / "data" / "trips.csv.gz"
    path.write_bytes(gzip.compress(text.getvalue().encode("utf-8-sig")))
    return work, path


@pytest.fixture(scope="module")
def messy_run(messy):
    work, path = messy
    result = tfxp(work, f"data.path={path}", "label.missing=drop", "tuner.enabled=false")
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_it_trains_and_pushes(messy_run, messy):
    work, _ = messy
    run = latest_run(work)
    assert {e.state for e in run.executions} == {"COMPLETE"}
    assert run.blessed is True and len(pushed_versions(work)) == 1


def test_examplegen_wrote_the_labelled_rows_with_na_as_missing_numbers(messy_run, messy):
    import tensorflow as tf

    work, _ = messy
    files = glob.glob(str(work / "out/pipelines/taxi-big-tipper/ExampleGen/examples/*/Split-*/*.gz"))
    examples = [
        tf.train.Example.FromString(r.numpy()).features.feature
        for r in tf.data.TFRecordDataset(files, compression_type="GZIP")
    ]
    assert len(examples) == SAMPLE_ROWS - SAMPLE_ROWS // NO_LABEL_EVERY
    assert all(e["tips"].float_list.value for e in examples)  # no row without its label
    assert "pickup_community_area" in examples[0]  # the first column's name without the mark
    seconds = [e["trip_seconds"] for e in examples]
    assert all(f.WhichOneof("kind") == "int64_list" for f in seconds)
    assert sum(not f.int64_list.value for f in seconds) >= SAMPLE_ROWS // NA_EVERY["trip_seconds"] * 0.9


def test_a_label_outside_label_classes_gets_one_line_before_any_component(tmp_path, taxi_config):
    """The bundled multiclass config without `other_classes: drop`, on a slice of the sample
    whose line 344 holds the class 'Dispute': one line naming it, exit 2, nothing run."""
    import subprocess
    import sys

    with open(pathlib.Path(taxi_config.data.path, "data.csv"), newline="") as f:
        lines = f.readlines()[: SAMPLE_ROWS + 1]
    assert lines[343].count("Dispute") == 1  # line 344 of the file: the first of the sample's other classes
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "trips.csv").write_text("".join(lines))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfxp",
            "run",
            "--config",
            "package://pipeline/configs/taxi_multiclass.yaml",
            "--set",
            f"data.path={tmp_path / 'data'}",
            "--set",
            f"output_dir={tmp_path / 'out'}",
            "--set",
            "label.other_classes=error",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert (
        f"{tmp_path / 'data' / 'trips.csv'}, line 344, column 'payment_type': the label 'Dispute' is not one "
        "of label.classes (Cash, Credit Card, No Charge, Unknown); add it to label.classes or remove the row" in line
    )
    assert "Traceback" not in result.stderr and "ExampleGen" not in result.stdout
    assert not (tmp_path / "out" / "pipelines").exists()
