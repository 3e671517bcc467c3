"""Trains the model a few epochs on the tiny sample and exports it, in a process of its own.

Run as `python -m tests.serving.export_tiny_model TRANSFORM_DIR OUTPUT_DIR [--warmup] [--legacy] [--gbt]
[--config FILE]`
(the config the transform was analyzed under; default the bundled taxi config).
`--gbt` trains gradient-boosted trees instead (trainer.model gbt; the tiny sample is both its
train and its eval split, with small leaves so that the trees have depth);
`--warmup` adds the warm-up records ServingWarmup would (one or more per signature);
`--legacy` saves the same signatures the way the project did before Keras' ExportArchive
(tests/serving/legacy_export.py), which TF Serving's loader cannot run.
Kept out of the test process: a Keras 3 model holding TFT's Keras 2 layer can crash that
process's final garbage collection at exit.
"""

import argparse
import os
import sys


def main(argv: list[str]) -> None:
    import csv

    import tensorflow as tf
    import tensorflow_transform as tft

    from components.serving_warmup import warmup
    from models import model as model_lib
    from models import model_inputs
    from pipeline.config import load_config
    from tests.conftest import TINY_CSV, to_example
    from tests.serving.legacy_export import legacy_export

    parser = argparse.ArgumentParser()
    parser.add_argument("transform_dir")
    parser.add_argument("output_dir")
    parser.add_argument("--warmup", action="store_true")
    parser.add_argument("--legacy", action="store_true")
    parser.add_argument("--gbt", action="store_true")
    parser.add_argument("--config")
    args = parser.parse_args(argv)

    gbt_settings = ["trainer.model=gbt", "trainer.gbt.min_data_in_leaf=3", "trainer.gbt.num_trees=30"]
    config = load_config(args.config, gbt_settings if args.gbt else [])
    spec = model_inputs.from_custom_config(config.model_code_config())
    output = tft.TFTransformOutput(args.transform_dir)
    with open(TINY_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    serialized = [to_example(row).SerializeToString() for row in rows]
    features = dict(
        output.transform_features_layer()(tf.io.parse_example(tf.constant(serialized), output.raw_feature_spec()))
    )
    if args.gbt:
        keep = tf.reshape(features[spec.label.name] >= 0, [-1])  # multiclass: the model's classes
        columns = {k: tf.boolean_mask(tf.reshape(v, [-1]), keep).numpy() for k, v in features.items()}
        model = model_lib._train_gbt(columns, columns, spec, output, seed=spec.trainer.seed)
        model_lib.export(model, spec, output, args.output_dir, choice={"configured": "gbt", "model": "gbt"})
    else:
        labels = features.pop(spec.label.name)
        model = model_lib._build_model(model_lib._hyperparameters(spec), spec, output)
        x = {k: tf.reshape(v, [-1, 1]) for k, v in features.items()}
        model.fit(x, tf.reshape(labels, [-1, 1]), epochs=3, verbose=0)
        if args.legacy:
            legacy_export(model, spec, output, args.output_dir)
        else:
            model_lib.export(model, spec, output, args.output_dir)
    if args.warmup:
        requests = [
            to_example(row, drop=tuple(model_inputs.label_columns(config))).SerializeToString() for row in rows[:8]
        ]
        warmup.write_warmup(
            args.output_dir, warmup.prediction_logs(requests, config.model_name, warmup.signature_defs(args.output_dir))
        )


if __name__ == "__main__":
    main(sys.argv[1:])
    # Skip the final garbage collection, which crashes on what Beam/TF leave behind; the
    # outputs are written and closed by now.
    sys.stdout.flush()
    os._exit(0)
