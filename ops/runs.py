"""`tfxp runs`: what the pipeline recorded in ML Metadata, run by run: executions, metrics, pushes.

TensorFlow (through TFMA) is loaded only to read a run's evaluation, so listing the runs of an
empty store, or `--help`, starts without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os

from ml_metadata.proto import metadata_store_pb2

from models.tasks import METRIC_OPTIONS, TASKS, describe_gate
from pipeline.metadata import (
    INTERRUPTED_PROPERTY,
    OUTPUT_EVENTS,
    STATE_NAMES,
    custom_property,
    node_id,
    open_store,
)


def format_metric(name: str, value: float) -> str:
    """`name=value`: counts as whole numbers, the rest to four significant digits."""
    return f"{name}={int(value)}" if name == "example_count" else f"{name}={value:.4g}"


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
    candidate: str | None = None  # the Trainer's SavedModel directory: the model evaluated


def _outputs(store, execution_ids: list[int]) -> dict[str, list]:
    """Output artifacts of the given executions, by artifact type name."""
    events = store.get_events_by_execution_ids(execution_ids)
    ids = [e.artifact_id for e in events if e.type in OUTPUT_EVENTS]
    by_type: dict[str, list] = {}
    for artifact in store.get_artifacts_by_id(ids):
        by_type.setdefault(artifact.type, []).append(artifact)
    return by_type


@contextlib.contextmanager
def _no_deprecation_notes():
    """TFMA reads its results with `tf_record_iterator`, whose deprecation note TensorFlow logs
    at WARNING on its Python logger; a summary on the terminal has no use for it."""
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tf_logger.setLevel(level)


# TFMA names a macro-averaged metric by its AggregationType proto's text, then the metric.
_MACRO_PREFIX = "macro_average: true\n_"


def metric_key(name: str, sub_key: str) -> str:
    """A TFMA metric's name as the summary, lineage and monitor show it: per class
    `precision/classId:0`, macro averages `macro_f1_score`."""
    name = "macro_" + name[len(_MACRO_PREFIX) :] if name.startswith(_MACRO_PREFIX) else name
    return f"{name}/{sub_key}" if sub_key else name


def metric_values(by_output: dict) -> dict[str, float]:
    """The numeric metrics of one slice of a TFMA result (`slicing_metrics`' per-output dicts),
    named by metric_key: per class `f1_score/classId:0`, macro averages `macro_f1_score`."""
    values: dict[str, float] = {}
    for by_sub_key in (by_output or {}).values():
        for sub_key, metrics in (by_sub_key or {}).items():
            for name, value in metrics.items():
                if isinstance(value, dict) and "doubleValue" in value:
                    # JSON carries NaN and infinities as strings ("NaN": no positive predictions).
                    values[metric_key(name, sub_key)] = float(value["doubleValue"])
    return values


def evaluation_metrics(uri: str) -> dict[str, float]:
    """The overall (unsliced) metrics of a TFMA evaluation: `auc`, per class `precision/classId:0`,
    macro averages `macro_f1_score`."""
    import tensorflow_model_analysis as tfma

    with _no_deprecation_notes():
        result = tfma.load_eval_result(uri)
    metrics: dict[str, float] = {}
    for slice_key, slice_metrics in result.slicing_metrics:
        if not slice_key:
            metrics.update(metric_values(slice_metrics))
    return metrics


# What the run summary shows, per task, in this order: the first of these lists whose
# metrics the evaluation has (a task's metric names are its own).
SUMMARY_METRICS = tuple(definition.summary_metrics for definition in TASKS.values())


def validation_failures(uri: str, gates: list[dict] | None = None) -> list[str]:
    """Why TFMA did not bless a model: one line per failed threshold, naming the config key
    that sets it; `gates` are the first-run gates the Evaluator applied (read from `uri` when
    None)."""
    import tensorflow_model_analysis as tfma

    from components.evaluator.gates import read_gates

    with _no_deprecation_notes():
        result = tfma.load_validation_result(uri)
    gates = read_gates(uri) if gates is None else gates
    failures = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            failures.append(describe_failure(failure, gates))
    for missing in result.missing_slices:
        failures.append(f"the test split has no slice {missing} for a threshold")
    return failures


def _option_key(name: str, is_diff: bool) -> str:
    """The config key of the evaluator option that sets a threshold on metric `name`."""
    value_option, change_option = METRIC_OPTIONS.get(name, (None, None))
    option = change_option if is_diff else value_option
    return f"evaluator.{option}" if option else "the evaluator config"


def _matching_gate(name: str, bound: float, gates: list[dict]) -> dict | None:
    for gate in gates:
        if gate["metric"] == name and abs(gate["threshold"] - bound) <= 1e-9 * max(1.0, abs(bound)):
            return gate
    return None


def describe_failure(failure, gates: list[dict]) -> str:
    """One TFMA failure (a MetricValidationResult's failure): the metric, its value, the
    threshold and the config key that sets it (or the first-run gate it came from)."""
    key = failure.metric_key
    name = ("macro_" if key.aggregation_type.macro_average else "") + key.name
    if not failure.HasField("metric_value"):  # TFMA computed no value for a threshold's metric
        return f"{name}: {failure.message or 'no value'} ({_option_key(key.name, key.is_diff)})"
    value = failure.metric_value.double_value.value
    threshold = failure.metric_threshold
    if key.is_diff:
        bound = threshold.change_threshold.absolute.value
        from tensorflow_model_analysis.proto import config_pb2

        lower_is_better = threshold.change_threshold.direction == config_pb2.MetricDirection.LOWER_IS_BETTER
        relation = "<=" if lower_is_better else ">="
        return (
            f"{name} changed by {value:+.4g} against the baseline; the allowed change is {relation} {bound:+g} "
            f"({_option_key(key.name, True)})"
        )
    if threshold.value_threshold.HasField("lower_bound"):
        bound, where = threshold.value_threshold.lower_bound.value, "below"
    elif threshold.value_threshold.HasField("upper_bound"):
        bound, where = threshold.value_threshold.upper_bound.value, "above"
    else:
        return f"{name} = {value:.4g} fails its threshold: {failure.message}"
    gate = None if key.aggregation_type.macro_average else _matching_gate(key.name, bound, gates)
    if gate is None:
        source = _option_key(key.name, False)
    else:
        source = (
            f"first-run gate: {describe_gate(gate)} "
            f"(evaluator.first_run_margin; set {_option_key(key.name, False)} to choose the threshold)"
        )
    return f"{name} = {value:.4g} is {where} the threshold {bound:.4g}: {source}"


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

    from components.drift_check.executor import BASELINE_SPAN_PROPERTY, SPAN_PROPERTY
    from components.evaluator.gates import read_gates
    from components.serving_baseline.executor import SOURCE_PROPERTY

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
    for evaluation in outputs.get("ModelEvaluation", [])[-1:]:
        try:
            metrics = evaluation_metrics(evaluation.uri)
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
        how = custom_property(infra, "serving_check") or "TFX InfraValidator, the real TF Serving"
        if custom_property(infra, "blessed"):
            serving_checks.append(f"passed ({how})")
        else:  # TFX's InfraValidator records no reason in its artifact, only in the log
            serving_checks.append(f"refused ({how}): the model did not load or answer; the run's log has why")
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
    pushed_to = already_served = None
    for pushed in outputs.get("PushedModel", [])[-1:]:
        if custom_property(pushed, "pushed"):
            pushed_to = custom_property(pushed, "pushed_destination")
        already_served = custom_property(pushed, "already_served")
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
        candidate=candidate,
    )


def class_names(model_dir: str | None) -> list[str]:
    """The class names a classifier wrote beside its SavedModel ([] when unknown)."""
    from contracts.saved_model import ASSETS_EXTRA, CLASSES_FILE

    path = os.path.join(model_dir, ASSETS_EXTRA, CLASSES_FILE) if model_dir else ""
    if not path or not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


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
    """`gbt (trainer.model auto: val_auc on the eval split: dnn 0.95, gbt 0.96)`."""
    if choice.get("configured") != "auto":
        return f"{choice['model']} (trainer.model)"
    scores = ", ".join(f"{name} {value:.4g}" for name, value in sorted(choice["eval_scores"].items()))
    return f"{choice['model']} (trainer.model auto: {choice['objective']} on the eval split: {scores})"


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
    for gate in run.gates:
        relation = ">=" if gate["higher_is_better"] else "<="
        lines.append(
            f"  first-run gate: {gate['metric']} {relation} {gate['threshold']:.4g} "
            f"({describe_gate(gate)}; evaluator.first_run_margin)"
        )
    if run.blessed is not None:
        lines.append(f"  blessed: {'yes' if run.blessed else 'no'}")
    for failure in run.failures:
        lines.append(f"    - {failure}")
    if run.already_served and not run.pushed_to:
        lines.append(f"  pushed model: none (the same model is already served: {run.already_served})")
    else:
        lines.append(f"  pushed model: {run.pushed_to or 'none'}")
    return "\n".join(lines)
