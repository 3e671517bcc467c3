"""One ExampleGen executor run on a tiny directory of files, read back as examples' features."""

from __future__ import annotations

import tensorflow as tf

from benchmarks.examplegen import run_executor, split_contents


def example_features(executor_class, data_dir, out_dir, pattern: str, custom_config=None) -> list:
    """Run `executor_class` on the files of `data_dir` matching `pattern` (train 3 : eval 1,
    Beam in memory) into `out_dir`; every written example's features, train then eval."""
    run_executor(
        executor_class,
        str(data_dir),
        str(out_dir),
        {"train": 3, "eval": 1},
        ["--direct_running_mode=in_memory"],
        pattern=pattern,
        custom_config=custom_config,
    )
    return [
        tf.train.Example.FromString(e).features.feature
        for split in split_contents(str(out_dir), ("train", "eval")).values()
        for e in split
    ]
