"""`tfxp runs`: what the pipeline recorded in ML Metadata, run by run: executions, metrics, pushes.

TensorFlow (through TFMA) is loaded only to read a run's evaluation, so listing the runs of an
empty store, or `--help`, starts without it.
"""

from __future__ import annotations

import dataclasses
import datetime
import os

from ml_metadata.proto import metadata_store_pb2

from components.evaluator.results import class_names, evaluation_overview, format_metric, validation_failures
from contracts import model_config
from models.tasks import TASKS, describe_gate
from pipeline.metadata import (
    INTERRUPTED_PROPERTY,
    OUTPUT_EVENTS,
    STATE_NAMES,
    custom_property,
    node_id,
    open_store,
)


@dataclasses.dataclass
class ExecutionInfo:
    node_id: str
    state: str  # COMPLETE, CACHED, FAILED, RUNNING, ...
    window: tuple[float, float] | None  # (start, end) in seconds since the epoch

    @property
    def seconds(self) -> float | None:
        return None if self.window is None else self.window[1] - self.window[0]


@dataclasses.dataclass
class RunInfo:
    run_id: str
    started: datetime.datetime
    executions: list[ExecutionInfo]
    metrics: dict[str, float]
    blessed: bool | None
    pushed_to: str | None
    failures: list[str]
    baseline: str | None = None  # what the Evaluator compared with: a served version, or none
    span: int | None = None  # the data span the run checked for drift
    drift_baseline_span: int | None = None  # the accepted span it was compared with (None: the first)
    drift_accepted: bool = False  # the run was told to accept drift (drift.accept)
    already_served: str | None = None  # not pushed: this served version holds the same model
    serving_checks: list[str] = dataclasses.field(default_factory=list)  # which checks passed, and how
    gates: list[dict] = dataclasses.field(default_factory=list)  # first-run gates the Evaluator applied
    compared_with_baseline: bool = False  # the evaluation judged the candidate against a baseline model
    candidate: str | None = None  # the Trainer's SavedModel directory: the model evaluated
    labels: list[str] = dataclasses.field(default_factory=list)  # the labels naming the pushed version now
    labels_pending: str | None = None  # why the push did not move the labels (the Pusher's canary_pending)


def _outputs(store, execution_ids: list[int]) -> dict[str, list]:
    """Output artifacts of the given executions, by artifact type name."""
    events = store.get_events_by_execution_ids(execution_ids)
    ids = [e.artifact_id for e in events if e.type in OUTPUT_EVENTS]
    by_type: dict[str, list] = {}
    for artifact in store.get_artifacts_by_id(ids):
        by_type.setdefault(artifact.type, []).append(artifact)
    return by_type


# What the run summary shows, per task, in this order: the first of these lists whose
# metrics the evaluation has (a task's metric names are its own).
SUMMARY_METRICS = tuple(definition.summary_metrics for definition in TASKS.values())


def runs(metadata_path: str, pipeline_name: str, limit: int = 5, live_run: bool = True) -> list[RunInfo]:
    """The most recent pipeline runs, newest first. Without `live_run` (no process holds the
    run lock) an execution still RUNNING belongs to a dead run and shows as INTERRUPTED."""
    store = open_store(metadata_path)
    # Each pipeline has a store of its own (metadata/<pipeline>/), so every run context is ours.
    contexts = sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.create_time_since_epoch, reverse=True)
    found = []
    for context in contexts:
        executions = store.get_executions_by_context(context.id)
        if executions:
            found.append(_run_info(store, context, executions, pipeline_name, live_run))
            if len(found) == limit:
                break
    return found


_UNFINISHED = (metadata_store_pb2.Execution.RUNNING, metadata_store_pb2.Execution.NEW)


