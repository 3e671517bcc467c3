"""Analyzes the tiny sample with tf.Transform on Beam (no TFX) and writes the transform fn.

Run as `python -m tests.analyze_tiny OUTPUT_DIR [--tf-compat-v1] [--config=FILE] [KEY=VALUE...]` (traced
as a TF1 graph as the pipeline's Transform does; a config, default the bundled taxi config; overrides),
in a process of its own:
Beam's runner leaves state behind that can crash the calling process's final garbage collection at exit.
"""

import csv
import functools
import os
import sys


def main(out: str, overrides: list[str]) -> None:
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    from models.preprocessing import preprocessing_fn
    from pipeline.config import load_config
    from tests.conftest import TINY_CSV, raw_feature_spec_of, value_of

    with open(TINY_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    spec = raw_feature_spec_of(rows[0])
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    instances = [{c: ([value_of(c, t)] if t != "" else []) for c, t in row.items()} for row in rows]
    config_path, compat_v1 = None, bool(overrides) and overrides[0] == "--tf-compat-v1"
    overrides = overrides[1:] if compat_v1 else overrides
    if overrides and overrides[0].startswith("--config="):
        config_path, overrides = overrides[0].split("=", 1)[1], overrides[1:]
    fn = functools.partial(preprocessing_fn, custom_config=load_config(config_path, overrides).model_code_config())
    context = tft_beam.Context(temp_dir=f"{out}/tmp", force_tf_compat_v1=compat_v1)
    with beam.Pipeline(runner="DirectRunner") as p, context:
        data = p | beam.Create(instances, reshuffle=False)
        transform_fn = (data, metadata) | tft_beam.AnalyzeDataset(fn)
        _ = transform_fn | tft_beam.WriteTransformFn(f"{out}/transform_fn")
    # The raw schema, as TFX's Transform records it next to the transform fn.
    metadata_io.write_metadata(metadata, f"{out}/transform_fn/{tft.TFTransformOutput.RAW_METADATA_DIR}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
    # Skip the final garbage collection, which crashes on what Beam/TF leave behind; the
    # outputs are written and closed by now.
    sys.stdout.flush()
    os._exit(0)
