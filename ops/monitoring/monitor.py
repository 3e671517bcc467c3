"""`tfxp monitor`: the served version's live quality, its traffic's drift and skew, and serving
health over a time window, compared with thresholds, recorded in ML Metadata.

- Live metrics: TFMA runs the served version on the joined rows of the window (logged
  requests with their ground truth, `tfxp feedback`), with the Evaluator's own EvalConfig
  (`pipeline.eval_config.eval_config`: the same metrics, model spec, label and slices) minus its
  thresholds, which are the monitor's here (`monitor:` in the config). The task's live
  metrics (models/tasks.py: binary AUC and accuracy, multiclass accuracy and macro F1,
  regression MAE and RMSE) are held to a value threshold (monitor's, else the Evaluator's,
  else the naive predictor's on the window's labels beaten by evaluator.first_run_margin)
  and to their drop from the version's test-split values.
- Skew: TFDV compares the window's logged examples with the train statistics of the span the
  served version was trained on (found through ML Metadata lineage), with the drift check's
  comparators (components/drift_check/drift.py). Drift: the window against the window before it.
- Health: with `monitor.serving_url`, the version status (TF Serving's REST model status) and
  the error ratio from the server's Prometheus metrics, where it exports them.

The result is an execution of type `tfxp.ModelMonitoring`, with an input event from the
served version's PushedModel artifact, and a JSON file under `<output_dir>/monitor/`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any

from components.drift_check import drift
from components.evaluator import gates
from components.evaluator.gates import majority_share
from components.evaluator.results import class_names, evaluation_metrics, metric_values
from models.tasks import TASKS, LiveMetric
from ops.monitoring import feedback
from pipeline.config import ConfigError, PipelineConfig, Task, window_seconds

MONITOR_TYPE = "tfxp.ModelMonitoring"
EXIT_OK, EXIT_CROSSED, EXIT_NO_TRAFFIC = 0, 1, 3
PER_CLASS = ("precision", "recall", "f1_score", "auc")  # multiclass, one-vs-rest (classId:i)


def watched(task: Task | str) -> tuple[str, ...]:
    """The metrics the monitor shows and records for a task: its live metrics and the count."""
    return (*(m.metric for m in TASKS[Task(task)].live_metrics), "example_count")


@dataclasses.dataclass
class Distance:
    feature: str
    kind: str  # "skew" (against training) or "drift" (against the previous window)
    measure: str  # TFDV's measurement type: L_INFTY, JENSEN_SHANNON_DIVERGENCE
    value: float
    threshold: float

    @property
    def crossed(self) -> bool:
        return self.value > self.threshold


@dataclasses.dataclass
class MonitorResult:
    model: str
    version: int
    window: tuple[float, float]
    requests: int
    labelled: int
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    slices: list[tuple[str, dict[str, float]]] = dataclasses.field(default_factory=list)
    test_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    distances: list[Distance] = dataclasses.field(default_factory=list)
    health: dict[str, Any] = dataclasses.field(default_factory=dict)
    findings: list[str] = dataclasses.field(default_factory=list)  # thresholds crossed
    task: str = Task.BINARY.value
    class_names: list[str] = dataclasses.field(default_factory=list)  # the served version's
    # {metric: {"threshold", "source", "drop", "drop_source"}} as applied in this window
    thresholds: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)  # what could not be checked
    execution_id: int | None = None
    path: str | None = None

    @property
    def exit_code(self) -> int:
        if self.requests == 0:
            return EXIT_NO_TRAFFIC
        return EXIT_CROSSED if self.findings else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        plain = dataclasses.asdict(self)
        plain["distances"] = [{**dataclasses.asdict(d), "crossed": d.crossed} for d in self.distances]
        return plain


def live_eval_config(config: PipelineConfig, model_path: str | None = None):
    """The Evaluator's EvalConfig without its thresholds: the same metrics, label and slices;
    a multiclass model's class ids from `model_path` where label.classes does not list them."""
    from google.protobuf import json_format
    from tensorflow_model_analysis.proto import config_pb2

    from components.evaluator.executor import with_class_ids
    from pipeline.eval_config import eval_config

    found = eval_config(config)
    if model_path is not None:
        found = json_format.Parse(with_class_ids(json_format.MessageToJson(found), model_path), config_pb2.EvalConfig())
    for spec in found.metrics_specs:
        spec.ClearField("thresholds")
        spec.ClearField("per_slice_thresholds")
        spec.ClearField("cross_slice_thresholds")
        for metric in spec.metrics:
            for field in ("threshold", "per_slice_thresholds", "cross_slice_thresholds"):
                metric.ClearField(field)
    return found


