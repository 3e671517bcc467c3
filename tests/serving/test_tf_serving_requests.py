"""components/serving_check/tf_serving_requests.py: TF Serving's Predict, Classify, Regress and
warm-up checks, each with TF Serving's message, on a small SavedModel loaded on the session path
(tests/serving/tiny_model.py's TinyModel, which tests/serving/test_conformance.py serves too).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    prediction_log_pb2,
)

from components.serving_check.loader import SessionModel
from components.serving_check.tf_serving_requests import (
    MAX_WARMUP_RECORDS,
    ServingError,
    classify,
    multi_inference,
    predict,
    regress,
    replay_warmup,
    serialized_examples,
)
from contracts.saved_model import CLASSIFY_METHOD_NAME, REGRESS_METHOD_NAME
from tests.serving.tiny_model import (
    build_model,
    classification_request,
    classify_log,
    example,
    predict_log,
    predict_request,
    regression_request,
    write_warmup,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_model(str(tmp_path_factory.mktemp("tiny") / "1"))


@pytest.fixture(scope="module")
def model(model_dir):
    with SessionModel(model_dir) as loaded:
        yield loaded


def _fails(code: str, message: str, call, *args, **kwargs) -> ServingError:
    with pytest.raises(ServingError) as raised:
        call(*args, **kwargs)
    assert (raised.value.code, raised.value.message) == (code, message)
    return raised.value


def test_predict_runs_serving_default_and_answers_the_model_spec(model):
    response = predict(model, predict_request(x=np.array([1.0, 2.0], np.float32)), version=3)
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["y"]), [2.5, 4.5])
    assert response.outputs["y"].float_val == [2.5, 4.5]  # AsProtoField, not tensor_content
    assert (response.model_spec.name, response.model_spec.signature_name, response.model_spec.version.value) == (
        "tiny",
        "serving_default",
        3,
    )


def test_predict_unknown_signature(model):
    _fails(
        "FAILED_PRECONDITION",
        'Serving signature key "nope" not found.',
        predict,
        model,
        predict_request("nope", x=np.array([1.0], np.float32)),
    )


def test_predict_input_size_does_not_match_signature(model):
    request = predict_request(x=np.array([1.0], np.float32), z=np.array([1.0], np.float32))
    _fails(
        "INVALID_ARGUMENT",
        "input size does not match signature: 2!=1 len({x,z}) != len({x}). Sent extra: {z}. Missing but required: {}.",
        predict,
        model,
        request,
    )
    _fails(
        "INVALID_ARGUMENT",
        "input size does not match signature: 1!=3 len({a}) != "
        "len({a,k,text}). Sent extra: {}. Missing but required: {k,text}.",
        predict,
        model,
        predict_request("named", a=np.array([1.0], np.float32)),
    )


def test_predict_input_alias_not_in_signature(model):
    request = predict_request("named", a=np.array([1.0], np.float32), k=np.array([1]), txt=np.array([b"t"]))
    with pytest.raises(ServingError) as raised:
        predict(model, request)
    assert raised.value.code == "INVALID_ARGUMENT"
    assert raised.value.message.startswith(
        "Signature input alias: text(feed name: named_text:0) "
        "not found in request and no default value provided."
        " Inputs expected to be in the request {a,k,txt}"
    )


def test_predict_refuses_a_feed_of_another_dtype(model):
    _fails(
        "INVALID_ARGUMENT",
        "Expects arg[0] to be float but double is provided",
        predict,
        model,
        predict_request(x=np.array([1.0], np.float64)),
    )


def test_predict_output_filter(model):
    request = predict_request("named", a=np.array([1.0], np.float32), k=np.array([2]), text=np.array([b"t"]))
    request.output_filter.append("sum")
    response = predict(model, request)
    assert list(response.outputs) == ["sum"] and response.outputs["sum"].float_val == [3.0]
    request.output_filter.append("nope")
    _fails(
        "INVALID_ARGUMENT",
        "output tensor alias not found in signature: nope Outputs expected to be in the set {sum,text,text_bytes}.",
        predict,
        model,
        request,
    )
    request.output_filter[:] = ["sum", "sum"]
    _fails("INVALID_ARGUMENT", "duplicate output tensor alias: sum", predict, model, request)


def test_predict_method_name_check_when_enabled(model):
    predict(
        model, predict_request("classify", inputs=np.array([example(x=1).SerializeToString()])), method_name_check=True
    )


def test_session_errors_keep_their_code(model):
    request = classification_request("classify", [])
    request.input.example_list.examples.add()  # an example without the feature the model needs
    with pytest.raises(ServingError) as raised:
        classify(model, request)
    assert raised.value.code == "INVALID_ARGUMENT"
    assert "Feature: x (data type: float) is required but could not be found." in raised.value.message


def test_classify_answers_classes_and_scores(model):
    response = classify(model, classification_request("classify", [0.0, 0.25]), version=1)
    got = [[(c.label, round(c.score, 6)) for c in r.classes] for r in response.result.classifications]
    assert got == [[("no", 0.5), ("yes", 0.5)], [("no", 0.0), ("yes", 1.0)]]
    assert response.model_spec.signature_name == "classify"


def test_classify_signature_checks(model):
    _fails(
        "INVALID_ARGUMENT",
        "No signature was found with the name: nope",
        classify,
        model,
        classification_request("nope", [1.0]),
    )
    # serving_default has no "inputs" input; its method is only checked with the flag on.
    with pytest.raises(ServingError, match="^No classification inputs found in SignatureDef: "):
        classify(model, classification_request("", [1.0]))
    _fails(
        "INVALID_ARGUMENT",
        "Expected classification signature method_name to be "
        "tensorflow/serving/classify. Was: tensorflow/serving/predict",
        classify,
        model,
        classification_request("", [1.0]),
        method_name_check=True,
    )
    _fails("INVALID_ARGUMENT", "Expected one input Tensor.", classify, model, classification_request("named", [1.0]))
    _fails(
        "INVALID_ARGUMENT",
        "Expected Tensor shape: [batch_size num_classes] but got [2]",
        classify,
        model,
        classification_request("flat_scores", [1.0, 2.0]),
    )


def test_classify_empty_input(model):
    _fails("INVALID_ARGUMENT", "Input is empty.", classify, model, classification_request("classify", []))


def test_example_list_with_context_merges_the_context_under_each_example(model):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.signature_name = "classify"
    listed = request.input.example_list_with_context
    listed.context.CopyFrom(example(x=0.0, other=1.0))
    listed.examples.extend([example(), example(x=0.25)])
    merged = [tf.train.Example.FromString(e) for e in serialized_examples(request.input)]
    assert merged == [example(x=0.0, other=1.0), example(x=0.25, other=1.0)]
    scores = [[c.score for c in r.classes] for r in classify(model, request).result.classifications]
    np.testing.assert_allclose(scores, [[0.5, 0.5], [0.0, 1.0]])


def test_regress(model):
    response = regress(model, regression_request("regress", [1.0, 2.0]))
    assert [r.value for r in response.result.regressions] == [2.5, 4.5]
    _fails(
        "INVALID_ARGUMENT",
        "No signature was found with the name: nope",
        regress,
        model,
        regression_request("nope", [1.0]),
    )
    _fails(
        "INVALID_ARGUMENT",
        "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got [1,2]",
        regress,
        model,
        regression_request("wide_outputs", [1.0]),
    )
    _fails(
        "INVALID_ARGUMENT",
        "Expected regression signature method_name to be tensorflow/serving/regress. Was: tensorflow/serving/classify",
        regress,
        model,
        regression_request("classify", [1.0]),
        method_name_check=True,
    )


def test_multi_inference(model):
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in (("classify", CLASSIFY_METHOD_NAME), ("regress", REGRESS_METHOD_NAME)):
        task = request.tasks.add(method_name=method)
        task.model_spec.name, task.model_spec.signature_name = "tiny", signature
    request.input.example_list.examples.append(example(x=1.0))
    results = multi_inference(model, request).results
    assert [c.label for c in results[0].classification_result.classifications[0].classes] == ["no", "yes"]
    assert results[1].regression_result.regressions[0].value == 2.5
    request.tasks[1].model_spec.signature_name = "classify"
    request.tasks[1].method_name = CLASSIFY_METHOD_NAME
    _fails("INVALID_ARGUMENT", "Duplicate evaluation of signature: classify", multi_inference, model, request)


def test_warmup_replays_every_kind_of_record(model_dir, model, tmp_path):
    regress_log = prediction_log_pb2.PredictionLog()
    regress_log.regress_log.request.CopyFrom(regression_request("regress", [1.0]))
    records = [predict_log(x=np.array([1.0], np.float32)), classify_log("classify"), regress_log]
    path = build_model(str(tmp_path / "1"), warmup=records)
    with SessionModel(path) as warmed:
        assert replay_warmup(warmed, path) == 3
        assert replay_warmup(warmed, path, num_request_iterations=2) == 3
    assert replay_warmup(model, model_dir) == 0  # the file is optional


def test_a_failing_warmup_record_names_its_index_signature_and_error(tmp_path):
    records = [predict_log(x=np.array([1.0], np.float32)), classify_log("nope")]
    path = build_model(str(tmp_path / "1"), warmup=records)
    with SessionModel(path) as warmed:
        _fails(
            "INVALID_ARGUMENT",
            'warm-up record 1 (signature "nope") failed: No signature was found with the name: nope',
            replay_warmup,
            warmed,
            path,
        )


def test_warmup_refuses_session_run_records_and_too_many_records(tmp_path):
    session_run = prediction_log_pb2.PredictionLog()
    session_run.session_run_log.request.feed.add()
    path = build_model(str(tmp_path / "1"), warmup=[session_run])
    with SessionModel(path) as warmed:
        _fails(
            "UNIMPLEMENTED",
            'warm-up record 0 (signature "") failed: Unsupported log_type for warmup: 5',
            replay_warmup,
            warmed,
            path,
        )
        write_warmup(path, [predict_log(x=np.array([1.0], np.float32))] * (MAX_WARMUP_RECORDS + 1))
        warmup_file = os.path.join(path, "assets.extra", "tf_serving_warmup_requests")
        _fails(
            "INVALID_ARGUMENT",
            f"Number of warmup records exceeds the maximum (1000) at {warmup_file}",
            replay_warmup,
            warmed,
            path,
        )


def test_warmup_file_that_is_not_tfrecord(tmp_path):
    path = build_model(str(tmp_path / "1"))
    os.makedirs(os.path.join(path, "assets.extra"))
    with open(os.path.join(path, "assets.extra", "tf_serving_warmup_requests"), "wb") as f:
        f.write(b"not a tfrecord file at all")
    with SessionModel(path) as warmed, pytest.raises(ServingError) as raised:
        replay_warmup(warmed, path)
    assert raised.value.code == "DATA_LOSS"
    assert raised.value.message.endswith(". Please verify your warmup data is in TFRecord format.")
