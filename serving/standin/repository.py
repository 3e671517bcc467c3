"""The stand-in's model repository: one model's versions under its base path, the newest loaded
the way TF Serving loads it, the last good one served, and the calls on the version served.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from typing import Any

from components.serving_check import tf_serving_requests
from components.serving_check.tf_serving_requests import DT_STRING, ServingError, invalid_argument
from contracts.serving_dir import served_versions
from serving.metrics import ServingMetrics

log = logging.getLogger(__name__)

MAX_LOAD_RETRIES = 5  # --max_num_load_retries


class _Version:
    def __init__(self, number: int):
        self.number = number
        self.state = "LOADING"
        self.error_code, self.error_message = "OK", ""
        self.model = None
        self.attempts = 0
        self.in_flight = 0  # requests running on `model`; it is closed when retired and idle


class ModelRepository:
    """One model's versions under `base_path`: the newest loaded, the last good one served."""

    def __init__(self, name: str, base_path: str, request_logger=None, metrics: ServingMetrics | None = None):
        self.name, self.base_path = name, base_path
        self.request_logger = request_logger  # components.drift_check.request_log.RequestLogger, for skew checks
        self.metrics = metrics or ServingMetrics()
        self._lock = threading.RLock()
        self._refreshing = threading.Lock()
        self._versions: dict[int, _Version] = {}
        self._served: _Version | None = None

    def refresh(self) -> int | None:
        """Loads the newest version if it is new (or failed and has retries left); answers
        the version served."""
        versions = served_versions(self.base_path)
        if versions:
            newest = versions[-1]
            with self._lock:
                record = self._versions.setdefault(newest, _Version(newest))
            with self._refreshing:  # one load at a time: two loads of one version would retire it
                if (
                    record.state != "AVAILABLE"
                    and record.attempts <= MAX_LOAD_RETRIES
                    and (self._served is None or newest > self._served.number)
                ):
                    self._load(record)
        with self._lock:
            return self._served.number if self._served else None

    def _load(self, record: _Version) -> None:
        from components.serving_check.loader import LoadError, SessionModel

        record.attempts += 1
        path = os.path.join(self.base_path, str(record.number))
        try:
            model = SessionModel(path)
        except LoadError as err:
            self.metrics.load_attempt(path, ok=False)
            code = _tf_code(err.__cause__)
            return self._failed(record, code, str(err))
        self.metrics.load_attempt(path, ok=True)
        try:
            replayed = tf_serving_requests.replay_warmup(model, path)
        except ServingError as err:
            model.close()
            return self._failed(record, err.code, err.message)
        with self._lock:
            previous, self._served = self._served, record
            record.model, record.state = model, "AVAILABLE"
            record.error_code, record.error_message = "OK", ""
            retired = None
            if previous is not None:
                previous.state = "END"
                if previous.in_flight == 0:
                    retired, previous.model = previous.model, None
        if retired is not None:
            retired.close()
        log.info("serving %s version %s (%d warm-up records)", self.name, record.number, replayed)

    def _failed(self, record: _Version, code: str, message: str) -> None:
        with self._lock:
            record.state, record.error_code, record.error_message = "END", code, message
        log.error("version %s of %s did not load: %s", record.number, self.name, message)

    @contextmanager
    def serving(self, spec):
        """(version, SessionModel) for `spec`, held open until the block ends, as a
        ServableHandle keeps an unloaded version alive for the requests still using it."""
        with self._lock:  # one step, so that no swap closes the version in between
            version, _ = self.handle(spec)
            record = self._versions[version]
            record.in_flight += 1
        try:
            yield version, record.model
        finally:
            with self._lock:
                record.in_flight -= 1
                retired = None
                if record.state == "END" and record.in_flight == 0:
                    retired, record.model = record.model, None
            if retired is not None:
                retired.close()

    # What ServerCore::GetServableHandle answers.
    def handle(self, spec) -> tuple[int, Any]:
        label = spec.version_label
        if label:
            raise invalid_argument(f"Unrecognized servable version label: {label}")
        version = spec.version.value if spec.HasField("version") else None
        request = f"Specific({spec.name}, {version})" if version is not None else f"Latest({spec.name})"
        with self._lock:
            served = self._served
        if spec.name != self.name or served is None or (version is not None and version != served.number):
            raise ServingError("NOT_FOUND", f"Servable not found for request: {request}")
        return served.number, served.model

    def status(self, spec):
        """ModelService.GetModelStatus (get_model_status_impl.cc)."""
        from tensorflow_serving.apis import get_model_status_pb2

        if spec.version_label:
            raise invalid_argument(f"Unrecognized servable version label: {spec.version_label}")
        with self._lock:
            versions = dict(self._versions) if spec.name == self.name else {}
        response = get_model_status_pb2.GetModelStatusResponse()
        if spec.HasField("version"):
            if spec.version.value not in versions:
                raise ServingError("NOT_FOUND", f"Could not find version {spec.version.value} of model {spec.name}")
            chosen = [versions[spec.version.value]]
        else:
            if not versions:
                raise ServingError("NOT_FOUND", f"Could not find any versions of model {spec.name}")
            chosen = [versions[v] for v in sorted(versions, reverse=True)]
        states = get_model_status_pb2.ModelVersionStatus
        for record in chosen:
            status = response.model_version_status.add(version=record.number, state=states.State.Value(record.state))
            status.status.error_code = _error_code_enum(record.error_code)
            status.status.error_message = record.error_message
        return response

    def metadata(self, request):
        """PredictionService.GetModelMetadata (get_model_metadata_impl.cc): every signature,
        __saved_model_init_op included."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != "signature_def":
                raise invalid_argument(f"Metadata field {field} is not supported")
        version, model = self.handle(request.model_spec)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        # signature_defs is a dict of its own: it outlives the session.
        for key, signature in model.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = version
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def predict(self, request):
        with self.serving(request.model_spec) as (version, model), self._runtime("Predict"):
            response = tf_serving_requests.predict(model, request, version=version)
        if self.request_logger is not None and len(request.inputs) == 1:
            tensor = next(iter(request.inputs.values()))
            if tensor.dtype == DT_STRING:
                # Serialized tf.Examples (serving_default): the requests skew is checked on.
                self.request_logger.log(self.name, response.model_spec.signature_name, list(tensor.string_val))
        return response

    def classify(self, request):
        with self.serving(request.model_spec) as (version, model), self._runtime("Classify"):
            response = tf_serving_requests.classify(model, request, version=version)
        self._log_examples(request)
        return response

    def regress(self, request):
        with self.serving(request.model_spec) as (version, model), self._runtime("Regress"):
            response = tf_serving_requests.regress(model, request, version=version)
        self._log_examples(request)
        return response

    def multi_inference(self, request):
        spec = request.tasks[0].model_spec if request.tasks else None
        if spec is None:
            raise invalid_argument("Found ModelSpec with an empty model name.")
        with self.serving(spec) as (version, model):
            response = tf_serving_requests.multi_inference(model, request, version=version)
        self.metrics.examples(spec.name, len(tf_serving_requests.serialized_examples(request.input)))
        return response

    @contextmanager
    def _runtime(self, api: str):
        """RecordRuntimeLatency, for a call into the signature that succeeds."""
        start = time.perf_counter()
        yield
        self.metrics.runtime(self.name, api, (time.perf_counter() - start) * 1e6)

    def _log_examples(self, request) -> None:
        if self.request_logger is not None:
            self.request_logger.log(
                self.name,
                request.model_spec.signature_name or tf_serving_requests.DEFAULT_SIGNATURE,
                tf_serving_requests.serialized_examples(request.input),
            )


def _tf_code(err: BaseException | None) -> str:
    import tensorflow as tf
    from tensorflow.core.protobuf import error_codes_pb2

    if isinstance(err, tf.errors.OpError):
        return error_codes_pb2.Code.Name(err.error_code)
    return "UNKNOWN"


def _error_code_enum(name: str) -> int:
    from tensorflow.core.protobuf import error_codes_pb2

    return error_codes_pb2.Code.Value(name)
