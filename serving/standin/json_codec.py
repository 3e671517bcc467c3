"""TF Serving's JSON tensor encoding (util/json_tensor.cc): REST request bodies read into
PredictRequest, ClassificationRequest and RegressionRequest protos, and responses written as
TF Serving writes them, with its error messages.

The stand-in's REST API and the request-logging proxy (serving/logging_proxy.py) read requests
with it.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from components.serving_check.tf_serving_requests import (
    DT_STRING,
    ServingError,
    dtype_name,
    dtype_string,
    invalid_argument,
    shape_string,
)
from contracts.saved_model import DEFAULT_SIGNATURE

BYTES_SUFFIX = "_bytes"  # json_tensor.cc kBytesTensorNameSuffix
MAX_DEBUG_BYTES = 256  # json_tensor.cc kMaxJsonDebugStringBytes

# The stand-in's own message: Python's JSON parser and the tensor code here recurse, so a
# document nested some thousands of levels deep cannot be read; rapidjson's iterative parser
# (kParseIterativeFlag in json_tensor.cc ParseJson) reads any depth, and TF Serving answers
# such bodies with INVALID_ARGUMENT (400) as well, the syntax or the tensor being wrong.
TOO_DEEP = (
    "JSON Parse error: The document nests arrays or objects deeper than the stand-in reads "
    "(no tensor has more than 254 dimensions)"
)

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
        raise invalid_argument("JSON Parse error: The document is empty")
    text = body.decode("utf-8", "replace")
    stripped = text.lstrip()
    offset = len(text) - len(stripped)
    if not stripped:
        raise invalid_argument(f"JSON Parse error: The document is empty. at offset: {offset}")
    try:
        # raw_decode stops after the root value, as kParseStopWhenDoneFlag does.
        doc, _ = json.JSONDecoder(object_pairs_hook=_first_wins).raw_decode(stripped)
    except RecursionError:
        raise invalid_argument(TOO_DEEP) from None
    except json.JSONDecodeError as err:
        message = next(
            (ours for theirs, ours in _PARSE_ERRORS if err.msg.startswith(theirs)),
            "Missing a comma or '}' after an object member." if "delimiter" in err.msg else err.msg,
        )
        raise invalid_argument(f"JSON Parse error: {message} at offset: {offset + err.pos}") from None
    if not isinstance(doc, dict):
        raise invalid_argument(f"JSON Value: {debug_string(doc)} Is not object")
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
    return invalid_argument(
        f"JSON Value: {debug_string(value)} Type: {_type_name(value)} is not of expected type: {dtype_string(dtype)}"
    )


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _b64decode(value) -> bytes:
    """JsonDecodeBase64Object."""
    if not _is_b64(value):
        raise invalid_argument(f"JSON Value: {debug_string(value)} not formatted correctly for base64 data")
    text = value["b64"]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        raise invalid_argument("Unable to base64 decode") from None


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
            "UNIMPLEMENTED", f"Conversion of JSON Value: {debug_string(value)} to type: {dtype_string(dtype)}"
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
            raise invalid_argument(
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
        raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid_argument(
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
        raise invalid_argument(
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
            raise invalid_argument(f"JSON object: does not have named input: {name}")
        shape, flat = _json_tensor(item, infos[name].dtype)
        if name not in shapes:
            shapes[name], sizes[name] = shape, len(flat)
        elif sizes[name] != len(flat):
            raise invalid_argument(f"Expecting tensor size: {sizes[name]} but got: {len(flat)}")
        elif shapes[name] != shape:
            raise invalid_argument(f"Expecting shape {shape_string(shapes[name])} but got: {shape_string(shape)}")
        values.setdefault(name, []).extend(flat)

    for count, element in enumerate(instances):
        if objects:
            if not is_object(element):
                raise invalid_argument(f"Expecting object but got list at item {count} of input list")
            for name, item in element.items():
                try:
                    add(item, name)
                except ServingError as err:
                    raise invalid_argument(
                        f"Failed to process element: {count} key: {name} of 'instances' list. Error: {err.to_string()}"
                    ) from None
            if sorted(element) != names:
                raise invalid_argument(
                    f"Failed to process element: {count} of 'instances' list. JSON "
                    f"object: {debug_string(element)} keys must be equal to: "
                    f"{','.join(names)}"
                )
        else:
            if is_object(element):
                raise invalid_argument(f"Expecting value/list but got object at item {count} of input list")
            try:
                add(element, names[0])
            except ServingError as err:
                raise invalid_argument(
                    f"Failed to process element: {count} of 'instances' list. Error: {err.to_string()}"
                ) from None
    return {name: _tensor_proto(infos[name].dtype, [len(instances), *shapes[name]], values[name]) for name in values}


def _inputs(value, infos) -> dict:
    """FillTensorMapFromInputsMap: columnar format."""
    if not isinstance(value, dict) or _is_b64(value):
        if len(infos) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple "
                "input tensors required as per tensorinfo_map"
            )
        name = min(infos)
        shape, flat = _json_tensor(value, infos[name].dtype)
        return {name: _tensor_proto(infos[name].dtype, shape, flat)}
    tensors = {}
    for name in sorted(infos):
        if name not in value:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        shape, flat = _json_tensor(value[name], infos[name].dtype)
        tensors[name] = _tensor_proto(infos[name].dtype, shape, flat)
    return tensors


def _signature_from_json(doc: dict, spec) -> None:
    """FillSignature."""
    if "signature_name" in doc:
        if not isinstance(doc["signature_name"], str):
            raise invalid_argument(
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
        raise invalid_argument(f'Serving signature name: "{signame}" not found in signature def')
    infos = signature.inputs
    if not infos:
        raise invalid_argument(
            f"Failed to get input map for signature: {request.model_spec.signature_name or 'DEFAULT'}"
        )
    both = "JSON Value: {} Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "
    if "instances" in doc:
        if "inputs" in doc:
            raise invalid_argument(both.format(debug_string(doc)))
        if not isinstance(doc["instances"], list):
            raise invalid_argument(f"JSON Value: {debug_string(doc)} Expecting 'instances' to be an list/array")
        if not doc["instances"]:
            raise invalid_argument(f"JSON Value: {debug_string(doc)} No values in 'instances' array")
        tensors, fmt = _instances(doc["instances"], infos), "row"
    elif "inputs" in doc:
        tensors, fmt = _inputs(doc["inputs"], infos), "columnar"
    else:
        raise invalid_argument("Missing 'inputs' or 'instances' key")
    for name, tensor in tensors.items():
        request.inputs[name].CopyFrom(tensor)
    return request, fmt


def _feature_kind_error(name: str, kind: str) -> ServingError:
    return invalid_argument(f"Unexpected element type in feature: {name} expecting type: {kind}")


def _example_from_json(value, target) -> None:
    """MakeExampleFromJsonObject and AddValueToFeature: JSON types give the feature kind."""
    if not isinstance(value, dict):
        raise invalid_argument(f"Example must be JSON object but got JSON {_type_name(value)}")
    for name, content in value.items():
        kind, values = None, []
        for item in content if isinstance(content, list) else [content]:
            if item is None or isinstance(item, list) or (isinstance(item, dict) and not _is_b64(item)):
                raise invalid_argument(f"Feature: {name} has element with unexpected JSON type: {_type_name(item)}")
            if isinstance(item, bool):
                this, item = "int64", int(item)
            elif isinstance(item, (dict, str)):
                this = "bytes"
                item = _b64decode(item) if isinstance(item, dict) else item.encode()
            elif _number_kind(item) == "double":
                this, item = "float", float(item)
            else:
                if item >= 2**63:
                    raise invalid_argument(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
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
        raise invalid_argument(
            f"JSON Value: {debug_string(doc)} When method is classify, key 'examples' is expected and was not found"
        )
    if not isinstance(doc["examples"], list):
        raise invalid_argument(f"JSON Value: {debug_string(doc)} Expecting 'examples' value to be an list/array")
    if not doc["examples"]:
        raise invalid_argument(f"JSON Value: {debug_string(doc)} 'examples' value is an empty array")
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
    raise invalid_argument(f"Failed to write JSON value for tensor type: {dtype_string(dtype)}")


_INTEGER_TYPES = ("DT_INT32", "DT_INT16", "DT_INT8", "DT_UINT8", "DT_INT64", "DT_UINT32", "DT_UINT64")


def json_from_tensors(outputs, fmt: str) -> str:
    """MakeJsonFromTensors: {"predictions": [...]} (row) or {"outputs": ...} (columnar)."""
    import tensorflow as tf

    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    arrays = {name: (tf.make_ndarray(proto), proto.dtype) for name, proto in outputs.items()}
    names = sorted(arrays)

    def values(name, array) -> str:
        dtype = arrays[name][1]
        return _json_values(array, dtype, dtype == DT_STRING and name.endswith(BYTES_SUFFIX))

    if fmt == "columnar":
        if len(names) == 1:
            return '{"outputs": ' + values(names[0], arrays[names[0]][0]) + "}"
        return '{"outputs": {' + ", ".join(f"{json.dumps(n)}: {values(n, arrays[n][0])}" for n in names) + "}}"
    batch = None
    for name in names:
        array = arrays[name][0]
        if array.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} expecting: {batch}"
            )
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
        raise invalid_argument("Cannot convert empty ClassificationResults to JSON")
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
        raise invalid_argument("Cannot convert empty RegressionResults to JSON")
    return '{"results": [' + ", ".join(write_decimal(r.value, False) for r in result.regressions) + "]}"
