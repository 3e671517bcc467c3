"""Trains the model with the Trainer's own `run_fn` on the tiny sample and prints what it learned.

Run as `python -m tests.models.train_seeded TRANSFORM_DIR WORK_DIR SEED [MODEL]` (trainer.model,
default dnn) in a process of its own
(`run_fn` turns on TensorFlow's op determinism, which is global to a process). The tiny sample,
transformed, is written as TFX's Transform writes it (gzipped TFRecords per split) and read
through TFX's own DataAccessor, so the seeded shuffle of the Trainer's input is what is tested.
Prints one JSON object: the test-set predictions of the exported model, a hash of its weights
and its SavedModel fingerprint.
"""

import glob
import hashlib
import json
import os
import sys


def main(transform_dir: str, work: str, seed: int, model: str = "dnn") -> None:
    import csv

    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft
    from tensorflow.core.protobuf import fingerprint_pb2
    from tfx.components.trainer import fn_args_utils
    from tfx.components.util import tfxio_utils
    from tfx.types import standard_artifacts

    from models import model as model_lib
    from pipeline.config import load_config
    from tests.conftest import TINY_CSV, raw_feature_spec_of, to_example

    with open(TINY_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    output = tft.TFTransformOutput(transform_dir)
    serialized = tf.constant([to_example(r).SerializeToString() for r in rows])
    transformed = output.transform_features_layer()(tf.io.parse_example(serialized, raw_feature_spec_of(rows[0])))
    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(work, "examples")
    examples.split_names = '["train", "eval"]'
    for split in ("train", "eval"):
        os.makedirs(os.path.join(examples.uri, f"Split-{split}"))
        path = os.path.join(examples.uri, f"Split-{split}", "data.tfrecord.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for i in range(len(rows)):
                feature = {}
                for name, values in transformed.items():
                    value = values.numpy().reshape(-1)[i]
                    if values.dtype.is_integer:
                        feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
                    else:
                        feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    config = load_config(None, [f"trainer.seed={seed}", f"trainer.model={model}"])
    accessor = fn_args_utils.DataAccessor(
        tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], []),
        record_batch_factory=None,
        data_view_decode_fn=None,
    )
    serving = os.path.join(work, "model")
    model_lib.run_fn(
        fn_args_utils.FnArgs(
            train_files=glob.glob(os.path.join(examples.uri, "Split-train", "*")),
            eval_files=glob.glob(os.path.join(examples.uri, "Split-eval", "*")),
            transform_output=transform_dir,
            serving_model_dir=serving,
            model_run_dir=os.path.join(work, "logs"),
            train_steps=None,  # the plan from the row count: epochs, early stopping, LR schedule
            eval_steps=None,
            custom_config=config.model_code_config(),
            data_accessor=accessor,
        )
    )
    loaded = tf.saved_model.load(serving)
    probabilities = loaded.signatures["serving_default"](examples=serialized)["probabilities"].numpy()
    weights = hashlib.sha256()
    for variable in sorted(loaded.model_variables, key=lambda v: v.name):
        weights.update(np.ascontiguousarray(variable.numpy()).tobytes())
    with open(os.path.join(serving, "fingerprint.pb"), "rb") as f:
        fingerprint = fingerprint_pb2.FingerprintDef.FromString(f.read())
    print(
        json.dumps(
            {
                "predictions": probabilities.round(7).tolist(),
                "weights": weights.hexdigest(),
                "choice": json.loads(open(os.path.join(serving, "assets.extra", "trainer_choice.json")).read()),
                "fingerprint": {
                    name: str(getattr(fingerprint, name))
                    for name in (
                        "saved_model_checksum",
                        "graph_def_program_hash",
                        "signature_def_hash",
                        "saved_object_graph_hash",
                        "checkpoint_hash",
                        "uuid",
                    )
                },
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:5])
    sys.stdout.flush()
    os._exit(0)  # past the final garbage collection, which TF and Beam leave state behind for
