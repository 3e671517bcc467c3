"""TF Serving stand-in: TensorFlow Serving's REST and gRPC APIs over the pushed SavedModels.

`tensorflow_model_server` is in neither PyPI nor Debian, so where it cannot be installed this
stand-in serves the pushed models instead. It is NOT TensorFlow Serving. It loads each version
the way TF Serving does (components/serving_check/loader.py: a TF1 session, the restore op,
the init op, SignatureDefs run by tensor names), replays the version's warm-up file at load,
and answers requests through components/serving_check/tf_serving_requests.py, a port of TF Serving's
request code. What it implements, over the same `<base path>/<version>/` layout:
- REST (http_rest_api_handler.cc, http_rest_api_util.cc, util/json_tensor.cc):
  GET /v1/models/<name>[/versions/<v>|/labels/<l>][/metadata],
  POST /v1/models/<name>[/versions/<v>|/labels/<l>]:(predict|classify|regress), with TF
  Serving's JSON tensor encoding and its error JSON ({"error": ...}, HTTP code from the gRPC
  code as http_server.cc maps it);
- gRPC: PredictionService Predict, Classify, Regress, MultiInference and GetModelMetadata;
  ModelService GetModelStatus;
- Prometheus metrics (serving/metrics.py) on the REST port when a --monitoring_config_file
  enables them: TF Serving's request counts, request and runtime latencies and SavedModel load
  attempts, under TF Serving's names and labels.
Versions follow TF Serving's default policy: the newest version is loaded; while it loads, or
if its load or warm-up fails, the version served before stays served (availability
preserving); a failed version is reported with state END and its error, and retried on the
next polls up to 5 times (--max_num_load_retries); a new push is found by polling the base
path, as --file_system_poll_wait_seconds does.

What it does NOT emulate: batching (--enable_batching), version policies other than latest
(specific, all, num_versions > 1), a model config file (--model_config_file, so several models
and version labels: every label is unknown), the load retry interval (retries follow the poll
interval), unloading versions whose directories are removed, request timeouts, the signature
method-name check flag (off, as by default), SSL, gRPC channel arguments,
TFRT and TF-Lite, the SessionService API, and platform configs. Error messages are TF
Serving's, except where components/serving_check/tf_serving_requests.py says otherwise and for JSON syntax
errors (Python's parser reports them, mapped to rapidjson's wording where it is clear).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import re
import threading
import time
import urllib.parse
from concurrent import futures
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from components.serving_check import tf_serving_requests
from components.serving_check.tf_serving_requests import ServingError, dtype_name, dtype_string, shape_string
from contracts.saved_model import DEFAULT_SIGNATURE
from contracts.serving_dir import served_versions
from serving.metrics import ServingMetrics

log = logging.getLogger(__name__)

MAX_LOAD_RETRIES = 5  # --max_num_load_retries
BYTES_SUFFIX = "_bytes"  # json_tensor.cc kBytesTensorNameSuffix
MAX_DEBUG_BYTES = 256  # json_tensor.cc kMaxJsonDebugStringBytes


def _invalid(message: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", message)


# ----------------------------------------------------------------------------- versions


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
            raise _invalid(f"Unrecognized servable version label: {label}")
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
            raise _invalid(f"Unrecognized servable version label: {spec.version_label}")
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
            raise _invalid("Missing ModelSpec")
        if not request.metadata_field:
            raise _invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != "signature_def":
                raise _invalid(f"Metadata field {field} is not supported")
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
            if tensor.dtype == _DT_STRING:
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
            raise _invalid("Found ModelSpec with an empty model name.")
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
                request.model_spec.signature_name or DEFAULT_SIGNATURE,
                tf_serving_requests.serialized_examples(request.input),
            )


_DT_STRING = 7  # types_pb2.DT_STRING


def _tf_code(err: BaseException | None) -> str:
    import tensorflow as tf
    from tensorflow.core.protobuf import error_codes_pb2

    if isinstance(err, tf.errors.OpError):
        return error_codes_pb2.Code.Name(err.error_code)
    return "UNKNOWN"


def _error_code_enum(name: str) -> int:
    from tensorflow.core.protobuf import error_codes_pb2

    return error_codes_pb2.Code.Value(name)


# ----------------------------------------------------------------------------- JSON (json_tensor.cc)

_PARSE_ERRORS = (  # Python's json messages, in rapidjson's words (GetParseError_En)
    ("Expecting value", "Invalid value."),
    ("Expecting property name", "Missing a name for object member."),
    ("Expecting ':'", "Missing a colon after a name of object member."),
    ("Unterminated string", "Missing a closing quotation mark in string."),
    ("Invalid \\escape", "Invalid escape character in string."),
    ("Invalid control character", "Invalid encoding in string."),
)


def _first_wins(pairs):
    """rapidjson's FindMember finds a duplicated key's first value."""
    obj: dict = {}
    for key, value in pairs:
        obj.setdefault(key, value)
    return obj


def parse_json(body: bytes):
    """ParseJson: the document, which must be an object."""
    if not body:
        raise _invalid("JSON Parse error: The document is empty")
    text = body.decode("utf-8", "replace")
    stripped = text.lstrip()
    offset = len(text) - len(stripped)
    if not stripped:
        raise _invalid(f"JSON Parse error: The document is empty. at offset: {offset}")
    try:
        # raw_decode stops after the root value, as kParseStopWhenDoneFlag does.
        doc, _ = json.JSONDecoder(object_pairs_hook=_first_wins).raw_decode(stripped)
    except json.JSONDecodeError as err:
        message = next(
            (ours for theirs, ours in _PARSE_ERRORS if err.msg.startswith(theirs)),
            "Missing a comma or '}' after an object member." if "delimiter" in err.msg else err.msg,
        )
        raise _invalid(f"JSON Parse error: {message} at offset: {offset + err.pos}") from None
    if not isinstance(doc, dict):
        raise _invalid(f"JSON Value: {debug_string(doc)} Is not object")
    return doc


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number_kind(value) -> str | None:
    """How rapidjson reads a JSON number: "int" for an integer token in int64/uint64 range,
    "double" otherwise (a float token, or an integer too large)."""
    if _is_int(value):
        return "int" if -(2**63) <= value < 2**64 else "double"
    if isinstance(value, float):
        return "double"
    return None


def debug_string(value) -> str:
    """JsonValueToDebugString: rapidjson's pretty writer with single-line arrays, cut short
    once 256 bytes are written."""
    out: list[str] = []
    size = [0]

    def put(text: str) -> bool:
        if size[0] >= MAX_DEBUG_BYTES:
            return False
        out.append(text)
        size[0] += len(text.encode())
        return True

    def write(val, indent: int) -> bool:
        if isinstance(val, dict):
            if not put("{"):
                return False
            for i, (key, item) in enumerate(val.items()):
                if not put(("," if i else "") + "\n" + " " * (indent + 4) + json.dumps(key) + ": "):
                    return False
                if not write(item, indent + 4):
                    return False
            return put(("\n" + " " * indent if val else "") + "}")
        if isinstance(val, list):
            if not put("["):
                return False
            for i, item in enumerate(val):
                if i and not put(", "):
                    return False
                if not write(item, indent):
                    return False
            return put("]")
        if isinstance(val, float):
            return put(
                "NaN" if math.isnan(val) else ("Infinity" if val > 0 else "-Infinity") if math.isinf(val) else repr(val)
            )
        return put(json.dumps(val, ensure_ascii=False))

    write(value, 0)
    return "".join(out)


def _type_name(value) -> str:
    """JsonTypeString."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _type_error(value, dtype: int) -> ServingError:
    return _invalid(
        f"JSON Value: {debug_string(value)} Type: {_type_name(value)} is not of expected type: {dtype_string(dtype)}"
    )


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _b64decode(value) -> bytes:
    """JsonDecodeBase64Object."""
    if not _is_b64(value):
        raise _invalid(f"JSON Value: {debug_string(value)} not formatted correctly for base64 data")
    text = value["b64"]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        raise _invalid("Unable to base64 decode") from None


