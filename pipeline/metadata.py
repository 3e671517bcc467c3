"""The pipeline's ML Metadata connection and the record helpers its runners and ops share.

The local runner opens the SQLite store here and marks what a dead run left RUNNING; the
commands in ops/ read runs, lineage and leftovers through the same helpers. Only ML Metadata's
own client is imported, so the commands that read the store start without TensorFlow.
"""

from __future__ import annotations

import os
from typing import Any

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.config import ConfigError

STATE_NAMES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}  # COMPLETE, CACHED, ...


def sqlite_config(path: str) -> metadata_store_pb2.ConnectionConfig:
    """The connection TFX's `sqlite_metadata_connection_config` makes, built from ML Metadata's
    proto alone: importing tfx.orchestration.metadata loads TensorFlow."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return config


class NoMetadataStore(ConfigError, FileNotFoundError):
    """The store does not exist yet: bad input for the commands that read it (exit code 2)."""


class StoreDamaged(RuntimeError):
    """The SQLite store cannot be read (truncated, overwritten, a disk fault): one line with the
    path, what it means for the served models and what to do."""

    def __init__(self, metadata_path: str, reason: str, serving_dir: str | None = None):
        self.metadata_path, self.reason = metadata_path, reason
        served = f"the served models under {serving_dir}" if serving_dir else "the served models"
        super().__init__(
            f"the ML Metadata store {metadata_path} is damaged ({reason}); {served} are untouched "
            "(the store only records runs): run `tfxp doctor --fix` with the same --config and --set "
            "to move it aside (kept, with a timestamped name), and the next run starts a fresh store "
            "and compares against the served model"
        )


def store_damage(metadata_path: str) -> str | None:
    """Why the SQLite file at `metadata_path` cannot be read, or None when it can (or is absent,
    or is empty: ML Metadata makes a new store in an empty file). SQLite's quick_check reads
    every page; an error that is not damage (the file locked by a writer) is not judged."""
    import sqlite3
    import urllib.parse

    if not os.path.isfile(metadata_path) or os.path.getsize(metadata_path) == 0:
        return None
    try:
        # Read-write (not create), as ML Metadata opens it: a read-only connection cannot roll
        # back a hot journal and would report the store locked instead of reading it.
        connection = sqlite3.connect(f"file:{urllib.parse.quote(metadata_path)}?mode=rw", uri=True)
        try:
            rows = connection.execute("PRAGMA quick_check").fetchall()
        finally:
            connection.close()
    except sqlite3.OperationalError:
        return None
    except sqlite3.DatabaseError as err:  # SQLITE_CORRUPT, SQLITE_NOTADB
        return str(err)
    if rows != [("ok",)]:
        return f"SQLite's integrity check: {rows[0][0]}"
    return None


def check_store(metadata_path: str, serving_dir: str | None = None) -> None:
    """StoreDamaged when the store cannot be read."""
    reason = store_damage(metadata_path)
    if reason is not None:
        raise StoreDamaged(metadata_path, reason, serving_dir)


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    if not os.path.exists(metadata_path):
        raise NoMetadataStore(f"no ML Metadata store at {metadata_path}: run the pipeline first")
    try:
        return metadata_store.MetadataStore(sqlite_config(metadata_path))
    except RuntimeError:  # ML Metadata's errors on opening are RuntimeErrors with its query text
        check_store(metadata_path)
        raise


INTERRUPTED_PROPERTY = "interrupted"


def mark_interrupted(metadata_path: str) -> int:
    """Marks executions that a dead run left RUNNING as CANCELED, with `interrupted` = 1.

    Called by a run that holds the output directory's run lock, so no live run owns them.
    TFX then starts them anew (a cancelled execution is never a cache hit). Returns how many.
    """
    if not os.path.exists(metadata_path):
        return 0
    store = open_store(metadata_path)
    left = [
        e
        for e in store.get_executions()
        if e.last_known_state in (metadata_store_pb2.Execution.RUNNING, metadata_store_pb2.Execution.NEW)
    ]
    for execution in left:
        execution.last_known_state = metadata_store_pb2.Execution.CANCELED
        execution.custom_properties[INTERRUPTED_PROPERTY].int_value = 1
    if left:
        store.put_executions(left)
    return len(left)


def node_id(store, execution, pipeline_name: str) -> str:
    """The component id, from the node context TFX attaches to every execution."""
    prefix = pipeline_name + "."
    for context in store.get_contexts_by_execution(execution.id):
        if context.name.startswith(prefix):
            return context.name[len(prefix) :]
    return execution.type


INPUT_EVENTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)
OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)


def producers(store, artifact_ids: list[int]) -> dict[int, int]:
    """{artifact id: the execution that produced it}: the first to output it. Later cached
    runs record outputs to the same artifact too, without having produced it."""
    first: dict[int, int] = {}
    for event in store.get_events_by_artifact_ids(artifact_ids):
        if event.type in OUTPUT_EVENTS:
            first[event.artifact_id] = min(event.execution_id, first.get(event.artifact_id, event.execution_id))
    return first


def value_of(value) -> Any:
    """The Python value of an ML Metadata Value proto (None when unset)."""
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def custom_property(node, key: str) -> Any:
    """A custom property of an artifact or execution, or None."""
    value = node.custom_properties.get(key)
    return None if value is None else value_of(value)
