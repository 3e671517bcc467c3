"""The stand-in's model repository: one model's versions under its base path, loaded the way TF
Serving loads them (the newest, or the versions and labels of a model config file), and the
calls on the version a request names.
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
    """One model's versions under `base_path`. Without a model config: the newest loaded, the last
    good one served (TF Serving's default latest policy). With one (`config_file`, TF Serving's
    --model_config_file, contracts/model_config.py): the versions it lists loaded, the others
    unloaded, and its version labels, re-read on every refresh as
    --model_config_file_poll_wait_seconds re-reads the file."""

    def __init__(
        self,
        name: str,
        base_path: str,
        request_logger=None,
        metrics: ServingMetrics | None = None,
        config_file: str | None = None,
        allow_labels_for_unavailable: bool = False,
    ):
        self.name, self.base_path = name, base_path
        self.request_logger = request_logger  # components.drift_check.request_log.RequestLogger, for skew checks
        self.metrics = metrics or ServingMetrics()
        self.config_file = config_file
        # --allow_version_labels_for_unavailable_models: a label that does not exist yet may
        # name a version that is not available (server_core.cc UpdateModelVersionLabelMap).
        self.allow_labels_for_unavailable = allow_labels_for_unavailable
        self._lock = threading.RLock()
        self._refreshing = threading.Lock()
        self._versions: dict[int, _Version] = {}
        self._available: dict[int, _Version] = {}
        self._labels: dict[str, int] = {}
        self._config_text: str | None = None
        self._specific: tuple[int, ...] = ()  # the applied config's specific versions (): latest
        self.config_error: str | None = None  # why the last read of the config file was refused

    @property
    def labels(self) -> dict[str, int]:
        with self._lock:
            return dict(self._labels)

    def refresh(self, read_config: bool = True) -> int | None:
        """Loads what the policy wants (the newest version, or the config's versions) and
        unloads what it no longer wants; answers the newest version served. `read_config`
        False: the config file is not read again (its poll interval has not passed)."""
        with self._refreshing:  # one load at a time: two loads of one version would retire it
            complete = served_versions(self.base_path)
            if self.config_file is None:
                # Latest policy, availability preserving: the version served stays until a
                # newer one has loaded.
                with self._lock:
                    current = max(self._available, default=None)
                newest = complete[-1] if complete else None
                wanted = [newest] if newest is not None and (current is None or newest > current) else []
            elif read_config or self._config_text is None:
                wanted = self._apply_config(complete)
            else:
                wanted = list(self._specific) if self._specific else complete[-1:]
            for number in wanted or []:
                with self._lock:
                    record = self._versions.setdefault(number, _Version(number))
                if number in complete and record.state != "AVAILABLE" and record.attempts <= MAX_LOAD_RETRIES:
                    self._load(record)
            with self._lock:
                if self.config_file is None:
                    newest = max(self._available, default=None)
                    stale = [v for v in self._available if v != newest]
                elif wanted is None:  # a refused or unreadable config changes nothing
                    stale = []
                else:
                    stale = [v for v in self._available if v not in wanted]
                for number in stale:
                    self._retire(number)
        with self._lock:
            return max(self._available, default=None)

    def _apply_config(self, complete: list[int]) -> list[int] | None:
        """ServerCore::ReloadConfig for one model: the labels are checked against the versions
        available now, before the config's new versions load (UpdateModelVersionLabelMap runs
        before AddModelsViaModelConfigList); a refused config changes nothing, and as the same
        file is read again on every poll, its new versions never load (tensorflow/serving#1230).
        Answers the versions to serve, or None when the file cannot be used."""
        from contracts.model_config import ModelConfigError, not_available_message, parse

        try:
            with open(self.config_file) as f:
                text = f.read()
            config = parse(text, self.name, self.config_file)
        except (OSError, ModelConfigError) as err:
            # server.cc PollFilesystemAndReloadConfig: "Failed to read ModelServerConfig file: ..."
            return self._refuse(f"Failed to read ModelServerConfig file: {err}")
        with self._lock:
            available = set(self._available)
            labels = dict(self._labels)
        for label, version in sorted(config.labels.items()):
            moved = label in labels and labels[label] != version
            allowed = self.allow_labels_for_unavailable and not moved
            if version not in available and not allowed:
                # FAILED_PRECONDITION from server_core.cc UpdateModelVersionLabelMap.
                return self._refuse(
                    "PollFilesystemAndReloadConfig failed to ReloadConfig: " + not_available_message(version, self.name)
                )
        with self._lock:
            self._labels = dict(config.labels)
        if text != self._config_text:
            log.info("model config %s: versions %s, labels %s", self.config_file, config.versions, config.labels)
        self._config_text, self.config_error, self._specific = text, None, config.versions
        return list(config.versions) if config.versions else complete[-1:]

    def _refuse(self, message: str) -> None:
        if message != self.config_error:
            log.error("%s", message)
        self.config_error = message
        return None

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
            record.model, record.state = model, "AVAILABLE"
            record.error_code, record.error_message = "OK", ""
            self._available[record.number] = record
        log.info("serving %s version %s (%d warm-up records)", self.name, record.number, replayed)

    def _retire(self, number: int) -> None:
        """Unloads a version (lock held); its model closes when its last request ends."""
        record = self._available.pop(number)
        record.state = "END"
        record.attempts = 0  # a version listed again later loads again
        if record.in_flight == 0:
            retired, record.model = record.model, None
            if retired is not None:
                retired.close()

    def _failed(self, record: _Version, code: str, message: str) -> None:
        with self._lock:
            record.state, record.error_code, record.error_message = "END", code, message
        log.error("version %s of %s did not load: %s", record.number, self.name, message)

    @contextmanager
    def serving(self, spec):
        """(version, SessionModel) for `spec`, held open until the block ends, as a
        ServableHandle keeps an unloaded version alive for the requests still using it."""
        with self._lock:  # one step, so that no swap closes the version in between
            version, model = self.handle(spec)
            record = self._versions[version]
            record.in_flight += 1
        try:
            yield version, model
        finally:
            with self._lock:
                record.in_flight -= 1
                retired = None
                if record.state == "END" and record.in_flight == 0 and record.model is model:
                    retired, record.model = record.model, None
            if retired is not None:
                retired.close()

    # What ServerCore::GetServableHandle answers (ServableRequestFromModelSpec, GetModelVersionForLabel).
    def handle(self, spec) -> tuple[int, Any]:
        with self._lock:
            label = spec.version_label
            if label:
                if spec.name != self.name or label not in self._labels:
                    raise invalid_argument(f"Unrecognized servable version label: {label}")
                version = self._labels[label]
            else:
                version = spec.version.value if spec.HasField("version") else None
            request = f"Specific({spec.name}, {version})" if version is not None else f"Latest({spec.name})"
            if spec.name != self.name or not self._available:
                raise ServingError("NOT_FOUND", f"Servable not found for request: {request}")
            chosen = self._available.get(version if version is not None else max(self._available))
            if chosen is None:
                raise ServingError("NOT_FOUND", f"Servable not found for request: {request}")
            return chosen.number, chosen.model

    def status(self, spec):
        """ModelService.GetModelStatus (get_model_status_impl.cc): a version's state, or every
        version's; a version_label is not read there (the REST /labels/<l> status lists all)."""
        from tensorflow_serving.apis import get_model_status_pb2

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
                self.request_logger.log(self.name, response.model_spec.signature_name, list(tensor.string_val), version)
        return response

    def classify(self, request):
        with self.serving(request.model_spec) as (version, model), self._runtime("Classify"):
            response = tf_serving_requests.classify(model, request, version=version)
        self._log_examples(request, version)
        return response

    def regress(self, request):
        with self.serving(request.model_spec) as (version, model), self._runtime("Regress"):
            response = tf_serving_requests.regress(model, request, version=version)
        self._log_examples(request, version)
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

    def _log_examples(self, request, version: int) -> None:
        if self.request_logger is not None:
            self.request_logger.log(
                self.name,
                request.model_spec.signature_name or tf_serving_requests.DEFAULT_SIGNATURE,
                tf_serving_requests.serialized_examples(request.input),
                version,
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
