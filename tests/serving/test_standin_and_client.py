"""The client against the TF Serving stand-in, over REST and gRPC, on a model trained on the
tiny sample; the stand-in's answers must match the model's own output in TensorFlow."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from serving import client as client_lib
from serving.client import ClientError, GrpcClient, RestClient
from tests.conftest import TINY_CSV, to_example

MODEL = "taxi"


@pytest.fixture(scope="module")
def saved_model(transform_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "model"
    subprocess.run(
        [sys.executable, "-m", "tests.serving.export_tiny_model", str(transform_dir), str(path)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return path


class Server:
    """`tfxp serve` in its own process, as a user runs it; its ports are read from its output."""

    def __init__(self, base, *extra):
        self.base = base
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tfxp",
                "serve",
                "--model-base-path",
                str(base),
                "--rest-port",
                "0",
                "--grpc-port",
                "0",
                "--poll-seconds",
                "0.2",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.banner = self.process.stdout.readline()
        ports = self.process.stdout.readline()
        match = re.search(r"REST: http://127.0.0.1:(\d+)  gRPC: 127.0.0.1:(\d+)", ports)
        assert match, (self.banner, ports, self.process.stderr.read() if self.process.poll() is not None else "")
        self.rest_port, self.grpc_port = int(match[1]), int(match[2])

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=30) == 0


@pytest.fixture
def server(saved_model, tmp_path):
    base = tmp_path / "serving" / MODEL
    shutil.copytree(saved_model, base / "1")
    running = Server(base)
    yield running
    running.stop()


def test_the_stand_in_says_what_it_is(server):
    assert server.banner.startswith("TF Serving stand-in (not tensorflow_model_server) serving model 'taxi' version 1")


@pytest.fixture(scope="module")
def rows():
    return client_lib.read_rows(str(TINY_CSV))[:8]


def _expected(saved_model, rows) -> np.ndarray:
    model = tf.saved_model.load(str(saved_model))
    examples = tf.constant([to_example(r, drop=("tips",)).SerializeToString() for r in rows])
    return model.signatures["serving_default"](examples=examples)["probabilities"].numpy()


def test_rest_predictions_match_the_model_in_tensorflow(server, saved_model, rows):
    predictions = RestClient(f"http://127.0.0.1:{server.rest_port}", MODEL).predict(rows)
    got = np.array([p["probabilities"] for p in predictions])
    np.testing.assert_allclose(got, _expected(saved_model, rows), atol=1e-6)
    assert [p["classes"] for p in predictions] == [int(p > 0.5) for p in got]


def test_grpc_predictions_match_the_model_in_tensorflow(server, saved_model, rows):
    with GrpcClient(f"127.0.0.1:{server.grpc_port}", MODEL) as grpc_client:
        predictions = grpc_client.predict(rows)
    got = np.array([p["probabilities"] for p in predictions])
    np.testing.assert_allclose(got, _expected(saved_model, rows), atol=1e-6)


def test_rest_and_grpc_classify_match_the_model_in_tensorflow(server, saved_model, rows):
    probabilities = _expected(saved_model, rows)
    expected = [{"0": pytest.approx(1 - p, abs=1e-6), "1": pytest.approx(p, abs=1e-6)} for p in probabilities]
    assert RestClient(f"http://127.0.0.1:{server.rest_port}", MODEL).classify(rows) == expected
    with GrpcClient(f"127.0.0.1:{server.grpc_port}", MODEL) as grpc_client:
        assert grpc_client.classify(rows) == expected


def test_rest_classify_takes_tf_servings_json_examples_with_context(server, saved_model, rows):
    import requests

    rest = RestClient(f"http://127.0.0.1:{server.rest_port}", MODEL)
    same_company = [{**row, "company": rows[0]["company"]} for row in rows]
    examples = [
        client_lib.example_json(e)
        for e in client_lib.example_protos(same_company, client_lib.raw_input_types(rest.metadata()))
    ]
    context = {"company": examples[0]["company"]}
    for example in examples:
        del example["company"]
    answer = requests.post(
        f"{rest.url}/v1/models/{MODEL}:classify",
        json={"signature_name": "classify", "context": context, "examples": examples},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    scores = [dict(result)["1"] for result in answer.json()["results"]]
    np.testing.assert_allclose(scores, _expected(saved_model, same_company), atol=1e-6)


def test_example_json_keeps_floats_floats():
    example = client_lib.example_protos(
        [{"fare": "12", "trip_start_hour": "3", "company": "Ace"}],
        {"fare": "DT_FLOAT", "trip_start_hour": "DT_INT64", "company": "DT_STRING"},
    )[0]
    encoded = json.dumps(client_lib.example_json(example))
    assert json.loads(encoded) == {"fare": 12.0, "trip_start_hour": 3, "company": "Ace"}
    assert '"fare": 12.0' in encoded


def test_status_and_metadata_over_both_protocols(server):
    rest = RestClient(f"http://127.0.0.1:{server.rest_port}", MODEL)
    with GrpcClient(f"127.0.0.1:{server.grpc_port}", MODEL) as grpc_client:
        assert grpc_client.status()["model_version_status"][0]["state"] == "AVAILABLE"
        grpc_metadata = grpc_client.metadata()
    assert rest.status()["model_version_status"][0] == {
        "version": "1",
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }
    for metadata in (rest.metadata(), grpc_metadata):
        signatures = metadata["metadata"]["signature_def"]["signature_def"]
        assert {"serving_default", "serve_raw", "classify", "transform_features", "__saved_model_init_op"} <= set(
            signatures
        )
        assert signatures["classify"]["method_name"] == "tensorflow/serving/classify"
        assert signatures["serving_default"]["inputs"]["examples"]["dtype"] == "DT_STRING"


def test_a_new_push_is_picked_up_without_a_restart(server, saved_model):
    import time

    # Copied aside and renamed, so that no poll sees half a SavedModel.
    shutil.copytree(saved_model, server.base / ".incoming")
    (server.base / ".incoming").rename(server.base / "2")
    rest = RestClient(f"http://127.0.0.1:{server.rest_port}", MODEL)
    deadline = time.monotonic() + 30
    while rest.status()["model_version_status"][0] != {
        "version": "2",
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }:
        assert time.monotonic() < deadline, "version 2 was not picked up"
        time.sleep(0.2)


def test_unknown_model_and_version(server, rows):
    with pytest.raises(ClientError, match="model 'nope' is not served at"):
        RestClient(f"http://127.0.0.1:{server.rest_port}", "nope").status()
    with pytest.raises(ClientError, match="model 'taxi' version 7 is not served"):
        RestClient(f"http://127.0.0.1:{server.rest_port}", MODEL, version=7).predict(rows)
    with GrpcClient(f"127.0.0.1:{server.grpc_port}", "nope") as grpc_client:
        with pytest.raises(ClientError, match="model 'nope' is not served"):
            grpc_client.predict(rows)


def test_rows_that_do_not_fit_the_schema(server, rows):
    rest = RestClient(f"http://127.0.0.1:{server.rest_port}", MODEL)
    with pytest.raises(
        ClientError, match=r"row 2, column 'fare': 'twelve' is not a number \(the model expects DT_FLOAT\)"
    ):
        rest.predict([rows[0], {**rows[1], "fare": "twelve"}])
    with pytest.raises(ClientError, match="row 1 has none of the model's input columns"):
        rest.predict([{"colour": "blue"}])


def test_bad_requests_get_tf_serving_errors(server):
    import requests

    url = f"http://127.0.0.1:{server.rest_port}/v1/models/{MODEL}"
    answer = requests.post(f"{url}:predict", data="{not json", timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"] == "JSON Parse error: Missing a name for object member. at offset: 1"
    answer = requests.post(f"{url}:predict", json={"instances": [{"wrong": 1}]}, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"] == (
        "Failed to process element: 0 key: wrong of 'instances' list. Error: "
        "INVALID_ARGUMENT: JSON object: does not have named input: wrong"
    )
    # serving_default takes "examples", not Classify's "inputs" (the method name is not checked).
    answer = requests.post(f"{url}:classify", json={"examples": [{"fare": 1.0}]}, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("No classification inputs found in SignatureDef: ")
    answer = requests.post(
        f"{url}:classify", json={"signature_name": "classify", "examples": [{"fare": "cheap"}]}, timeout=10
    )
    assert answer.status_code == 400 and "Key: fare" in answer.json()["error"]
    answer = requests.post(f"{url}:classify", json={"signature_name": "classify", "examples": "fare"}, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"].endswith("Expecting 'examples' value to be an list/array")
    answer = requests.post(
        f"{url}:classify", json={"signature_name": "classify", "examples": [{"fare": [1.0, "x"]}]}, timeout=10
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "Unexpected element type in feature: fare expecting type: float"


def test_unreachable_server(rows):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClientError, match=f"cannot reach TF Serving at http://127.0.0.1:{port}"):
        RestClient(f"http://127.0.0.1:{port}", MODEL).status()
    with GrpcClient(f"127.0.0.1:{port}", MODEL, timeout=5) as grpc_client:
        with pytest.raises(ClientError, match="cannot reach TF Serving over gRPC"):
            grpc_client.status()


def test_rows_from_json_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"fare": 3.5}) + "\n\n" + json.dumps({"fare": 7}) + "\n")
    assert client_lib.read_rows(str(path)) == [{"fare": 3.5}, {"fare": 7}]
    path.write_text("{broken\n")
    with pytest.raises(ClientError, match="line 1: not a JSON object"):
        client_lib.read_rows(str(path))


def test_the_predict_command_prints_one_line_per_row(server, saved_model, tmp_path):
    rows_file = tmp_path / "rows.csv"
    rows_file.write_text("".join(TINY_CSV.read_text().splitlines(keepends=True)[:4]))
    expected = _expected(saved_model, client_lib.read_rows(str(rows_file)))
    for extra, key in (
        ([], "probabilities"),
        (["--classify"], "scores"),
        (["--grpc", f"127.0.0.1:{server.grpc_port}"], "probabilities"),
    ):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tfxp",
                "predict",
                str(rows_file),
                "--url",
                f"http://127.0.0.1:{server.rest_port}",
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        printed = [json.loads(line) for line in done.stdout.splitlines()]
        assert [p["row"] for p in printed] == [1, 2, 3]
        got = [p[key]["1"] if key == "scores" else p[key] for p in printed]
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_the_predict_command_fails_clearly_without_a_server(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "tfxp", "predict", str(TINY_CSV), "--classify", "--url", f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert f"error: cannot reach TF Serving at http://127.0.0.1:{port}" in done.stderr


def test_the_stand_in_logs_requests_for_the_skew_check(saved_model, tmp_path, rows):
    from components.drift_check.request_log import read_examples

    base = tmp_path / "serving" / MODEL
    shutil.copytree(saved_model, base / "1")
    running = Server(base, "--log-requests", str(tmp_path / "requests"))
    try:
        rest = RestClient(f"http://127.0.0.1:{running.rest_port}", MODEL)
        rest.predict(rows[:3])
        rest.classify(rows[3:5])
        sent = client_lib.example_protos(rows[:5], client_lib.raw_input_types(rest.metadata()))
        # :classify's JSON examples are serialized again by the server: compare the protos.
        assert [tf.train.Example.FromString(e) for e in read_examples(str(tmp_path / "requests"))] == sent
    finally:
        running.stop()


# The stand-in on tests/serving/tiny_model.py's small model, which loads on TF Serving's
# session path: version states, warm-up at load, and the gRPC APIs.


def _tiny(base, version: int, w: float = 2.0, warmup=None):
    """A TinyModel version under `base`, written aside and renamed in, as a push does."""
    from tests.serving.tiny_model import build_model

    incoming = base / f".incoming-{version}"
    build_model(str(incoming), w=w, warmup=warmup)
    incoming.rename(base / str(version))


def _bad_warmup():
    from tests.serving.tiny_model import classify_log

    return [classify_log("nope")]


def _wait(condition, seconds: float = 60):
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the stand-in never got there"
        time.sleep(0.1)


@pytest.fixture
def standin(tmp_path):
    from serving.standin.server import StandInServer

    base = tmp_path / MODEL
    base.mkdir()
    servers = []

    def start(log_dir=None):
        server = StandInServer(
            MODEL, str(base), rest_port=0, grpc_port=0, poll_seconds=0.1, request_log_dir=log_dir
        ).start()
        servers.append(server)
        return server

    yield base, start
    for server in servers:
        server.stop()


def _rest(server, path: str, body=None):
    import requests

    url = f"http://127.0.0.1:{server.rest_port}/v1/models/{MODEL}{path}"
    answer = requests.post(url, json=body, timeout=30) if body is not None else requests.get(url, timeout=30)
    return answer.status_code, answer.json()


OK = {"error_code": "OK", "error_message": ""}
WARMUP_ERROR = 'warm-up record 0 (signature "nope") failed: No signature was found with the name: nope'


def test_a_version_whose_warmup_fails_is_not_served_and_the_previous_one_stays(standin):
    base, start = standin
    _tiny(base, 1)
    server = start()
    assert _rest(server, ":predict", {"instances": [1.0]}) == (200, {"predictions": [2.5]})
    _tiny(base, 2, w=5.0, warmup=_bad_warmup())
    _wait(lambda: _rest(server, "")[1]["model_version_status"][0]["state"] == "END")
    assert _rest(server, "") == (
        200,
        {
            "model_version_status": [
                {
                    "version": "2",
                    "state": "END",
                    "status": {"error_code": "INVALID_ARGUMENT", "error_message": WARMUP_ERROR},
                },
                {"version": "1", "state": "AVAILABLE", "status": OK},
            ]
        },
    )
    assert _rest(server, ":predict", {"instances": [1.0]}) == (200, {"predictions": [2.5]})
    assert _rest(server, "/versions/2:predict", {"instances": [1.0]}) == (
        404,
        {"error": f"Servable not found for request: Specific({MODEL}, 2)"},
    )
    _tiny(base, 3, w=3.0)
    _wait(lambda: _rest(server, ":predict", {"instances": [1.0]}) == (200, {"predictions": [3.5]}))
    states = [
        (s["version"], s["state"], s["status"]["error_code"]) for s in _rest(server, "")[1]["model_version_status"]
    ]
    assert states == [("3", "AVAILABLE", "OK"), ("2", "END", "INVALID_ARGUMENT"), ("1", "END", "OK")]


def test_with_no_version_available_requests_get_tf_servings_not_found(standin):
    base, start = standin
    _tiny(base, 1, warmup=_bad_warmup())
    server = start()
    assert _rest(server, ":predict", {"instances": [1.0]}) == (
        404,
        {"error": f"Servable not found for request: Latest({MODEL})"},
    )
    assert _rest(server, "/metadata") == (404, {"error": f"Servable not found for request: Latest({MODEL})"})
    status = _rest(server, "")[1]["model_version_status"]
    assert status == [
        {"version": "1", "state": "END", "status": {"error_code": "INVALID_ARGUMENT", "error_message": WARMUP_ERROR}}
    ]


def test_a_version_that_does_not_load_is_reported_with_its_error(standin):
    base, start = standin
    _tiny(base, 1)
    shutil.rmtree(base / "1" / "variables")
    server = start()
    status = _rest(server, "")[1]["model_version_status"][0]
    assert status["state"] == "END" and status["status"]["error_code"] != "OK"
    assert status["status"]["error_message"].startswith(str(base / "1"))
    assert _rest(server, ":predict", {"instances": [1.0]})[0] == 404


def test_grpc_apis_answer_as_tf_serving(standin):
    import grpc
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        prediction_service_pb2_grpc,
    )

    from tests.serving.tiny_model import classification_request, predict_request, regression_request

    base, start = standin
    _tiny(base, 1)
    server = start()
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        service = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_request(x=np.array([1.0, 2.0], np.float32))
        request.model_spec.name = MODEL
        response = service.Predict(request, timeout=30)
        assert response.outputs["y"].float_val == [2.5, 4.5]
        assert (response.model_spec.version.value, response.model_spec.signature_name) == (1, "serving_default")
        request.model_spec.signature_name = "nope"
        with pytest.raises(grpc.RpcError) as raised:
            service.Predict(request, timeout=30)
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert raised.value.details() == 'Serving signature key "nope" not found.'

        classify = classification_request("classify", [0.0])
        classify.model_spec.name = MODEL
        classes = service.Classify(classify, timeout=30).result.classifications[0].classes
        assert [(c.label, c.score) for c in classes] == [("no", 0.5), ("yes", 0.5)]
        regress = regression_request("regress", [1.0])
        regress.model_spec.name = MODEL
        assert service.Regress(regress, timeout=30).result.regressions[0].value == 2.5

        metadata = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        metadata.model_spec.name = MODEL
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        service.GetModelMetadata(metadata, timeout=30).metadata["signature_def"].Unpack(signature_map)
        assert "__saved_model_init_op" in signature_map.signature_def
        del metadata.metadata_field[:]
        with pytest.raises(grpc.RpcError) as raised:
            service.GetModelMetadata(metadata, timeout=30)
        assert raised.value.details() == "GetModelMetadataRequest must specify at least one metadata_field"

        status = get_model_status_pb2.GetModelStatusRequest()
        status.model_spec.name = "nope"
        with pytest.raises(grpc.RpcError) as raised:
            model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status, timeout=30)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert raised.value.details() == "Could not find any versions of model nope"


def test_the_stand_in_logs_classify_and_regress_examples(standin, tmp_path):
    from components.drift_check.request_log import read_examples
    from tests.serving.tiny_model import example

    base, start = standin
    _tiny(base, 1)
    server = start(str(tmp_path / "requests"))
    assert _rest(server, ":classify", {"signature_name": "classify", "context": {"x": 1.0}, "examples": [{}]})[0] == 200
    assert _rest(server, ":regress", {"signature_name": "regress", "examples": [{"x": 2.0}]})[0] == 200
    logged = [tf.train.Example.FromString(e) for e in read_examples(str(tmp_path / "requests"))]
    assert logged == [example(x=1.0), example(x=2.0)]


def test_the_stand_in_process_serves_a_model_that_loads_on_the_session_path(tmp_path):
    base = tmp_path / "serving" / MODEL
    base.mkdir(parents=True)
    _tiny(base, 4)
    running = Server(base)
    try:
        assert running.banner.startswith(
            f"TF Serving stand-in (not tensorflow_model_server) serving model '{MODEL}' version 4"
        )
        import requests

        answer = requests.post(
            f"http://127.0.0.1:{running.rest_port}/v1/models/{MODEL}:predict", json={"instances": [1.0]}, timeout=30
        )
        assert answer.json() == {"predictions": [2.5]}
    finally:
        running.stop()


def test_grpc_string_outputs_read_as_tf_servings_rest_writes_them():
    assert client_lib._plain(np.array([b"w\xc3\xb6rld", b"x"], dtype=object)) == ["w\u00f6rld", "x"]
    assert client_lib._plain(np.array(b"\xff", dtype=object), as_bytes=True) == {"b64": "/w=="}
    assert client_lib._plain(np.float32(0.5)) == 0.5


@pytest.fixture(scope="module")
def regression_model(task_transform_dirs, tmp_path_factory):
    from tests.conftest import REGRESSION_CONFIG

    path = tmp_path_factory.mktemp("export-regression") / "model"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.serving.export_tiny_model",
            str(task_transform_dirs["regression"][1]),
            str(path),
            "--config",
            REGRESSION_CONFIG,
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return path


def test_rest_grpc_and_the_cli_regress_match_the_regression_model_in_tensorflow(regression_model, rows, tmp_path):
    from tests.conftest import REGRESSION_CONFIG

    model = tf.saved_model.load(str(regression_model))
    examples = tf.constant([to_example(r, drop=("fare",)).SerializeToString() for r in rows])
    expected = model.signatures["serving_default"](examples=examples)["predictions"].numpy()
    base = tmp_path / "serving" / "taxi_fare"
    shutil.copytree(regression_model, base / "1")
    running = Server(base, "--config", REGRESSION_CONFIG)  # the model name: taxi_fare
    try:
        rest = RestClient(f"http://127.0.0.1:{running.rest_port}", "taxi_fare")
        np.testing.assert_allclose(rest.regress(rows), expected, rtol=1e-6)
        np.testing.assert_allclose(rest.predict(rows), expected, rtol=1e-6)  # one output: bare values
        with GrpcClient(f"127.0.0.1:{running.grpc_port}", "taxi_fare") as grpc_client:
            np.testing.assert_allclose(grpc_client.regress(rows), expected, rtol=1e-6)
        with pytest.raises(ClientError, match="refused the request"):
            rest.classify(rows)  # a regression model has no classify signature
        shown = subprocess.run(
            [
                sys.executable,
                "-m",
                "tfxp",
                "predict",
                "--config",
                REGRESSION_CONFIG,
                str(TINY_CSV),
                "--regress",
                "--url",
                f"http://127.0.0.1:{running.rest_port}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shown.returncode == 0, shown.stderr
        printed = [json.loads(line) for line in shown.stdout.splitlines()]
        assert printed[0]["row"] == 1 and printed[0]["value"] == pytest.approx(float(expected[0]), rel=1e-6)
        shown = subprocess.run(
            [
                sys.executable,
                "-m",
                "tfxp",
                "predict",
                "--config",
                REGRESSION_CONFIG,
                str(TINY_CSV),
                "--url",
                f"http://127.0.0.1:{running.rest_port}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shown.returncode == 0, shown.stderr
        first = json.loads(shown.stdout.splitlines()[0])
        assert first == {"row": 1, "predictions": pytest.approx(float(expected[0]), rel=1e-6)}
    finally:
        running.stop()
