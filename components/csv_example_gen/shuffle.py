"""A uniformly random shuffle of a split's examples that holds one bucket in memory, not the split.

TFX's ExampleGen shuffles each split with Beam's Reshuffle before writing it. On the
DirectRunner a shuffle (GroupByKey) keeps every example in the runner's memory, in about
three copies, until the write reads it: at 1.5M rows that was most of the run's peak memory.
Here each example goes to a random bucket file on disk next to the output, and each bucket is
then read, shuffled in memory and written. Random buckets, each shuffled, in a fixed order,
give every order of the split the same chance, as Reshuffle's random keys do.
"""

from __future__ import annotations

import contextlib
import os
import random
import struct
import uuid
from typing import BinaryIO, Iterable, Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

# One bucket is what a worker holds while shuffling it: rows / BUCKETS examples (1.5M rows:
# about 6k examples, 4 MB). Each bundle keeps a file open per bucket it has written to.
BUCKETS = 256
_LENGTH = struct.Struct("<I")


def write_record(f: BinaryIO, record: bytes) -> None:
    f.write(_LENGTH.pack(len(record)))
    f.write(record)


def read_records(f: BinaryIO) -> Iterator[bytes]:
    while header := f.read(_LENGTH.size):
        (length,) = _LENGTH.unpack(header)
        yield f.read(length)


def shuffled(paths: Iterable[str], rng: random.Random = random) -> list[bytes]:
    """Every record of the bucket files, in random order."""
    records = []
    for path in paths:
        with FileSystems.open(path, compression_type="uncompressed") as f:
            records.extend(read_records(f))
    rng.shuffle(records)
    return records


class _SpillToBuckets(beam.DoFn):
    """Appends each example to a random bucket file of its bundle; at the bundle's end, emits
    (bucket, file) for each file it wrote."""

    def __init__(self, temp_dir: str):
        self._temp_dir = temp_dir

    def start_bundle(self):
        self._bundle = uuid.uuid4().hex
        self._files: dict[int, tuple[str, BinaryIO]] = {}

    def process(self, example: bytes):
        bucket = random.randrange(BUCKETS)
        if bucket not in self._files:
            path = os.path.join(self._temp_dir, f"{self._bundle}-{bucket}")
            self._files[bucket] = path, FileSystems.create(path, compression_type="uncompressed")
        path, f = self._files[bucket]
        with _naming(path):
            write_record(f, example)

    def finish_bundle(self):
        for bucket, (path, f) in self._files.items():
            with _naming(path):
                f.close()
            yield GlobalWindows.windowed_value((bucket, path))


@contextlib.contextmanager
def _naming(path: str) -> Iterator[None]:
    """Adds the file to an OSError from writing an open file (a full disk), which names none."""
    try:
        yield
    except OSError as err:
        if err.filename or err.errno is None:
            raise
        raise OSError(err.errno, err.strerror, path) from err


@beam.ptransform_fn
def ShuffleOnDisk(examples: beam.PCollection, temp_dir: str) -> beam.PCollection:
    """The examples in random order; bucket files go to `temp_dir`, which the caller removes
    once the pipeline has run. Only (bucket, file name) pairs pass through a GroupByKey."""
    return (
        examples
        | "SpillToBuckets" >> beam.ParDo(_SpillToBuckets(temp_dir))
        | "GroupFilesByBucket" >> beam.GroupByKey()
        | "ReadAndShuffleBucket" >> beam.FlatMap(lambda bucket: shuffled(bucket[1]))
    )