def _beam_options(config: PipelineConfig):
    from apache_beam.options.pipeline_options import PipelineOptions

    extra = list(config.beam.extra_args) if config.beam.runner == "DirectRunner" else []
    return PipelineOptions(
        ["--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1", *extra]
    )


def live_metrics(config: PipelineConfig, model_path: str, examples: list[bytes], workdir: str):
    """TFMA on labelled examples with the served model: (overall metrics, per-slice metrics)."""
    import tensorflow_model_analysis as tfma

    ec = live_eval_config(config, model_path)
    shared = tfma.default_eval_shared_model(eval_saved_model_path=model_path, eval_config=ec)
    return evaluate(config, ec, shared, examples, workdir)


def evaluate(config: PipelineConfig, ec, eval_shared_model, examples: list[bytes], workdir: str):
    """TFMA's evaluation of `examples` with `ec` (and the model, unless the examples carry
    their predictions): (overall metrics, per-slice metrics)."""
    import tensorflow as tf
    import tensorflow_model_analysis as tfma

    data = os.path.join(workdir, "labelled.tfrecord")
    with tf.io.TFRecordWriter(data) as writer:
        for example in examples:
            writer.write(example)
    output = os.path.join(workdir, "evaluation")
    tfma.run_model_analysis(
        eval_shared_model=eval_shared_model,
        eval_config=ec,
        data_location=data,
        output_path=output,
        pipeline_options=_beam_options(config),
    )
    return evaluation_metrics(output), slice_metrics(output)


def slice_metrics(uri: str) -> list[tuple[str, dict[str, float]]]:
    """Every slice's metrics of a TFMA evaluation, overall first: [(slice, {metric: value})]."""
    import tensorflow_model_analysis as tfma

    found = []
    for slice_key, by_output in tfma.load_eval_result(uri).slicing_metrics:
        name = ", ".join(f"{k}={v}" for k, v in slice_key) if slice_key else "overall"
        found.append((name, metric_values(by_output)))
    return sorted(found, key=lambda item: (item[0] != "overall", item[0]))


