"""The baseline logic as plain functions: whether a Model artifact holds a SavedModel, whether
two SavedModels are the same model.

TFX's `Resolver` (latest blessed model) compiles to a resolver executor that only Vertex AI
implements, so open-source Kubeflow Pipelines cannot run it. The baseline here is the model
that serving reads: the newest version under the Pusher's serving directory
(contracts/serving_dir.py). That works the same wherever the pipeline runs, and it is the
model a new one must not fall behind.
"""

from __future__ import annotations

import os

from contracts.saved_model import SAVED_MODEL_FILES

SEMANTIC_HASHES = ("graph_def_program_hash", "signature_def_hash", "saved_object_graph_hash", "checkpoint_hash")


def same_saved_model(a: str, b: str) -> bool:
    """Whether two SavedModel directories hold the same model: the semantic hashes of TensorFlow's
    fingerprint (fingerprint.pb: the graph's program, the signatures, the object graph and the
    checkpoint) are equal. Its `uuid` is drawn anew by every save and its `saved_model_checksum`
    hashes saved_model.pb's bytes, which differ between two saves of the same seeded training
    (tests/models/test_model.py), so neither counts. Files outside the fingerprint (assets.extra/
    warm-up records, the push record) do not count either."""
    import tensorflow as tf  # gfile reads local paths and object stores (gs://, s3://) alike
    from tensorflow.core.protobuf import fingerprint_pb2

    gfile = tf.io.gfile
    paths = [os.path.join(d, "fingerprint.pb") for d in (a, b)]
    if not all(gfile.exists(p) for p in paths):
        return False
    fingerprints = []
    for path in paths:
        with gfile.GFile(path, "rb") as f:
            fingerprint = fingerprint_pb2.FingerprintDef.FromString(f.read())
        fingerprints.append(tuple(getattr(fingerprint, field) for field in SEMANTIC_HASHES))
    return any(fingerprints[0]) and fingerprints[0] == fingerprints[1]


def holds_serving_model(artifact_uri: str) -> bool:
    """Whether a Model artifact holds a SavedModel in TFX's serving layout (Format-Serving/)."""
    import tensorflow as tf
    from tfx.utils import path_utils

    gfile = tf.io.gfile
    return any(gfile.exists(os.path.join(path_utils.serving_model_path(artifact_uri), f)) for f in SAVED_MODEL_FILES)
