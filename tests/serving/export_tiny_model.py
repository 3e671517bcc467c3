"""Trains the model a few epochs on the tiny sample and exports it, in a process of its own.

Run as `python -m tests.serving.export_tiny_model TRANSFORM_DIR OUTPUT_DIR`. Kept out of the
test process: a Keras 3 model holding TFT's Keras 2 layer can crash that process's final
garbage collection at exit.
"""

import os
import sys


def main(transform_dir: str, output_dir: str) -> None:
    import csv

    import tensorflow as tf
    import tensorflow_transform as tft

    from models import features as feature_defs
    from models import model as model_lib
    from pipeline.config import load_config
    from tests.conftest import TINY_CSV, to_example

    spec = feature_defs.from_custom_config(load_config(None).model_config())
    output = tft.TFTransformOutput(transform_dir)
    with open(TINY_CSV, newline="") as f:
        serialized = [to_example(row).SerializeToString() for row in csv.DictReader(f)]
    features = dict(output.transform_raw_features(
        tf.io.parse_example(tf.constant(serialized), output.raw_feature_spec())))
    labels = features.pop(spec.label.name)
    model = model_lib._build_model(model_lib._hyperparameters(spec), spec, output)
    model.fit({k: tf.reshape(v, [-1, 1]) for k, v in features.items()}, tf.reshape(labels, [-1, 1]),
              epochs=3, verbose=0)
    model_lib.export(model, spec, output, output_dir)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    # Skip the final garbage collection, which crashes on what Beam/TF leave behind; the
    # outputs are written and closed by now.
    sys.stdout.flush()
    os._exit(0)
