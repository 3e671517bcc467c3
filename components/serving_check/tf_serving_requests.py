"""TensorFlow Serving's request semantics, as plain functions over a `SessionModel`.

Ported from TF Serving's C++ (github.com/tensorflow/serving, servables/tensorflow/):
- `predict`: predict_util.cc (RunPredict, PreProcessPrediction, VerifySignature,
  VerifyRequestInputsSize) and TensorFlow's saved_model/util.cc (GetInputValues);
- `classify`: classifier.cc (GetClassificationSignatureDef, PreProcessClassification,
  PostProcessClassificationResult, RunClassify);
- `regress`: regressor.cc (GetRegressionSignatureDef, PreProcessRegression,
  PostProcessRegressionResult, RunRegress);
- `multi_inference`: multi_inference.cc (TensorFlowMultiInferenceRunner::Infer);
- serialized tf.Examples of an `Input`: util.cc (InputToSerializedExampleTensor);
- `replay_warmup`: saved_model_warmup_util.cc (RunSavedModelWarmupUntracked) and
  saved_model_warmup.cc (RunWarmupRequest).
Error messages are TF Serving's own text, with its gRPC status code in `ServingError.code`.

Where this differs from TF Serving (said here so nobody relies on it):
- TF Serving iterates protobuf maps in hash order; here they are iterated sorted, so when
  several aliases are wrong the one named first may differ.
- A feed whose dtype is not the placeholder's is refused with TensorFlow's call-frame message
  ("Expects arg[i] to be ..."), arg i counted over the sorted input aliases.
- Session errors keep their gRPC code but only the line that says what is wrong (the Python
  session adds "Graph execution error" and stack lines that TF Serving's message lacks); the
  Python session also checks feed shapes against static placeholder shapes, which the C++
  session leaves to the ops.
- `--enable_signature_method_name_check` is the `method_name_check` argument (default False,
  as in tensorflow_model_server).

Plain TensorFlow and `tensorflow_serving.apis` only (no TFX), so this module runs in a side
environment that has just tensorflow and tensorflow-serving-api.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from components.serving_check.loader import SessionModel, first_line
from contracts.saved_model import (
    ASSETS_EXTRA,
    CLASSIFY_CLASSES,
    CLASSIFY_INPUTS,
    CLASSIFY_METHOD_NAME,
    CLASSIFY_SCORES,
    DEFAULT_SIGNATURE,
    PREDICT_METHOD_NAME,
    REGRESS_INPUTS,
    REGRESS_METHOD_NAME,
    REGRESS_OUTPUTS,
    WARMUP_FILE,
)

MAX_WARMUP_RECORDS = 1000  # WarmupConsts::kMaxNumRecords

# http_server.cc, ToHTTPStatusCode: how the REST API answers each status code.
HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


class ServingError(Exception):
    """A non-OK status as TF Serving answers it: `code` is the gRPC code name
    ("INVALID_ARGUMENT", ...), the message is TF Serving's text."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    def to_string(self) -> str:
        """absl::Status::ToString(), which some TF Serving messages embed."""
        return f"{self.code}: {self.message}"


def invalid_argument(message: str) -> ServingError:
    """The INVALID_ARGUMENT status, the one most of TF Serving's request checks answer."""
    return ServingError("INVALID_ARGUMENT", message)


DT_STRING = 7  # types_pb2.DT_STRING, without importing TensorFlow


def dtype_string(dtype_enum: int) -> str:
    """TensorFlow's DataTypeString: DT_FLOAT -> "float", DT_INT64 -> "int64"."""
    from tensorflow.core.framework import types_pb2

    return types_pb2.DataType.Name(dtype_enum).removeprefix("DT_").lower()


def dtype_name(dtype_enum: int) -> str:
    """DataType_Name: "DT_FLOAT"."""
    from tensorflow.core.framework import types_pb2

    return types_pb2.DataType.Name(dtype_enum)


def shape_string(shape: Iterable[int]) -> str:
    """TensorShape::DebugString: "[2,3]"."""
    return "[" + ",".join(str(d) for d in shape) + "]"


