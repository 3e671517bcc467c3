"""The baseline logic as plain functions: find the served version, copy it into an artifact.

TFX's `Resolver` (latest blessed model) compiles to a resolver executor that only Vertex AI
implements, so open-source Kubeflow Pipelines cannot run it. The baseline here is the model
that serving reads: the newest version under the Pusher's serving directory. That works the
same wherever the pipeline runs, and it is the model a new one must not fall behind.
"""

from __future__ import annotations

import logging
import os
import re
import time

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
# TF Serving's file system source takes every all-digit directory as a version: a push is
# written under this prefix first, where it looks at nothing, and renamed when complete.
PARTIAL_PREFIX = ".partial-"
ROLLBACK_PREFIX = ".rollback-"  # `tfxp rollback`'s staging directory (ops/rollback.py), hidden alike
# What a push writes into its version directory besides the SavedModel: where it came from
# (see components/atomic_pusher). TF Serving's loader reads saved_model.pb(txt), variables/,
# assets/, fingerprint.pb, assets.extra/tf_serving_warmup_requests, batching_params.pbtxt and
# model.tflite; it ignores other files (tensorflow_serving/servables/tensorflow/
# saved_model_bundle_factory.cc, bundle_factory_util.cc, saved_model_warmup_util.cc).
PUSH_RECORD = "tfxp-push.json"
_DATA_SHARD = re.compile(r"^variables\.data-(\d+)-of-(\d+)$")

log = logging.getLogger(__name__)


def _gfile():
    import tensorflow as tf  # gfile reads local paths and object stores (gs://, s3://) alike

    return tf.io.gfile


