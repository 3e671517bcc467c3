"""Shared fixtures: the tiny taxi sample in tests/data and its TFX-free transform output.

Test tiers (see README): `pytest -m "not slow"` runs the fast unit and pipeline tests;
`pytest -m slow` runs the end-to-end tests that execute the real pipeline.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

DATA_DIR = pathlib.Path(__file__).parent / "data"
PROJECT = pathlib.Path(__file__).resolve().parents[1]


def _floors() -> list[str]:
    """The packages of docs/layers.md's table of floors, bottom floor first."""
    rows = re.findall(r"^\| (\d+) \| `(\w+)/` \|", (PROJECT / "docs" / "layers.md").read_text(), re.MULTILINE)
    return [package for _, package in sorted(rows, key=lambda row: int(row[0]))]


# The project's packages as floors (docs/layers.md): each imports only the ones before it.
FLOORS = _floors()
# The tests that run the compiled pipeline's tasks in containers: `make test` and `make test-slow`
# start podman's Docker API (DOCKER_HOST) and build the image (TFXP_IMAGE).
NEEDS_PODMAN_AND_IMAGE = pytest.mark.skipif(
    not os.environ.get("DOCKER_HOST") or not os.environ.get("TFXP_IMAGE"),
    reason="needs the podman API (DOCKER_HOST) and the image (TFXP_IMAGE): run through `make test` or `make test-slow`",
)
TINY_CSV = DATA_DIR / "taxi_tiny.csv"

FLOAT_COLUMNS = (
    "fare",
    "pickup_latitude",
    "pickup_longitude",
    "dropoff_latitude",
    "dropoff_longitude",
    "trip_miles",
    "pickup_census_tract",
    "dropoff_census_tract",
    "tips",
)
STRING_COLUMNS = ("payment_type", "company")

# The pipeline's components, in the order the local runner reports them.
ALL_IDS = [
    "ExampleGen",
    "StatisticsGen",
    "SchemaGen",
    "ExampleValidator",
    "DriftCheck",
    "AnomaliesGate",
    "Transform",
    "Tuner",
    "Trainer",
    "ServingWarmup",
    "ServingBaseline",
    "Evaluator",
    "ServingCheck",
    "Pusher",
    "RunPage",
]

# Text the transform reads as missing and the preflight refuses (tests/pipeline/test_preflight_timestamps.py).
INVALID_ISO_TEXTS = [
    "",
    "garbage",
    "2019-02-29",
    "2019-13-01",
    "2019-04-31",
    "2019-03-01T24:00:00",
    "2019-03-01T12:60",
    "2019-3-1",
    "20190301",
    "2019-03-01T12:00:00+25:00",
    "1551449100",
]


@pytest.fixture(scope="session")
def taxi_config():
    from pipeline.config import load_config

    return load_config(None)


@pytest.fixture(scope="session")
def model_config(taxi_config):
    return taxi_config.model_code_config()


@pytest.fixture(scope="session")
def tiny_rows() -> list[dict[str, str]]:
    with open(TINY_CSV, newline="") as f:
        return list(csv.DictReader(f))


def raw_feature_spec_of(row: dict[str, str]):
    """Every column as VarLen, the way TFX presents columns with missing values."""
    import tensorflow as tf

    def dtype(column):
        if column in FLOAT_COLUMNS:
            return tf.float32
        return tf.string if column in STRING_COLUMNS else tf.int64

    return {column: tf.io.VarLenFeature(dtype(column)) for column in row}


@pytest.fixture(scope="session")
def raw_feature_spec(tiny_rows):
    return raw_feature_spec_of(tiny_rows[0])


def value_of(column: str, text: str):
    if column in STRING_COLUMNS:
        return text.encode()
    return float(text) if column in FLOAT_COLUMNS else int(text)


def to_example(row: dict[str, str], drop: tuple[str, ...] = ()):
    """A tf.train.Example of a CSV row; empty cells are left out, as CsvExampleGen does."""
    import tensorflow as tf

    features = {}
    for column, text in row.items():
        if text == "" or column in drop:
            continue
        value = value_of(column, text)
        if isinstance(value, bytes):
            features[column] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        elif isinstance(value, float):
            features[column] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        else:
            features[column] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=features))


@pytest.fixture(scope="session")
def serialized_examples(tiny_rows):
    return [to_example(row).SerializeToString() for row in tiny_rows]


@pytest.fixture(scope="session")
def transform_dir(tmp_path_factory):
    """The tiny sample analyzed by tf.Transform on Beam (tests/analyze_tiny.py, its own process)."""
    return _analyze_tiny(tmp_path_factory.mktemp("transform"))


@pytest.fixture(scope="session")
def exact_vocabulary_transform_dir(tmp_path_factory, taxi_config):
    """As `transform_dir`, with every vocabulary computed by the exact analyzer."""
    return _analyze_tiny(
        tmp_path_factory.mktemp("transform-exact"),
        *(
            f"features.{name}.vocabulary=exact"
            for name, spec in taxi_config.features.items()
            if spec.type.value == "categorical"
        ),
    )


MULTICLASS_CONFIG = "package://pipeline/configs/taxi_multiclass.yaml"
REGRESSION_CONFIG = "package://pipeline/configs/taxi_regression.yaml"


@pytest.fixture(scope="session")
def task_transform_dirs(tmp_path_factory):
    """The tiny sample analyzed under each bundled task config: {"multiclass", "multiclass_vocabulary"
    (without label.classes: the train split's classes), "regression"}: (config, transform dir).
    Traced as a TF1 graph, as the pipeline's Transform traces it (force_tf_compat_v1)."""
    from pipeline.config import load_config

    cases = {
        "multiclass": (MULTICLASS_CONFIG, ()),
        "multiclass_vocabulary": (MULTICLASS_CONFIG, ("label.classes=[]", "label.other_classes=error")),
        "regression": (REGRESSION_CONFIG, ()),
    }
    return {
        name: (
            load_config(path, list(overrides)),
            _analyze_tiny(
                tmp_path_factory.mktemp(f"transform-{name}"), "--tf-compat-v1", f"--config={path}", *overrides
            ),
        )
        for name, (path, overrides) in cases.items()
    }


def _analyze_tiny(out, *overrides):
    subprocess.run(
        [sys.executable, "-m", "tests.analyze_tiny", str(out), *overrides], check=True, capture_output=True, timeout=600
    )
    return out / "transform_fn"


@pytest.fixture(scope="session")
def transformed(transform_dir, serialized_examples, raw_feature_spec):
    """The tiny sample after the transform: what the Trainer's model sees."""
    import tensorflow as tf
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(str(transform_dir))
    raw = tf.io.parse_example(tf.constant(serialized_examples), raw_feature_spec)
    return output, output.transform_raw_features(raw)


@pytest.fixture
def kfp_api():
    """A local HTTP server answering the KFP v2beta1 REST calls the SDK makes, as strictly as KFP
    2.5's API server (tests/pipeline/fake_kfp_api.py); yields the fake, which records every call."""
    from tests.pipeline.fake_kfp_api import FakeKfp

    fake = FakeKfp()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, reply = fake.handle(self.command, self.path, self.headers, body)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()
