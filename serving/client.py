"""Client for TensorFlow Serving (or the stand-in) over REST and gRPC.

Raw rows (CSV or JSON lines) become serialized tf.Examples, typed by the model's own
metadata (the inputs of its `serve_raw` signature), each column under its feature key
(contracts/column_names.py), so rows may name columns by their CSV header. `predict` sends them to `serving_default`
(TF Serving's Predict API); `classify` sends them to the `classify` signature (its Classify API,
REST `:classify`), which answers a score per class label; `regress` to a regression model's
`regress` signature (its Regress API, REST `:regress`), which answers a value per row. Errors
are `ClientError`s with one clear line.
"""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Iterable
from typing import Any

from contracts.column_names import ColumnNameError, column_keys
from contracts.saved_model import CLASSIFY_SIGNATURE, DEFAULT_SIGNATURE, RAW_SIGNATURE, REGRESS_SIGNATURE


class ClientError(RuntimeError):
    """The server cannot be reached, refused the request, or the rows do not fit the model."""


def read_rows(path: str, missing_values: Iterable[str] = ("",)) -> list[dict[str, Any]]:
    """Rows from a CSV file (with a header) or a JSON-lines file (one object per line).

    As ExampleGen reads training data: a UTF-8 byte-order mark and the spaces around header
    names are dropped, and a text cell equal to one of `missing_values` (the config's
    data.missing_values; spaces around it ignored) is left out of its row, so the model fills it
    as it filled a missing value in training."""
    markers = {m.strip() for m in missing_values}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            if path.endswith((".jsonl", ".json")):
                rows = []
                for number, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as err:
                            raise ClientError(f"{path}, line {number}: not a JSON object ({err.msg})") from None
                        if not isinstance(rows[-1], dict):
                            raise ClientError(f"{path}, line {number}: not a JSON object")
            else:
                reader = csv.reader(f)
                header = [name.strip() for name in next(reader, [])]
                rows = []
                for cells in reader:
                    if cells and len(cells) != len(header):
                        raise ClientError(
                            f"{path}, line {reader.line_num}: {len(cells)} fields, but the header has "
                            f"{len(header)}; quote values that contain commas"
                        )
                    if cells:
                        rows.append(dict(zip(header, cells)))
    except FileNotFoundError:
        raise ClientError(f"rows file {path} does not exist") from None
    except UnicodeDecodeError:
        raise ClientError(f"rows file {path} is not UTF-8 text; convert it, for example with iconv") from None
    if not rows:
        raise ClientError(f"{path} holds no rows")
    return [
        {name: value for name, value in row.items() if not (isinstance(value, str) and value.strip() in markers)}
        for row in rows
    ]


def raw_input_types(metadata: dict) -> dict[str, str]:
    """{column: TF dtype name} from a model's metadata (REST JSON form)."""
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    if RAW_SIGNATURE not in signatures:
        raise ClientError(
            f"the model has no '{RAW_SIGNATURE}' signature to type raw rows by; "
            f"signatures: {', '.join(sorted(signatures))}"
        )
    return {name: spec["dtype"] for name, spec in signatures[RAW_SIGNATURE]["inputs"].items()}


def to_examples(rows: Iterable[dict[str, Any]], types: dict[str, str]) -> list[bytes]:
    """Serialized tf.Examples of raw rows; empty cells are left out (the model fills them)."""
    return [example.SerializeToString() for example in example_protos(rows, types)]


