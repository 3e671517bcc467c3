"""tests/runners/compare.py tells equal outputs from different ones (no cluster needed)."""

from __future__ import annotations

import os

import tensorflow as tf

from tests.runners import compare


def _example(**features) -> tf.train.Example:
    example = tf.train.Example()
    for name, value in features.items():
        example.features.feature[name].float_list.value.append(value)
    return example


def _run(root, examples, shards=1, config='{"path": "ROOT/model"}'):
    """A run's outputs: ExampleGen examples in `shards` files, and an eval config naming the run's dir."""
    split = root / "pipelines" / "p" / "ExampleGen" / "examples" / "1" / "Split-train"
    split.mkdir(parents=True)
    for shard in range(shards):
        path = split / f"data_tfrecord-{shard:05d}-of-{shards:05d}.gz"
        with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
            for example in examples[shard::shards]:
                writer.write(example.SerializeToString())
    evaluation = root / "pipelines" / "p" / "Evaluator" / "evaluation" / "5"
    evaluation.mkdir(parents=True)
    (evaluation / "eval_config.json").write_text(config.replace("ROOT", os.fspath(root)))
    return root


def test_same_records_in_other_shards_and_orders_are_equal(tmp_path):
    a = _run(tmp_path / "a", [_example(x=1.0, y=2.0), _example(x=3.0)])
    # Other shards, other record order, the features map filled in another order.
    b = _run(tmp_path / "bb", [_example(x=3.0), _example(y=2.0, x=1.0)], shards=2)
    results = [(key, equal) for key, equal, _ in compare.compare(str(a), str(b), "p")]
    assert results == [("Evaluator/evaluation", True), ("ExampleGen/examples", True)]


def test_a_changed_value_or_path_differs(tmp_path):
    a = _run(tmp_path / "a", [_example(x=1.0), _example(x=3.0)])
    b = _run(tmp_path / "b", [_example(x=1.0), _example(x=3.5)], config='{"path": "/elsewhere/model"}')
    results = {key: (equal, detail) for key, equal, detail in compare.compare(str(a), str(b), "p")}
    assert results["ExampleGen/examples"] == (False, "differ: Split-train/data_tfrecord.gz")
    assert results["Evaluator/evaluation"] == (False, "differ: eval_config.json")