_INT32 = (-(2**31), 2**31)
_DTYPE_FIELDS = {
    1: "float_val",
    2: "double_val",
    3: "int_val",
    4: "int_val",
    5: "int_val",
    6: "int_val",
    7: "string_val",
    9: "int64_val",
    10: "bool_val",
    22: "uint32_val",
    23: "uint64_val",
}


def _scalar(value, dtype: int):
    """AddValueToTensor: one JSON value as a value of `dtype`."""
    kind = _number_kind(value)
    name = dtype_name(dtype)
    if name in ("DT_FLOAT", "DT_DOUBLE"):
        ok = kind is not None
    elif name in ("DT_INT32", "DT_INT16", "DT_INT8", "DT_UINT8"):
        ok = kind == "int" and _INT32[0] <= value < _INT32[1]
    elif name == "DT_STRING":
        ok = isinstance(value, str)
        value = value.encode() if ok else value
    elif name == "DT_INT64":
        ok = kind == "int" and -(2**63) <= value < 2**63
    elif name == "DT_BOOL":
        ok = isinstance(value, bool)
    elif name == "DT_UINT32":
        ok = kind == "int" and 0 <= value < 2**32
    elif name == "DT_UINT64":
        ok = kind == "int" and 0 <= value < 2**64
    else:
        raise ServingError(
            "UNIMPLEMENTED",
            f"Conversion of JSON Value: {debug_string(value)} to type: {dtype_string(dtype)}",
        )
    if not ok:
        raise _type_error(value, dtype)
    return float(value) if name in ("DT_FLOAT", "DT_DOUBLE") else value