def example_protos(rows: Iterable[dict[str, Any]], types: dict[str, str]) -> list:
    """tf.train.Examples of raw rows, each column typed as the model expects it. A row names a
    column by its CSV header or its feature key (contracts/column_names.py), as the model's
    inputs are keyed."""
    import tensorflow as tf

    examples = []
    for number, given in enumerate(rows, 1):
        try:
            names = column_keys(given, f"row {number}")
        except ColumnNameError as err:
            raise ClientError(str(err)) from None
        row = {names[name]: value for name, value in given.items()}
        shown = {key: name for name, key in names.items()}
        if not set(row) & set(types):
            raise ClientError(f"row {number} has none of the model's input columns ({', '.join(sorted(types))})")
        features = {}
        for column, dtype in types.items():
            value = row.get(column)
            if value is None or value == "":
                continue
            try:
                if dtype == "DT_STRING":
                    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode()]))
                elif dtype in ("DT_FLOAT", "DT_DOUBLE"):
                    feature = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
                else:
                    number_value = float(value)
                    if not number_value.is_integer():
                        raise ValueError
                    feature = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(number_value)]))
            except (TypeError, ValueError):
                kind = "a whole number" if dtype.startswith("DT_INT") else "a number"
                raise ClientError(
                    f"row {number}, column '{shown[column]}': {value!r} is not {kind} (the model expects {dtype})"
                ) from None
            features[column] = feature
        examples.append(tf.train.Example(features=tf.train.Features(feature=features)))
    return examples


def example_json(example) -> dict[str, Any]:
    """A tf.train.Example in TF Serving's REST form: floats stay floats (a JSON number without a
    decimal point would be read as an int64), bytes that are not UTF-8 go as {"b64": ...}."""
    row = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        if kind == "bytes_list":
            encoded = []
            for value in values:
                try:
                    encoded.append(value.decode("utf-8"))
                except UnicodeDecodeError:
                    encoded.append({"b64": base64.b64encode(value).decode()})
            values = encoded
        elif kind == "float_list":
            values = [float(value) for value in values]
        row[name] = values[0] if len(values) == 1 else values
    return row


def _plain(value, as_bytes: bool = False) -> Any:
    """A gRPC output value as TF Serving's REST API writes it: strings as UTF-8 text, those
    of an output whose name ends in `_bytes` as {"b64": ...}."""
    value = value.tolist() if hasattr(value, "tolist") else value
    if isinstance(value, list):
        return [_plain(v, as_bytes) for v in value]
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()} if as_bytes else value.decode("utf-8", "replace")
    return value


def class_scores(classes: Iterable[tuple[str, float]]) -> dict[str, float]:
    return {label: float(score) for label, score in classes}


class _Client:
    """What both protocols share: the model's input types, asked once per client."""

    _types: dict[str, str] | None = None

    def _input_types(self) -> dict[str, str]:
        if self._types is None:
            self._types = raw_input_types(self.metadata())
        return self._types