def _run_info(store, context, executions, pipeline_name: str, live_run: bool = True) -> RunInfo:
    # The executors define the properties they record, and importing them loads TFX.
    from tfx.utils import path_utils

    from components.atomic_pusher.executor import CANARY_PENDING
    from components.drift_check.executor import BASELINE_SPAN_PROPERTY, SPAN_PROPERTY
    from components.evaluator.gates import read_gates
    from components.serving_baseline.executor import SOURCE_PROPERTY
    from components.serving_check.executor import CHECK_PROPERTY
    from components.serving_check.executor import outcome as serving_check_outcome

    executions = sorted(executions, key=lambda e: e.create_time_since_epoch)
    infos = []
    for e in executions:
        window = None
        if e.last_update_time_since_epoch and e.create_time_since_epoch:
            window = (e.create_time_since_epoch / 1000.0, e.last_update_time_since_epoch / 1000.0)
        interrupted = custom_property(e, INTERRUPTED_PROPERTY) or (not live_run and e.last_known_state in _UNFINISHED)
        state = "INTERRUPTED" if interrupted else STATE_NAMES.get(e.last_known_state, "?")
        infos.append(ExecutionInfo(node_id(store, e, pipeline_name), state, window))
    outputs = _outputs(store, [e.id for e in executions]) if executions else {}
    metrics: dict[str, float] = {}
    failures: list[str] = []
    gates: list[dict] = []
    compared = False
    for evaluation in outputs.get("ModelEvaluation", [])[-1:]:
        try:
            metrics, compared = evaluation_overview(evaluation.uri)
            gates = read_gates(evaluation.uri)
        except Exception as err:  # noqa: BLE001 - a summary must not fail on a damaged artifact
            failures.append(f"metrics unreadable at {evaluation.uri}: {err}")
    blessed = None
    for blessing in outputs.get("ModelBlessing", [])[-1:]:
        blessed = bool(custom_property(blessing, "blessed"))
        if not blessed and outputs.get("ModelEvaluation"):
            failures += validation_failures(outputs["ModelEvaluation"][-1].uri, gates)
    candidate = None
    trainers = [e.id for info, e in zip(infos, executions) if info.node_id == "Trainer"]
    for model in (_outputs(store, trainers).get("Model", []) if trainers else [])[-1:]:
        candidate = path_utils.serving_model_path(model.uri)
    serving_checks = []
    for infra in outputs.get("InfraBlessing", []):
        serving_checks.append(
            serving_check_outcome(bool(custom_property(infra, "blessed")), custom_property(infra, CHECK_PROPERTY))
        )
    baseline = None
    for model in outputs.get("Model", []):
        baseline = custom_property(model, SOURCE_PROPERTY) or baseline
    span = drift_baseline_span = None
    for anomalies in outputs.get("ExampleAnomalies", []):
        checked = custom_property(anomalies, SPAN_PROPERTY)
        if checked is not None:
            span = checked
            baseline_span = custom_property(anomalies, BASELINE_SPAN_PROPERTY)
            drift_baseline_span = None if baseline_span is None or baseline_span < 0 else baseline_span
    drift_accepted = any(
        info.node_id == "AnomaliesGate" and custom_property(e, "accept_drift") == 1
        for info, e in zip(infos, executions)
    )
    pushed_to = already_served = labels_pending = None
    labels: list[str] = []
    for pushed in outputs.get("PushedModel", [])[-1:]:
        if custom_property(pushed, "pushed"):
            pushed_to = custom_property(pushed, "pushed_destination")
            labels_pending = custom_property(pushed, CANARY_PENDING)
        already_served = custom_property(pushed, "already_served")
    version = os.path.basename(pushed_to.rstrip("/")) if pushed_to else ""
    if version.isdigit():
        labels = model_config.labels_of(os.path.dirname(pushed_to.rstrip("/")), int(version))
    return RunInfo(
        run_id=context.name,
        started=datetime.datetime.fromtimestamp(context.create_time_since_epoch / 1000),
        executions=infos,
        metrics=metrics,
        blessed=blessed,
        pushed_to=pushed_to,
        failures=failures,
        baseline=baseline,
        span=span,
        drift_baseline_span=drift_baseline_span,
        drift_accepted=drift_accepted,
        serving_checks=serving_checks,
        already_served=already_served,
        gates=gates,
        compared_with_baseline=compared,
        candidate=candidate,
        labels=labels,
        labels_pending=labels_pending,
    )


