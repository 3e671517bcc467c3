"""serving/logging_proxy.py in front of the stand-in on loopback: clients get the server's own
answers, and sampled successful calls are logged as PredictionLog records (request, response,
version, request id) that the skew check reads back."""

from __future__ import annotations

import base64
import glob
import shutil
import subprocess
import sys

import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from components.drift_check.request_log import read_examples
from serving.logging_proxy import ID_FEATURE, REQUEST_ID, LoggingProxy, ProxyError
from tests.serving.tiny_model import build_model, example

MODEL = "tiny"


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """Two versions of the tiny model, ready to push: y = 2x + 0.5, then y = 3x + 0.5."""
    root = tmp_path_factory.mktemp("versions")
    return build_model(str(root / "1")), build_model(str(root / "2"), w=3.0)


@pytest.fixture
def standin(versions, tmp_path):
    from serving.standin.server import StandInServer

    base = tmp_path / "serving" / MODEL
    shutil.copytree(versions[0], base / "1")
    with StandInServer(MODEL, str(base), rest_port=0, grpc_port=0, poll_seconds=0.2) as server:
        yield server


def _proxy(standin, tmp_path, rate=1.0, **kwargs) -> LoggingProxy:
    return LoggingProxy(f"http://127.0.0.1:{standin.rest_port}", str(tmp_path / "requests"), rate, port=0, **kwargs)


def _records(tmp_path) -> list:
    records = []
    for path in sorted(glob.glob(str(tmp_path / "requests" / "requests-*.tfrecord"))):
        records += [
            prediction_log_pb2.PredictionLog.FromString(r) for r in tf.data.TFRecordDataset(path).as_numpy_iterator()
        ]
    return records


CALLS = [
    ("POST", ":predict", {"instances": [1.0, 2.0]}),
    ("POST", ":predict", {"signature_name": "named", "inputs": {"a": [1.5], "k": [2], "text": ["hi"]}}),
    ("POST", ":classify", {"signature_name": "classify", "examples": [{"x": 1.0}, {"x": 0.25}]}),
    ("POST", ":regress", {"signature_name": "regress", "examples": [{"x": 4.0}]}),
    ("POST", ":predict", {"instances": ["not a number"]}),
    ("POST", "/versions/9:predict", {"instances": [1.0]}),
    ("GET", "", None),
    ("GET", "/metadata", None),
]


def test_clients_get_the_servers_own_answers(standin, tmp_path):
    direct = f"http://127.0.0.1:{standin.rest_port}/v1/models/{MODEL}"
    with _proxy(standin, tmp_path) as proxy:
        proxied = f"http://127.0.0.1:{proxy.port}/v1/models/{MODEL}"
        for method, suffix, body in CALLS:
            want = requests.request(method, direct + suffix, json=body, timeout=30)
            got = requests.request(method, proxied + suffix, json=body, timeout=30)
            assert (got.status_code, got.content, got.headers["Content-Type"]) == (
                want.status_code,
                want.content,
                want.headers["Content-Type"],
            ), (method, suffix)
            assert len(got.headers[REQUEST_ID]) == 32  # a new id for each call without one
            assert got.raw.headers.getlist("Server") == want.raw.headers.getlist("Server")
        given = requests.get(proxied, headers={REQUEST_ID: "client-7"}, timeout=30)
        assert given.headers[REQUEST_ID] == "client-7"
        assert proxy.logged == 4 and proxy.failed == 0  # the four successful POSTs


def test_logged_records_hold_request_response_version_and_id(standin, tmp_path):
    with _proxy(standin, tmp_path) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/v1/models/{MODEL}"
        requests.post(f"{url}:predict", json={"instances": [1.0, 2.0]}, headers={REQUEST_ID: "p-1"}, timeout=30)
        requests.post(
            f"{url}:classify",
            json={"signature_name": "classify", "examples": [{"x": 1.0}, {"x": 0.25}]},
            headers={REQUEST_ID: "c-1"},
            timeout=30,
        )
        serialized = example(x=4.0).SerializeToString()
        requests.post(
            f"{url}:predict",
            json={"signature_name": "regress", "instances": [{"b64": base64.b64encode(serialized).decode()}]},
            headers={REQUEST_ID: "r-1"},
            timeout=30,
        )
    predict, classify, by_examples = _records(tmp_path)

    assert predict.WhichOneof("log_type") == "predict_log"
    assert predict.log_metadata.model_spec.name == MODEL and predict.log_metadata.model_spec.version.value == 1
    assert predict.log_metadata.model_spec.signature_name == "serving_default"
    assert predict.log_metadata.sampling_config.sampling_rate == 1.0 and predict.log_metadata.timestamp_secs > 0
    log = predict.predict_log
    np.testing.assert_array_equal(tf.make_ndarray(log.request.inputs["x"]), np.float32([1.0, 2.0]))
    np.testing.assert_allclose(tf.make_ndarray(log.response.outputs["y"]), [2.5, 4.5])
    assert log.response.model_spec.version.value == 1

    assert classify.WhichOneof("log_type") == "classify_log"
    examples = classify.classify_log.request.input.example_list.examples
    assert [e.features.feature[ID_FEATURE].bytes_list.value[0] for e in examples] == [b"c-1/0", b"c-1/1"]
    assert [e.features.feature["x"].float_list.value[0] for e in examples] == [1.0, 0.25]
    result = classify.classify_log.response.result.classifications
    assert [(c.label, round(c.score, 3)) for c in result[1].classes] == [("no", 0.0), ("yes", 1.0)]

    # Serialized tf.Examples sent to predict carry the id too; the skew check reads every record.
    [tagged] = tf.make_ndarray(by_examples.predict_log.request.inputs["inputs"]).tolist()
    assert tf.train.Example.FromString(tagged).features.feature[ID_FEATURE].bytes_list.value == [b"r-1"]
    np.testing.assert_allclose(tf.make_ndarray(by_examples.predict_log.response.outputs["outputs"]), [8.5])
    read = [tf.train.Example.FromString(e) for e in read_examples(str(tmp_path / "requests"))]
    assert [e.features.feature["x"].float_list.value[0] for e in read] == [1.0, 0.25, 4.0]