def _dtype_of(array) -> int:
    import tensorflow as tf

    return tf.as_dtype(array.dtype).as_datatype_enum


def _error_from_tf(err: Exception) -> ServingError:
    """A session's error, with its status code."""
    import tensorflow as tf

    if isinstance(err, tf.errors.OpError):
        from tensorflow.core.protobuf import error_codes_pb2

        return ServingError(error_codes_pb2.Code.Name(err.error_code), first_line(err))
    return ServingError("INVALID_ARGUMENT", first_line(err))


def _run(model: SessionModel, signature_key: str, feeds: dict, aliases: list[str]) -> dict:
    try:
        return model.run(signature_key, feeds, aliases)
    except Exception as err:
        raise _error_from_tf(err) from err


def as_proto_field(array) -> Any:
    """Tensor::AsProtoField: values in the typed repeated field (float_val, ...), not
    tensor_content, the way TF Serving fills PredictResponse outputs."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2

    array = np.asarray(array)
    dtype = tf.as_dtype(array.dtype)
    proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum)
    proto.tensor_shape.CopyFrom(tf.TensorShape(array.shape).as_proto())
    flat = array.reshape(-1)
    field = {
        tf.float32: "float_val",
        tf.float64: "double_val",
        tf.int32: "int_val",
        tf.int16: "int_val",
        tf.int8: "int_val",
        tf.uint8: "int_val",
        tf.int64: "int64_val",
        tf.bool: "bool_val",
        tf.string: "string_val",
        tf.uint32: "uint32_val",
        tf.uint64: "uint64_val",
    }.get(dtype)
    if field is None:
        return tf.make_tensor_proto(array)
    getattr(proto, field).extend(flat.tolist())
    return proto


def _signature_name(model_spec) -> str:
    return model_spec.signature_name or DEFAULT_SIGNATURE


def _make_model_spec(target, name: str, signature_name: str | None, version: int | None) -> None:
    """util.cc MakeModelSpec: an empty signature name is answered as serving_default."""
    target.Clear()
    target.name = name
    if signature_name is not None:
        target.signature_name = signature_name or DEFAULT_SIGNATURE
    if version is not None:
        target.version.value = version


def _join(keys: Iterable[str]) -> str:
    return ",".join(sorted(keys))


# ----------------------------------------------------------------------------- Predict


def predict(model: SessionModel, request, *, version: int | None = None, method_name_check: bool = False):
    """PredictionService.Predict (predict_util.cc RunPredict) on a PredictRequest."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    signature_name = _signature_name(request.model_spec)
    signature = model.signature_defs.get(signature_name)
    if signature is None:
        raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{signature_name}" not found.')
    response = predict_pb2.PredictResponse()
    _make_model_spec(response.model_spec, request.model_spec.name, signature_name, version)

    if method_name_check and signature.method_name not in (
        PREDICT_METHOD_NAME,
        CLASSIFY_METHOD_NAME,
        REGRESS_METHOD_NAME,
    ):
        raise ServingError(
            "INTERNAL",
            (
                f"Expected prediction signature method_name to be one of {{{PREDICT_METHOD_NAME}, "
                f"{CLASSIFY_METHOD_NAME}, {REGRESS_METHOD_NAME}}}. Was: {signature.method_name}"
            ),
        )
    defaults = dict(getattr(signature, "defaults", {}))
    sent, expected = set(request.inputs), set(signature.inputs)
    if len(sent) > len(expected) or (len(sent) < len(expected) and not defaults):
        raise ServingError(
            "INVALID_ARGUMENT",
            (
                f"input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({{{_join(sent)}}}) != len({{{_join(expected)}}}). "
                f"Sent extra: {{{_join(sent - expected)}}}. "
                f"Missing but required: {{{_join(expected - sent)}}}."
            ),
        )

    # saved_model/util.cc GetInputValues.
    feeds, seen = {}, set()
    for arg, alias in enumerate(sorted(signature.inputs)):
        info = signature.inputs[alias]
        if alias in request.inputs:
            proto = request.inputs[alias]
            seen.add(alias)
        elif alias in defaults:
            proto = defaults[alias]
        else:
            raise ServingError(
                "INVALID_ARGUMENT",
                (
                    f"Signature input alias: {alias}(feed name: {info.name}) not found in request "
                    f"and no default value provided. Inputs expected to be in the request "
                    f"{{{_join(request.inputs)}}}, or default input alias set: {_join(defaults)}"
                ),
            )
        try:
            value = tf.make_ndarray(proto)
        except Exception:  # noqa: BLE001 - Tensor::FromProto failing, whatever the reason
            raise ServingError("INVALID_ARGUMENT", f"tensor parsing error: {alias}") from None
        if proto.dtype != info.dtype:
            # The C++ session refuses a feed of another dtype (FunctionCallFrame::SetArgs);
            # the Python session would cast it silently, so the check is made here.
            raise ServingError(
                "INVALID_ARGUMENT",
                (f"Expects arg[{arg}] to be {dtype_string(info.dtype)} but {dtype_string(proto.dtype)} is provided"),
            )
        feeds[alias] = value
    if request.inputs and len(seen) != len(request.inputs):
        raise ServingError(
            "INVALID_ARGUMENT",
            (
                f"Inputs contains invalid name. Used request inputs: {_join(seen)}, "
                f"request input: {_join(request.inputs)}"
            ),
        )

    aliases: list[str] = []
    for alias in request.output_filter:
        if alias not in signature.outputs:
            raise ServingError(
                "INVALID_ARGUMENT",
                (
                    f"output tensor alias not found in signature: {alias} Outputs expected to be "
                    f"in the set {{{_join(signature.outputs)}}}."
                ),
            )
        if alias in aliases:
            raise ServingError("INVALID_ARGUMENT", f"duplicate output tensor alias: {alias}")
        aliases.append(alias)
    aliases = aliases or sorted(signature.outputs)

    outputs = _run(model, signature_name, feeds, aliases)
    for alias in aliases:
        response.outputs[alias].CopyFrom(as_proto_field(outputs[alias]))
    return response


