"""The baseline logic as plain functions: find the served version, copy it into an artifact.

TFX's `Resolver` (latest blessed model) compiles to a resolver executor that only Vertex AI
implements, so open-source Kubeflow Pipelines cannot run it. The baseline here is the model
that serving reads: the newest version under the Pusher's serving directory. That works the
same wherever the pipeline runs, and it is the model a new one must not fall behind.
"""

from __future__ import annotations

import os

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


def _gfile():
    import tensorflow as tf  # gfile reads local paths and object stores (gs://, s3://) alike

    return tf.io.gfile


def served_versions(serving_dir: str) -> list[int]:
    """Version numbers under a TF Serving model directory that hold a SavedModel, ascending."""
    gfile = _gfile()
    if not gfile.isdir(serving_dir):
        return []
    versions = []
    for name in gfile.listdir(serving_dir):
        name = name.rstrip("/")
        if name.isdigit() and any(gfile.exists(os.path.join(serving_dir, name, f))
                                  for f in SAVED_MODEL_FILES):
            versions.append(int(name))
    return sorted(versions)


def latest_served(serving_dir: str) -> str | None:
    """The directory of the newest served version, or None when nothing is served."""
    versions = served_versions(serving_dir)
    return os.path.join(serving_dir, str(versions[-1])) if versions else None


def holds_serving_model(artifact_uri: str) -> bool:
    """Whether a Model artifact holds a SavedModel in TFX's serving layout (Format-Serving/)."""
    from tfx.utils import path_utils

    gfile = _gfile()
    return any(gfile.exists(os.path.join(path_utils.serving_model_path(artifact_uri), f))
               for f in SAVED_MODEL_FILES)


def copy_tree(source: str, destination: str) -> None:
    """Copies a directory tree (a SavedModel) between any two gfile paths."""
    gfile = _gfile()
    for directory, _, files in gfile.walk(source):
        target = os.path.join(destination, os.path.relpath(directory, source))
        gfile.makedirs(target)
        for name in files:
            gfile.copy(os.path.join(directory, name), os.path.join(target, name), overwrite=True)
