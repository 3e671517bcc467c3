"""Request logging for TF Serving in production: a REST proxy that writes PredictionLog records.

TF Serving's own request logging cannot be used. A model config's `logging_config`
(config/logging_config.proto: LoggingConfig with log_collector_config and sampling_config)
needs a request-logger creator and a registered LogCollector, and the open-source server has
neither: ServerCore makes its ServerRequestLogger with no creator (model_servers/server_core.cc,
`ServerRequestLogger::Create(nullptr, ...)`), so a config with any logging_config fails to load
with "No request-logger-creator provided." (core/server_request_logger.cc), and
REGISTER_LOG_COLLECTOR is used in core/log_collector_test.cc only.

So this proxy runs next to TF Serving (kubernetes/serving: a sidecar in the same pod, on the
REST port clients call). It forwards every request as it came and answers TF Serving's answer
as it came, with an X-Request-Id header. For a sampled share of the successful predict,
classify and regress calls (`sampling_rate`, as SamplingConfig's: uniform at random) it appends
one PredictionLog (predict_log, classify_log or regress_log: request and response as protos;
log_metadata with the model spec, the sampling config and the time) to a TFRecord file under the
log directory (components/drift_check/request_log.py's files, which the skew check and
`tfxp feedback` read).

- Request ids: the client's X-Request-Id, else a new one. In the logged copy of the request,
  each tf.Example gets the feature `request_id` (feedback's default id column): the id for a
  one-example request, `<id>/<i>` for the i-th of several; an example with its own
  `request_id` keeps it. The model's parsing ignores features it does not know.
- Versions: a request that names no version is sent to the version served (the newest
  AVAILABLE one in GET /v1/models/<name>, refreshed every `refresh_seconds`), as
  /versions/<v>:<verb>, so the log names the version that answered. A request to a version
  label (/labels/<l>, `tfxp promote` judges the canary by them) is pinned alike to the version the
  label names (GET .../labels/<l>/metadata answers its model_spec.version, refreshed as often), so
  a moved label reaches the proxy's callers within `refresh_seconds`. When that version has just
  been unloaded (NOT_FOUND), the status is read again and the request sent once more.
- The JSON is read into protos with the stand-in's port of TF Serving's REST code
  (serving/standin/json_codec.py and rest.py's path parsing), with the signatures from
  GET .../versions/<v>/metadata; a record that cannot be built is reported on stderr and the
  client's answer is unaffected.
gRPC (port 8500) does not pass through here and is not logged.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import random
import re
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Self

from serving.standin.http_body import (
    IDLE_SECONDS,
    MAX_BODY_BYTES,
    BodyError,
    RestHTTPServer,
    gunzip_body,
    read_body,
    refuse,
)

log = logging.getLogger(__name__)

REQUEST_ID = "X-Request-Id"
ID_FEATURE = "request_id"
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
}
_VALID_ID = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces: safe in a header and a feature
_PREDICTION = re.compile(r"/v1/models/([^/:]+)(/versions/\d+|/labels/[^/:]+)?:(classify|regress|predict)")


class ProxyError(ValueError):
    """A proxy setting that cannot work."""


def check_sampling_rate(rate: float) -> float:
    if not 0.0 <= rate <= 1.0:
        raise ProxyError(f"--sampling-rate {rate}: SamplingConfig's sampling_rate is a probability in [0, 1]")
    return rate


class _Upstream:
    """TF Serving's REST API on one host and port; what it serves, cached."""

    def __init__(self, url: str, timeout: float, refresh_seconds: float):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ProxyError(f"--upstream {url}: expected http://HOST:PORT (TF Serving's REST port)")
        self.host, self.port, self.timeout, self.refresh_seconds = parts.hostname, parts.port, timeout, refresh_seconds
        self._lock = threading.Lock()
        self._local = threading.local()
        self._versions: dict[str, tuple[float, int | None]] = {}
        self._signatures: dict[tuple[str, int], dict] = {}

    def call(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One call on this thread's keep-alive connection to TF Serving (a new connection per
        call would cost a TCP handshake each and leave thousands in TIME_WAIT under load)."""
        connection = getattr(self._local, "connection", None)
        reused = connection is not None
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request(method, path, body=body or None, headers=headers or {})
            response = connection.getresponse()
            answer = response.status, response.getheaders(), response.read()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            connection.close()
            self._local.connection = None
            if not reused:
                raise
            # The server closed the kept connection while it was idle: the call never reached it.
            return self.call(method, path, body, headers)
        except BaseException:
            connection.close()
            self._local.connection = None
            raise
        if response.will_close:
            connection.close()
            self._local.connection = None
        return answer

    def served_version(self, model: str, refresh: bool = False) -> int | None:
        """The newest AVAILABLE version of `model`, or None when none is (or the status fails)."""
        with self._lock:
            cached = self._versions.get(model)
        # (time.monotonic() counts from boot: a cache entry stamped 0.0 would look fresh for the
        # first refresh_seconds after a machine starts.)
        if not refresh and cached is not None and time.monotonic() - cached[0] < self.refresh_seconds:
            return cached[1]
        version = None
        try:
            status, _, body = self.call("GET", f"/v1/models/{urllib.parse.quote(model)}")
            if status == 200:
                available = [
                    int(v["version"])
                    for v in json.loads(body).get("model_version_status", [])
                    if v.get("state") == "AVAILABLE"
                ]
                version = max(available) if available else None
        except (OSError, ValueError, KeyError, http.client.HTTPException) as err:
            log.warning("could not read the status of model %s: %s", model, err)
        # No version yet (TF Serving still loading at start-up) is not kept: the next call asks
        # again instead of sending unpinned calls, which cannot be logged, for refresh_seconds.
        if version is not None:
            with self._lock:
                self._versions[model] = (time.monotonic(), version)
        return version

    def labelled_version(self, model: str, label: str, refresh: bool = False) -> int | None:
        """The version `label` names (its metadata's model_spec.version), or None when it cannot
        be read (an unknown label: the call then goes through unpinned and gets TF Serving's error)."""
        key = f"{model}/labels/{label}"
        with self._lock:
            cached = self._versions.get(key)
        if not refresh and cached is not None and time.monotonic() - cached[0] < self.refresh_seconds:
            return cached[1]
        version = None
        try:
            status, _, body = self.call(
                "GET", f"/v1/models/{urllib.parse.quote(model)}/labels/{urllib.parse.quote(label)}/metadata"
            )
            if status == 200:
                version = int(json.loads(body)["model_spec"]["version"])
        except (OSError, ValueError, KeyError, http.client.HTTPException) as err:
            log.warning("could not read the version of label %s of model %s: %s", label, model, err)
        if version is not None:
            with self._lock:
                self._versions[key] = (time.monotonic(), version)
        return version

    def signature_defs(self, model: str, version: int) -> dict:
        """{signature key: SignatureDef} of one version, from its metadata."""
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2

        key = (model, version)
        with self._lock:
            if key in self._signatures:
                return self._signatures[key]
        status, _, body = self.call("GET", f"/v1/models/{urllib.parse.quote(model)}/versions/{version}/metadata")
        if status != 200:
            raise ValueError(f"metadata of {model} version {version}: HTTP {status}")
        signatures = get_model_metadata_pb2.SignatureDefMap()
        json_format.ParseDict(json.loads(body)["metadata"]["signature_def"], signatures, ignore_unknown_fields=True)
        found = dict(signatures.signature_def)
        with self._lock:
            self._signatures[key] = found
        return found


# ----------------------------------------------------------------------------- records


def _tensor_from_json(value, info) -> Any:
    """One output tensor of a JSON answer, typed as the signature's TensorInfo says."""
    import numpy as np
    import tensorflow as tf

    dtype = tf.dtypes.as_dtype(info.dtype)

    def plain(item):
        if isinstance(item, list):
            return [plain(i) for i in item]
        if isinstance(item, dict) and set(item) == {"b64"}:
            return base64.b64decode(item["b64"])
        if isinstance(item, str) and dtype == tf.string:
            return item.encode()
        return item

    values = plain(value)
    array = np.array(values, dtype=object) if dtype == tf.string else np.array(values, dtype=dtype.as_numpy_dtype)
    return tf.make_tensor_proto(array, dtype=dtype)


def predict_response_from_json(text: bytes, signature, fmt: str):
    """The PredictResponse behind a JSON answer of MakeJsonFromTensors (row or columnar)."""
    from tensorflow_serving.apis import predict_pb2

    doc = json.loads(text)
    aliases = sorted(signature.outputs)
    response = predict_pb2.PredictResponse()
    if fmt == "columnar":
        outputs = doc["outputs"] if len(aliases) > 1 else {aliases[0]: doc["outputs"]}
    else:
        rows = doc["predictions"]
        outputs = {a: [row[a] for row in rows] for a in aliases} if len(aliases) > 1 else {aliases[0]: rows}
    for alias, value in outputs.items():
        response.outputs[alias].CopyFrom(_tensor_from_json(value, signature.outputs[alias]))
    return response


def _with_request_ids(examples, request_id: str) -> None:
    """Adds feature `request_id` to each tf.Example proto that lacks it."""
    many = len(examples) > 1
    for i, example in enumerate(examples):
        if ID_FEATURE not in example.features.feature:
            value = f"{request_id}/{i}" if many else request_id
            example.features.feature[ID_FEATURE].bytes_list.value.append(value.encode())


def _serialized_with_request_ids(values: list[bytes], request_id: str) -> list[bytes] | None:
    """The serialized tf.Examples with request ids added, or None when they are not tf.Examples."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    try:
        examples = [tf.train.Example.FromString(v) for v in values]
    except DecodeError:
        return None
    if not all(e.features.feature for e in examples):
        return None  # strings that parse as empty messages are not examples
    _with_request_ids(examples, request_id)
    return [e.SerializeToString() for e in examples]


def build_record(
    verb: str,
    path_spec,
    body: bytes,
    answer: bytes,
    version: int,
    request_id: str,
    sampling_rate: float,
    signature_defs_of: Callable[[Any], dict],
):
    """The PredictionLog of one successful REST call."""
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import classification_pb2, prediction_log_pb2, regression_pb2

    from contracts.saved_model import DEFAULT_SIGNATURE
    from serving.standin.json_codec import example_request_from_json, predict_request_from_json

    record = prediction_log_pb2.PredictionLog()
    metadata = record.log_metadata
    metadata.sampling_config.sampling_rate = sampling_rate
    metadata.timestamp_secs = int(time.time())
    if verb == "predict":
        request, fmt = predict_request_from_json(body, path_spec, signature_defs_of)
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        response = predict_response_from_json(answer, signature_defs_of(path_spec)[signature_name], fmt)
        for alias, tensor in request.inputs.items():
            if tensor.dtype == tf.string.as_datatype_enum:
                values = tf.make_ndarray(tensor).reshape(-1).tolist()
                tagged = _serialized_with_request_ids(values, request_id)
                if tagged is not None:
                    shape = tf.make_ndarray(tensor).shape
                    request.inputs[alias].CopyFrom(
                        tf.make_tensor_proto(np.array(tagged, dtype=object).reshape(shape), dtype=tf.string)
                    )
        log_entry = record.predict_log
    elif verb == "classify":
        request = example_request_from_json(body, path_spec, classification_pb2.ClassificationRequest())
        response = classification_pb2.ClassificationResponse()
        for row in json.loads(answer)["results"]:
            classes = response.result.classifications.add()
            for label, score in row:
                classes.classes.add(label=label, score=score)
        log_entry = record.classify_log
    else:
        request = example_request_from_json(body, path_spec, regression_pb2.RegressionRequest())
        response = regression_pb2.RegressionResponse()
        for value in json.loads(answer)["results"]:
            response.result.regressions.add(value=value)
        log_entry = record.regress_log
    if verb != "predict":
        listed = request.input.WhichOneof("kind")
        _with_request_ids(getattr(request.input, listed).examples, request_id)
    signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    request.model_spec.version.value = version
    response.model_spec.CopyFrom(request.model_spec)
    response.model_spec.signature_name = signature_name
    metadata.model_spec.CopyFrom(response.model_spec)
    log_entry.request.CopyFrom(request)
    log_entry.response.CopyFrom(response)
    return record


# ----------------------------------------------------------------------------- the proxy


class LoggingProxy:
    """The proxy's HTTP server; `start()` serves in a thread, `stop()` ends it."""

    def __init__(
        self,
        upstream: str,
        log_dir: str,
        sampling_rate: float,
        host: str = "127.0.0.1",
        port: int = 8080,
        timeout: float = 60.0,
        refresh_seconds: float = 5.0,
        sample: Callable[[], float] = random.random,
        max_body_bytes: int = MAX_BODY_BYTES,
    ):
        from components.drift_check.request_log import RequestLogger

        self.sampling_rate = check_sampling_rate(sampling_rate)
        self.upstream = _Upstream(upstream, timeout, refresh_seconds)
        self.logger = RequestLogger(log_dir)
        self._sample = sample
        self.logged = 0
        self.failed = 0
        self._count_lock = threading.Lock()
        self.max_body_bytes = max_body_bytes
        self._server = RestHTTPServer((host, port), self._handler())
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "TFXPRequestLogProxy/1"
            protocol_version = "HTTP/1.1"
            timeout = IDLE_SECONDS

            def _forward(self):
                try:
                    # The body goes on as it came (gzip too): TF Serving reads it.
                    body = read_body(self.headers, self.rfile, proxy.max_body_bytes, gunzip=False)
                except BodyError as err:
                    return refuse(self, err)
                given = self.headers.get(REQUEST_ID, "")
                request_id = given if _VALID_ID.fullmatch(given) else uuid.uuid4().hex
                try:
                    status, headers, answer = proxy.handle(
                        self.command, self.path, body, dict(self.headers), request_id
                    )
                except Exception as err:  # noqa: BLE001 - no request may end the handler's thread
                    log.exception("proxy: %s %s failed", self.command, self.path)
                    status, headers = 500, [("Content-Type", "application/json")]
                    answer = json.dumps(
                        {"error": f"the request-log proxy failed: {type(err).__name__}: {err}"}
                    ).encode()
                self.send_response_only(status)  # TF Serving's own Server and Date headers follow
                for name, value in headers:
                    if name.lower() not in _HOP_BY_HOP and name.lower() != REQUEST_ID.lower():
                        self.send_header(name, value)
                self.send_header(REQUEST_ID, request_id)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = _forward

            def log_message(self, fmt, *args):
                log.debug("proxy: " + fmt, *args)

        return Handler

    def handle(
        self, method: str, target: str, body: bytes, headers: dict[str, str], request_id: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        from serving.standin.rest import model_spec

        headers = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
        encoding = next((v for k, v in headers.items() if k.lower() == "content-encoding"), "")
        path = urllib.parse.urlsplit(target).path
        match = _PREDICTION.fullmatch(path) if method == "POST" else None
        pinned, version = target, None
        label = urllib.parse.unquote(match[2].removeprefix("/labels/")) if match and match[2] else None
        if label is not None and match[2].startswith("/versions/"):
            label = None

        def resolve(refresh: bool = False) -> int | None:
            model = urllib.parse.unquote(match[1])
            if label is not None:
                return self.upstream.labelled_version(model, label, refresh)
            return self.upstream.served_version(model, refresh)

        if match and (not match[2] or label is not None):
            version = resolve()
            if version is not None:
                pinned = target.replace(match[0], f"/v1/models/{match[1]}/versions/{version}:{match[3]}", 1)
        try:
            status, answer_headers, answer = self.upstream.call(method, pinned, body, headers)
            if status == 404 and version is not None:
                # The version pinned was unloaded since the status was read: read it again.
                version = resolve(refresh=True)
                pinned = (
                    target
                    if version is None
                    else target.replace(match[0], f"/v1/models/{match[1]}/versions/{version}:{match[3]}", 1)
                )
                status, answer_headers, answer = self.upstream.call(method, pinned, body, headers)
        except (OSError, http.client.HTTPException) as err:
            message = json.dumps(
                {"error": f"TF Serving at {self.upstream.host}:{self.upstream.port} did not answer: {err}"}, indent=4
            ).encode()
            return 502, [("Content-Type", "application/json")], message
        if match and status == 200 and self.sampling_rate > 0 and self._sample() < self.sampling_rate:
            try:
                spec = model_spec(match[1], *self._version_and_label(pinned))
                record = build_record(
                    match[3],
                    spec,
                    gunzip_body(body, self.max_body_bytes) if "gzip" in encoding.lower() else body,
                    answer,
                    version or spec.version.value,
                    request_id,
                    self.sampling_rate,
                    lambda s: self.upstream.signature_defs(s.name, s.version.value),
                )
                self.logger.write(record)
                with self._count_lock:
                    self.logged += 1
            except Exception as err:  # noqa: BLE001 - a record that cannot be built never fails the client
                with self._count_lock:
                    self.failed += 1
                log.error("request %s to %s not logged: %s: %s", request_id, path, type(err).__name__, err)
        return status, answer_headers, answer

    @staticmethod
    def _version_and_label(target: str) -> tuple[str | None, str | None]:
        path = urllib.parse.urlsplit(target).path
        version = re.search(r"/versions/(\d+):", path)
        label = re.search(r"/labels/([^/:]+):", path)
        return (version[1] if version else None), (label[1] if label else None)

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.logger.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_forever(upstream: str, log_dir: str, sampling_rate: float, host: str, port: int) -> None:
    """Runs the proxy until SIGINT or SIGTERM."""
    import signal

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    proxy = LoggingProxy(upstream, log_dir, sampling_rate, host, port).start()
    print(
        f"request-log proxy on http://{host}:{proxy.port} -> {upstream}, logging "
        f"{sampling_rate:.0%} of the predictions to {proxy.logger.path}",
        flush=True,
    )
    stop.wait()
    proxy.stop()
    print(f"logged {proxy.logged} requests ({proxy.failed} could not be logged)", flush=True)
