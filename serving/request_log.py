"""Request logging for training-serving skew: what the server was asked, as TF Serving logs it.

Requests are appended as `PredictionLog` records (the format of TF Serving's request logs and
warm-up files) to TFRecord files under a directory, one file per server process. The drift
check reads the tf.Examples back and compares their statistics with training's.
"""

from __future__ import annotations

import glob
import os
import threading
import time

LOG_PATTERN = "requests-*.tfrecord"


class RequestLogger:
    """Appends the serialized tf.Examples of each request; safe to call from server threads."""

    def __init__(self, directory: str):
        import tensorflow as tf

        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, f"requests-{int(time.time())}-{os.getpid()}.tfrecord")
        self._writer = tf.io.TFRecordWriter(self.path)
        self._lock = threading.Lock()

    def log(self, model_name: str, signature_name: str, examples: list[bytes]) -> None:
        import tensorflow as tf
        from tensorflow_serving.apis import prediction_log_pb2

        record = prediction_log_pb2.PredictionLog()
        request = record.predict_log.request
        request.model_spec.name = model_name
        request.model_spec.signature_name = signature_name
        request.inputs["examples"].CopyFrom(tf.make_tensor_proto(examples, dtype=tf.string))
        with self._lock:
            self._writer.write(record.SerializeToString())
            self._writer.flush()

    def close(self) -> None:
        with self._lock:
            self._writer.close()


def read_examples(directory: str) -> list[bytes]:
    """The serialized tf.Examples of every logged request under `directory` (none if it is absent)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    examples: list[bytes] = []
    for path in sorted(glob.glob(os.path.join(directory, LOG_PATTERN))):
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
            record = prediction_log_pb2.PredictionLog.FromString(raw)
            for tensor in record.predict_log.request.inputs.values():
                if tensor.dtype == tf.string.as_datatype_enum:
                    examples.extend(tf.make_ndarray(tensor).reshape(-1).tolist())
    return examples
