"""TF Serving stand-in: the part of TensorFlow Serving's APIs that our client uses.

`tensorflow_model_server` is in neither PyPI nor Debian, so where it cannot be installed this
stand-in serves the pushed models instead. It is NOT TensorFlow Serving; it implements, over
the same SavedModels and the same `<base path>/<version>/` layout:
- REST: GET /v1/models/<name>[/versions/<v>] (status), GET .../metadata, POST ...:predict
  (row "instances" and columnar "inputs" formats, {"b64": ...} for binary strings), POST
  ...:classify (JSON "examples" with an optional "context", on a classify-method signature);
- gRPC: PredictionService.Predict, Classify and GetModelMetadata, ModelService.GetModelStatus.
It serves the newest version (TF Serving's default policy) and picks up a new push by
polling the base path, as `--file_system_poll_wait_seconds` does.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from components.serving_baseline.baseline import served_versions

log = logging.getLogger(__name__)

CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"


class ServingError(Exception):
    """An error TF Serving would answer with: `status` is the HTTP code, `grpc_code` the gRPC one."""

    def __init__(self, status: int, message: str):
        import grpc

        super().__init__(message)
        self.status = status
        self.grpc_code = {404: grpc.StatusCode.NOT_FOUND, 400: grpc.StatusCode.INVALID_ARGUMENT}.get(
            status, grpc.StatusCode.INTERNAL)


class ModelRepository:
    """The served versions of one model: the newest SavedModel under `base_path`, reloaded on push."""

    def __init__(self, name: str, base_path: str, request_logger=None):
        self.name, self.base_path = name, base_path
        self.request_logger = request_logger  # serving.request_log.RequestLogger, for skew checks
        self._lock = threading.Lock()
        self._version: int | None = None
        self._model = None
        self._signature_defs: dict = {}

    def refresh(self) -> int | None:
        """Loads the newest version if it changed; returns the version served."""
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2

        versions = served_versions(self.base_path)
        newest = versions[-1] if versions else None
        if newest is not None and newest != self._version:
            path = os.path.join(self.base_path, str(newest))
            model = tf.saved_model.load(path)
            saved = saved_model_pb2.SavedModel()
            with tf.io.gfile.GFile(os.path.join(path, "saved_model.pb"), "rb") as f:
                saved.ParseFromString(f.read())
            with self._lock:
                self._version, self._model = newest, model
                self._signature_defs = dict(saved.meta_graphs[0].signature_def)
            log.info("serving %s version %s", self.name, newest)
        return self._version

    def get(self, name: str, version: int | None = None):
        if name != self.name:
            raise ServingError(404, f"Servable not found for request: Latest({name})")
        with self._lock:
            if self._model is None:
                raise ServingError(404, f"Servable not found for request: Latest({name}): no version "
                                        f"under {self.base_path} yet")
            if version is not None and version != self._version:
                raise ServingError(404, f"Servable not found for request: Specific({name}, {version})")
            return self._version, self._model, self._signature_defs

    def status(self, name: str, version: int | None = None) -> dict:
        served, _, _ = self.get(name, version)
        return {"model_version_status": [{"version": str(served), "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}]}

    def metadata(self, name: str, version: int | None = None) -> dict:
        from google.protobuf import json_format

        served, _, signature_defs = self.get(name, version)
        return {"model_spec": {"name": name, "signature_name": "", "version": str(served)},
                "metadata": {"signature_def": {"signature_def": {
                    key: json_format.MessageToDict(sig, preserving_proto_field_name=True)
                    for key, sig in signature_defs.items() if not key.startswith("__")}}}}

    def run(self, name: str, version: int | None, signature_name: str, inputs: dict[str, Any]):
        """Runs a signature on {input name: numpy-compatible values}; returns {output: ndarray}."""
        import tensorflow as tf

        served, model, _ = self.get(name, version)
        signature_name = signature_name or "serving_default"
        if signature_name not in model.signatures:
            raise ServingError(400, f"Serving signature name: \"{signature_name}\" not found in signature def")
        signature = model.signatures[signature_name]
        specs = signature.structured_input_signature[1]
        missing = sorted(set(specs) - set(inputs))
        unknown = sorted(set(inputs) - set(specs))
        if missing or unknown:
            raise ServingError(400, f"input mismatch for signature {signature_name}: missing {missing}, "
                                    f"unknown {unknown}; expected {sorted(specs)}")
        try:
            tensors = {key: tf.constant(value, dtype=specs[key].dtype) for key, value in inputs.items()}
            outputs = signature(**tensors)
        except (TypeError, ValueError, tf.errors.OpError) as err:
            raise ServingError(400, f"could not run {signature_name}: {_cause(err)}") from None
        if self.request_logger is not None and len(specs) == 1 and next(iter(specs.values())).dtype == tf.string:
            # Serialized tf.Examples (serving_default, classify): the requests skew is checked on.
            self.request_logger.log(name, signature_name, list(tensors.values())[0].numpy().reshape(-1).tolist())
        return served, {key: value.numpy() for key, value in outputs.items()}

    def classify(self, name: str, version: int | None, signature_name: str, examples: list[bytes]):
        """TF Serving's Classify on serialized tf.Examples: (version, [[(label, score), ...] per example])."""
        _, _, signature_defs = self.get(name, version)
        signature_name = signature_name or "serving_default"
        signature = signature_defs.get(signature_name)
        if signature is None:
            raise ServingError(400, f"Serving signature name: \"{signature_name}\" not found in signature def")
        if signature.method_name != CLASSIFY_METHOD_NAME:
            raise ServingError(400, f"Expected classification signature method_name to be {CLASSIFY_METHOD_NAME}. "
                                    f"Was: {signature.method_name}")
        served, outputs = self.run(name, version, signature_name, {"inputs": examples})
        scores = outputs.get("scores")
        classes = outputs.get("classes")
        if scores is None:
            raise ServingError(400, f"signature {signature_name} has no \"scores\" output")
        results = []
        for row, row_scores in enumerate(scores):
            labels = classes[row] if classes is not None else [str(i).encode() for i in range(len(row_scores))]
            results.append([(label.decode(), float(score)) for label, score in zip(labels, row_scores)])
        return served, results


