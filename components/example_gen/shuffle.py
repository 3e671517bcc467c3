"""A split's examples in an order that depends on the examples alone, written with one bucket
in memory.

TFX's ExampleGen shuffles each split with Beam's Reshuffle (random keys) and writes it with
WriteToTFRecord, which names its shards after temporary files with random names: the same data
comes out in another order on every run, so a seeded Trainer reads other batches and trains
another model. On the DirectRunner a Reshuffle also keeps every example in the runner's memory,
in about three copies, until the write reads it.

Here an example's BLAKE2b digest chooses its bucket (one of BUCKETS) and its place in the
bucket: a pseudo-random order that is a function of the records, the same on every run, runner
and worker count. Each bundle appends its examples to bucket files on disk; each output shard
then takes its buckets in order, reads one at a time, sorts it by digest and writes it. Only
(bucket, file name) pairs pass through a GroupByKey. The number of shards follows the split's
size (SHARD_BYTES each), so it too depends on the data alone.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import struct
import uuid
from typing import BinaryIO, Iterable, Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

# One bucket is what a worker holds while sorting it: rows / BUCKETS examples. Each bundle
# keeps a file open per bucket it has written to.
BUCKETS = 256
# Serialized bytes per output shard: one shard until a split is this big, so a small run
# writes one file per split. A gzipped file is read by one worker, so a split must be several
# files for the next component to keep several workers busy (benchmarks/README.md).
SHARD_BYTES = 16 * 1024 * 1024
_LENGTH = struct.Struct("<I")


def write_record(f: BinaryIO, record: bytes) -> None:
    f.write(_LENGTH.pack(len(record)))
    f.write(record)


def read_records(f: BinaryIO) -> Iterator[bytes]:
    while header := f.read(_LENGTH.size):
        (length,) = _LENGTH.unpack(header)
        yield f.read(length)


def _digest(record: bytes) -> bytes:
    return hashlib.blake2b(record, digest_size=16).digest()


def bucket_of(record: bytes) -> int:
    return int.from_bytes(_digest(record)[:8], "little") % BUCKETS


def ordered(paths: Iterable[str]) -> list[bytes]:
    """Every record of a bucket's files, sorted by digest (equal digests by their bytes, so
    the order does not depend on the order of `paths` or of the records in them)."""
    records = []
    for path in paths:
        with FileSystems.open(path, compression_type="uncompressed") as f:
            records.extend(read_records(f))
    records.sort(key=lambda record: (_digest(record), record))
    return records


def shard_count(split_bytes: int) -> int:
    """Output shards for a split of `split_bytes` serialized bytes: at least one, at most BUCKETS."""
    return max(1, min(BUCKETS, -(-split_bytes // SHARD_BYTES)))


def shard_of(bucket: int, shards: int) -> int:
    """The shard that writes `bucket`: contiguous runs of buckets, in bucket order."""
    return bucket * shards // BUCKETS


def shard_path(prefix: str, shard: int, shards: int) -> str:
    """Beam's default shard name, as TFX's WriteToTFRecord writes it."""
    return f"{prefix}-{shard:05d}-of-{shards:05d}.gz"


class _SpillToBuckets(beam.DoFn):
    """Appends each example to its bucket's file for this bundle; at the bundle's end, emits
    (bucket, file, bytes) for each file it wrote."""

    def __init__(self, temp_dir: str):
        self._temp_dir = temp_dir

    def start_bundle(self):
        self._bundle = uuid.uuid4().hex
        self._files: dict[int, tuple[str, BinaryIO, list[int]]] = {}

    def process(self, example: bytes):
        bucket = bucket_of(example)
        if bucket not in self._files:
            path = os.path.join(self._temp_dir, f"{self._bundle}-{bucket}")
            self._files[bucket] = path, FileSystems.create(path, compression_type="uncompressed"), [0]
        path, f, size = self._files[bucket]
        with _naming(path):
            write_record(f, example)
        size[0] += len(example)

    def finish_bundle(self):
        for bucket, (path, f, size) in self._files.items():
            with _naming(path):
                f.close()
            yield GlobalWindows.windowed_value((bucket, path, size[0]))


@contextlib.contextmanager
def _naming(path: str) -> Iterator[None]:
    """Adds the file to an OSError from writing an open file (a full disk), which names none."""
    try:
        yield
    except OSError as err:
        if err.filename or err.errno is None:
            raise
        raise OSError(err.errno, err.strerror, path) from err


def write_shard(shard: int, files: Iterable[tuple[int, str]], shards: int, prefix: str, temp_dir: str) -> int:
    """Writes the shard's buckets, in bucket order, each sorted, as a gzipped TFRecord file:
    under a temporary name in `temp_dir` first, then renamed, so no reader sees half a shard.
    A retried bundle writes the same bytes again."""
    import tensorflow as tf  # only where a shard is written: the spill does not need it

    by_bucket = collections.defaultdict(list)
    for bucket, path in files:
        by_bucket[bucket].append(path)
    final = shard_path(prefix, shard, shards)
    temp = os.path.join(temp_dir, f"{uuid.uuid4().hex}-{os.path.basename(final)}")
    with tf.io.TFRecordWriter(temp, options="GZIP") as writer:  # raises TensorFlow errors, not OSError
        for bucket in sorted(by_bucket):
            for record in ordered(by_bucket[bucket]):
                writer.write(record)
    tf.io.gfile.makedirs(os.path.dirname(final))
    tf.io.gfile.rename(temp, final, overwrite=True)
    return shard


def _write_group(group: tuple[int, Iterable[tuple[int, str]]], shards: int, prefix: str, temp_dir: str) -> int:
    return write_shard(group[0], group[1], shards, prefix, temp_dir)


def _write_missing_shards(written: list[int], shards: int, prefix: str, temp_dir: str) -> None:
    """An empty file for each shard no bucket reached (an empty split gets its one shard),
    as WriteToTFRecord writes one for an empty PCollection."""
    for shard in sorted(set(range(shards)) - set(written)):
        write_shard(shard, (), shards, prefix, temp_dir)


@beam.ptransform_fn
def ShuffleAndWrite(examples: beam.PCollection, prefix: str, temp_dir: str) -> beam.PCollection:
    """Writes serialized examples as `prefix`-SSSSS-of-NNNNN.gz in their digest order; bucket
    files go to `temp_dir`, which the caller removes once the pipeline has run."""
    spilled = examples | "SpillToBuckets" >> beam.ParDo(_SpillToBuckets(temp_dir))
    shards = beam.pvalue.AsSingleton(
        spilled
        | "BucketBytes" >> beam.Map(lambda spill: spill[2])
        | "SplitBytes" >> beam.CombineGlobally(sum)
        | "ShardCount" >> beam.Map(shard_count)
    )
    written = (
        spilled
        | "KeyByShard" >> beam.Map(lambda spill, n: (shard_of(spill[0], n), (spill[0], spill[1])), shards)
        | "GroupFilesByShard" >> beam.GroupByKey()
        | "WriteShards" >> beam.Map(_write_group, shards, prefix, temp_dir)
    )
    return (
        written
        | "WrittenShards" >> beam.combiners.ToList()
        | "WriteMissingShards" >> beam.Map(_write_missing_shards, shards, prefix, temp_dir)
    )