def distances(anomalies, kind: str) -> list[Distance]:
    """TFDV's measurements of one comparison (drift_skew_info), crossed or not."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    found = []
    for info in anomalies.drift_skew_info:
        measurements = info.skew_measurements if kind == "skew" else info.drift_measurements
        for m in measurements:
            found.append(
                Distance(
                    ".".join(info.path.step),
                    kind,
                    anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(m.type),
                    m.value,
                    m.threshold,
                )
            )
    return sorted(found, key=lambda d: d.feature)


def serving_health(url: str, model: str, version: int, timeout: float = 5.0) -> dict[str, Any]:
    """The version's state from TF Serving's model status API; request and error counts from
    its Prometheus metrics (`:tensorflow:serving:request_count{status}`), when it exports them."""
    import urllib.error
    import urllib.request

    health: dict[str, Any] = {"url": url}
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/v1/models/{model}", timeout=timeout) as reply:
            status = json.load(reply)
        states = {int(s["version"]): s["state"] for s in status.get("model_version_status", [])}
        health["state"] = states.get(version, "NOT_LOADED")
        health["versions"] = states
    except (OSError, ValueError, KeyError) as err:
        health["state"] = f"UNREACHABLE ({err})"
        return health
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/monitoring/prometheus/metrics", timeout=timeout) as reply:
            text = reply.read().decode()
    except urllib.error.HTTPError:
        health["metrics"] = "not exported"
        return health
    except OSError as err:
        health["metrics"] = f"unreadable ({err})"
        return health
    from prometheus_client.parser import text_string_to_metric_families

    total = errors = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name.removesuffix("_total").endswith(":tensorflow:serving:request_count")
                and sample.labels.get("model_name", model) == model
            ):
                total += sample.value
                errors += sample.value if sample.labels.get("status", "OK") != "OK" else 0
    health.update(requests=total, errors=errors, error_ratio=(errors / total) if total else None)
    return health


def _served_version(config: PipelineConfig) -> int:
    """The version production traffic gets: the model config's `stable` label, else the newest
    (contracts/model_config.py). A canary is judged by `tfxp promote` (monitor(version=...))."""
    from contracts.model_config import stable_version
    from contracts.serving_dir import served_versions

    versions = served_versions(config.serving_dir)
    if not versions:
        raise ConfigError(f"nothing is served from {config.serving_dir}; run the pipeline first")
    return stable_version(config.serving_dir, config.model_name, versions)


def _comparators(config: PipelineConfig) -> tuple[list[str], float, float]:
    mon, dr = config.monitor, config.drift
    return (
        config.drift_features(),
        mon.categorical_threshold or dr.categorical_threshold,
        mon.numeric_threshold or dr.numeric_threshold,
    )


def monitor(
    config: PipelineConfig,
    window: str | None = None,
    now: float | None = None,
    version: int | None = None,
) -> MonitorResult:
    """Measures the served (stable) version over the window ending now; records and returns the
    result. With `version` (a canary, for `tfxp promote`) only the requests logged as answered
    by that version count: a request whose log names no version could have been either."""
    import tensorflow_data_validation as tfdv

    from ops.lineage import lineage

    mon = config.monitor
    length = window_seconds(window or mon.window, "--window")
    end = time.time() if now is None else now
    start = end - length
    strict = version is not None
    version = _served_version(config) if version is None else version
    accepted = (version,) if strict else (None, version)
    logged = feedback.read_logged(config, since=start, until=end)
    # Requests another version answered (the proxy's logs name it) say nothing of this one.
    others = [e for e in logged if e.version is not None and e.version != version]
    logged = [e for e in logged if e.version in accepted]
    result = MonitorResult(
        model=config.model_name, version=version, window=(start, end), requests=len(logged), labelled=0
    )
    if others:
        result.notes.append(
            f"{len(others)} logged requests in the window were answered by other versions "
            f"({', '.join(sorted({str(e.version) for e in others}))}): left out"
        )
    found = None
    model_path = os.path.join(config.serving_dir, str(version))
    result.task = config.label.task.value
    if config.label.task is not Task.REGRESSION:
        result.class_names = class_names(model_path) or list(config.label.classes)
    try:
        found = lineage(config.metadata_path, config.pipeline_name, config.serving_dir, version)
        tested = with_macro_f1(found.metrics)
        result.test_metrics = {k: v for k, v in tested.items() if k in watched(config.label.task)}
    except ConfigError as err:
        result.notes.append(
            f"no lineage for version {version} ({err}): no test metrics or training statistics to compare with"
        )
    if not logged:
        result.notes.append(f"no logged requests in the window ({feedback.requests_dir(config)})")
        return _record(config, result, found)

    workdir = os.path.join(config.output_dir, "monitor", time.strftime("%Y%m%d-%H%M%S", time.gmtime(end)))
    os.makedirs(workdir, exist_ok=True)
    result.path = os.path.join(workdir, "result.json")

    # Skew against training, drift against the window before.
    features, categorical, numeric = _comparators(config)
    serving_stats = drift.statistics_of_examples([e.example for e in logged])
    if found is not None and found.statistics and found.schema:
        schema = tfdv.load_schema_text(found.schema)
        training = tfdv.load_stats_binary(os.path.join(found.statistics, "Split-train", drift.STATS_FILE))
        skew = drift.compare_skew(
            training, serving_stats, drift.with_skew_comparators(schema, features, categorical, numeric)
        )
        result.distances += distances(skew, "skew")
        previous = feedback.read_logged(config, since=start - length, until=start)
        if previous:
            moved = drift.compare(
                serving_stats,
                drift.statistics_of_examples([e.example for e in previous]),
                drift.with_comparators(schema, features, categorical, numeric),
            )
            result.distances += distances(moved, "drift")
        else:
            result.notes.append("no traffic in the window before: drift not measured")
    for d in result.distances:
        if d.crossed:
            against = "training (skew)" if d.kind == "skew" else "the previous window (drift)"
            result.findings.append(
                f"feature '{d.feature}': {d.measure} {d.value:.4g} against {against} "
                f"is above the threshold {d.threshold:g}"
            )

    # Live metrics on the labelled traffic.
    rows = [r for r in feedback.joined_rows(config, since=start, until=end) if r.version in accepted]
    result.labelled = len(rows)
    if len(rows) < mon.min_labelled:
        result.notes.append(
            f"{len(rows)} labelled requests in the window, fewer than monitor.min_labelled "
            f"({mon.min_labelled}): live metrics not computed (add ground truth: tfxp feedback FILE)"
        )
    else:
        examples = [r.example for r in rows]
        result.metrics, result.slices = live_metrics(config, model_path, examples, workdir)
        result.metrics = with_macro_f1(result.metrics)
        labels = window_labels(config, examples, result.class_names)
        result.thresholds = live_thresholds(config, labels, result.test_metrics)
        result.findings += metric_findings(result)

    if mon.serving_url:
        result.health = serving_health(mon.serving_url, config.model_name, version)
        state = result.health.get("state")
        if state != "AVAILABLE":
            result.findings.append(f"serving: version {version} is {state} at {mon.serving_url}")
        ratio = result.health.get("error_ratio")
        if ratio is not None and ratio > mon.max_error_ratio:
            result.findings.append(
                f"serving: error ratio {ratio:.4g} is above monitor.max_error_ratio {mon.max_error_ratio:g}"
            )
    else:
        result.notes.append("serving health not checked (set monitor.serving_url)")
    return _record(config, result, found)


def window_labels(config: PipelineConfig, examples: list[bytes], class_names: list[str]) -> list:
    """Each labelled example's label as the model answers it: binary 0 or 1 (label.column's
    rule), multiclass the index of its class among `class_names` (-1: none of them),
    regression the number. The model's own transform does the same for TFMA."""
    import tensorflow as tf

    label = config.label
    index = {name: i for i, name in enumerate(class_names)}
    found: list = []
    for serialized in examples:
        example = tf.train.Example.FromString(serialized)
        text = feedback.feature_text(example, label.column)
        if text is None:
            continue
        if label.task is Task.REGRESSION:
            found.append(float(text))
        elif label.task is Task.MULTICLASS:
            found.append(index.get(text, -1))
        elif label.greater_than_fraction_of:
            reference = float(feedback.feature_text(example, label.greater_than_fraction_of) or 0)
            found.append(int(float(text) > label.fraction * reference))
        elif label.positive_values:
            found.append(int(text in label.positive_values))
        else:
            found.append(int(float(text)))
    return found


