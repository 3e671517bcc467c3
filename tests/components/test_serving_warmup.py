"""ServingWarmup's logic: real examples in, TF Serving warm-up records for every signature out."""

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
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


def _signature(method: str, inputs: dict[str, int]) -> meta_graph_pb2.SignatureDef:
    signature = meta_graph_pb2.SignatureDef(method_name=method)
    for alias, dtype in inputs.items():
        signature.inputs[alias].name = f"{alias}:0"
        signature.inputs[alias].dtype = dtype
    return signature


SIGNATURES = {
    "serving_default": _signature("tensorflow/serving/predict", {"examples": tf.string.as_datatype_enum}),
    "classify": _signature("tensorflow/serving/classify", {"inputs": tf.string.as_datatype_enum}),
    "columns": _signature(
        "tensorflow/serving/predict", {"fare": tf.float32.as_datatype_enum, "company": tf.string.as_datatype_enum}
    ),
    "__saved_model_init_op": meta_graph_pb2.SignatureDef(),
}


def test_every_signature_gets_records_written_where_tf_serving_looks(tmp_path, tiny_rows):
    serialized = [to_example(r).SerializeToString() for r in tiny_rows[:5]]
    logs = warmup.prediction_logs(serialized, "taxi", SIGNATURES, batch_sizes=(1, 8))
    path = warmup.write_warmup(str(tmp_path / "model"), logs)
    assert path == str(tmp_path / "model" / "assets.extra" / "tf_serving_warmup_requests")
    records = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    assert [warmup.logged_signature(r) for r in records] == [
        "classify",
        "columns",
        "serving_default",
        "serving_default",
    ]
    assert records[0].classify_log.request.model_spec.name == "taxi"
    assert len(records[0].classify_log.request.input.example_list.examples) == 5
    sizes = [len(tf.make_ndarray(r.predict_log.request.inputs["examples"])) for r in records[2:]]
    assert sizes == [1, 5]  # the second batch holds every example there is


def test_columns_come_from_the_most_complete_examples_typed_by_the_signature(tiny_rows):
    incomplete = dict(tiny_rows[0], company="")
    serialized = [to_example(incomplete).SerializeToString(), to_example(tiny_rows[1]).SerializeToString()]
    [record] = warmup.prediction_logs(serialized, "taxi", {"columns": SIGNATURES["columns"]}, batch_sizes=(8,))
    inputs = record.predict_log.request.inputs
    companies = tf.make_ndarray(inputs["company"]).tolist()
    assert companies == [tiny_rows[1]["company"].encode(), b""]  # the complete example first, then a blank
    assert inputs["fare"].dtype == tf.float32.as_datatype_enum
    assert tf.make_ndarray(inputs["fare"])[0] == float(tiny_rows[1]["fare"])
