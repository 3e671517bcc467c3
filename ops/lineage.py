"""`tfxp lineage`: what produced a pushed model, from ML Metadata's lineage.

`lineage` walks the events upstream from the Pusher's output for one served version and
reports the data spans, the schema, the hyperparameters, the training run and the metrics
that led to it. A `tfxp rollback` copy (ops/rollback.py) reports the lineage of its source.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from components.evaluator.results import evaluation_metrics, format_metric
from contracts.saved_model import ASSETS_EXTRA, PUSH_RECORD, ROLLED_BACK_FROM
from contracts.serving_dir import read_push_record, served_versions
from pipeline.config import ConfigError
from pipeline.metadata import (
    INPUT_EVENTS,
    OUTPUT_EVENTS,
    custom_property,
    node_id,
    open_store,
    producers,
    value_of,
)


@dataclasses.dataclass
class Lineage:
    version: int
    path: str
    run_id: str | None
    spans: list[int]
    data: list[str]  # ExampleGen's input base and the pattern it read
    schema: str | None  # the schema file, imported or inferred
    schema_imported: bool
    hyperparameters: dict[str, Any]
    trained_model: str | None
    metrics: dict[str, float]
    producers: dict[str, int]  # component id -> execution id, upstream of the push
    rolled_back_from: int | None = None  # a `tfxp rollback` copy of this version
    from_push_record: bool = False  # ML Metadata has no record of the push: read from PUSH_RECORD
    statistics: str | None = None  # StatisticsGen's artifact (one directory per split)
    pushed_artifact_id: int | None = None  # the Pusher's PushedModel artifact in ML Metadata


def served_version(serving_dir: str, version: int | None = None) -> int:
    """`version` if it is served from `serving_dir`, else the newest served one when None;
    ConfigError (one line, the served versions) otherwise."""
    versions = served_versions(serving_dir)
    if not versions:
        raise ConfigError(f"nothing is served from {serving_dir}; run the pipeline first")
    version = versions[-1] if version is None else version
    if version not in versions:
        raise ConfigError(
            f"version {version} is not served from {serving_dir}; served versions: {', '.join(map(str, versions))}"
        )
    return version


def lineage(metadata_path: str, pipeline_name: str, serving_dir: str, version: int | None = None) -> Lineage:
    """The lineage of `version` (default: the newest) under `serving_dir`."""
    version = served_version(serving_dir, version)
    path = os.path.join(serving_dir, str(version))
    marker = os.path.join(path, ASSETS_EXTRA, ROLLED_BACK_FROM)
    if os.path.exists(marker):
        with open(marker) as f:
            source = int(f.read().strip())
        return dataclasses.replace(
            lineage(metadata_path, pipeline_name, serving_dir, source),
            version=version,
            path=path,
            rolled_back_from=source,
        )
    store = open_store(metadata_path)
    pushed = [
        a
        for a in store.get_artifacts_by_type("PushedModel")
        if custom_property(a, "pushed")
        and os.path.normpath(str(custom_property(a, "pushed_destination"))) == os.path.normpath(path)
    ]
    record = None if pushed else read_push_record(path)
    if pushed:
        executions, artifacts = _upstream(store, [pushed[-1].id])
    else:
        executions, artifacts = _upstream_of_record(store, pipeline_name, record)
        if not executions:
            raise ConfigError(
                f"version {version} was not pushed by a run recorded in {metadata_path} "
                "(copied by hand, or by `tfxp rollback`, which names its source)"
            )
    by_node = {node_id(store, e, pipeline_name): e for e in executions}
    by_type: dict[str, list] = {}
    for artifact in artifacts:
        by_type.setdefault(artifact.type, []).append(artifact)
    example_gen = by_node.get("ExampleGen")
    spans, data = [], []
    if example_gen is not None:
        props = example_gen.custom_properties
        if "span" in props:
            spans.append(int(value_of(props["span"])))
        patterns = [s.get("pattern", "") for s in json.loads(value_of(props["input_config"]) or "{}").get("splits", [])]
        data = [os.path.join(str(value_of(props["input_base"])), p) for p in patterns]
    schema_gen = by_node.get("SchemaGen")
    schema_imported = schema_gen is not None and "schema_file" in schema_gen.custom_properties
    schema = None
    if schema_imported:
        schema = value_of(schema_gen.custom_properties["schema_file"])
    elif by_type.get("Schema"):
        schema = os.path.join(by_type["Schema"][-1].uri, "schema.pbtxt")
    hyperparameters: dict[str, Any] = {}
    for artifact in by_type.get("HyperParameters", []):
        with open(os.path.join(artifact.uri, "best_hyperparameters.txt")) as f:
            hyperparameters = json.load(f).get("values", {})
    trainer = by_node.get("Trainer")
    if not hyperparameters and trainer is not None and "custom_config" in trainer.custom_properties:
        hyperparameters = dict(json.loads(value_of(trainer.custom_properties["custom_config"])).get("trainer", {}))
    metrics: dict[str, float] = {}
    evaluator = by_node.get("Evaluator")
    if evaluator is not None:
        outputs = [e.artifact_id for e in store.get_events_by_execution_ids([evaluator.id]) if e.type in OUTPUT_EVENTS]
        for artifact in store.get_artifacts_by_id(outputs):
            if artifact.type == "ModelEvaluation":
                metrics = evaluation_metrics(artifact.uri)
    pusher = by_node.get("Pusher")
    run_type = store.get_context_type("pipeline_run")
    run_ids = (
        [
            c.name
            for c in store.get_contexts_by_execution(pusher.id)
            if run_type is not None and c.type_id == run_type.id
        ]
        if pusher is not None
        else []
    )
    if not run_ids and record:
        run_ids = [record["run_id"]] if record.get("run_id") else []
    trained = [a.uri for a in by_type.get("Model", []) if "/Trainer/" in a.uri]
    statistics = [a.uri for a in by_type.get("ExampleStatistics", []) if "/StatisticsGen/" in a.uri]
    return Lineage(
        version=version,
        path=path,
        run_id=run_ids[0] if run_ids else None,
        spans=spans,
        data=data,
        schema=schema,
        schema_imported=schema_imported,
        hyperparameters=hyperparameters,
        trained_model=trained[0] if trained else None,
        metrics=metrics,
        producers={name: e.id for name, e in sorted(by_node.items())},
        from_push_record=record is not None,
        statistics=statistics[0] if statistics else None,
        pushed_artifact_id=pushed[-1].id if pushed else None,
    )


def _upstream_of_record(store, pipeline_name: str, record: dict | None):
    """Lineage from a version's push record: upstream of the Pusher execution it names (its
    inputs are recorded when it starts), else of the model and blessings it names."""
    if not record or record.get("pipeline") not in (None, pipeline_name):
        return [], []
    execution_id = record.get("pusher_execution_id")
    pusher = store.get_executions_by_id([execution_id]) if isinstance(execution_id, int) else []
    if pusher and node_id(store, pusher[0], pipeline_name) == "Pusher":
        inputs = [e.artifact_id for e in store.get_events_by_execution_ids([execution_id]) if e.type in INPUT_EVENTS]
        return _upstream(store, inputs, {execution_id})
    named = [
        a["id"]
        for key in ("model", "model_blessing", "infra_blessing")
        for a in record.get(key, [])
        if isinstance(a.get("id"), int)
    ]
    return _upstream(store, [a.id for a in store.get_artifacts_by_id(named)]) if named else ([], [])


def _upstream(store, artifact_ids: list[int], executions: set[int] | None = None):
    """Every execution and artifact upstream of some artifacts (them included), and of
    `executions` (them included)."""
    seen_artifacts, seen_executions = set(artifact_ids), set(executions or ())
    frontier = list(artifact_ids)
    while frontier:
        producing = set(producers(store, frontier).values()) - seen_executions
        seen_executions |= producing
        inputs = {e.artifact_id for e in store.get_events_by_execution_ids(list(producing)) if e.type in INPUT_EVENTS}
        frontier = list(inputs - seen_artifacts)
        seen_artifacts |= inputs
    executions = sorted(store.get_executions_by_id(list(seen_executions)), key=lambda e: e.id)
    return executions, store.get_artifacts_by_id(list(seen_artifacts))


def format_lineage(found: Lineage) -> str:
    lines = [f"version {found.version}: {found.path}"]
    if found.from_push_record:
        lines.append(f"  not recorded in ML Metadata (the run was stopped after the push): from {PUSH_RECORD}")
    if found.rolled_back_from is not None:
        lines.append(f"  a rollback: a copy of version {found.rolled_back_from}, whose lineage follows")
    lines += [
        f"  pushed by run: {found.run_id or 'unknown'}",
        f"  data span(s): {', '.join(map(str, found.spans)) or '0 (no span pattern)'}",
        *[f"  data: {d}" for d in found.data],
        f"  schema: {found.schema or 'unknown'} ({'curated, imported' if found.schema_imported else 'inferred'})",
        "  hyperparameters: " + json.dumps(found.hyperparameters, sort_keys=True),
        f"  trained model: {found.trained_model or 'unknown'}",
    ]
    if found.metrics:
        shown = ", ".join(
            format_metric(k, v)
            for k, v in sorted(found.metrics.items())
            if k in ("auc", "binary_accuracy", "precision", "recall", "example_count")
        )
        lines.append(f"  test-split metrics: {shown}")
    lines.append("  produced by: " + ", ".join(f"{name} (execution {eid})" for name, eid in found.producers.items()))
    return "\n".join(lines)
