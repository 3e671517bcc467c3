"""The warm-up logic as plain functions: real examples in, TF Serving warm-up records out.

TF Serving replays `assets.extra/tf_serving_warmup_requests` (a TFRecord file of
PredictionLog protos) when it loads a version, so the first real request does not pay for
graph tracing and memory allocation. The records here are PredictRequests for the
`serving_default` signature, built from examples of the data the model was trained on.
"""

from __future__ import annotations

import os
from typing import Iterable

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"


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


def prediction_logs(serialized: list[bytes], model_name: str, batch_sizes: Iterable[int] = (1, 8)):
    """PredictionLogs for serving_default, one per batch size (TF Serving warms each shape)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    logs = []
    for size in batch_sizes:
        batch = serialized[:size]
        if not batch:
            continue
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = "serving_default"
        request.inputs["examples"].CopyFrom(tf.make_tensor_proto(batch, dtype=tf.string))
        logs.append(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def write_warmup(saved_model_dir: str, logs) -> str:
    """Writes the records where TF Serving looks for them; returns the file's path."""
    import tensorflow as tf

    directory = os.path.join(saved_model_dir, WARMUP_DIR)
    tf.io.gfile.makedirs(directory)
    path = os.path.join(directory, WARMUP_FILE)
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path
