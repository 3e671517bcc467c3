"""ExampleGen alone: TFX's CSV executor against ours (`components/example_gen/csv_executor.py`).

Each run is a fresh process (`python -m benchmarks.examplegen EXECUTOR DATA OUT [BEAM_ARG...]`)
that runs one executor's `Do` with the pipeline's split configuration; the two executors
alternate. The table gives the seconds inside `Do`, the process's wall time, peak memory,
the examples per split, and whether the two wrote the same examples into the same splits.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import time

from benchmarks import endtoend, measure

EXECUTORS = {  # column name: (output directory prefix, executor class)
    "TFX CsvExampleGen": ("tfx", "tfx.components.example_gen.csv_example_gen.executor.Executor"),
    "ours": ("ours", "components.example_gen.csv_executor.Executor"),
}
SPLITS = ("train", "eval", "test")


def _out(work: str, name: str, repeat: int) -> str:
    return os.path.join(work, f"{EXECUTORS[name][0]}-{repeat}")


def run(name: str, data_dir: str, out_dir: str, beam_args: list[str]) -> tuple[measure.Measured, float]:
    """One measured run; returns the measurement and the seconds spent in `Do`."""
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    measured = measure.run(
        [sys.executable, "-m", "benchmarks.examplegen", EXECUTORS[name][1], data_dir, out_dir, *beam_args],
        log_path=out_dir + ".log",
    )
    if measured.returncode:
        raise RuntimeError(f"{name} failed (exit {measured.returncode}); see {out_dir}.log")
    with open(os.path.join(out_dir, "do_seconds.json")) as f:
        return measured, json.load(f)


def split_contents(out_dir: str, splits: tuple[str, ...] = SPLITS) -> dict[str, list[bytes]]:
    """Per split, the examples (deterministically re-serialized) in sorted order."""
    import tensorflow as tf

    return {
        split: sorted(
            tf.train.Example.FromString(r.numpy()).SerializeToString(deterministic=True)
            for path in glob.glob(os.path.join(out_dir, f"Split-{split}", "*.gz"))
            for r in tf.data.TFRecordDataset(path, compression_type="GZIP")
        )
        for split in splits
    }


def compare(data_dir: str, work: str, repeats: int, beam_args: list[str]) -> str:
    results: dict[str, list[tuple[measure.Measured, float]]] = {name: [] for name in EXECUTORS}
    for repeat in range(repeats):
        for name in EXECUTORS:
            results[name].append(run(name, data_dir, _out(work, name, repeat), beam_args))
    contents = {name: split_contents(_out(work, name, 0)) for name in EXECUTORS}
    names = list(EXECUTORS)
    do_seconds = [measure.median([d for _, d in results[n]]) for n in names]
    rows = [
        ["seconds in Do"] + do_seconds,
        ["  each run"] + [" ".join(f"{d:.1f}" for _, d in results[n]) for n in names],
        ["process wall, s"] + [measure.median([m.seconds for m, _ in results[n]]) for n in names],
        ["peak PSS, GiB"] + [endtoend.gib(max(m.peak_tree_pss for m, _ in results[n])) for n in names],
        ["peak RSS, largest process, GiB"]
        + [endtoend.gib(max(m.peak_process_rss for m, _ in results[n])) for n in names],
    ] + [[f"examples in {split}"] + [len(contents[n][split]) for n in names] for split in SPLITS]
    same = all(contents[names[0]][s] == contents[names[1]][s] for s in SPLITS)
    speedup = do_seconds[0] / do_seconds[1]
    return (
        measure.table(["", *names], rows)
        + f"\nsame examples in the same splits: {'yes' if same else 'NO'}"
        + f"\nours is {speedup:.2f}x as fast in Do (medians)"
    )


def run_executor(
    executor_class,
    data_dir: str,
    out_dir: str,
    buckets: dict[str, int],
    beam_args: list[str],
    pattern: str = "*.csv",
    custom_config=None,
) -> float:
    """An ExampleGen executor's `Do` on the `pattern` files of `data_dir`, hash-split into
    `buckets` (split name: hash buckets), with an optional example_gen_pb2.CustomConfig;
    returns its seconds."""
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts
    from tfx.types import standard_component_specs as specs
    from tfx.utils import proto_utils

    examples = standard_artifacts.Examples()
    examples.uri = out_dir
    properties = {
        specs.INPUT_BASE_KEY: data_dir,
        specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(
            example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="single_split", pattern=pattern)])
        ),
        specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(
            example_gen_pb2.Output(
                split_config=example_gen_pb2.SplitConfig(
                    splits=[example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=n) for name, n in buckets.items()]
                )
            )
        ),
        specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
        specs.OUTPUT_FILE_FORMAT_KEY: example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }
    if custom_config is not None:
        properties[specs.CUSTOM_CONFIG_KEY] = proto_utils.proto_to_json(custom_config)
    started = time.monotonic()
    executor_class(executor_class.Context(beam_pipeline_args=beam_args)).Do(
        {}, {specs.EXAMPLES_KEY: [examples]}, properties
    )
    return time.monotonic() - started


def _main(executor_path: str, data_dir: str, out_dir: str, beam_args: list[str]) -> None:
    """One executor's Do, with the split configuration of the pipeline's default config."""
    import importlib

    from pipeline.config import load_config

    data = load_config(None).data
    module, _, cls = executor_path.rpartition(".")
    buckets = {"train": data.train_buckets, "eval": data.eval_buckets, "test": data.test_buckets}
    seconds = run_executor(getattr(importlib.import_module(module), cls), data_dir, out_dir, buckets, beam_args)
    with open(os.path.join(out_dir, "do_seconds.json"), "w") as f:
        json.dump(seconds, f)


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