class RestClient(_Client):
    """TF Serving's REST API: /v1/models/<name>[/versions/<v>][/metadata|:predict]."""

    def __init__(self, url: str, model: str, version: int | None = None, timeout: float = 30.0):
        self.url, self.model, self.version, self.timeout = url.rstrip("/"), model, version, timeout

    def _path(self, suffix: str = "") -> str:
        version = f"/versions/{self.version}" if self.version else ""
        return f"{self.url}/v1/models/{self.model}{version}{suffix}"

    def _call(self, method: str, url: str, body: dict | None = None) -> dict:
        import requests

        try:
            response = requests.request(method, url, json=body, timeout=self.timeout)
        except requests.RequestException as err:
            raise ClientError(
                f"cannot reach TF Serving at {self.url} ({err.__class__.__name__}); "
                "is `tfxp serve` (or tensorflow_model_server) running?"
            ) from None
        try:
            payload = response.json()
        except ValueError:
            payload = {"error": response.text[:200]}
        if response.status_code == 404:
            raise ClientError(
                f"model '{self.model}'{f' version {self.version}' if self.version else ''} "
                f"is not served at {self.url}: {payload.get('error', '')}"
            )
        if response.status_code >= 400:
            raise ClientError(f"TF Serving refused the request ({response.status_code}): {payload.get('error', '')}")
        return payload

    def status(self) -> dict:
        return self._call("GET", self._path())

    def metadata(self) -> dict:
        return self._call("GET", self._path("/metadata"))

    def predict(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        examples = to_examples(rows, self._input_types())
        body = {
            "signature_name": DEFAULT_SIGNATURE,
            "instances": [{"b64": base64.b64encode(e).decode()} for e in examples],
        }
        return self._call("POST", self._path(":predict"), body)["predictions"]

    def classify(self, rows: list[dict[str, Any]]) -> list[dict[str, float]]:
        """{class label: score} per row, from the Classify API (`:classify`)."""
        examples = example_protos(rows, self._input_types())
        body = {"signature_name": CLASSIFY_SIGNATURE, "examples": [example_json(e) for e in examples]}
        answer = self._call("POST", self._path(":classify"), body)
        # TF Serving answers {"results": [[[label, score], ...] per example]}.
        return [class_scores(result) for result in answer["results"]]

    def regress(self, rows: list[dict[str, Any]]) -> list[float]:
        """The predicted value per row, from the Regress API (`:regress`)."""
        examples = example_protos(rows, self._input_types())
        body = {"signature_name": REGRESS_SIGNATURE, "examples": [example_json(e) for e in examples]}
        # TF Serving answers {"results": [value per example]}.
        return [float(value) for value in self._call("POST", self._path(":regress"), body)["results"]]


class GrpcClient(_Client):
    """TF Serving's gRPC PredictionService (and ModelService for status)."""

    def __init__(self, target: str, model: str, version: int | None = None, timeout: float = 30.0):
        import grpc
        from tensorflow_serving.apis import (
            model_service_pb2_grpc,
            prediction_service_pb2_grpc,
        )

        self.target, self.model, self.version, self.timeout = target, model, version, timeout
        self._channel = grpc.insecure_channel(target)
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GrpcClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _spec(self, request, signature: str = "") -> None:
        request.model_spec.name = self.model
        if signature:
            request.model_spec.signature_name = signature
        if self.version:
            request.model_spec.version.value = self.version

    def _call(self, method, request):
        import grpc

        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as err:
            code = err.code()
            if code == grpc.StatusCode.UNAVAILABLE:
                raise ClientError(
                    f"cannot reach TF Serving over gRPC at {self.target}; "
                    "is `tfxp serve` (or tensorflow_model_server) running?"
                ) from None
            if code == grpc.StatusCode.NOT_FOUND:
                raise ClientError(
                    f"model '{self.model}'{f' version {self.version}' if self.version else ''} "
                    f"is not served at {self.target}: {err.details()}"
                ) from None
            raise ClientError(f"TF Serving refused the request ({code.name}): {err.details()}") from None

    def status(self) -> dict:
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request)
        return json_format.MessageToDict(
            self._call(self._models.GetModelStatus, request), preserving_proto_field_name=True
        )

    def metadata(self) -> dict:
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request)
        response = self._call(self._predict.GetModelMetadata, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return {
            "model_spec": {"name": self.model, "version": str(response.model_spec.version.value)},
            "metadata": {"signature_def": json_format.MessageToDict(signature_map, preserving_proto_field_name=True)},
        }

    def predict(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        examples = to_examples(rows, self._input_types())
        request = predict_pb2.PredictRequest()
        self._spec(request, DEFAULT_SIGNATURE)
        request.inputs["examples"].CopyFrom(tf.make_tensor_proto(examples, dtype=tf.string))
        response = self._call(self._predict.Predict, request)
        outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
        return [{k: _plain(v[i], k.endswith("_bytes")) for k, v in outputs.items()} for i in range(len(examples))]

    def classify(self, rows: list[dict[str, Any]]) -> list[dict[str, float]]:
        """{class label: score} per row, from PredictionService.Classify."""
        from tensorflow_serving.apis import classification_pb2

        request = classification_pb2.ClassificationRequest()
        self._spec(request, CLASSIFY_SIGNATURE)
        request.input.example_list.examples.extend(example_protos(rows, self._input_types()))
        response = self._call(self._predict.Classify, request)
        return [class_scores((c.label, c.score) for c in result.classes) for result in response.result.classifications]

    def regress(self, rows: list[dict[str, Any]]) -> list[float]:
        """The predicted value per row, from PredictionService.Regress."""
        from tensorflow_serving.apis import regression_pb2

        request = regression_pb2.RegressionRequest()
        self._spec(request, REGRESS_SIGNATURE)
        request.input.example_list.examples.extend(example_protos(rows, self._input_types()))
        response = self._call(self._predict.Regress, request)
        return [r.value for r in response.result.regressions]