def trainer_choice(model_dir: str | None) -> dict:
    """What trainer.model trained and exported, as the Trainer recorded it beside the SavedModel
    ({} for models exported before the record existed)."""
    import json

    from contracts.saved_model import ASSETS_EXTRA, TRAINER_CHOICE

    path = os.path.join(model_dir, ASSETS_EXTRA, TRAINER_CHOICE) if model_dir else ""
    if not path or not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def describe_choice(choice: dict) -> str:
    """`gbt (trainer.model auto: val_auc on 254 eval rows: dnn 0.95, gbt 0.96; the network
    leads by -1.2 standard errors, needs 1.645)`; records from before the paired test
    (models/model_choice.py) lack the rows and the lead."""
    if choice.get("configured") != "auto":
        return f"{choice['model']} (trainer.model)"
    scores = ", ".join(f"{name} {value:.4g}" for name, value in sorted(choice["eval_scores"].items()))
    if not choice["eval_scores"]:
        return f"{choice['model']} (trainer.model auto: {choice['reason']})"
    if "eval_rows" not in choice:
        return f"{choice['model']} (trainer.model auto: {choice['objective']} on the eval split: {scores})"
    z = choice.get("network_lead_z")
    lead = "the network leads on every row" if z is None else f"the network leads by {z:.2f} standard errors"
    return (
        f"{choice['model']} (trainer.model auto: {choice['objective']} on {choice['eval_rows']} eval rows: "
        f"{scores}; {lead}, needs {choice['needed_z']})"
    )


def format_run(run: RunInfo) -> str:
    lines = [f"run {run.run_id} (started {run.started:%Y-%m-%d %H:%M:%S})"]
    for e in run.executions:
        took = f"{e.seconds:7.1f} s" if e.seconds is not None else "        "
        lines.append(f"  {e.node_id:<18} {e.state:<9} {took}")
    if run.span is not None:
        compared = (
            f"compared with span {run.drift_baseline_span}"
            if run.drift_baseline_span is not None
            else "the first span: nothing to compare with"
        )
        accepted = "; drift accepted (drift.accept)" if run.drift_accepted else ""
        lines.append(f"  data span: {run.span} ({compared}){accepted}")
    choice = trainer_choice(run.candidate) or trainer_choice(run.pushed_to)
    if choice:
        lines.append(f"  trained model: {describe_choice(choice)}")
    if run.metrics:
        wanted = next((names for names in SUMMARY_METRICS if names[0] in run.metrics), SUMMARY_METRICS[0])
        shown = [format_metric(k, run.metrics[k]) for k in wanted if k in run.metrics]
        lines.append("  test-split metrics: " + ", ".join(shown))
        per_class = sorted(
            {k.split("/", 1)[1] for k in run.metrics if "/classId:" in k},
            key=lambda sub_key: int(sub_key.split(":")[1]),
        )
        # The candidate's: the model these metrics are of, pushed or refused.
        names = class_names(run.candidate) or class_names(run.pushed_to)
        for sub_key in per_class:
            values = [
                format_metric(name, run.metrics[f"{name}/{sub_key}"])
                for name in ("precision", "recall", "f1_score", "auc")
                if f"{name}/{sub_key}" in run.metrics
            ]
            index = int(sub_key.split(":")[1])
            label = f"{index} ({names[index]})" if index < len(names) else str(index)
            lines.append(f"    class {label}: " + ", ".join(values))
    if run.baseline:
        lines.append(f"  baseline: {run.baseline}")
    for check in run.serving_checks:
        lines.append(f"  serving check: {check}")
    # The gates come from the data wherever no value threshold is set; only a run that compared
    # with no baseline was judged by them alone, as a first run is (after `tfxp doctor --fix`
    # the fresh store's first run still compares with the served version).
    label = "gate from the data, besides the baseline" if run.compared_with_baseline else "first-run gate"
    for gate in run.gates:
        relation = ">=" if gate["higher_is_better"] else "<="
        lines.append(
            f"  {label}: {gate['metric']} {relation} {gate['threshold']:.4g} "
            f"({describe_gate(gate)}; evaluator.first_run_margin)"
        )
    if run.blessed is not None:
        lines.append(f"  blessed: {'yes' if run.blessed else 'no'}")
    for failure in run.failures:
        lines.append(f"    - {failure}")
    if run.already_served and not run.pushed_to:
        lines.append(f"  pushed model: none (the same model is already served: {run.already_served})")
    else:
        labelled = f" (labels now: {', '.join(run.labels)})" if run.labels else ""
        lines.append(f"  pushed model: {run.pushed_to or 'none'}{labelled}")
    if run.labels_pending:
        lines.append(f"  labels not moved: {run.labels_pending}")
    return "\n".join(lines)
