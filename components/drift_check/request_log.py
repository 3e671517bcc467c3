"""Request logging for training-serving skew: what the server was asked, as TF Serving logs it.

Requests are appended as `PredictionLog` records (the format of TF Serving's request logs and
warm-up files) to TFRecord files under a directory, one file per logger (named by time, host,
process and a random part: replicas sharing a volume never share a file). The stand-in logs
each request's tf.Examples as a predict_log; the production proxy (serving/logging_proxy.py)
logs whole predict, classify and regress logs, request and response, with a request id. The
drift check reads the tf.Examples of all of them back and compares their statistics with
training's; `tfxp feedback` joins labels to them.

The format lives here, beside DriftCheck, its reader in the pipeline, so that components need
not import serving/; serving/ (the writers) imports it from here.
"""

from __future__ import annotations

import glob
import os
import socket
import threading
import time
import uuid

LOG_PATTERN = "requests-*.tfrecord"


class RequestLogger:
    """Appends the serialized tf.Examples of each request; safe to call from server threads."""

    def __init__(self, directory: str):
        import tensorflow as tf

        os.makedirs(directory, exist_ok=True)
        host = socket.gethostname().replace(os.sep, "_") or "host"
        unique = f"{int(time.time())}-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path = os.path.join(directory, f"requests-{unique}.tfrecord")
        self._writer = tf.io.TFRecordWriter(self.path)
        self._lock = threading.Lock()

    def log(self, model_name: str, signature_name: str, examples: list[bytes], version: int | None = None) -> None:
        """One predict_log; `version` is the version that answered (`tfxp monitor` and `tfxp
        promote` judge a version on the requests it answered)."""
        import tensorflow as tf
        from tensorflow_serving.apis import prediction_log_pb2

        record = prediction_log_pb2.PredictionLog()
        record.log_metadata.timestamp_secs = int(time.time())  # when, for monitoring windows
        request = record.predict_log.request
        request.model_spec.name = model_name
        request.model_spec.signature_name = signature_name
        if version is not None:
            request.model_spec.version.value = version
        request.inputs["examples"].CopyFrom(tf.make_tensor_proto(examples, dtype=tf.string))
        self.write(record)

    def write(self, record) -> None:
        """Appends one PredictionLog, flushed."""
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

    from components.serving_check.tf_serving_requests import serialized_examples

    examples: list[bytes] = []
    for path in sorted(glob.glob(os.path.join(directory, LOG_PATTERN))):
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
            record = prediction_log_pb2.PredictionLog.FromString(raw)
            kind = record.WhichOneof("log_type")
            if kind == "predict_log":
                for tensor in record.predict_log.request.inputs.values():
                    if tensor.dtype == tf.string.as_datatype_enum:
                        examples.extend(tf.make_ndarray(tensor).reshape(-1).tolist())
            elif kind in ("classify_log", "regress_log"):
                examples.extend(serialized_examples(getattr(record, kind).request.input))
    return examples