def _dense_shape(value) -> list[int]:
    """GetDenseTensorShape: the sizes of the first element at each level."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def _fill(value, level: int, shape: list[int], dtype: int, out: list) -> None:
    """FillTensorProto: the values of a dense JSON tensor, in order, checked against `shape`."""
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise _invalid(
                f"JSON Value: {debug_string(value)} found at incorrect level: "
                f"{level + 1} in the JSON DOM. Expected at level: {rank}"
            )
        if isinstance(value, dict):
            if dtype_name(dtype) != "DT_STRING":
                raise _type_error(value, dtype)
            out.append(_b64decode(value))
        else:
            out.append(_scalar(value, dtype))
        return
    if level >= rank:
        raise _invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise _invalid(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def _tensor_proto(dtype: int, shape: list[int], values: list):
    from tensorflow.core.framework import tensor_pb2

    proto = tensor_pb2.TensorProto(dtype=dtype)
    for size in shape:
        proto.tensor_shape.dim.add(size=size)
    getattr(proto, _DTYPE_FIELDS[dtype]).extend(values)
    return proto


def _json_tensor(value, dtype: int) -> tuple[list[int], list]:
    shape = _dense_shape(value)
    values: list = []
    _fill(value, 0, shape, dtype, values)
    return shape, values


def _instances(instances: list, infos) -> dict:
    """FillTensorMapFromInstancesList: row format, batched along a new first dimension."""

    def is_object(val) -> bool:
        return isinstance(val, dict) and not _is_b64(val)

    if not isinstance(instances[0], dict) and len(infos) > 1:
        raise _invalid(
            "instances is a plain list, but expecting list of objects as multiple "
            "input tensors required as per tensorinfo_map"
        )
    objects = is_object(instances[0])
    names = sorted(infos)
    values: dict[str, list] = {}
    shapes: dict[str, list[int]] = {}
    sizes: dict[str, int] = {}

    def add(item, name: str) -> None:
        """AddInstanceItem."""
        if name not in infos:
            raise _invalid(f"JSON object: does not have named input: {name}")
        shape, flat = _json_tensor(item, infos[name].dtype)
        if name not in shapes:
            shapes[name], sizes[name] = shape, len(flat)
        elif sizes[name] != len(flat):
            raise _invalid(f"Expecting tensor size: {sizes[name]} but got: {len(flat)}")
        elif shapes[name] != shape:
            raise _invalid(f"Expecting shape {shape_string(shapes[name])} but got: {shape_string(shape)}")
        values.setdefault(name, []).extend(flat)

    for count, element in enumerate(instances):
        if objects:
            if not is_object(element):
                raise _invalid(f"Expecting object but got list at item {count} of input list")
            for name, item in element.items():
                try:
                    add(item, name)
                except ServingError as err:
                    raise _invalid(
                        f"Failed to process element: {count} key: {name} of 'instances' list. Error: {err.to_string()}"
                    ) from None
            if sorted(element) != names:
                raise _invalid(
                    f"Failed to process element: {count} of 'instances' list. JSON "
                    f"object: {debug_string(element)} keys must be equal to: "
                    f"{','.join(names)}"
                )
        else:
            if is_object(element):
                raise _invalid(f"Expecting value/list but got object at item {count} of input list")
            try:
                add(element, names[0])
            except ServingError as err:
                raise _invalid(
                    f"Failed to process element: {count} of 'instances' list. Error: {err.to_string()}"
                ) from None
    return {name: _tensor_proto(infos[name].dtype, [len(instances), *shapes[name]], values[name]) for name in values}


def _inputs(value, infos) -> dict:
    """FillTensorMapFromInputsMap: columnar format."""
    if not isinstance(value, dict) or _is_b64(value):
        if len(infos) > 1:
            raise _invalid(
                "inputs is a plain value/list, but expecting an object as multiple "
                "input tensors required as per tensorinfo_map"
            )
        name = min(infos)
        shape, flat = _json_tensor(value, infos[name].dtype)
        return {name: _tensor_proto(infos[name].dtype, shape, flat)}
    tensors = {}
    for name in sorted(infos):
        if name not in value:
            raise _invalid(f"Missing named input: {name} in 'inputs' object.")
        shape, flat = _json_tensor(value[name], infos[name].dtype)
        tensors[name] = _tensor_proto(infos[name].dtype, shape, flat)
    return tensors


def _signature_from_json(doc: dict, spec) -> None:
    """FillSignature."""
    if "signature_name" in doc:
        if not isinstance(doc["signature_name"], str):
            raise _invalid(
                f"JSON Value: {debug_string(doc)} not formatted correctly. 'signature_name' key must be a string value."
            )
        spec.signature_name = doc["signature_name"]


def predict_request_from_json(body: bytes, spec, signature_defs_of) -> tuple[Any, str]:
    """FillPredictRequestFromJson: (PredictRequest, "row" or "columnar").

    `signature_defs_of(spec)` answers the served version's SignatureDefs (GetInfoMap).
    """
    from tensorflow_serving.apis import predict_pb2

    doc = parse_json(body)
    request = predict_pb2.PredictRequest()
    request.model_spec.CopyFrom(spec)
    _signature_from_json(doc, request.model_spec)
    signame = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature = signature_defs_of(request.model_spec).get(signame)
    if signature is None:
        raise _invalid(f'Serving signature name: "{signame}" not found in signature def')
    infos = signature.inputs
    if not infos:
        raise _invalid(f"Failed to get input map for signature: {request.model_spec.signature_name or 'DEFAULT'}")
    both = "JSON Value: {} Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "
    if "instances" in doc:
        if "inputs" in doc:
            raise _invalid(both.format(debug_string(doc)))
        if not isinstance(doc["instances"], list):
            raise _invalid(f"JSON Value: {debug_string(doc)} Expecting 'instances' to be an list/array")
        if not doc["instances"]:
            raise _invalid(f"JSON Value: {debug_string(doc)} No values in 'instances' array")
        tensors, fmt = _instances(doc["instances"], infos), "row"
    elif "inputs" in doc:
        tensors, fmt = _inputs(doc["inputs"], infos), "columnar"
    else:
        raise _invalid("Missing 'inputs' or 'instances' key")
    for name, tensor in tensors.items():
        request.inputs[name].CopyFrom(tensor)
    return request, fmt


def _feature_kind_error(name: str, kind: str) -> ServingError:
    return _invalid(f"Unexpected element type in feature: {name} expecting type: {kind}")


def _example_from_json(value, target) -> None:
    """MakeExampleFromJsonObject and AddValueToFeature: JSON types give the feature kind."""
    if not isinstance(value, dict):
        raise _invalid(f"Example must be JSON object but got JSON {_type_name(value)}")
    for name, content in value.items():
        kind, values = None, []
        for item in content if isinstance(content, list) else [content]:
            if item is None or isinstance(item, list) or (isinstance(item, dict) and not _is_b64(item)):
                raise _invalid(f"Feature: {name} has element with unexpected JSON type: {_type_name(item)}")
            if isinstance(item, bool):
                this, item = "int64", int(item)
            elif isinstance(item, (dict, str)):
                this = "bytes"
                item = _b64decode(item) if isinstance(item, dict) else item.encode()
            elif _number_kind(item) == "double":
                this, item = "float", float(item)
            else:
                if item >= 2**63:
                    raise _invalid(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
                this = "int64"
            if kind is not None and kind != this:
                raise _feature_kind_error(name, kind)
            kind = this
            values.append(item)
        feature = target.features.feature[name]
        feature.Clear()
        if kind is not None:
            getattr(feature, f"{kind}_list").value.extend(values)


def example_request_from_json(body: bytes, spec, request):
    """FillClassifyRegressRequestFromJson: "examples" and an optional "context"."""
    doc = parse_json(body)
    request.model_spec.CopyFrom(spec)
    _signature_from_json(doc, request.model_spec)
    has_context = "context" in doc
    if has_context:
        _example_from_json(doc["context"], request.input.example_list_with_context.context)
    if "examples" not in doc:
        raise _invalid(
            f"JSON Value: {debug_string(doc)} When method is classify, key 'examples' is expected and was not found"
        )
    if not isinstance(doc["examples"], list):
        raise _invalid(f"JSON Value: {debug_string(doc)} Expecting 'examples' value to be an list/array")
    if not doc["examples"]:
        raise _invalid(f"JSON Value: {debug_string(doc)} 'examples' value is an empty array")
    listed = request.input.example_list_with_context if has_context else request.input.example_list
    for value in doc["examples"]:
        _example_from_json(value, listed.examples.add())
    return request


def write_decimal(value: float, double: bool) -> str:
    """WriteDecimal: printf %g, full precision when that does not round-trip, and ".0" on
    whole numbers."""
    import numpy as np

    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = f"{value:g}"
    same = float(text) == value if double else np.float32(float(text)) == np.float32(value)
    if not same:
        text = f"{value:.{17 if double else 9}g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _json_values(array, dtype: int, as_bytes: bool) -> str:
    """AddTensorValues: a tensor (or one batch row of it) as nested JSON lists."""
    name = dtype_name(dtype)
    if getattr(array, "ndim", 0) > 0:
        return "[" + ", ".join(_json_values(item, dtype, as_bytes) for item in array) + "]"
    if name in ("DT_FLOAT", "DT_DOUBLE"):
        return write_decimal(float(array), name == "DT_DOUBLE")
    if name == "DT_STRING":
        raw = bytes(array)
        if as_bytes:
            return '{"b64": ' + json.dumps(base64.b64encode(raw).decode()) + "}"
        return json.dumps(raw.decode("utf-8", "replace"), ensure_ascii=False)
    if name == "DT_BOOL":
        return "true" if bool(array) else "false"
    if name in _INTEGER_TYPES:
        return str(int(array))
    raise _invalid(f"Failed to write JSON value for tensor type: {dtype_string(dtype)}")


_INTEGER_TYPES = ("DT_INT32", "DT_INT16", "DT_INT8", "DT_UINT8", "DT_INT64", "DT_UINT32", "DT_UINT64")


def json_from_tensors(outputs, fmt: str) -> str:
    """MakeJsonFromTensors: {"predictions": [...]} (row) or {"outputs": ...} (columnar)."""
    import tensorflow as tf

    if not outputs:
        raise _invalid("Cannot convert empty tensor map to JSON")
    arrays = {name: (tf.make_ndarray(proto), proto.dtype) for name, proto in outputs.items()}
    names = sorted(arrays)

    def values(name, array) -> str:
        dtype = arrays[name][1]
        return _json_values(array, dtype, dtype == _DT_STRING and name.endswith(BYTES_SUFFIX))

    if fmt == "columnar":
        if len(names) == 1:
            return '{"outputs": ' + values(names[0], arrays[names[0]][0]) + "}"
        return '{"outputs": {' + ", ".join(f"{json.dumps(n)}: {values(n, arrays[n][0])}" for n in names) + "}}"
    batch = None
    for name in names:
        array = arrays[name][0]
        if array.ndim == 0:
            raise _invalid(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise _invalid(f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} expecting: {batch}")
        batch = array.shape[0]
    rows = []
    for i in range(batch):
        if len(names) == 1:
            rows.append(values(names[0], arrays[names[0]][0][i]))
        else:
            rows.append("{" + ", ".join(f"{json.dumps(n)}: {values(n, arrays[n][0][i])}" for n in names) + "}")
    return '{"predictions": [' + ", ".join(rows) + "]}"


def json_from_classification(result) -> str:
    """MakeJsonFromClassificationResult: {"results": [[[label, score], ...], ...]}."""
    if not result.classifications:
        raise _invalid("Cannot convert empty ClassificationResults to JSON")
    rows = [
        "["
        + ", ".join(
            f"[{json.dumps(c.label, ensure_ascii=False)}, {write_decimal(c.score, False)}]" for c in item.classes
        )
        + "]"
        for item in result.classifications
    ]
    return '{"results": [' + ", ".join(rows) + "]}"


def json_from_regression(result) -> str:
    """MakeJsonFromRegressionResult: {"results": [value, ...]}."""
    if not result.regressions:
        raise _invalid("Cannot convert empty RegressionResults to JSON")
    return '{"results": [' + ", ".join(write_decimal(r.value, False) for r in result.regressions) + "]}"


def _proto_json(message, preserve_names: bool) -> dict:
    """MessageToJsonString with always_print_fields_with_no_presence, as http_rest_api_util.cc
    ToJsonString prints the status and metadata responses."""
    from google.protobuf import json_format

    return json_format.MessageToDict(
        message, preserving_proto_field_name=preserve_names, always_print_fields_with_no_presence=True
    )


# ----------------------------------------------------------------------------- REST

# http_rest_api_util.cc kPredictionApiGegex and kModelStatusApiRegex.
_PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.IGNORECASE
)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.IGNORECASE
)
_API_PATH = re.compile(r"/v1/.*", re.IGNORECASE)  # kHTTPRestApiHandlerPathRegex


def _model_spec(name: str, version: str | None, label: str | None):
    """ParseModelInfo and FillModelSpecWithNameVersionAndLabel."""
    from tensorflow_serving.apis import model_pb2

    spec = model_pb2.ModelSpec(name=urllib.parse.unquote(name or ""))
    if version:
        number = int(version)
        if number >= 2**63:
            raise _invalid(f"Failed to convert version: {version} to numeric.")
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

    malformed = _invalid(f"Malformed request: {method} {path}")
    if method == "POST":
        match = _PREDICTION_PATH.fullmatch(path)
        if not match:
            raise malformed
        spec = _model_spec(match[1], match[2], match[3])
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
            raise _invalid("Missing model name in request.")
        spec = _model_spec(match[1], match[2], match[3])
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


def make_rest_handler(repository: ModelRepository, metrics_path: str | None = None):
    class Handler(BaseHTTPRequestHandler):
        server_version = "TFServingStandIn/1"

        def _reply(self, status: int, text: str, content_type: str = "application/json") -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> None:
            path = urllib.parse.urlsplit(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if metrics_path is not None and path == metrics_path:
                # Any method, as TF Serving registers the handler for the path alone.
                return self._reply(200, repository.metrics.page(), "text/plain")
            if not _API_PATH.fullmatch(path):
                # No handler for the path: the HTTP server's own 404, not a JSON error.
                return self._reply(404, "Not Found\n", "text/plain")
            start = time.perf_counter()
            model_name, api = _model_and_method(method, path)
            try:
                answer = process_rest(repository, method, path, body)
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


# ----------------------------------------------------------------------------- gRPC


def _grpc_servicers(repository: ModelRepository):
    import grpc
    from tensorflow_serving.apis import (
        model_service_pb2_grpc,
        prediction_service_pb2_grpc,
    )

    def call(method, request, context, api: str | None = None):
        start = time.perf_counter()
        try:
            response = method(request)
        except ServingError as err:
            if api:
                repository.metrics.request(request.model_spec.name, err.code, api, "GRPC", 0)
            context.abort(getattr(grpc.StatusCode, err.code), err.message)
        if api:
            repository.metrics.request(request.model_spec.name, "OK", api, "GRPC", (time.perf_counter() - start) * 1e6)
        return response

    class Prediction(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            return call(repository.predict, request, context, "Predict")

        def Classify(self, request, context):
            return call(repository.classify, request, context, "Classify")

        def Regress(self, request, context):
            return call(repository.regress, request, context, "Regress")

        def MultiInference(self, request, context):
            return call(repository.multi_inference, request, context)

        def GetModelMetadata(self, request, context):
            return call(repository.metadata, request, context)

    class Models(model_service_pb2_grpc.ModelServiceServicer):
        def GetModelStatus(self, request, context):
            def status(req):
                if not req.HasField("model_spec"):
                    raise _invalid("Missing ModelSpec")
                return repository.status(req.model_spec)

            return call(status, request, context)

    def register(server: grpc.Server) -> None:
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Prediction(), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(Models(), server)

    return register


class StandInServer:
    """REST and gRPC servers over one ModelRepository, with a thread that polls for pushes."""

    def __init__(
        self,
        model_name: str,
        base_path: str,
        host: str = "127.0.0.1",
        rest_port: int = 8501,
        grpc_port: int = 8500,
        poll_seconds: float = 2.0,
        request_log_dir: str | None = None,
        metrics_path: str | None = None,
    ):
        import grpc

        from components.drift_check.request_log import RequestLogger

        logger = RequestLogger(request_log_dir) if request_log_dir else None
        self.repository = ModelRepository(model_name, base_path, logger)
        self.repository.refresh()
        self.metrics_path = metrics_path
        self._rest = ThreadingHTTPServer((host, rest_port), make_rest_handler(self.repository, metrics_path))
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
            except Exception:
                log.exception("could not look for new versions")

    def start(self) -> StandInServer:
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_forever(
    model_name: str,
    base_path: str,
    host: str,
    rest_port: int,
    grpc_port: int,
    poll_seconds: float,
    request_log_dir: str | None = None,
    metrics_path: str | None = None,
) -> None:
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
    server = StandInServer(
        model_name, base_path, host, rest_port, grpc_port, poll_seconds, request_log_dir, metrics_path
    ).start()
    version = server.repository.refresh()
    print(
        f"TF Serving stand-in (not tensorflow_model_server) serving model '{model_name}' "
        f"{f'version {version}' if version else '(no version yet)'} from {base_path}\n"
        f"REST: http://{host}:{server.rest_port}  gRPC: {host}:{server.grpc_port}",
        flush=True,
    )
    if request_log_dir:
        print(f"logging requests to {server.repository.request_logger.path}", flush=True)
    if metrics_path:
        print(f"Prometheus metrics: http://{host}:{server.rest_port}{metrics_path}", flush=True)
    stop.wait()
    server.stop()
    sys.stdout.flush()
    os._exit(0)
