"""Transform's stable write: the transformed splits' files depend on the examples alone, not on
how they were spread over input files or workers."""

import glob
import os
import random

import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.components.transform import executor as tfx_transform
from tfx.proto import transform_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils

from components.transform import executor

IN_MEMORY = ["--direct_running_mode=in_memory"]
TWO_WORKERS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
SPLITS = ("train", "eval")


def preprocessing_fn(inputs):
    """Analyzers whose results do not depend on the order they combine in (a z-score's float
    sums would, in their last bits)."""
    return {
        "x_scaled": tft.scale_by_min_max(inputs["x"]),
        "s_id": tft.compute_and_apply_vocabulary(inputs["s"]),
        "y": inputs["y"],
    }


def _example(i: int) -> bytes:
    feature = {
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=[float(i % 17)])),
        "s": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"v{i % 5}".encode()])),
        "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 2])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _schema() -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    for name, kind in (("x", schema_pb2.FLOAT), ("s", schema_pb2.BYTES), ("y", schema_pb2.INT)):
        feature = schema.feature.add(name=name, type=kind)
        feature.presence.min_fraction = 1
        feature.shape.dim.add(size=1)
    return schema


def _write_examples(root, seed: int, files: int) -> standard_artifacts.Examples:
    """The same 600 examples per split, shuffled with `seed` and spread over `files` files."""
    examples = standard_artifacts.Examples()
    examples.uri = str(root / "examples")
    examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
    for split in SPLITS:
        records = [_example(i) for i in range(600 if split == "train" else 200)]
        random.Random(seed).shuffle(records)
        split_dir = root / "examples" / f"Split-{split}"
        split_dir.mkdir(parents=True)
        for part in range(files):
            path = str(split_dir / f"data_tfrecord-{part:05d}-of-{files:05d}.gz")
            with tf.io.TFRecordWriter(path, options="GZIP") as writer:
                for record in records[part::files]:
                    writer.write(record)
    return examples


def _transform(executor_class, root, seed: int, files: int, beam_args: list[str]) -> str:
    """The executor's `Do` on examples written with `seed` and `files`; the transformed root."""
    schema = standard_artifacts.Schema()
    schema.uri = str(root / "schema")
    os.makedirs(schema.uri)
    with open(os.path.join(schema.uri, "schema.pbtxt"), "w") as f:
        f.write(str(_schema()))
    graph, transformed = standard_artifacts.TransformGraph(), standard_artifacts.Examples()
    graph.uri, transformed.uri = str(root / "graph"), str(root / "transformed")
    properties = {
        specs.PREPROCESSING_FN_KEY: f"{__name__}.preprocessing_fn",
        specs.SPLITS_CONFIG_KEY: proto_utils.proto_to_json(
            transform_pb2.SplitsConfig(analyze=["train"], transform=list(SPLITS))
        ),
        specs.FORCE_TF_COMPAT_V1_KEY: 1,
        specs.DISABLE_STATISTICS_KEY: 1,
    }
    inputs = {specs.EXAMPLES_KEY: [_write_examples(root, seed, files)], specs.SCHEMA_KEY: [schema]}
    outputs = {specs.TRANSFORM_GRAPH_KEY: [graph], specs.TRANSFORMED_EXAMPLES_KEY: [transformed]}
    executor_class(executor_class.Context(beam_pipeline_args=beam_args, tmp_dir=str(root / "tmp"))).Do(
        inputs, outputs, properties
    )
    return transformed.uri


def _split_files(uri: str, split: str) -> dict[str, bytes]:
    split_dir = os.path.join(uri, f"Split-{split}")
    return {os.path.basename(p): open(p, "rb").read() for p in sorted(glob.glob(os.path.join(split_dir, "*")))}


def _records(uri: str, split: str) -> list[bytes]:
    paths = sorted(glob.glob(os.path.join(uri, f"Split-{split}", "*.gz")))
    return [r.numpy() for r in tf.data.TFRecordDataset(paths, compression_type="GZIP")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Ours on one layout in memory, on another layout with two workers; TFX's on both layouts."""
    root = tmp_path_factory.mktemp("transform")
    return {
        "ours, 3 files": _transform(executor.Executor, root / "a", seed=1, files=3, beam_args=IN_MEMORY),
        "ours, 4 files, 2 workers": _transform(executor.Executor, root / "b", seed=2, files=4, beam_args=TWO_WORKERS),
        "tfx, 3 files": _transform(tfx_transform.Executor, root / "c", seed=1, files=3, beam_args=IN_MEMORY),
        "tfx, 4 files": _transform(tfx_transform.Executor, root / "d", seed=2, files=4, beam_args=IN_MEMORY),
    }


@pytest.mark.parametrize("split", SPLITS)
def test_the_same_examples_give_the_same_files_whatever_their_input_files_and_workers(runs, split):
    ours = {name: _split_files(uri, split) for name, uri in runs.items() if name.startswith("ours")}
    first, second = ours.values()
    assert list(first) == ["transformed_examples-00000-of-00001.gz"]
    assert first == second


@pytest.mark.parametrize("split", SPLITS)
def test_the_records_are_tfxs_in_another_order(runs, split):
    """TFX's own write holds the same examples (its feature order aside), in the input's order:
    the two layouts give two orders."""
    ours = _records(runs["ours, 3 files"], split)
    tfx3, tfx4 = (
        [executor.canonical(r) for r in _records(runs[name], split)] for name in ("tfx, 3 files", "tfx, 4 files")
    )
    assert sorted(ours) == sorted(tfx3) == sorted(tfx4)
    assert len(ours) == (600 if split == "train" else 200)
    assert tfx3 != tfx4


def test_no_temporary_files_are_left(runs):
    for name, uri in runs.items():
        assert not glob.glob(os.path.join(uri, "*", executor.TEMP_DIR)), name


def test_tfxs_do_builds_ours_and_tfxs_processor_is_back_after_a_failure(tmp_path, monkeypatch):
    seen = []

    def failing_do(self, input_dict, output_dict, exec_properties):
        seen.append(tfx_transform.TransformProcessor)
        raise RuntimeError("the run failed")

    monkeypatch.setattr(tfx_transform.Executor, "Do", failing_do)
    with pytest.raises(RuntimeError, match="the run failed"):
        executor.Executor(executor.Executor.Context(beam_pipeline_args=IN_MEMORY, tmp_dir=str(tmp_path))).Do({}, {}, {})
    assert seen == [executor.StableOrderProcessor]
    assert tfx_transform.TransformProcessor is executor._TFX_PROCESSOR


def test_canonical_orders_the_features_by_name():
    example = tf.train.Example()
    for name in ("b", "a", "c"):
        example.features.feature[name].int64_list.value.append(1)
    record = executor.canonical(example.SerializeToString())
    assert tf.train.Example.FromString(record) == example
    assert record == example.SerializeToString(deterministic=True)
    assert record.index(b"\n\x01a") < record.index(b"\n\x01b") < record.index(b"\n\x01c")
