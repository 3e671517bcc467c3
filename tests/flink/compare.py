"""Compares the Beam components' outputs of two runs of the pipeline (e.g. DirectRunner and Flink).

For ExampleGen, StatisticsGen, Transform and the Evaluator, every file of every output artifact
is compared by what it holds, not by how it was sharded: TFRecord files as the multiset of their
records (a runner may write other shards in another order), statistics and evaluation
records as parsed protos (a proto's map fields need not serialize in one order), everything
else byte for byte. `.system` directories (TFX's own bookkeeping) are left out.

Run as `python -m tests.flink.compare DIR_A DIR_B [PIPELINE_NAME]`: one line per artifact, exit 1
on any difference.
"""

from __future__ import annotations

import collections
import glob
import gzip
import os
import re
import sys

COMPONENTS = ("ExampleGen", "StatisticsGen", "Transform", "Evaluator")
_SHARD = re.compile(r"-\d{5}-of-\d{5}")


def _tfrecords(path: str) -> list[bytes]:
    import tensorflow as tf

    compression = "GZIP" if path.endswith(".gz") else ""
    return [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type=compression)]


def _canonical(kind: str, record: bytes) -> bytes:
    """A record re-serialized deterministically, for the protos with map fields."""
    if kind == "metrics":
        from tensorflow_model_analysis.proto import metrics_for_slice_pb2 as pb

        message = pb.MetricsForSlice.FromString(record)
    elif kind == "attributions":
        from tensorflow_model_analysis.proto import metrics_for_slice_pb2 as pb

        message = pb.AttributionsForSlice.FromString(record)
    elif kind == "plots":
        from tensorflow_model_analysis.proto import metrics_for_slice_pb2 as pb

        message = pb.PlotsForSlice.FromString(record)
    elif kind == "validations":
        from tensorflow_model_analysis.proto import validation_result_pb2 as pb

        message = pb.ValidationResult.FromString(record)
    else:
        return record
    return message.SerializeToString(deterministic=True)


def _contents(artifact_dir: str) -> dict[str, object]:
    """Relative name (shard numbers dropped) -> what it holds, comparable with ==."""
    out: dict[str, object] = {}
    records: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for path in sorted(glob.glob(os.path.join(artifact_dir, "**", "*"), recursive=True)):
        if os.path.isdir(path):
            continue
        rel = os.path.relpath(path, artifact_dir)
        name = os.path.basename(path)
        if (name.endswith(".gz") and "tfrecord" in name) or name.startswith("transformed_examples"):
            records[_SHARD.sub("", rel)].update(_tfrecords(path))
        elif name.endswith(".tfrecord"):
            kind = name.split("-")[0]
            records[_SHARD.sub("", rel)].update(_canonical(kind, r) for r in _tfrecords(path))
        elif name == "FeatureStats.pb":
            from tensorflow_metadata.proto.v0 import statistics_pb2

            with open(path, "rb") as f:
                stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
            out[rel] = stats.SerializeToString(deterministic=True)
        else:
            with open(path, "rb") as f:
                data = f.read()
            out[rel] = gzip.decompress(data) if name.endswith(".gz") else data
    out.update(records)
    return out


def artifacts(output_dir: str, pipeline: str) -> dict[str, str]:
    """`Component/output` -> its one artifact directory in the run's outputs."""
    root = os.path.join(output_dir, "pipelines", pipeline)
    found: dict[str, str] = {}
    for component in COMPONENTS:
        for output in sorted(glob.glob(os.path.join(root, component, "*"))):
            if os.path.basename(output).startswith("."):
                continue
            runs = sorted(glob.glob(os.path.join(output, "*")))
            if len(runs) != 1:
                raise ValueError(f"{output}: expected one artifact directory, found {len(runs)}")
            found[f"{component}/{os.path.basename(output)}"] = runs[0]
    return found


def compare(dir_a: str, dir_b: str, pipeline: str = "taxi-big-tipper") -> list[tuple[str, bool, str]]:
    """(artifact, equal, detail) for every Beam component output of the two runs."""
    a, b = artifacts(dir_a, pipeline), artifacts(dir_b, pipeline)
    results = []
    for key in sorted(set(a) | set(b)):
        if key not in a or key not in b:
            results.append((key, False, f"only in {'the first' if key in a else 'the second'} run"))
            continue
        ca, cb = _contents(a[key]), _contents(b[key])
        differ = sorted(n for n in set(ca) | set(cb) if ca.get(n) != cb.get(n))
        count = sum(sum(v.values()) if isinstance(v, collections.Counter) else 1 for v in ca.values())
        detail = f"{len(ca)} files, {count} records or files" if not differ else "differ: " + ", ".join(differ)
        results.append((key, not differ, detail))
    return results


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python -m tests.flink.compare DIR_A DIR_B [PIPELINE_NAME]", file=sys.stderr)
        return 2
    results = compare(*argv)
    for key, equal, detail in results:
        print(f"{'equal ' if equal else 'DIFFER'}  {key}: {detail}")
    return 0 if results and all(equal for _, equal, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
