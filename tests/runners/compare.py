"""Compares the Beam components' outputs of two runs of the pipeline (the DirectRunner's and a
cluster runner's: tests/flink, tests/spark).

For ExampleGen, StatisticsGen, Transform and the Evaluator, every file of every output artifact
is compared by what it holds, not by how it was sharded or serialized:
- TFRecord files as the multiset of their records, each parsed and serialized again
  deterministically: a runner may write other shards in another order, and a proto's map
  (tf.Example's features, TFMA's metrics) need not serialize in one order;
- statistics with each dataset's features sorted by path: TFDV lists them in the order its
  merged accumulators first met them, which depends on how the examples were bundled;
- schemas with their features sorted by name, and the transform graph's saved_model.pb with the
  graph's nodes sorted by name: SchemaGen lists features in the statistics' order (above), and
  Transform makes an input placeholder per feature in the schema's order; its floating-point
  constants (the analyzers' results) equal within a relative CONSTANT_RTOL;
- and every other file byte for byte; in all of them the run's own output directory (which the
  transform graph and the eval config name) is replaced by a placeholder.
`.system` directories (TFX's own bookkeeping) are left out.

Run as `python -m tests.runners.compare DIR_A DIR_B [PIPELINE_NAME]`: one line per artifact, exit 1
on any difference.
"""

from __future__ import annotations

import collections
import glob
import gzip
import math
import os
import re
import sys

COMPONENTS = ("ExampleGen", "StatisticsGen", "Transform", "Evaluator")
_SHARD = re.compile(r"-\d{5}-of-\d{5}")
# Relative tolerance for the transform graph's floating-point constants (analyzer results such as
# a mean or a variance): a cluster runner combines partial sums in another order than the DirectRunner, and
# floating-point addition is not associative, so the last bits of a double may differ.
CONSTANT_RTOL = 1e-12


class _Graph:
    """A saved model as text without its float constants, and those constants, compared with a tolerance."""

    def __init__(self, text: bytes, constants: list[float]):
        self.text, self.constants = text, constants

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, _Graph)
            and self.text == other.text
            and len(self.constants) == len(other.constants)
            and all(math.isclose(a, b, rel_tol=CONSTANT_RTOL) for a, b in zip(self.constants, other.constants))
        )


def _tfrecords(path: str) -> list[bytes]:
    import tensorflow as tf

    compression = "GZIP" if path.endswith(".gz") else ""
    return [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type=compression)]


def _canonical(kind: str, record: bytes) -> bytes:
    """A record parsed and serialized again deterministically."""
    if kind == "examples":
        import tensorflow as tf

        message = tf.train.Example.FromString(record)
    elif kind == "metrics":
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


def _contents(artifact_dir: str, root: str) -> dict[str, object]:
    """Relative name (shard numbers dropped) -> what it holds, comparable with ==."""
    placeholder = b"<output_dir>"
    out: dict[str, object] = {}
    records: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for path in sorted(glob.glob(os.path.join(artifact_dir, "**", "*"), recursive=True)):
        if os.path.isdir(path):
            continue
        rel = os.path.relpath(path, artifact_dir)
        name = os.path.basename(path)
        if (name.endswith(".gz") and "tfrecord" in name) or name.startswith("transformed_examples"):
            records[_SHARD.sub("", rel)].update(_canonical("examples", r) for r in _tfrecords(path))
        elif name.endswith(".tfrecord"):
            kind = re.split(r"[-.]", name)[0]
            records[_SHARD.sub("", rel)].update(_canonical(kind, r) for r in _tfrecords(path))
        elif name == "FeatureStats.pb":
            from tensorflow_metadata.proto.v0 import statistics_pb2

            with open(path, "rb") as f:
                stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
            for dataset in stats.datasets:
                features = sorted(dataset.features, key=lambda f: (tuple(f.path.step), f.name))
                del dataset.features[:]
                dataset.features.extend(features)
            out[rel] = stats.SerializeToString(deterministic=True)
        elif name == "schema.pbtxt":
            from google.protobuf import text_format
            from tensorflow_metadata.proto.v0 import schema_pb2

            with open(path) as f:
                schema = text_format.Parse(f.read(), schema_pb2.Schema())
            features = sorted(schema.feature, key=lambda f: f.name)
            del schema.feature[:]
            schema.feature.extend(features)
            out[rel] = text_format.MessageToString(schema).encode()
        elif name == "saved_model.pb":
            from google.protobuf import text_format
            from tensorflow.core.protobuf import saved_model_pb2

            with open(path, "rb") as f:
                model = saved_model_pb2.SavedModel.FromString(f.read())
            constants = []
            for graph in model.meta_graphs:  # a GraphDef's node order carries no meaning
                nodes = sorted(graph.graph_def.node, key=lambda n: n.name)
                del graph.graph_def.node[:]
                graph.graph_def.node.extend(nodes)
                for node in graph.graph_def.node:  # the copies extend() made
                    if node.op == "Const":
                        tensor = node.attr["value"].tensor
                        constants += [*tensor.double_val, *tensor.float_val]
                        tensor.ClearField("double_val")
                        tensor.ClearField("float_val")
            text = text_format.MessageToString(model).encode().replace(root.encode(), placeholder)
            out[rel] = _Graph(text, constants)
        else:
            with open(path, "rb") as f:
                data = f.read()
            data = gzip.decompress(data) if name.endswith(".gz") else data
            out[rel] = data.replace(root.encode(), placeholder)
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
        ca, cb = _contents(a[key], os.path.abspath(dir_a)), _contents(b[key], os.path.abspath(dir_b))
        differ = sorted(n for n in set(ca) | set(cb) if ca.get(n) != cb.get(n))
        count = sum(sum(v.values()) if isinstance(v, collections.Counter) else 1 for v in ca.values())
        detail = f"{len(ca)} files, {count} records or files" if not differ else "differ: " + ", ".join(differ)
        results.append((key, not differ, detail))
    return results


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python -m tests.runners.compare DIR_A DIR_B [PIPELINE_NAME]", file=sys.stderr)
        return 2
    results = compare(*argv)
    for key, equal, detail in results:
        print(f"{'equal ' if equal else 'DIFFER'}  {key}: {detail}")
    return 0 if results and all(equal for _, equal, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
