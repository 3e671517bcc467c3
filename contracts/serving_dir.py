"""The serving directory's layout: TF Serving's `<base path>/<version>/` with the versions that
hold a complete SavedModel, the hidden copies a push or rollback stages, the atomic publish of
a new version and the push record beside it.

The Pusher (components/atomic_pusher), the ServingBaseline, the Trainer's warm start (models/),
the stand-in (serving/), the local runner (pipeline/) and `tfxp rollback`, `lineage`, `doctor`
and `monitor` (ops/) all read or write it through these functions.
"""

from __future__ import annotations

import logging
import os
import re
import time

from contracts.saved_model import PUSH_RECORD, SAVED_MODEL_PB, SAVED_MODEL_PBTXT

# TF Serving's file system source takes every all-digit directory as a version: a push is
# written under this prefix first, where it looks at nothing, and renamed when complete.
PARTIAL_PREFIX = ".partial-"
ROLLBACK_PREFIX = ".rollback-"  # `tfxp rollback`'s staging directory (ops/rollback.py), hidden alike
_DATA_SHARD = re.compile(r"^variables\.data-(\d+)-of-(\d+)$")

log = logging.getLogger(__name__)


def _gfile():
    import tensorflow as tf  # gfile reads local paths and object stores (gs://, s3://) alike

    return tf.io.gfile


def is_version(name: str) -> bool:
    """Whether TF Serving takes a directory of this name as a version (all digits)."""
    return name.isdigit()


def version_names(serving_dir: str) -> list[str]:
    """The names of every version directory under `serving_dir`, complete or not, ascending."""
    return sorted((name for name in _listdir(serving_dir) if is_version(name)), key=int)


def _listdir(directory: str) -> list[str]:
    """A directory's entries ([] when there is none). A local one is read without TensorFlow, so
    the local runner lists versions before it imports TensorFlow (whose import writes output)."""
    if "://" not in directory:
        try:
            return os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            return []
    gfile = _gfile()
    return [name.rstrip("/") for name in gfile.listdir(directory)] if gfile.isdir(directory) else []


def incomplete_reason(version_dir: str) -> str | None:
    """Why a version directory does not hold a complete SavedModel, or None when it does:
    saved_model.pb parses and every variables shard its index names is there."""
    # TensorFlow's protos, imported here: only parsing saved_model.pb tells a cut-short copy.
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    gfile = _gfile()
    pb = os.path.join(version_dir, SAVED_MODEL_PB)
    if not gfile.exists(pb):
        if gfile.exists(os.path.join(version_dir, SAVED_MODEL_PBTXT)):
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
    versions = []
    for name in version_names(serving_dir):
        reason = incomplete_reason(os.path.join(serving_dir, name))
        if reason is None:
            versions.append(int(name))
        else:
            log.warning(
                "skipping %s: not a complete SavedModel (%s); TF Serving would fail to load it",
                os.path.join(serving_dir, name),
                reason,
            )
    return versions


def latest_served(serving_dir: str) -> str | None:
    """The directory of the newest served version, or None when nothing is served."""
    versions = served_versions(serving_dir)
    return os.path.join(serving_dir, str(versions[-1])) if versions else None


def next_version(serving_dir: str) -> int:
    """The version number a push gets: the time in seconds, or one past the newest version when
    that is later (two pushes in one second, or a clock set back)."""
    existing = served_versions(serving_dir)
    return max(int(time.time()), (existing[-1] + 1) if existing else 0)


def publish_version(
    source: str, serving_dir: str, version: int | None = None, extra_files: dict[str, bytes] | None = None
) -> tuple[int, str]:
    """Copies SavedModel `source` into `serving_dir` as a new version, atomically for TF Serving.

    The copy goes under a hidden name first, gets `extra_files` (relative path -> content, e.g.
    the push record and assets.extra/model_card.md), is checked complete, synced to disk and
    then renamed to its all-digit name, so a server (and `served_versions`) sees either no
    version or a whole one with its record and card. A copy that fails is removed. Returns
    (version, its directory). On object stores (gs://, s3://) a rename is a copy, so there the
    check is what guarantees completeness.
    """
    gfile = _gfile()
    gfile.makedirs(serving_dir)
    version = version or next_version(serving_dir)
    final = os.path.join(serving_dir, str(version))
    if gfile.exists(final):
        raise FileExistsError(f"{final} exists already")
    partial = os.path.join(serving_dir, f"{PARTIAL_PREFIX}{version}")
    if gfile.exists(partial):
        gfile.rmtree(partial)
    try:
        copy_tree(source, partial)
        for name, content in (extra_files or {}).items():
            gfile.makedirs(os.path.dirname(os.path.join(partial, name)))
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
    sync_dir(serving_dir)
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
        sync_dir(root)


def sync_dir(directory: str) -> None:
    """fsync a local directory, so a rename into it survives a crash (nothing on object stores)."""
    if "://" in directory:
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