def _cause(err: Exception) -> str:
    """The line of a TF error that says what is wrong, not "Graph execution error:"."""
    lines = [line.strip() for line in getattr(err, "message", str(err)).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Name: ") or "is required but could not be found" in line:
            return line.removeprefix("Name: <unknown>, ")
    informative = [line for line in lines if not line.startswith(("Graph execution error", "Detected at node",
                                                                   "<stack traces", "[["))]
    return (informative or lines or ["unknown error"])[0]


def _decode(value: Any) -> Any:
    """TF Serving's REST encoding of binary strings: {"b64": "..."}."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _json_example(row: dict[str, Any], context: dict[str, Any]) -> bytes:
    """A REST example ({feature: value or [values]}) as a serialized tf.Example, typed the way
    TF Serving types JSON: strings and {"b64"} to bytes, integers to int64, other numbers to float."""
    import tensorflow as tf

    if not isinstance(row, dict):
        raise ServingError(400, f"each example must be a JSON object of features, got {json.dumps(row)[:80]}")
    features = {}
    for name, value in {**context, **row}.items():
        values = value if isinstance(value, list) else [value]
        decoded = _decode(values)
        if all(isinstance(v, (str, bytes)) for v in decoded):
            feature = tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[v.encode() if isinstance(v, str) else v for v in decoded]))
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in decoded):
            feature = tf.train.Feature(int64_list=tf.train.Int64List(value=decoded))
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in decoded):
            feature = tf.train.Feature(float_list=tf.train.FloatList(value=decoded))
        else:
            raise ServingError(400, f"feature {name!r}: values must be all strings or all numbers, got {value!r}")
        features[name] = feature
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def classify_rest(repository: ModelRepository, name: str, version: int | None, body: dict) -> dict:
    """POST :classify with {"signature_name", "context", "examples"}; answers {"result": ...}."""
    examples = body.get("examples")
    if not isinstance(examples, list):
        raise ServingError(400, "JSON body must hold \"examples\", a list of objects")
    context = body.get("context") or {}
    serialized = [_json_example(row, context) for row in examples]
    _, results = repository.classify(name, version, body.get("signature_name", ""), serialized)
    return {"result": [[[label, score] for label, score in result] for result in results]}


def _jsonable(value):
    import numpy as np

    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def predict_rest(repository: ModelRepository, name: str, version: int | None, body: dict) -> dict:
    """POST :predict, in the row ("instances") or columnar ("inputs") format."""
    signature = body.get("signature_name", "serving_default")
    if "instances" in body:
        instances = _decode(body["instances"])
        if instances and isinstance(instances[0], dict):
            inputs = {key: [row[key] for row in instances] for key in instances[0]}
        else:
            _, model, _ = repository.get(name, version)
            sig = model.signatures.get(signature or "serving_default")
            keys = list(sig.structured_input_signature[1]) if sig is not None else []
            if len(keys) != 1:
                raise ServingError(400, "instances without names need a signature with exactly one input")
            inputs = {keys[0]: instances}
        _, outputs = repository.run(name, version, signature, inputs)
        rows = len(next(iter(outputs.values()))) if outputs else 0
        if len(outputs) == 1:
            return {"predictions": _jsonable(next(iter(outputs.values())))}
        return {"predictions": [{k: _jsonable(v[i]) for k, v in outputs.items()} for i in range(rows)]}
    if "inputs" in body:
        inputs = _decode(body["inputs"])
        if not isinstance(inputs, dict):
            _, model, _ = repository.get(name, version)
            inputs = {next(iter(model.signatures[signature].structured_input_signature[1])): inputs}
        _, outputs = repository.run(name, version, signature, inputs)
        return {"outputs": {k: _jsonable(v) for k, v in outputs.items()}}
    raise ServingError(400, "JSON body must hold \"instances\" or \"inputs\"")


_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                   r"(?:(?P<metadata>/metadata)|:(?P<verb>predict|classify|regress))?$")


def make_rest_handler(repository: ModelRepository):
    class Handler(BaseHTTPRequestHandler):
        server_version = "TFServingStandIn/1"

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> None:
            match = _PATH.match(self.path)
            try:
                if not match:
                    raise ServingError(404, f"Malformed request: {method} {self.path}")
                name = match["name"]
                version = int(match["version"]) if match["version"] else None
                if method == "GET" and match["metadata"]:
                    return self._reply(200, repository.metadata(name, version))
                if method == "GET" and not match["verb"]:
                    return self._reply(200, repository.status(name, version))
                if method == "POST" and match["verb"] in ("predict", "classify"):
                    length = int(self.headers.get("Content-Length") or 0)
                    try:
                        body = json.loads(self.rfile.read(length) or b"{}")
                    except json.JSONDecodeError as err:
                        raise ServingError(400, f"JSON Parse error: {err}") from None
                    answer = predict_rest if match["verb"] == "predict" else classify_rest
                    return self._reply(200, answer(repository, name, version, body))
                if match["verb"] == "regress":
                    raise ServingError(400, "the stand-in does not implement :regress (our models classify)")
                raise ServingError(404, f"Malformed request: {method} {self.path}")
            except ServingError as err:
                self._reply(err.status, {"error": str(err)})

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def log_message(self, fmt, *args):
            log.debug("rest: " + fmt, *args)

    return Handler


def _grpc_servicers(repository: ModelRepository):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                         model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc)

    def abort(context, err: ServingError):
        context.abort(err.grpc_code, str(err))

    def version_of(spec) -> int | None:
        return spec.version.value if spec.HasField("version") else None

    def answered_spec(response, request, served: int) -> None:
        """The model spec TF Serving answers with: the request's, with the version served."""
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = served
        response.model_spec.signature_name = request.model_spec.signature_name or "serving_default"

    class Prediction(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            try:
                inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
                served, outputs = repository.run(request.model_spec.name, version_of(request.model_spec),
                                                 request.model_spec.signature_name, inputs)
            except ServingError as err:
                return abort(context, err)
            response = predict_pb2.PredictResponse()
            answered_spec(response, request, served)
            for key, value in outputs.items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
            return response

        def Classify(self, request, context):
            kind = request.input.WhichOneof("kind")
            if kind == "example_list":
                examples = [e.SerializeToString() for e in request.input.example_list.examples]
            elif kind == "example_list_with_context":
                listed = request.input.example_list_with_context
                examples = []
                for example in listed.examples:
                    merged = type(example)()
                    merged.CopyFrom(listed.context)
                    merged.MergeFrom(example)
                    examples.append(merged.SerializeToString())
            else:
                return abort(context, ServingError(400, "Input is empty"))
            try:
                served, results = repository.classify(request.model_spec.name, version_of(request.model_spec),
                                                      request.model_spec.signature_name, examples)
            except ServingError as err:
                return abort(context, err)
            response = classification_pb2.ClassificationResponse()
            answered_spec(response, request, served)
            for result in results:
                classifications = response.result.classifications.add()
                for label, score in result:
                    classifications.classes.add(label=label, score=score)
            return response

        def GetModelMetadata(self, request, context):
            try:
                served, _, signature_defs = repository.get(request.model_spec.name, version_of(request.model_spec))
            except ServingError as err:
                return abort(context, err)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = request.model_spec.name
            response.model_spec.version.value = served
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            for key, sig in signature_defs.items():
                if not key.startswith("__"):
                    signature_map.signature_def[key].CopyFrom(sig)
            response.metadata["signature_def"].Pack(signature_map)
            return response

    class Models(model_service_pb2_grpc.ModelServiceServicer):
        def GetModelStatus(self, request, context):
            try:
                served, _, _ = repository.get(request.model_spec.name, version_of(request.model_spec))
            except ServingError as err:
                return abort(context, err)
            response = get_model_status_pb2.GetModelStatusResponse()
            status = response.model_version_status.add()
            status.version = served
            status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
            return response

    def register(server: grpc.Server) -> None:
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Prediction(), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(Models(), server)

    return register


class StandInServer:
    """REST and gRPC servers over one ModelRepository, with a thread that polls for pushes."""

    def __init__(self, model_name: str, base_path: str, host: str = "127.0.0.1",
                 rest_port: int = 8501, grpc_port: int = 8500, poll_seconds: float = 2.0,
                 request_log_dir: str | None = None):
        import grpc

        from serving.request_log import RequestLogger

        logger = RequestLogger(request_log_dir) if request_log_dir else None
        self.repository = ModelRepository(model_name, base_path, logger)
        self.repository.refresh()
        self._rest = ThreadingHTTPServer((host, rest_port), make_rest_handler(self.repository))
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        _grpc_servicers(self.repository)(self._grpc)
        self.grpc_port = self._grpc.add_insecure_port(f"{host}:{grpc_port}")
        self.rest_port = self._rest.server_address[1]
        self.host, self.poll_seconds = host, poll_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.repository.refresh()
            except Exception:  # noqa: BLE001 - a half-written push is retried on the next poll
                log.exception("could not load a new version yet")

    def start(self) -> "StandInServer":
        self._grpc.start()
        for target in (self._rest.serve_forever, self._poll):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._rest.shutdown()
        self._rest.server_close()
        self._grpc.stop(grace=None).wait()
        for thread in self._threads:
            thread.join(timeout=10)

    def __enter__(self) -> "StandInServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_forever(model_name: str, base_path: str, host: str, rest_port: int, grpc_port: int,
                  poll_seconds: float, request_log_dir: str | None = None) -> None:
    """Runs the stand-in until SIGINT or SIGTERM, then leaves the process at once.

    Leaving with os._exit skips the interpreter's final garbage collection, which can crash
    on TensorFlow objects that the server's threads touched; the server has nothing to flush.
    """
    import signal
    import sys

    # Handlers first: a client may signal as soon as it has read the banner below.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = StandInServer(model_name, base_path, host, rest_port, grpc_port, poll_seconds,
                           request_log_dir).start()
    version = server.repository.refresh()
    print(f"TF Serving stand-in (not tensorflow_model_server) serving model '{model_name}' "
          f"{f'version {version}' if version else '(no version yet)'} from {base_path}\n"
          f"REST: http://{host}:{server.rest_port}  gRPC: {host}:{server.grpc_port}", flush=True)
    if request_log_dir:
        print(f"logging requests to {server.repository.request_logger.path}", flush=True)
    stop.wait()
    server.stop()
    sys.stdout.flush()
    os._exit(0)
