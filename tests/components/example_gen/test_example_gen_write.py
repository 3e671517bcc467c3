"""ExampleGen's stable write: the order of a split's examples depends on the examples alone."""

import glob
import io
import os
import random

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions

from benchmarks.examplegen import run_executor
from components.example_gen import csv_executor, parquet_executor, shuffle
from components.example_gen.component import ImportExecutor
from components.example_gen.stable_write import serialized

IN_MEMORY = ["--direct_running_mode=in_memory"]
SPLITS = {"train": 3, "eval": 1}


def _files(split_dir) -> list[str]:
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(split_dir, "*")))


def _records(paths) -> list[bytes]:
    return [r.numpy() for path in paths for r in tf.data.TFRecordDataset(str(path), compression_type="GZIP")]


def _split_records(out, split) -> list[bytes]:
    return _records(sorted(glob.glob(os.path.join(out, f"Split-{split}", "*.gz"))))


def _write_buckets(paths, parts):
    for path, part in zip(paths, parts):
        with open(path, "wb") as f:
            for record in part:
                shuffle.write_record(f, record)


def test_framing_reads_back_what_it_wrote():
    f = io.BytesIO()
    for record in (b"", b"a", bytes(range(256)) * 300):
        shuffle.write_record(f, record)
    f.seek(0)
    assert list(shuffle.read_records(f)) == [b"", b"a", bytes(range(256)) * 300]


def test_a_buckets_order_does_not_depend_on_how_its_records_arrived(tmp_path):
    records = [f"example {i}".encode() * (i % 3) for i in range(200)] + [b"twice", b"twice"]
    first = [str(tmp_path / "a"), str(tmp_path / "b")]
    _write_buckets(first, (records[:120], records[120:]))
    mixed = random.Random(1).sample(records, len(records))
    second = [str(tmp_path / name) for name in ("c", "d", "e")]
    _write_buckets(second, (mixed[:50], mixed[50:51], mixed[51:]))
    out = shuffle.ordered(first)
    assert sorted(out) == sorted(records)
    assert out != records and out != sorted(records)  # shuffled, not kept or sorted by bytes
    assert shuffle.ordered(list(reversed(second))) == out


def test_the_shard_count_follows_the_split_size_and_shards_take_buckets_in_order():
    assert shuffle.shard_count(0) == 1
    assert shuffle.shard_count(shuffle.SHARD_BYTES) == 1
    assert shuffle.shard_count(shuffle.SHARD_BYTES + 1) == 2
    assert shuffle.shard_count(10**18) == shuffle.BUCKETS
    shards = [shuffle.shard_of(bucket, 3) for bucket in range(shuffle.BUCKETS)]
    assert shards == sorted(shards) and set(shards) == {0, 1, 2}


def _write(records, prefix, temp_dir):
    with beam.Pipeline(options=PipelineOptions(IN_MEMORY)) as pipeline:
        _ = pipeline | beam.Create(records) | shuffle.ShuffleAndWrite(prefix, temp_dir)


def test_several_shards_in_name_order_hold_the_sequence_of_one(tmp_path, monkeypatch):
    records = [f"example {i}".encode() for i in range(3000)]
    (tmp_path / "one").mkdir()
    _write(records, str(tmp_path / "one" / "data"), str(tmp_path))
    monkeypatch.setattr(shuffle, "SHARD_BYTES", 4000)  # about 34 KB: nine shards
    (tmp_path / "many").mkdir()
    _write(records, str(tmp_path / "many" / "data"), str(tmp_path))
    one, many = _files(tmp_path / "one"), _files(tmp_path / "many")
    assert one == ["data-00000-of-00001.gz"]
    assert many == [f"data-{i:05d}-of-00009.gz" for i in range(9)]
    sequence = _records([tmp_path / "one" / one[0]])
    assert sorted(sequence) == sorted(records) and sequence != records
    assert _records([tmp_path / "many" / name for name in many]) == sequence


def test_an_empty_split_gets_one_empty_shard(tmp_path):
    (tmp_path / "split").mkdir()
    _write([], str(tmp_path / "split" / "data"), str(tmp_path))
    assert _files(tmp_path / "split") == ["data-00000-of-00001.gz"]
    assert _records([tmp_path / "split" / "data-00000-of-00001.gz"]) == []


def test_the_csv_executor_writes_the_same_files_on_every_run_and_worker_count(tmp_path, csv_in_two_files):
    data, lines = csv_in_two_files(40)
    runs = {
        "first": IN_MEMORY,
        "second": IN_MEMORY,
        "two workers": ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    }
    for name, args in runs.items():
        run_executor(csv_executor.Executor, str(data), str(tmp_path / name), SPLITS, args)
    for split in SPLITS:
        files = {name: _files(tmp_path / name / f"Split-{split}") for name in runs}
        assert all(names == ["data_tfrecord-00000-of-00001.gz"] for names in files.values()), files
        contents = {name: (tmp_path / name / f"Split-{split}" / files[name][0]).read_bytes() for name in runs}
        assert contents["first"] == contents["second"] == contents["two workers"]
    assert len(_split_records(tmp_path / "first", "train")) + len(_split_records(tmp_path / "first", "eval")) == (
        len(lines) - 1
    )


def test_the_parquet_and_import_executors_write_one_order_whatever_the_input_order(tmp_path):
    rows = [{"x": i, "s": f"v{i % 7}"} for i in range(300)]
    for name, order in (("sorted", rows), ("mixed", random.Random(2).sample(rows, len(rows)))):
        (tmp_path / name).mkdir()
        pq.write_table(pa.Table.from_pylist(order), tmp_path / name / "rows.parquet")
        run_executor(
            parquet_executor.Executor,
            str(tmp_path / name),
            str(tmp_path / f"out-{name}"),
            SPLITS,
            IN_MEMORY,
            "*.parquet",
        )
    for split in SPLITS:
        assert _split_records(tmp_path / "out-sorted", split) == _split_records(tmp_path / "out-mixed", split)
    records = _split_records(tmp_path / "out-sorted", "train")
    assert records and sorted(records) != records
    for name, order in (("import-a", records), ("import-b", list(reversed(records)))):
        (tmp_path / name).mkdir()
        with tf.io.TFRecordWriter(str(tmp_path / name / "in.gz"), options="GZIP") as writer:
            for record in order:
                writer.write(record)
        run_executor(ImportExecutor, str(tmp_path / name), str(tmp_path / f"out-{name}"), SPLITS, IN_MEMORY, "*.gz")
    for split in SPLITS:
        assert _split_records(tmp_path / "out-import-a", split) == _split_records(tmp_path / "out-import-b", split)


def test_protos_are_serialized_with_sorted_map_keys():
    example = tf.train.Example()
    for key in ("z", "a", "m"):
        example.features.feature[key].int64_list.value.append(1)
    assert serialized(example) == example.SerializeToString(deterministic=True)
    assert serialized(b"as it is") == b"as it is"
    assert tf.train.Example.FromString(serialized(example)) == example