def test_the_sampling_rate_decides_what_is_logged(standin, tmp_path):
    draws = iter([0.05, 0.5, 0.09, 0.95])
    with _proxy(standin, tmp_path, rate=0.1, sample=lambda: next(draws)) as proxy:
        for _ in range(4):
            assert requests.post(
                f"http://127.0.0.1:{proxy.port}/v1/models/{MODEL}:predict", json={"instances": [1.0]}, timeout=30
            ).ok
    records = _records(tmp_path)
    assert proxy.logged == 2 and len(records) == 2
    assert records[0].log_metadata.sampling_config.sampling_rate == pytest.approx(0.1)
    with pytest.raises(ProxyError, match=r"--sampling-rate 1.5: .* in \[0, 1\]"):
        _proxy(standin, tmp_path, rate=1.5)


def test_a_new_push_is_logged_under_the_version_that_answered(standin, versions, tmp_path):
    import time

    with _proxy(standin, tmp_path, refresh_seconds=3600) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/v1/models/{MODEL}:predict"
        assert requests.post(url, json={"instances": [1.0]}, timeout=30).json() == {"predictions": [2.5]}
        shutil.copytree(versions[1], standin.repository.base_path + "/2")
        status = f"http://127.0.0.1:{standin.rest_port}/v1/models/{MODEL}"
        # Loading a SavedModel can take minutes on loaded cores; the wait is not what is tested.
        deadline, available = time.monotonic() + 300, []
        while time.monotonic() < deadline and available != ["2"]:
            time.sleep(0.2)
            available = [
                v["version"]
                for v in requests.get(status, timeout=30).json()["model_version_status"]
                if v["state"] == "AVAILABLE"
            ]
        assert available == ["2"], f"the stand-in did not load version 2 alone: {available}"
        # The proxy still holds version 1 (refreshed hourly): the stand-in answers NOT_FOUND for it,
        # the proxy reads the status again and sends the call to version 2.
        assert requests.post(url, json={"instances": [1.0]}, timeout=30).json() == {"predictions": [3.5]}
    assert proxy.failed == 0
    assert [r.log_metadata.model_spec.version.value for r in _records(tmp_path)] == [1, 2]


def test_an_unreachable_server_is_a_502_with_a_json_error(standin, tmp_path):
    proxy = LoggingProxy("http://127.0.0.1:9", str(tmp_path / "requests"), 1.0, port=0).start()
    try:
        answer = requests.post(
            f"http://127.0.0.1:{proxy.port}/v1/models/{MODEL}:predict", json={"instances": [1.0]}, timeout=30
        )
        assert answer.status_code == 502 and "did not answer" in answer.json()["error"]
    finally:
        proxy.stop()


def test_the_cli_refuses_a_bad_upstream(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tfxp", "log-proxy", "--upstream", "localhost:8501", "--log-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --upstream localhost:8501: expected http://HOST:PORT (TF Serving's REST port)"
    )


def test_the_status_is_read_soon_after_boot_and_no_version_is_not_kept(standin, tmp_path, monkeypatch):
    # time.monotonic() counts from boot: on a machine up for less than refresh_seconds the
    # proxy once took its empty cache for fresh and never read which version serves.
    import json
    import time

    upstream = _proxy(standin, tmp_path, refresh_seconds=3600).upstream
    monkeypatch.setattr(time, "monotonic", lambda: 5.0)
    assert upstream.served_version(MODEL) == 1
    # While TF Serving is still loading, "no version" is asked again at the next call.
    answers = iter([[], [{"version": "3", "state": "AVAILABLE"}]])
    monkeypatch.setattr(
        upstream, "call", lambda *a, **k: (200, [], json.dumps({"model_version_status": next(answers)}).encode())
    )
    assert upstream.served_version("other") is None
    assert upstream.served_version("other") == 3
