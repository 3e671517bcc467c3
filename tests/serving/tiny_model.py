"""A small SavedModel for the serving tests, and the requests and warm-up records they send it.

`build_model` saves TinyModel (y = w * x + b, 2x + 0.5 by default, with TF Serving's classify
and regress signatures too): a tf.Module with variables, which loads in a TF1 session as TF
Serving loads it. tests/serving/test_tf_serving_requests.py checks TF Serving's request
semantics on it; the conformance, stand-in, logging proxy and metrics tests serve it.
"""

from __future__ import annotations

import os

import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_log_pb2, regression_pb2

from contracts.saved_model import ASSETS_EXTRA, CLASSIFY_METHOD_NAME, REGRESS_METHOD_NAME, WARMUP_FILE


class TinyModel(tf.Module):
    """y = w * x + b, and the same as TF Serving's classify and regress signatures."""

    def __init__(self, w: float, b: float):
        super().__init__()
        self.w = tf.Variable(w)
        self.b = tf.Variable(b)

    def _parse(self, serialized):
        features = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([], tf.float32)})
        return features["x"]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def serving_default(self, x):
        return {"y": self.w * x + self.b}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([None], tf.int64),
            tf.TensorSpec([None], tf.string),
        ]
    )
    def named(self, a, k, text):
        return {"sum": a + tf.cast(k, tf.float32), "text_bytes": text, "text": text}

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)])
    def echo(self, x):
        return {"x": tf.identity(x)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def classify(self, inputs):
        y = self.w * self._parse(inputs) + self.b
        scores = tf.stack([1.0 - y, y], axis=1)
        classes = tf.tile(tf.constant([["no", "yes"]]), [tf.shape(y)[0], 1])
        return {"scores": scores, "classes": classes}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def regress(self, inputs):
        return {"outputs": self.w * self._parse(inputs) + self.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def flat_scores(self, inputs):
        return {"scores": self._parse(inputs)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def wide_outputs(self, inputs):
        x = self._parse(inputs)
        return {"outputs": tf.stack([x, x], axis=1)}


METHODS = {
    "classify": CLASSIFY_METHOD_NAME,
    "flat_scores": CLASSIFY_METHOD_NAME,
    "regress": REGRESS_METHOD_NAME,
    "wide_outputs": REGRESS_METHOD_NAME,
}


def set_method_names(export_dir: str, methods: dict[str, str]) -> None:
    """Sets SignatureDef method names in saved_model.pb; tf.saved_model.save writes every
    signature as a predict one (see models/model.py, mark_classification_signature)."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(export_dir, "saved_model.pb")
    saved = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        saved.ParseFromString(f.read())
    for key, method in methods.items():
        saved.meta_graphs[0].signature_def[key].method_name = method
    with open(path, "wb") as f:
        f.write(saved.SerializeToString())


def build_model(export_dir: str, w: float = 2.0, b: float = 0.5, warmup: list | None = None) -> str:
    """Saves TinyModel to `export_dir`, with `warmup` PredictionLogs as its warm-up file."""
    module = TinyModel(w, b)
    signatures = {
        name: getattr(module, name).get_concrete_function() for name in ("serving_default", "named", "echo", *METHODS)
    }
    tf.saved_model.save(module, export_dir, signatures=signatures)
    set_method_names(export_dir, METHODS)
    if warmup is not None:
        write_warmup(export_dir, warmup)
    return export_dir


def write_warmup(export_dir: str, records: list) -> None:
    os.makedirs(os.path.join(export_dir, ASSETS_EXTRA), exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(export_dir, ASSETS_EXTRA, WARMUP_FILE)) as writer:
        for record in records:
            writer.write(record.SerializeToString())


def example(**features) -> tf.train.Example:
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                name: tf.train.Feature(float_list=tf.train.FloatList(value=[value])) for name, value in features.items()
            }
        )
    )


def predict_request(signature: str = "", **inputs) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tiny"
    request.model_spec.signature_name = signature
    for alias, value in inputs.items():
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
    return request


def classification_request(signature: str, xs) -> classification_pb2.ClassificationRequest:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "tiny"
    request.model_spec.signature_name = signature
    request.input.example_list.examples.extend(example(x=x) for x in xs)
    return request


def regression_request(signature: str, xs) -> regression_pb2.RegressionRequest:
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "tiny"
    request.model_spec.signature_name = signature
    request.input.example_list.examples.extend(example(x=x) for x in xs)
    return request


def predict_log(**inputs) -> prediction_log_pb2.PredictionLog:
    record = prediction_log_pb2.PredictionLog()
    record.predict_log.request.CopyFrom(predict_request(**inputs))
    return record


def classify_log(signature: str) -> prediction_log_pb2.PredictionLog:
    record = prediction_log_pb2.PredictionLog()
    record.classify_log.request.CopyFrom(classification_request(signature, [1.0]))
    return record