def incomplete_reason(version_dir: str) -> str | None:
    """Why a version directory does not hold a complete SavedModel, or None when it does:
    saved_model.pb parses and every variables shard its index names is there."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    gfile = _gfile()
    pb = os.path.join(version_dir, "saved_model.pb")
    if not gfile.exists(pb):
        if gfile.exists(os.path.join(version_dir, "saved_model.pbtxt")):
            return None  # a text SavedModel: nothing truncated parses as one, TF Serving's loader decides
        return "no saved_model.pb"
    try:
        with gfile.GFile(pb, "rb") as f:
            saved = saved_model_pb2.SavedModel.FromString(f.read())
    except DecodeError:
        return "saved_model.pb does not parse (cut short?)"
    if not saved.meta_graphs:
        return "saved_model.pb holds no MetaGraphDef"
    variables = os.path.join(version_dir, "variables")
    if gfile.isdir(variables):
        names = set(gfile.listdir(variables))
        if "variables.index" not in names:
            return "variables/variables.index is missing"
        shards = [_DATA_SHARD.match(n) for n in names]
        counts = {int(m[2]) for m in shards if m}
        for count in counts:
            missing = [i for i in range(count) if f"variables.data-{i:05d}-of-{count:05d}" not in names]
            if missing:
                return f"variables shard(s) {missing} of {count} are missing"
    return None


def served_versions(serving_dir: str) -> list[int]:
    """Versions under a TF Serving model directory that hold a complete SavedModel, ascending.

    An all-digit directory that does not (a push cut short) is skipped with a warning naming it
    and why; TF Serving would try to load it.
    """
    gfile = _gfile()
    if not gfile.isdir(serving_dir):
        return []
    versions = []
    for name in gfile.listdir(serving_dir):
        name = name.rstrip("/")
        if not name.isdigit():
            continue
        reason = incomplete_reason(os.path.join(serving_dir, name))
        if reason is None:
            versions.append(int(name))
        else:
            log.warning(
                "skipping %s: not a complete SavedModel (%s); TF Serving would fail to load it",
                os.path.join(serving_dir, name),
                reason,
            )
    return sorted(versions)


SEMANTIC_HASHES = ("graph_def_program_hash", "signature_def_hash", "saved_object_graph_hash", "checkpoint_hash")


def same_saved_model(a: str, b: str) -> bool:
    """Whether two SavedModel directories hold the same model: the semantic hashes of TensorFlow's
    fingerprint (fingerprint.pb: the graph's program, the signatures, the object graph and the
    checkpoint) are equal. Its `uuid` is drawn anew by every save and its `saved_model_checksum`
    hashes saved_model.pb's bytes, which differ between two saves of the same seeded training
    (tests/models/test_model.py), so neither counts. Files outside the fingerprint (assets.extra/
    warm-up records, the push record) do not count either."""
    from tensorflow.core.protobuf import fingerprint_pb2

    gfile = _gfile()
    paths = [os.path.join(d, "fingerprint.pb") for d in (a, b)]
    if not all(gfile.exists(p) for p in paths):
        return False
    fingerprints = []
    for path in paths:
        with gfile.GFile(path, "rb") as f:
            fingerprint = fingerprint_pb2.FingerprintDef.FromString(f.read())
        fingerprints.append(tuple(getattr(fingerprint, field) for field in SEMANTIC_HASHES))
    return any(fingerprints[0]) and fingerprints[0] == fingerprints[1]


def publish_version(
    source: str, serving_dir: str, version: int | None = None, extra_files: dict[str, bytes] | None = None
) -> tuple[int, str]:
    """Copies SavedModel `source` into `serving_dir` as a new version, atomically for TF Serving.

    The copy goes under a hidden name first, gets `extra_files` (name -> content, e.g. the push
    record), is checked complete, synced to disk and then renamed to its all-digit name, so a
    server (and `served_versions`) sees either no version or a whole one with its record. A copy
    that fails is removed. Returns (version, its directory). On object stores (gs://, s3://) a
    rename is a copy, so there the check is what guarantees completeness.
    """
    gfile = _gfile()
    gfile.makedirs(serving_dir)
    existing = served_versions(serving_dir)
    version = version or max(int(time.time()), (existing[-1] + 1) if existing else 0)
    final = os.path.join(serving_dir, str(version))
    if gfile.exists(final):
        raise FileExistsError(f"{final} exists already")
    partial = os.path.join(serving_dir, f"{PARTIAL_PREFIX}{version}")
    if gfile.exists(partial):
        gfile.rmtree(partial)
    try:
        copy_tree(source, partial)
        for name, content in (extra_files or {}).items():
            with gfile.GFile(os.path.join(partial, name), "wb") as f:
                f.write(content)
        reason = incomplete_reason(partial)
        if reason is not None:
            raise OSError(f"the copy of {source} in {partial} is not a complete SavedModel: {reason}")
        _sync_tree(partial)
        gfile.rename(partial, final)
    except BaseException:
        if gfile.exists(partial):
            gfile.rmtree(partial)
        raise
    _sync_dir(serving_dir)
    return version, final


def _sync_tree(directory: str) -> None:
    """fsyncs every file and directory of a local tree (object stores need none)."""
    if "://" in directory:
        return
    for root, _, files in os.walk(directory):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _sync_dir(root)


def _sync_dir(directory: str) -> None:
    if "://" in directory:
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def latest_served(serving_dir: str) -> str | None:
    """The directory of the newest served version, or None when nothing is served."""
    versions = served_versions(serving_dir)
    return os.path.join(serving_dir, str(versions[-1])) if versions else None


def holds_serving_model(artifact_uri: str) -> bool:
    """Whether a Model artifact holds a SavedModel in TFX's serving layout (Format-Serving/)."""
    from tfx.utils import path_utils

    gfile = _gfile()
    return any(gfile.exists(os.path.join(path_utils.serving_model_path(artifact_uri), f)) for f in SAVED_MODEL_FILES)


def copy_tree(source: str, destination: str) -> None:
    """Copies a directory tree (a SavedModel) between any two gfile paths."""
    gfile = _gfile()
    for directory, _, files in gfile.walk(source):
        target = os.path.join(destination, os.path.relpath(directory, source))
        gfile.makedirs(target)
        for name in files:
            gfile.copy(os.path.join(directory, name), os.path.join(target, name), overwrite=True)


def read_push_record(version_dir: str) -> dict | None:
    """The push record a version was published with (PUSH_RECORD), or None."""
    import json

    gfile = _gfile()
    path = os.path.join(version_dir, PUSH_RECORD)
    if not gfile.exists(path):
        return None
    with gfile.GFile(path, "rb") as f:
        return json.loads(f.read())
