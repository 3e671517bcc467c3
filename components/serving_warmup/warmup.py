"""The warm-up logic as plain functions: real examples in, TF Serving warm-up records out.

TF Serving replays `assets.extra/tf_serving_warmup_requests` (a TFRecord file of
PredictionLog protos) when it loads a version, so the first real request does not pay for
graph tracing and memory allocation, and a record that fails makes the load fail. The records
here come from the SignatureDefs in saved_model.pb and examples of the data the model was
trained on, one or more per signature, so that loading a version runs every signature:
- a classify or regress signature gets a ClassifyLog or RegressLog (tf.Examples);
- a predict signature with one DT_STRING input gets PredictLogs of serialized tf.Examples,
  one per batch size (TF Serving warms each shape);
- a predict signature with one input per column gets a PredictLog of those columns' values,
  from the examples that hold the most of them.
"""

from __future__ import annotations

import os
from typing import Iterable

from contracts.saved_model import ASSETS_EXTRA, CLASSIFY_METHOD_NAME, REGRESS_METHOD_NAME, WARMUP_FILE

STRING_DTYPE = 7  # types_pb2.DT_STRING


class WarmupError(ValueError):
    """No warm-up record can be built from what is at hand."""


def read_examples(files: Iterable[str], limit: int) -> list[bytes]:
    """Up to `limit` serialized tf.Examples from ExampleGen's (gzipped) TFRecord files."""
    import tensorflow as tf

    examples: list[bytes] = []
    for path in sorted(files):
        compression = "GZIP" if path.endswith(".gz") else ""
        for record in tf.data.TFRecordDataset(path, compression_type=compression):
            examples.append(record.numpy())
            if len(examples) >= limit:
                return examples
    return examples


def drop_features(serialized: list[bytes], columns: Iterable[str]) -> list[bytes]:
    """The examples without the given columns (the label is not sent at serving time)."""
    import tensorflow as tf

    columns = set(columns)
    out = []
    for data in serialized:
        example = tf.train.Example.FromString(data)
        for column in columns & set(example.features.feature):
            del example.features.feature[column]
        out.append(example.SerializeToString())
    return out


def signature_defs(saved_model_dir: str) -> dict:
    """{key: SignatureDef} of the `serve` MetaGraphDef, read from saved_model.pb (no loading)."""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(saved_model_dir, tf.saved_model.SAVED_MODEL_FILENAME_PB), "rb") as f:
        saved.ParseFromString(f.read())
    for meta_graph in saved.meta_graphs:
        if tf.saved_model.SERVING in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise WarmupError(f"{saved_model_dir} has no MetaGraphDef tagged '{tf.saved_model.SERVING}'")


def _holds(example, name: str) -> bool:
    """Whether a tf.Example has at least one value for feature `name`."""
    if name not in example.features.feature:  # (indexing a proto map would add the key)
        return False
    feature = example.features.feature[name]
    kind = feature.WhichOneof("kind")
    return bool(kind and getattr(feature, kind).value)


def _column_values(examples, name: str, dtype: int):
    """The first value of feature `name` in each example, as the signature's dtype wants it;
    an example without one gets the dtype's zero (a client must send some value)."""
    import tensorflow as tf

    dtype = tf.dtypes.as_dtype(dtype)
    values = []
    for example in examples:
        if _holds(example, name):
            feature = example.features.feature[name]
            values.append(getattr(feature, feature.WhichOneof("kind")).value[0])
        else:
            values.append(b"" if dtype == tf.string else 0)
    return tf.make_tensor_proto(values, dtype=dtype)


def prediction_logs(serialized: list[bytes], model_name: str, signatures: dict, batch_sizes: Iterable[int] = (1, 8)):
    """PredictionLogs that run every (non-internal) signature in `signatures` on the examples."""
    import tensorflow as tf
    from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_log_pb2, regression_pb2

    if not serialized:
        raise WarmupError("no examples to build warm-up requests from")
    examples = [tf.train.Example.FromString(data) for data in serialized]
    logs = []
    for key in sorted(k for k in signatures if not k.startswith("__")):
        signature = signatures[key]
        if signature.method_name in (CLASSIFY_METHOD_NAME, REGRESS_METHOD_NAME):
            request = (
                classification_pb2.ClassificationRequest()
                if signature.method_name == CLASSIFY_METHOD_NAME
                else regression_pb2.RegressionRequest()
            )
            request.model_spec.name, request.model_spec.signature_name = model_name, key
            request.input.example_list.examples.extend(examples[: max(batch_sizes)])
            if signature.method_name == CLASSIFY_METHOD_NAME:
                log = prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(request=request))
            else:
                log = prediction_log_pb2.PredictionLog(regress_log=prediction_log_pb2.RegressLog(request=request))
            logs.append(log)
            continue
        inputs = dict(signature.inputs)
        if len(inputs) == 1 and next(iter(inputs.values())).dtype == STRING_DTYPE:
            [alias] = inputs
            batches = [serialized[:size] for size in sorted(set(batch_sizes))]
            feeds = [{alias: tf.make_tensor_proto(batch, dtype=tf.string)} for batch in batches]
        else:
            # Examples that hold every column first: their values are real ones.
            ranked = sorted(examples, key=lambda e: -sum(_holds(e, name) for name in inputs))
            feeds = [
                {alias: _column_values(ranked[: max(batch_sizes)], alias, spec.dtype) for alias, spec in inputs.items()}
            ]
        for feed in feeds:
            request = predict_pb2.PredictRequest()
            request.model_spec.name, request.model_spec.signature_name = model_name, key
            for alias, tensor in feed.items():
                request.inputs[alias].CopyFrom(tensor)
            logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def logged_signature(log) -> str:
    """The signature key a warm-up record runs."""
    kind = log.WhichOneof("log_type")
    return getattr(log, kind).request.model_spec.signature_name if kind else ""


def write_warmup(saved_model_dir: str, logs) -> str:
    """Writes the records where TF Serving looks for them; returns the file's path."""
    import tensorflow as tf

    directory = os.path.join(saved_model_dir, ASSETS_EXTRA)
    tf.io.gfile.makedirs(directory)
    path = os.path.join(directory, WARMUP_FILE)
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup(saved_model_dir: str) -> list:
    """The PredictionLogs of a SavedModel's warm-up file ([] when it has none)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(saved_model_dir, ASSETS_EXTRA, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return []
    return [
        prediction_log_pb2.PredictionLog.FromString(raw) for raw in tf.data.TFRecordDataset(path).as_numpy_iterator()
    ]
