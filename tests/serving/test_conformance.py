"""REST conformance: cases of TF Serving's own tests, over HTTP, against the stand-in and, when
`tensorflow_model_server` is on PATH, against the real server on the same SavedModel.

Each test names the case it follows in tensorflow_serving/model_servers/
http_rest_api_handler_test.cc (HttpRestApiHandlerTest.*) or tensorflow_serving/util/
json_tensor_test.cc (JsontensorTest.*, ClassifyRegressnResultTest.*). Their model is
half_plus_two; ours is tests/serving/tiny_model.py's TinyModel (y = 2x + 0.5), with
classify, regress, multi-input and echo signatures. Float literals are compared as the text
the server wrote, as CompareJsonAllValuesAsStrings does.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time

import numpy as np
import pytest
import requests
import tensorflow as tf

from tests.serving.tiny_model import build_model, predict_log

MODEL = "tiny"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_available(url: str, process=None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"tensorflow_model_server exited: {process.stderr.read()[-2000:]}")
        try:
            states = requests.get(url, timeout=5).json().get("model_version_status", [])
            if any(s["state"] == "AVAILABLE" for s in states):
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} never reported an AVAILABLE version")


@pytest.fixture(scope="module")
def base_path(tmp_path_factory):
    base = tmp_path_factory.mktemp("models") / MODEL
    build_model(str(base / "1"), warmup=[predict_log(x=np.array([1.0], np.float32))])
    return base


@pytest.fixture(scope="module", params=["standin", "tensorflow_model_server"])
def server(request, base_path):
    """The REST base URL of a server on `base_path`."""
    if request.param == "standin":
        from serving.standin.server import StandInServer

        with StandInServer(MODEL, str(base_path), rest_port=0, grpc_port=0, poll_seconds=0.2) as standin:
            url = f"http://127.0.0.1:{standin.rest_port}"
            _wait_available(f"{url}/v1/models/{MODEL}")
            yield url
        return
    binary = shutil.which("tensorflow_model_server")
    if binary is None:
        pytest.skip(
            "tensorflow_model_server is not on PATH (neither PyPI nor Debian ship it); only the stand-in is checked"
        )
    rest_port = _free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--port={_free_port()}",
            f"--rest_api_port={rest_port}",
            f"--model_name={MODEL}",
            f"--model_base_path={base_path}",
            "--rest_api_timeout_in_ms=30000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{rest_port}"
        _wait_available(f"{url}/v1/models/{MODEL}", process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _post(url: str, path: str, body) -> requests.Response:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return requests.post(url + path, data=data, timeout=30)


def _as_text(response: requests.Response):
    """The answer with every number as the text the server wrote."""
    return json.loads(response.text, parse_float=str, parse_int=str, parse_constant=str)


def _error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]


MODEL_PATH = f"/v1/models/{MODEL}"


# HttpRestApiHandlerTest.UnsupportedApiCalls
@pytest.mark.parametrize(
    "method, path, wanted",
    [
        ("GET", "/v1/foo", "Malformed request"),
        ("POST", "/v1/foo", "Malformed request"),
        ("GET", "/v1/models", "Missing model name"),
        ("GET", "/v1/models/debug/model_name", "Malformed request"),
        ("POST", "/v1/models", "Malformed request"),
        ("GET", "/v1/models/foo:predict", "Malformed request"),
        ("GET", "/v1/models/foo/version/50:predict", "Malformed request"),
        ("POST", "/v1/models/foo/version/50:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/HELLO:regress", "Malformed request"),
        ("POST", f"/v1/models/foo/versions/{2**64 - 1}:regress", "Failed to convert version"),
        ("POST", "/v1/models/foo/metadata", "Malformed request"),
        ("POST", "/v1/models/foo/label/some_label:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/50/labels/some_label:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/some_label:regress", "Malformed request"),
    ],
)
def test_unsupported_api_calls(server, method, path, wanted):
    answer = requests.request(method, server + path, timeout=30)
    assert wanted in _error(answer, 400)


def test_malformed_request_names_method_and_path(server):
    # HttpRestApiHandler::ProcessRequest: "Malformed request: " + method + " " + path.
    assert _error(requests.get(server + "/v1/foo", timeout=30), 400) == "Malformed request: GET /v1/foo"


# HttpRestApiHandlerTest.PredictModelNameVersionErrors
def test_predict_model_name_version_errors(server):
    body = {"instances": [1.0]}
    assert _error(_post(server, "/v1/models/foo:predict", body), 404) == "Servable not found for request: Latest(foo)"
    assert (
        _error(_post(server, "/v1/models/foo/versions/50:predict", body), 404)
        == "Servable not found for request: Specific(foo, 50)"
    )
    assert (
        _error(_post(server, f"{MODEL_PATH}/versions/99:predict", body), 404)
        == f"Servable not found for request: Specific({MODEL}, 99)"
    )


# HttpRestApiHandlerTest.PredictRequestErrors
def test_predict_request_errors(server):
    path = f"{MODEL_PATH}:predict"
    assert _error(_post(server, path, ""), 400) == "JSON Parse error: The document is empty"
    assert _error(_post(server, path, "instances = [1, 2]"), 400).startswith("JSON Parse error: Invalid value")
    assert "not of expected type: float" in _error(_post(server, path, {"instances": ["x", "y"]}), 400)
    assert "Unrecognized servable version label" in _error(
        _post(server, f"{MODEL_PATH}/labels/Version_Nonexistent:predict", {"instances": ["x", "y"]}), 400
    )
    assert "'signature_name' key must be a string value." in _error(_post(server, path, {"signature_name": 100}), 400)


def test_predict_errors_of_the_request_body(server):
    # FillPredictRequestFromJson's checks, the message words as json_tensor.cc has them.
    path = f"{MODEL_PATH}:predict"
    assert _error(_post(server, path, "[1.0]"), 400) == "JSON Value: [1.0] Is not object"
    assert "Not formatted correctly expecting only one of 'inputs' or 'instances' keys" in _error(
        _post(server, path, {"instances": [1.0], "inputs": [1.0]}), 400
    )
    assert "No values in 'instances' array" in _error(_post(server, path, {"instances": []}), 400)
    assert (
        _error(_post(server, path, {"signature_name": "serving_default"}), 400) == "Missing 'inputs' or 'instances' key"
    )
    assert (
        _error(_post(server, path, {"signature_name": "nope", "instances": [1.0]}), 400)
        == 'Serving signature name: "nope" not found in signature def'
    )


# HttpRestApiHandlerTest.Predict
def test_predict(server):
    rows = _post(server, f"{MODEL_PATH}:predict", {"instances": [1.0, 2.0]})
    assert rows.status_code == 200 and rows.headers["Content-Type"] == "application/json"
    assert _as_text(rows) == {"predictions": ["2.5", "4.5"]}
    specific = _post(
        server, f"{MODEL_PATH}/versions/1:predict", {"signature_name": "serving_default", "instances": [3.0]}
    )
    assert _as_text(specific) == {"predictions": ["6.5"]}
    columnar = _post(
        server, f"{MODEL_PATH}/versions/1:predict", {"signature_name": "serving_default", "inputs": [3.0, 4.0]}
    )
    assert _as_text(columnar) == {"outputs": ["6.5", "8.5"]}


# JsontensorTest.SingleUnnamedTensorErrors
@pytest.mark.parametrize(
    "instances, wanted",
    [
        ([[1, 2], [3, 4], [5, 6, 7]], "Expecting tensor size"),
        ([[1, 2], [3, 4], [[5, 6]]], "Expecting shape"),
        ([1, [1]], "Expecting shape"),
        ([[1, 2], ["a", "b"]], "not of expected type"),
    ],
)
def test_single_unnamed_tensor_errors(server, instances, wanted):
    body = {"signature_name": "echo", "instances": instances}
    assert wanted in _error(_post(server, f"{MODEL_PATH}:predict", body), 400)


# JsontensorTest.DeeplyNestedMalformed
def test_deeply_nested_malformed(server):
    body = {"signature_name": "echo", "instances": [[[1.0]], [1.0]]}
    assert "Expecting shape" in _error(_post(server, f"{MODEL_PATH}:predict", body), 400)


# JsontensorTest.MixedInputForFloatTensor, FromJsonSingleFloatTensorSixDigitPrecision
def test_float_tensors_round_trip_as_tf_serving_writes_them(server):
    body = {"signature_name": "echo", "instances": [[9000000, 999999, 0.5], [0.0003, 0.00003, 555557.5]]}
    assert _as_text(_post(server, f"{MODEL_PATH}:predict", body)) == {
        "predictions": [["9e+06", "999999.0", "0.5"], ["0.0003", "3e-05", "555557.5"]]
    }


# JsontensorTest.FromJsonSingleFloatTensorNonFinite
def test_non_finite_floats(server):
    body = '{"signature_name": "echo", "instances": [[NaN, Infinity], [3, -Infinity]]}'
    assert _as_text(_post(server, f"{MODEL_PATH}:predict", body)) == {
        "predictions": [["NaN", "Infinity"], ["3.0", "-Infinity"]]
    }


# JsontensorTest.MultipleNamedTensor, SingleNamedTensorBase64, FromJsonMultipleNamedTensors
def test_named_tensors_base64_and_bytes_outputs(server):
    body = {
        "signature_name": "named",
        "instances": [{"a": 1.5, "k": 2, "text": {"b64": "aGVsbG8="}}, {"a": 0.25, "k": -1, "text": "w\u00f6rld"}],
    }
    answer = _as_text(_post(server, f"{MODEL_PATH}:predict", body))
    assert answer == {
        "predictions": [
            {"sum": "3.5", "text": "hello", "text_bytes": {"b64": "aGVsbG8="}},
            {"sum": "-0.75", "text": "w\u00f6rld", "text_bytes": {"b64": "d8O2cmxk"}},
        ]
    }


# JsontensorTest.MultipleNamedTensorColumnarFormat
def test_named_tensors_columnar_format(server):
    body = {"signature_name": "named", "inputs": {"a": [1.0], "k": [1], "text": [{"b64": "eA=="}]}}
    answer = _as_text(_post(server, f"{MODEL_PATH}:predict", body))
    assert answer == {"outputs": {"sum": ["2.0"], "text": ["x"], "text_bytes": [{"b64": "eA=="}]}}


# JsontensorTest.MultipleNamedTensorErrors
def test_multiple_named_tensor_errors(server):
    path = f"{MODEL_PATH}:predict"
    plain = _error(_post(server, path, {"signature_name": "named", "instances": [1.0]}), 400)
    assert plain == (
        "instances is a plain list, but expecting list of objects as multiple input "
        "tensors required as per tensorinfo_map"
    )
    missing = _error(_post(server, path, {"signature_name": "named", "instances": [{"a": 1.0, "k": 1}]}), 400)
    assert missing.startswith("Failed to process element: 0 of 'instances' list. JSON object: ")
    assert missing.endswith(" keys must be equal to: a,k,text")
    unknown = _error(_post(server, path, {"signature_name": "named", "instances": [{"b": 1.0}]}), 400)
    assert unknown == (
        "Failed to process element: 0 key: b of 'instances' list. Error: "
        "INVALID_ARGUMENT: JSON object: does not have named input: b"
    )
    columnar = _error(_post(server, path, {"signature_name": "named", "inputs": {"a": [1.0]}}), 400)
    assert columnar == "Missing named input: k in 'inputs' object."


# JsontensorTest.FromJsonSingleZeroBatchTensor
def test_zero_batch_columnar(server):
    answer = _post(server, f"{MODEL_PATH}:predict", {"inputs": []})
    assert _as_text(answer) == {"outputs": []}


# HttpRestApiHandlerTest.Regress
def test_regress(server):
    answer = _post(server, f"{MODEL_PATH}:regress", {"signature_name": "regress", "examples": [{"x": 80.0}]})
    assert _as_text(answer) == {"results": ["160.5"]}
    labelled = _post(
        server, f"{MODEL_PATH}/versions/1:regress", {"signature_name": "regress", "examples": [{"x": 1.0}, {"x": 2.0}]}
    )
    assert _as_text(labelled) == {"results": ["2.5", "4.5"]}


# HttpRestApiHandlerTest.Classify
def test_classify(server):
    answer = _post(server, f"{MODEL_PATH}:classify", {"signature_name": "classify", "examples": [{"x": 0.0}]})
    assert _as_text(answer) == {"results": [[["no", "0.5"], ["yes", "0.5"]]]}


def test_classify_with_context(server):
    # FillClassifyRegressRequestFromJson: "context" makes an example_list_with_context.
    answer = _post(
        server,
        f"{MODEL_PATH}:classify",
        {"signature_name": "classify", "context": {"x": 0.25}, "examples": [{}, {"x": 0.0}]},
    )
    assert _as_text(answer) == {"results": [[["no", "0.0"], ["yes", "1.0"]], [["no", "0.5"], ["yes", "0.5"]]]}


def test_classify_and_regress_request_errors(server):
    path = f"{MODEL_PATH}:classify"
    assert _error(_post(server, path, {"signature_name": "classify"}), 400).endswith(
        "When method is classify, key 'examples' is expected and was not found"
    )
    assert _error(_post(server, path, {"signature_name": "classify", "examples": []}), 400).endswith(
        "'examples' value is an empty array"
    )
    assert (
        _error(_post(server, path, {"examples": [{"x": [1.0, "a"]}]}), 400)
        == "Unexpected element type in feature: x expecting type: float"
    )
    assert _error(_post(server, path, {"examples": [1]}), 400) == "Example must be JSON object but got JSON Number"
    assert (
        _error(_post(server, path, {"signature_name": "nope", "examples": [{"x": 1.0}]}), 400)
        == "No signature was found with the name: nope"
    )
    assert _error(_post(server, path, {"examples": [{"x": 1.0}]}), 400).startswith(
        "No classification inputs found in SignatureDef: "
    )


# HttpRestApiHandlerTest.GetStatus
def test_get_status(server):
    expected = {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    for path in (MODEL_PATH, f"{MODEL_PATH}/versions/1"):
        answer = requests.get(server + path, timeout=30)
        assert answer.status_code == 200 and answer.json() == expected
    assert (
        _error(requests.get(server + "/v1/models/foo", timeout=30), 404) == "Could not find any versions of model foo"
    )
    assert (
        _error(requests.get(server + f"{MODEL_PATH}/versions/7", timeout=30), 404)
        == f"Could not find version 7 of model {MODEL}"
    )


# HttpRestApiHandlerTest.GetModelMetadata
def test_get_model_metadata(server, base_path):
    answer = requests.get(server + f"{MODEL_PATH}/metadata", timeout=30)
    assert answer.status_code == 200
    metadata = answer.json()
    assert metadata["model_spec"] == {"name": MODEL, "signature_name": "", "version": "1"}
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "named", "echo", "classify", "regress", "__saved_model_init_op"} <= set(signatures)
    x = signatures["serving_default"]["inputs"]["x"]
    # always_print_fields_with_no_presence and proto field names, as ToJsonString prints them.
    assert x["dtype"] == "DT_FLOAT" and x["tensor_shape"] == {
        "dim": [{"size": "-1", "name": ""}],
        "unknown_rank": False,
    }
    assert signatures["classify"]["method_name"] == "tensorflow/serving/classify"
    assert signatures["echo"]["inputs"]["x"]["tensor_shape"] == {"dim": [], "unknown_rank": True}
    init_op = signatures["__saved_model_init_op"]
    assert init_op["inputs"] == {} and set(init_op["outputs"]) == {"__saved_model_init_op"}


def test_paths_outside_the_api_are_not_found(server):
    # kHTTPRestApiHandlerPathRegex is /v1/.*; other paths have no handler.
    assert requests.get(server + "/statuspage", timeout=30).status_code == 404


def test_tf_serving_answers_match_the_model_in_tensorflow(server, base_path):
    model = tf.saved_model.load(str(base_path / "1"))
    expected = model.signatures["serving_default"](x=tf.constant([0.1, 7.25]))["y"].numpy()
    answer = _post(server, f"{MODEL_PATH}:predict", {"instances": [0.1, 7.25]})
    np.testing.assert_allclose(answer.json()["predictions"], expected, rtol=1e-6)


# ----------------------------------------------------------------------------- hostile bodies
# TF Serving's HTTP server (util/net_http/server/internal/evhttp_request.cc) and ParseJson
# (util/json_tensor.cc, rapidjson's iterative parser); serving/standin/http_body.py says which
# limits are the stand-in's own.

DEPTH = 100_000


@pytest.mark.parametrize(
    "body",
    [
        "[" * DEPTH,  # unclosed
        "[" * DEPTH + "]" * DEPTH,  # closed, not an object
        '{"instances": ' + "[" * DEPTH + "1.0" + "]" * DEPTH + "}",
        '{"instances": ' + "[" * 5000 + "1.0" + "]" * 5000 + "}",  # within Python's parser, past its recursion limit
        '{"instances": [' + ",".join(['{"x": ' + "[" * 3000 + "1" + "]" * 3000 + "}"] * 2) + "]}",
    ],
    ids=["unclosed", "closed-array", "deep-instances", "5000-deep-instances", "deep-named"],
)
def test_deeply_nested_bodies_are_a_400_and_the_server_goes_on(server, body):
    answer = _post(server, f"{MODEL_PATH}:predict", body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith("JSON")
    # The same server answers the next call: no handler thread or connection was lost.
    assert _as_text(_post(server, f"{MODEL_PATH}:predict", {"instances": [1.0]})) == {"predictions": ["2.5"]}


def test_a_gzip_body_is_read_and_a_bad_or_oversized_one_is_empty(server):
    import gzip

    path = server + f"{MODEL_PATH}:predict"
    gzipped = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    answer = requests.post(path, data=gzip.compress(b'{"instances": [1.0]}'), headers=gzipped, timeout=30)
    assert _as_text(answer) == {"predictions": ["2.5"]}
    # ReadRequestGzipBytes returns no body for data it cannot un-gzip, or that un-gzips past
    # Zlib::kMaxUncompressedBytes (100 MB): ParseJson's "The document is empty".
    assert (
        _error(requests.post(path, data=b"not gzip", headers=gzipped, timeout=30), 400)
        == "JSON Parse error: The document is empty"
    )
    bomb = gzip.compress(b" " * (100 * 1024 * 1024 + 1), compresslevel=1)
    assert (
        _error(requests.post(path, data=bomb, headers=gzipped, timeout=60), 400)
        == "JSON Parse error: The document is empty"
    )


def test_a_chunked_body_is_read(server):
    chunks = iter([b'{"instances"', b": [1.0, ", b"2.0]}"])
    answer = requests.post(server + f"{MODEL_PATH}:predict", data=chunks, timeout=30)
    assert _as_text(answer) == {"predictions": ["2.5", "4.5"]}


def test_a_bad_content_length_is_a_400(server):
    import http.client
    import urllib.parse

    parts = urllib.parse.urlsplit(server)
    for length in ("abc", "-5"):
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        connection.putrequest("POST", f"{MODEL_PATH}:predict")
        connection.putheader("Content-Length", length)
        connection.endheaders()
        assert connection.getresponse().status == 400
        connection.close()


def test_one_connection_serves_many_calls(server):
    # HTTP/1.1 keep-alive, as evhttp: the client's connection is not closed after an answer.
    session = requests.Session()
    for _ in range(3):
        assert session.post(server + f"{MODEL_PATH}:predict", json={"instances": [1.0]}, timeout=30).status_code == 200
    answer = session.post(server + f"{MODEL_PATH}:predict", json={"instances": [1.0]}, timeout=30)
    assert answer.headers.get("Connection", "").lower() != "close"


# ----------------------------------------------------------------------------- version labels
# HttpRestApiHandlerTest's server: a model config whose version_labels name version 1
# ("Version_Label"); the stand-in and tensorflow_model_server read it with --model_config_file.
LABEL = "Version_Label"


@pytest.fixture(scope="module", params=["standin", "tensorflow_model_server"])
def labelled(request, base_path, tmp_path_factory):
    """(REST URL, gRPC address) of a server on `base_path` with the model config labelling 1."""
    from contracts import model_config

    config_dir = tmp_path_factory.mktemp("config")
    model_config.write_config(str(config_dir), model_config.ModelConfig(MODEL, str(base_path), (1,), {LABEL: 1}))
    config_file = model_config.config_path(str(config_dir))
    if request.param == "standin":
        from serving.standin.server import StandInServer

        with StandInServer(
            MODEL,
            str(base_path),
            rest_port=0,
            grpc_port=0,
            poll_seconds=0.2,
            model_config_file=config_file,
            config_poll_seconds=0.2,
        ) as standin:
            url = f"http://127.0.0.1:{standin.rest_port}"
            _wait_available(f"{url}{MODEL_PATH}")
            yield url, f"127.0.0.1:{standin.grpc_port}"
        return
    binary = shutil.which("tensorflow_model_server")
    if binary is None:
        pytest.skip(
            "tensorflow_model_server is not on PATH (neither PyPI nor Debian ship it); only the stand-in is checked"
        )
    rest_port, grpc_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            f"--model_config_file={config_file}",
            "--model_config_file_poll_wait_seconds=1",
            "--allow_version_labels_for_unavailable_models=true",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{rest_port}"
        _wait_available(f"{url}{MODEL_PATH}", process)
        yield url, f"127.0.0.1:{grpc_port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


# HttpRestApiHandlerTest.Predict, Regress, Classify: "Query specific versions using a version label."
def test_a_label_routes_predict_regress_and_classify_to_its_version(labelled):
    url, _ = labelled
    path = f"{MODEL_PATH}/labels/{LABEL}"
    assert _as_text(_post(url, f"{path}:predict", {"instances": [1.0, 2.0]})) == {"predictions": ["2.5", "4.5"]}
    regress = {"signature_name": "regress", "examples": [{"x": 1.0}, {"x": 2.0}]}
    assert _as_text(_post(url, f"{path}:regress", regress)) == {"results": ["2.5", "4.5"]}
    classify = {"signature_name": "classify", "examples": [{"x": 0.0}]}
    assert _as_text(_post(url, f"{path}:classify", classify)) == {"results": [[["no", "0.5"], ["yes", "0.5"]]]}


# HttpRestApiHandlerTest.GetStatus: "Get status of specific version using a version label."
# GetModelStatusImpl reads no label: the answer lists the model's versions.
def test_a_label_s_status_and_metadata(labelled):
    url, _ = labelled
    answer = requests.get(f"{url}{MODEL_PATH}/labels/{LABEL}", timeout=30)
    assert answer.status_code == 200 and answer.json() == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    metadata = requests.get(f"{url}{MODEL_PATH}/labels/{LABEL}/metadata", timeout=30)
    assert metadata.status_code == 200 and metadata.json()["model_spec"]["version"] == "1"
    unknown = requests.get(f"{url}{MODEL_PATH}/labels/Version_Nonexistent/metadata", timeout=30)
    assert _error(unknown, 400) == "Unrecognized servable version label: Version_Nonexistent"


# HttpRestApiHandlerTest.PredictRequestErrors ("Nonexistent version label"), and
# server_core.cc GetModelVersionForLabel's INVALID_ARGUMENT over gRPC's version_label field.
def test_grpc_version_label(labelled):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    _, address = labelled
    with grpc.insecure_channel(address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.model_spec.version_label = LABEL
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))
        answer = stub.Predict(request, timeout=30)
        assert answer.model_spec.version.value == 1
        assert tf.make_ndarray(answer.outputs["y"]).tolist() == [2.5]
        request.model_spec.version_label = "Version_Nonexistent"
        with pytest.raises(grpc.RpcError) as err:
            stub.Predict(request, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details() == "Unrecognized servable version label: Version_Nonexistent"