def with_macro_f1(metrics: dict[str, float]) -> dict[str, float]:
    """`metrics` with macro F1 the mean F1 of the classes that occur (labelled or predicted),
    as scikit-learn's f1_score(average="macro") has it. TFMA's per-class F1 of a class neither
    labelled nor predicted is NaN, and so its macro average, whenever a window or a small test
    split lacks one class."""
    scores = [v for _, v in per_class(metrics, "f1_score") if math.isfinite(v)]
    if not scores:
        return metrics
    return {**metrics, "macro_f1_score": sum(scores) / len(scores)}


def naive_value(metric: LiveMetric, labels: list) -> float:
    """The naive predictor's value of `metric` on the window's labels: AUC of a constant score
    (0.5); accuracy of always answering the window's most frequent class, and that predictor's
    macro F1 (with_macro_f1: its class's F1, 2p / (1 + p) for its share p, the other labelled
    classes' 0); MAE of the window's median, RMSE of its mean (components/evaluator/gates.py)."""
    if metric.metric == "binary_accuracy":
        return majority_share(labels)
    if metric.metric == "macro_f1_score":
        share = majority_share(labels)
        return 2 * share / (1 + share) / len(set(labels))
    # The window stands for both splits: its own median, mean and most frequent class.
    return gates.naive_value(metric, labels, labels)


