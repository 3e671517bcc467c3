"""The stand-in's REST API (http_rest_api_handler.cc, http_rest_api_util.cc): TF Serving's paths,
the JSON answers and errors of a ModelRepository, and the HTTP handler with its metrics.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING

from components.serving_check.tf_serving_requests import ServingError, invalid_argument
from serving.standin.http_body import IDLE_SECONDS, MAX_BODY_BYTES, BodyError, read_body, refuse
from serving.standin.json_codec import (
    TOO_DEEP,
    example_request_from_json,
    json_from_classification,
    json_from_regression,
    json_from_tensors,
    predict_request_from_json,
)

if TYPE_CHECKING:  # annotations only: the logging proxy imports model_spec without the repository
    from serving.standin.repository import ModelRepository

log = logging.getLogger(__name__)


def _proto_json(message, preserve_names: bool) -> dict:
    """MessageToJsonString with always_print_fields_with_no_presence, as http_rest_api_util.cc
    ToJsonString prints the status and metadata responses."""
    from google.protobuf import json_format

    return json_format.MessageToDict(
        message, preserving_proto_field_name=preserve_names, always_print_fields_with_no_presence=True
    )


# http_rest_api_util.cc kPredictionApiGegex and kModelStatusApiRegex.
_PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.IGNORECASE
)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.IGNORECASE
)
_API_PATH = re.compile(r"/v1/.*", re.IGNORECASE)  # kHTTPRestApiHandlerPathRegex


def model_spec(name: str, version: str | None, label: str | None):
    """ParseModelInfo and FillModelSpecWithNameVersionAndLabel."""
    from tensorflow_serving.apis import model_pb2

    spec = model_pb2.ModelSpec(name=urllib.parse.unquote(name or ""))
    if version:
        number = int(version)
        if number >= 2**63:
            raise invalid_argument(f"Failed to convert version: {version} to numeric.")
        spec.version.value = number
    if label:
        spec.version_label = urllib.parse.unquote(label)
    return spec


def process_rest(repository: ModelRepository, method: str, path: str, body: bytes) -> str:
    """HttpRestApiHandler::ProcessRequest: the JSON answer, or a ServingError."""
    from tensorflow_serving.apis import (
        classification_pb2,
        get_model_metadata_pb2,
        get_model_status_pb2,
        regression_pb2,
    )

    malformed = invalid_argument(f"Malformed request: {method} {path}")
    if method == "POST":
        match = _PREDICTION_PATH.fullmatch(path)
        if not match:
            raise malformed
        spec = model_spec(match[1], match[2], match[3])
        verb = match[4].lower()
        if verb == "predict":
            request, fmt = predict_request_from_json(body, spec, lambda s: repository.handle(s)[1].signature_defs)
            return json_from_tensors(repository.predict(request).outputs, fmt)
        if verb == "classify":
            request = example_request_from_json(body, spec, classification_pb2.ClassificationRequest())
            return json_from_classification(repository.classify(request).result)
        request = example_request_from_json(body, spec, regression_pb2.RegressionRequest())
        return json_from_regression(repository.regress(request).result)
    if method == "GET":
        match = _STATUS_PATH.fullmatch(path)
        if not match:
            raise malformed
        if not match[1]:
            raise invalid_argument("Missing model name in request.")
        spec = model_spec(match[1], match[2], match[3])
        if match[4]:
            request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
            request.model_spec.CopyFrom(spec)
            return _metadata_json(repository.metadata(request))
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.CopyFrom(spec)
        return json.dumps(_proto_json(repository.status(spec), False), indent=1)
    raise malformed


def _metadata_json(response) -> str:
    """ToJsonString(GetModelMetadataResponse): model_spec and the unpacked SignatureDefMap,
    with proto field names."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    return json.dumps(
        {
            "model_spec": _proto_json(response.model_spec, True),
            "metadata": {"signature_def": _proto_json(signature_map, True)},
        },
        indent=1,
    )


def _model_and_method(method: str, path: str) -> tuple[str, str]:
    """The model name and method ParseModelInfo reads from a path, as the metrics label them."""
    match = (
        _PREDICTION_PATH.fullmatch(path)
        if method == "POST"
        else _STATUS_PATH.fullmatch(path)
        if method == "GET"
        else None
    )
    if not match:
        return "", ""
    return urllib.parse.unquote(match[1] or ""), match[4] if method == "POST" else ""


def make_rest_handler(
    repository: ModelRepository, metrics_path: str | None = None, max_body_bytes: int = MAX_BODY_BYTES
):
    class Handler(BaseHTTPRequestHandler):
        server_version = "TFServingStandIn/1"
        # Keep-alive, as TF Serving's evhttp server: a client's connection serves many calls.
        protocol_version = "HTTP/1.1"
        timeout = IDLE_SECONDS

        def _reply(self, status: int, text: str, content_type: str = "application/json") -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> None:
            path = urllib.parse.urlsplit(self.path).path
            try:
                body = read_body(self.headers, self.rfile, max_body_bytes)
            except BodyError as err:
                return refuse(self, err)
            if metrics_path is not None and path == metrics_path:
                # Any method, as TF Serving registers the handler for the path alone.
                return self._reply(200, repository.metrics.page(), "text/plain")
            if not _API_PATH.fullmatch(path):
                # No handler for the path: the HTTP server's own 404, not a JSON error.
                return self._reply(404, "Not Found\n", "text/plain")
            start = time.perf_counter()
            model_name, api = _model_and_method(method, path)
            try:
                try:
                    answer = process_rest(repository, method, path, body)
                except RecursionError:
                    # Python's parser and the tensor code recurse; rapidjson's iterative parser
                    # does not, but TF Serving answers such a body with an INVALID_ARGUMENT too.
                    raise invalid_argument(TOO_DEEP) from None
                except ServingError:
                    raise
                except Exception as err:  # noqa: BLE001 - no request may end the handler's thread
                    log.exception("rest: %s %s failed", method, path)
                    raise ServingError("INTERNAL", f"{type(err).__name__}: {err}") from None
            except ServingError as err:
                repository.metrics.request(model_name, err.code, api, "REST", 0)
                return self._reply(err.http_status, json.dumps({"error": err.message}, indent=4))
            repository.metrics.request(model_name, "OK", api, "REST", (time.perf_counter() - start) * 1e6)
            return self._reply(200, answer)

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def do_PUT(self):
            self._route("PUT")

        def do_DELETE(self):
            self._route("DELETE")

        def log_message(self, fmt, *args):
            log.debug("rest: " + fmt, *args)

    return Handler
