"""ServingWarmup's logic: real examples in, TF Serving warm-up records out."""

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from components.serving_warmup import warmup
from tests.conftest import to_example


def _gzipped_examples(tmp_path, rows):
    path = tmp_path / "data_tfrecord-00000-of-00001.gz"
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for row in rows:
            writer.write(to_example(row).SerializeToString())
    return path


def test_reads_at_most_the_limit_from_gzipped_files(tmp_path, tiny_rows):
    path = _gzipped_examples(tmp_path, tiny_rows)
    examples = warmup.read_examples([str(path)], limit=5)
    assert len(examples) == 5
    assert tf.train.Example.FromString(examples[0]) == to_example(tiny_rows[0])


def test_label_columns_are_dropped(tiny_rows):
    [example] = warmup.drop_features([to_example(tiny_rows[0]).SerializeToString()], ["tips", "absent"])
    features = tf.train.Example.FromString(example).features.feature
    assert "tips" not in features and "fare" in features


def test_one_request_per_batch_size_written_where_tf_serving_looks(tmp_path, tiny_rows):
    serialized = [to_example(r).SerializeToString() for r in tiny_rows[:5]]
    logs = warmup.prediction_logs(serialized, "taxi", batch_sizes=(1, 8))
    path = warmup.write_warmup(str(tmp_path / "model"), logs)
    assert path == str(tmp_path / "model" / "assets.extra" / "tf_serving_warmup_requests")
    records = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    sizes = [len(tf.make_ndarray(r.predict_log.request.inputs["examples"])) for r in records]
    assert sizes == [1, 5]  # the second batch holds every example there is
    assert {r.predict_log.request.model_spec.signature_name for r in records} == {"serving_default"}
    assert records[0].predict_log.request.model_spec.name == "taxi"