# ----------------------------------------------------------------------------- tf.Examples


def serialized_examples(request_input) -> list[bytes]:
    """util.cc InputToSerializedExampleTensor: the serialized tf.Examples of an `Input`.

    With `example_list_with_context`, each example is the context's bytes followed by the
    example's: parsing that concatenation merges the two, the example's features winning.
    """
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples = [e.SerializeToString() for e in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        listed = request_input.example_list_with_context
        context = listed.context.SerializeToString()
        examples = [context + e.SerializeToString() for e in listed.examples]
    else:
        examples = []
    if not examples:
        raise ServingError("INVALID_ARGUMENT", "Input is empty.")
    return examples


def _one_shot(
    model: SessionModel, signature_key: str, input_alias: str, request_input, aliases: list[str]
) -> tuple[int, dict]:
    """util.cc PerformOneShotTensorComputation: one run on the serialized examples."""
    import numpy as np

    examples = serialized_examples(request_input)
    feeds = {input_alias: np.array(examples, dtype=object)}
    return len(examples), _run(model, signature_key, feeds, aliases)


# ----------------------------------------------------------------------------- Classify


def pre_process_classification(signature, method_name_check: bool = False) -> list[str]:
    """classifier.cc PreProcessClassification; returns the output aliases to fetch."""
    if method_name_check and signature.method_name != CLASSIFY_METHOD_NAME:
        raise ServingError(
            "INVALID_ARGUMENT",
            (
                f"Expected classification signature method_name to be {CLASSIFY_METHOD_NAME}. "
                f"Was: {signature.method_name}"
            ),
        )
    if len(signature.inputs) != 1:
        raise ServingError("INVALID_ARGUMENT", "Expected one input Tensor.")
    if len(signature.outputs) not in (1, 2):
        raise ServingError("INVALID_ARGUMENT", f"Expected one or two output Tensors, found {len(signature.outputs)}")
    if CLASSIFY_INPUTS not in signature.inputs:
        raise ServingError("INVALID_ARGUMENT", f"No classification inputs found in SignatureDef: {signature}")
    aliases = [a for a in (CLASSIFY_CLASSES, CLASSIFY_SCORES) if a in signature.outputs]
    if not aliases:
        raise ServingError(
            "INVALID_ARGUMENT",
            (
                f'Expected classification signature outputs to contain at least one of "'
                f'{CLASSIFY_CLASSES}" or "{CLASSIFY_SCORES}". Signature was: {signature}'
            ),
        )
    return aliases


def _inference_signature(
    model: SessionModel, model_spec, method_name_check: bool, kind: str, method_name: str, pre_process
):
    """classifier.cc GetClassificationSignatureDef and regressor.cc GetRegressionSignatureDef,
    which differ only in the method name they expect and the checks they run after."""
    name = _signature_name(model_spec)
    signature = model.signature_defs.get(name)
    if signature is None:
        raise ServingError("INVALID_ARGUMENT", f"No signature was found with the name: {name}")
    if method_name_check and signature.method_name != method_name:
        raise ServingError(
            "INVALID_ARGUMENT",
            (f"Expected {kind} signature method_name to be {method_name}. Was: {signature.method_name}"),
        )
    return name, pre_process(signature)


def _run_one_shot(
    model: SessionModel,
    request,
    response,
    *,
    version,
    method_name_check,
    kind,
    method_name,
    pre_process,
    input_alias,
    post_process,
):
    """classifier.cc RunClassify and regressor.cc RunRegress, which differ only in their names
    and their pre- and post-processing: look up, run the single Input, fill the response."""
    name, aliases = _inference_signature(model, request.model_spec, method_name_check, kind, method_name, pre_process)
    _make_model_spec(response.model_spec, request.model_spec.name, request.model_spec.signature_name, version)
    num_examples, outputs = _one_shot(model, name, input_alias, request.input, aliases)
    post_process(num_examples, outputs, response.result)
    return response


def post_process_classification(num_examples: int, outputs: dict, result) -> None:
    """classifier.cc PostProcessClassificationResult: checks and fills a ClassificationResult."""
    classes, scores = outputs.get(CLASSIFY_CLASSES), outputs.get(CLASSIFY_SCORES)
    for alias, tensor, dtype in ((CLASSIFY_CLASSES, classes, "DT_STRING"), (CLASSIFY_SCORES, scores, "DT_FLOAT")):
        if tensor is None:
            continue
        if tensor.ndim != 2:
            raise ServingError(
                "INVALID_ARGUMENT",
                (f"Expected Tensor shape: [batch_size num_classes] but got {shape_string(tensor.shape)}"),
            )
        if dtype_name(_dtype_of(tensor)) != dtype:
            raise ServingError(
                "INVALID_ARGUMENT", (f"Expected {alias} Tensor of {dtype}. Got: {dtype_name(_dtype_of(tensor))}")
            )
        if tensor.shape[0] != num_examples:
            raise ServingError(
                "INVALID_ARGUMENT", (f"Expected {alias} output batch size of {num_examples}. Got: {tensor.shape[0]}")
            )
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise ServingError(
            "INVALID_ARGUMENT",
            (f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}"),
        )
    num_classes = (classes if classes is not None else scores).shape[1]
    for i in range(num_examples):
        classifications = result.classifications.add()
        for c in range(num_classes):
            added = classifications.classes.add()
            if classes is not None:
                added.label = bytes(classes[i, c]).decode("utf-8", "replace")
            if scores is not None:
                added.score = float(scores[i, c])


def classify(model: SessionModel, request, *, version: int | None = None, method_name_check: bool = False):
    """PredictionService.Classify (classifier.cc RunClassify) on a ClassificationRequest."""
    from tensorflow_serving.apis import classification_pb2

    return _run_one_shot(
        model,
        request,
        classification_pb2.ClassificationResponse(),
        version=version,
        method_name_check=method_name_check,
        kind="classification",
        method_name=CLASSIFY_METHOD_NAME,
        pre_process=pre_process_classification,
        input_alias=CLASSIFY_INPUTS,
        post_process=post_process_classification,
    )


# ----------------------------------------------------------------------------- Regress


def pre_process_regression(signature, method_name_check: bool = False) -> list[str]:
    """regressor.cc PreProcessRegression."""
    if method_name_check and signature.method_name != REGRESS_METHOD_NAME:
        raise ServingError(
            "INVALID_ARGUMENT",
            (f"Expected regression signature method_name to be {REGRESS_METHOD_NAME}. Was: {signature.method_name}"),
        )
    if len(signature.inputs) != 1:
        raise ServingError("INVALID_ARGUMENT", "Expected one input Tensor.")
    if len(signature.outputs) != 1:
        raise ServingError("INVALID_ARGUMENT", "Expected one output Tensor.")
    if REGRESS_INPUTS not in signature.inputs:
        raise ServingError("INVALID_ARGUMENT", f"No regression inputs found in SignatureDef: {signature}")
    if REGRESS_OUTPUTS not in signature.outputs:
        raise ServingError("INVALID_ARGUMENT", f"No regression outputs found in SignatureDef: {signature}")
    return [REGRESS_OUTPUTS]


def post_process_regression(num_examples: int, outputs: dict, result) -> None:
    """regressor.cc PostProcessRegressionResult."""
    tensor = outputs[REGRESS_OUTPUTS]
    if not (tensor.ndim == 1 or (tensor.ndim == 2 and tensor.shape[1] == 1)):
        raise ServingError(
            "INVALID_ARGUMENT",
            (
                f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
                f"{shape_string(tensor.shape)}"
            ),
        )
    if num_examples != tensor.shape[0]:
        raise ServingError(
            "INVALID_ARGUMENT",
            (f"Input batch size did not match output batch size: {num_examples} vs. {tensor.shape[0]}"),
        )
    if dtype_name(_dtype_of(tensor)) != "DT_FLOAT":
        raise ServingError(
            "INVALID_ARGUMENT", (f"Expected output Tensor of DT_FLOAT.  Got: {dtype_name(_dtype_of(tensor))}")
        )
    for value in tensor.reshape(-1):
        result.regressions.add(value=float(value))


def regress(model: SessionModel, request, *, version: int | None = None, method_name_check: bool = False):
    """PredictionService.Regress (regressor.cc RunRegress) on a RegressionRequest."""
    from tensorflow_serving.apis import regression_pb2

    return _run_one_shot(
        model,
        request,
        regression_pb2.RegressionResponse(),
        version=version,
        method_name_check=method_name_check,
        kind="regression",
        method_name=REGRESS_METHOD_NAME,
        pre_process=pre_process_regression,
        input_alias=REGRESS_INPUTS,
        post_process=post_process_regression,
    )


# ----------------------------------------------------------------------------- MultiInference


def multi_inference(model: SessionModel, request, *, version: int | None = None):
    """PredictionService.MultiInference (multi_inference.cc): classify and regress tasks on
    the same model and input, in one session run."""
    from tensorflow_serving.apis import inference_pb2

    model_name, tasks = "", []
    for task in request.tasks:
        if not task.model_spec.name:
            raise ServingError("INVALID_ARGUMENT", "Found ModelSpec with an empty model name.")
        if model_name and model_name != task.model_spec.name:
            raise ServingError(
                "INVALID_ARGUMENT", "All ModelSpecs in a MultiInferenceRequest must access the same model name."
            )
        model_name = task.model_spec.name
        name = _signature_name(task.model_spec)
        if name in (t[0] for t in tasks):
            raise ServingError("INVALID_ARGUMENT", f"Duplicate evaluation of signature: {name}")
        signature = model.signature_defs.get(name)
        if signature is None:
            raise ServingError("INVALID_ARGUMENT", f"Requested signature not found in model graph: {name}")
        if task.method_name == CLASSIFY_METHOD_NAME:
            aliases = pre_process_classification(signature)
        elif task.method_name == REGRESS_METHOD_NAME:
            aliases = pre_process_regression(signature)
        else:
            raise ServingError("UNIMPLEMENTED", f"Unsupported signature method_name: {task.method_name}")
        tasks.append((name, task, signature, aliases))
    response = inference_pb2.MultiInferenceResponse()
    # TF Serving fetches every task's outputs in one run, feeding the same examples to each
    # task's input; SessionModel runs by signature, so here each task is one run of its own.
    for name, task, _, aliases in tasks:
        num_examples, outputs = _one_shot(model, name, "inputs", request.input, aliases)
        result = response.results.add()
        if task.method_name == CLASSIFY_METHOD_NAME:
            post_process_classification(num_examples, outputs, result.classification_result)
        else:
            post_process_regression(num_examples, outputs, result.regression_result)
        _make_model_spec(result.model_spec, task.model_spec.name, task.model_spec.signature_name, version)
    return response


# ----------------------------------------------------------------------------- Warm-up


def warmup_path(saved_model_dir: str) -> str:
    return os.path.join(saved_model_dir, ASSETS_EXTRA, WARMUP_FILE)


def _record_signature(record) -> str:
    kind = record.WhichOneof("log_type")
    if kind == "multi_inference_log":
        return ",".join(_signature_name(t.model_spec) for t in record.multi_inference_log.request.tasks)
    if kind in ("predict_log", "classify_log", "regress_log"):
        return _signature_name(getattr(record, kind).request.model_spec)
    return ""


def run_warmup_request(model: SessionModel, record) -> None:
    """saved_model_warmup.cc RunWarmupRequest: one PredictionLog, answered and dropped."""
    kind = record.WhichOneof("log_type")
    if kind == "regress_log":
        regress(model, record.regress_log.request)
    elif kind == "classify_log":
        classify(model, record.classify_log.request)
    elif kind == "predict_log":
        predict(model, record.predict_log.request)
    elif kind == "multi_inference_log":
        multi_inference(model, record.multi_inference_log.request)
    elif kind in ("predict_streamed_log", "session_run_log"):
        # TF Serving prints the oneof case number: 7 and 5.
        number = record.DESCRIPTOR.fields_by_name[kind].number
        raise ServingError("UNIMPLEMENTED", f"Unsupported log_type for warmup: {number}")


def replay_warmup(model: SessionModel, saved_model_dir: str, *, num_request_iterations: int = 1) -> int:
    """Replays `assets.extra/tf_serving_warmup_requests` as TF Serving does at load; returns
    the number of records replayed (0 without the file, which is optional).

    The first failing record raises ServingError naming its index and signature with TF
    Serving's error; in TF Serving that failure fails the version's load.
    `num_request_iterations` is ModelWarmupOptions.num_request_iterations (a server config
    field, not part of the warm-up file).
    """
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = warmup_path(saved_model_dir)
    if not tf.io.gfile.exists(path):
        return 0
    count = 0
    try:
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
            record = prediction_log_pb2.PredictionLog()
            try:
                record.ParseFromString(raw)
            except Exception:  # noqa: BLE001 - protobuf's DecodeError, by any name
                raise ServingError("INVALID_ARGUMENT", f"Failed to parse warmup record: {raw!r} from {path}") from None
            for _ in range(num_request_iterations):
                try:
                    run_warmup_request(model, record)
                except ServingError as err:
                    raise ServingError(
                        err.code,
                        (f'warm-up record {count} (signature "{_record_signature(record)}") failed: {err.message}'),
                    ) from err
            count += 1
            if count > MAX_WARMUP_RECORDS:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    (f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}"),
                )
    except tf.errors.DataLossError as err:
        raise ServingError(
            "DATA_LOSS", (f"{first_line(err)}. Please verify your warmup data is in TFRecord format.")
        ) from err
    return count