def live_thresholds(config: PipelineConfig, labels: list, test_metrics: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The thresholds of the task's live metrics in this window, each with where it came from:
    {metric: {threshold, source, drop, drop_source}} (drop: how much worse than the version's
    test value is allowed; None without a test value)."""
    mon, ev = config.monitor, config.evaluator
    margin = ev.first_run_margin
    found: dict[str, dict[str, Any]] = {}
    for metric in TASKS[config.label.task].live_metrics:
        entry: dict[str, Any] = {}
        if getattr(mon, metric.option) is not None:
            entry.update(threshold=getattr(mon, metric.option), source=f"monitor.{metric.option}")
        elif getattr(ev, metric.option) is not None:
            entry.update(threshold=getattr(ev, metric.option), source=f"evaluator.{metric.option}")
        elif labels:
            naive = naive_value(metric, labels)
            how = f"+ margin {margin:g}" if metric.higher_is_better else f"x (1 - margin {margin:g})"
            entry.update(
                threshold=metric.bound(naive, margin),
                source=f"{metric.naive} {naive:.4g} {how} on the window's labels; evaluator.first_run_margin",
            )
        test = test_metrics.get(metric.metric)
        if test is not None:
            if getattr(mon, metric.drop_option) is not None:
                entry.update(drop=getattr(mon, metric.drop_option), drop_source=f"monitor.{metric.drop_option}")
            else:
                entry.update(
                    drop=mon.max_metric_drop * abs(test),
                    drop_source=f"monitor.max_metric_drop {mon.max_metric_drop:g} of the test value",
                )
        found[metric.metric] = entry
    return found


def class_label(index: int, class_names: list[str]) -> str:
    """A class as findings and the report name it: its name, else its index."""
    return f"'{class_names[index]}'" if 0 <= index < len(class_names) else f"class {index}"


def per_class(metrics: dict[str, float], name: str) -> list[tuple[int, float]]:
    """[(class index, value)] of a per-class metric (`f1_score/classId:2`), by index."""
    prefix = f"{name}/classId:"
    return sorted((int(k[len(prefix) :]), v) for k, v in metrics.items() if k.startswith(prefix))


def metric_findings(result: MonitorResult) -> list[str]:
    """The live metrics that cross their thresholds (result.thresholds), one line each; a
    multiclass finding names the classes with the lowest F1."""
    found = []
    worst = ""
    if result.task == Task.MULTICLASS.value:
        scores = [(i, v) for i, v in per_class(result.metrics, "f1_score") if math.isfinite(v)]
        lowest = sorted(scores, key=lambda item: item[1])[:2]
        if lowest:
            worst = "; lowest class F1: " + ", ".join(
                f"{class_label(i, result.class_names)} {v:.3g}" for i, v in lowest
            )
    for metric in TASKS[Task(result.task)].live_metrics:
        live, entry = result.metrics.get(metric.metric), result.thresholds.get(metric.metric, {})
        if live is None:
            continue
        word = "below" if metric.higher_is_better else "above"
        threshold = entry.get("threshold")
        if threshold is not None and metric.worse_by(live, threshold) > 0:
            found.append(
                f"live {metric.title} {live:.4g} is {word} the threshold {threshold:.4g} ({entry['source']}){worst}"
            )
        test, drop = result.test_metrics.get(metric.metric), entry.get("drop")
        if test is not None and drop is not None and metric.worse_by(live, test) > drop:
            found.append(
                f"live {metric.title} {live:.4g} is {abs(live - test):.4g} {word} the version's test "
                f"{metric.title} {test:.4g}; allowed: {drop:.4g} ({entry['drop_source']}){worst}"
            )
    return found


def _record(config: PipelineConfig, result: MonitorResult, found) -> MonitorResult:
    """Stores the result as a tfxp.ModelMonitoring execution, input: the served PushedModel."""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as mlmd

    from pipeline.metadata import sqlite_config

    # Created when missing: a cluster's monitor records its results where no local run did.
    os.makedirs(os.path.dirname(config.metadata_path), exist_ok=True)
    store = metadata_store.MetadataStore(sqlite_config(config.metadata_path))
    kind = mlmd.ExecutionType(name=MONITOR_TYPE)
    for name, value_type in (
        ("version", mlmd.INT),
        ("window_start", mlmd.DOUBLE),
        ("window_end", mlmd.DOUBLE),
        ("requests", mlmd.INT),
        ("labelled", mlmd.INT),
        ("crossed", mlmd.INT),
        ("result", mlmd.STRING),
    ):
        kind.properties[name] = value_type
    execution = mlmd.Execution(
        type_id=store.put_execution_type(kind, can_add_fields=True), last_known_state=mlmd.Execution.COMPLETE
    )
    props = execution.properties
    props["version"].int_value = result.version
    props["window_start"].double_value, props["window_end"].double_value = result.window
    props["requests"].int_value, props["labelled"].int_value = result.requests, result.labelled
    props["crossed"].int_value = len(result.findings)
    for name, value in result.metrics.items():
        # ML Metadata's SQL cannot hold NaN (TFMA's undefined value: a class never predicted).
        if math.isfinite(value):
            execution.custom_properties[f"live_{name}"].double_value = value
    execution.custom_properties["model"].string_value = result.model
    props["result"].string_value = json.dumps(result.to_json(), sort_keys=True)
    [result.execution_id] = store.put_executions([execution])
    if found is not None and found.pushed_artifact_id is not None:
        store.put_events(
            [mlmd.Event(artifact_id=found.pushed_artifact_id, execution_id=result.execution_id, type=mlmd.Event.INPUT)]
        )
    if result.path:
        partial = result.path + ".partial"
        with open(partial, "w") as f:
            json.dump({**result.to_json(), "execution_id": result.execution_id}, f, indent=2, sort_keys=True)
        os.replace(partial, result.path)
    return result


def history(config: PipelineConfig) -> list[dict[str, Any]]:
    """Every recorded monitor result, oldest first."""
    from ml_metadata import errors

    from pipeline.metadata import open_store

    store = open_store(config.metadata_path)
    try:
        store.get_execution_type(MONITOR_TYPE)
    except errors.NotFoundError:
        return []
    found = []
    for execution in store.get_executions_by_type(MONITOR_TYPE):
        found.append({**json.loads(execution.properties["result"].string_value), "execution_id": execution.id})
    return sorted(found, key=lambda r: r["window"][1])


def format_result(result: MonitorResult) -> str:
    def when(t: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))

    lines = [
        f"model '{result.model}' version {result.version}, window {when(result.window[0])} to "
        f"{when(result.window[1])} UTC",
        f"  requests logged: {result.requests}; labelled (tfxp feedback): {result.labelled}",
    ]
    shown_metrics = watched(result.task)
    if result.metrics:
        shown = ", ".join(_metric(k, result.metrics[k]) for k in shown_metrics if k in result.metrics)
        lines.append(f"  live metrics: {shown}")
        for index, _ in per_class(result.metrics, "f1_score"):
            values = ", ".join(
                _metric(name, result.metrics[f"{name}/classId:{index}"])
                for name in PER_CLASS
                if f"{name}/classId:{index}" in result.metrics
            )
            lines.append(f"    class {index} ({class_label(index, result.class_names)}): {values}")
    if result.test_metrics:
        shown = ", ".join(_metric(k, result.test_metrics[k]) for k in shown_metrics if k in result.test_metrics)
        lines.append(f"  test-split metrics (Evaluator): {shown}")
    for kind in ("skew", "drift"):
        chosen = [d for d in result.distances if d.kind == kind]
        if chosen:
            worst = max(chosen, key=lambda d: d.value / d.threshold)
            lines.append(
                f"  {kind}: {sum(d.crossed for d in chosen)} of {len(chosen)} features above their "
                f"thresholds (highest: {worst.feature} {worst.value:.4g} / {worst.threshold:g})"
            )
    if result.health:
        parts = [f"version {result.version} {result.health.get('state')}"]
        if result.health.get("error_ratio") is not None:
            parts.append(f"{int(result.health['errors'])} errors in {int(result.health['requests'])} requests")
        elif result.health.get("metrics"):
            parts.append(f"metrics {result.health['metrics']}")
        lines.append("  serving: " + "; ".join(parts))
    for note in result.notes:
        lines.append(f"  note: {note}")
    if result.findings:
        lines.append(f"  thresholds crossed ({len(result.findings)}):")
        lines += [f"    - {f}" for f in result.findings]
    elif result.requests:
        lines.append("  thresholds crossed: none")
    if result.execution_id is not None:
        lines.append(
            f"  recorded in ML Metadata: execution {result.execution_id} ({MONITOR_TYPE})"
            + (f"; {result.path}" if result.path else "")
        )
    return "\n".join(lines)


def _metric(name: str, value: float) -> str:
    return f"{name}={int(value)}" if name == "example_count" else f"{name}={value:.4g}"


def traffic_span(config: PipelineConfig, rows: list[feedback.JoinedRow], drop: str | None, path: str) -> int:
    """Writes the labelled traffic (and a new drop's rows) as one CSV for the next span; returns its rows."""
    import csv

    import tensorflow as tf

    from contracts.column_names import feature_key
    from models.model_inputs import label_columns
    from pipeline.preflight import column_headers

    # Columns by feature key here, written under the data's own header names, so the new span's
    # header matches the earlier spans' (contracts/column_names.py).
    columns = [*config.features, *label_columns(config)]
    drop_rows: list[dict[str, str]] = []
    if drop:
        with open(drop, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            drop_rows = [{feature_key(c.strip()): v for c, v in row.items() if c is not None} for row in reader]
            keys = [feature_key(c.strip()) for c in reader.fieldnames or []]
            columns += [key for key in keys if key not in columns]
    headers = column_headers(config)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    partial = path + ".partial"
    with open(partial, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writerow({c: headers.get(c, c) for c in columns})
        for row in rows:
            example = tf.train.Example.FromString(row.example)
            writer.writerow({c: feedback.feature_text(example, c) or "" for c in columns})
        writer.writerows({c: r.get(c, "") for c in columns} for r in drop_rows)
    os.replace(partial, path)
    return len(rows) + len(drop_rows)


def monitor_logged(config: PipelineConfig, window: str | None, verbose: bool = False) -> tuple[MonitorResult, str]:
    """`monitor`, with TensorFlow's, TFMA's and Beam's output in a log under the output
    directory (on the terminal too with `verbose`); returns the result and the log's path."""
    from pipeline.terminal import terminal_output

    if window:
        window_seconds(window, "--window")
    log_path = os.path.join(config.output_dir, "logs", f"monitor-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with terminal_output(log_path, verbose):
        result = monitor(config, window)
    return result, log_path


@dataclasses.dataclass
class RetrainSpan:
    rows: int  # in the new span: labelled requests and the drop's rows
    labelled: int  # labelled requests of the window
    span: int
    path: str


def add_traffic_span(config: PipelineConfig, result: MonitorResult, drop: str | None) -> RetrainSpan | None:
    """The window's labelled traffic (and a new drop's rows) added as the next span, checked
    like any drop; None when there is nothing to add."""
    from pipeline import preflight
    from pipeline.spans import add_span

    rows = feedback.joined_rows(config, *result.window)
    if not rows and not drop:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(result.window[1]))
    staged = os.path.join(config.output_dir, "monitor", stamp, f"traffic-{stamp}.csv")
    count = traffic_span(config, rows, drop, staged)
    preflight.check_columns(config, preflight.csv_header(staged), staged)
    span, path = add_span(config, staged)
    return RetrainSpan(count, len(rows), span, path)
