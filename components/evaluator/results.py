"""Reading the Evaluator's TFMA results: metrics by name, per slice, the candidate's against
the baseline's, and why a model was refused, one line per threshold naming its config key.

The run summary, `tfxp lineage`, the monitor and the report (ops/) and the model card written
with each push (components/model_card) read evaluations through these functions. TensorFlow
Model Analysis is imported inside them, so importing this module loads no TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
import os

from models.tasks import METRIC_OPTIONS, describe_gate


def format_metric(name: str, value: float) -> str:
    """`name=value`: counts as whole numbers, the rest to four significant digits."""
    return f"{name}={int(value)}" if name == "example_count" else f"{name}={value:.4g}"


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
    return evaluation_overview(uri)[0]


def evaluation_overview(uri: str) -> tuple[dict[str, float], bool]:
    """(evaluation_metrics, whether the evaluation compared the candidate with a baseline model:
    its own EvalConfig has a baseline model spec)."""
    import tensorflow_model_analysis as tfma

    candidate, baseline = _model_names(uri)
    with _no_deprecation_notes():
        result = tfma.load_eval_result(uri, model_name=candidate)
    metrics: dict[str, float] = {}
    for slice_key, slice_metrics in result.slicing_metrics:
        if not slice_key:
            metrics.update(metric_values(slice_metrics))
    return metrics, baseline is not None


def _model_names(uri: str) -> tuple[str | None, str | None]:
    """(candidate, baseline) model names of an evaluation, from its own EvalConfig; both None for a
    single-model evaluation. Loading a two-model evaluation without a name logs a warning for each
    slice's plots, so callers ask by name."""
    import tensorflow_model_analysis as tfma

    eval_config = tfma.writers.eval_config_writer.load_eval_run(uri)[0]
    specs = eval_config.model_specs if eval_config is not None else []
    baseline = next((s.name for s in specs if s.is_baseline), None)
    if baseline is None:
        return None, None
    return next(s.name for s in specs if not s.is_baseline), baseline


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


def class_names(model_dir: str | None) -> list[str]:
    """The class names a classifier wrote beside its SavedModel ([] when unknown)."""
    from contracts.saved_model import ASSETS_EXTRA, CLASSES_FILE

    path = os.path.join(model_dir, ASSETS_EXTRA, CLASSES_FILE) if model_dir else ""
    if not path or not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def eval_results(uri: str):
    """TFMA's results of the candidate and of the baseline (None without one). A single-model
    evaluation has no model named candidate: asking for that name there returns no metrics
    rather than an error, so the evaluation's own model specs decide."""
    import tensorflow_model_analysis as tfma

    candidate, baseline = _model_names(uri)
    with _no_deprecation_notes():
        if baseline is None:
            return tfma.load_eval_result(uri), None
        return tfma.load_eval_result(uri, model_name=candidate), tfma.load_eval_result(uri, model_name=baseline)


def _metric_name(metric) -> str:
    """The name TFMA reports a MetricConfig's metric by: its config's `name`, else its Keras
    class name in snake case (AUC -> auc, F1Score -> f1_score), as Keras names metrics."""
    import json
    import re

    try:
        named = json.loads(
            "{" + metric.config + "}" if metric.config and not metric.config.startswith("{") else metric.config or "{}"
        )
    except ValueError:
        named = {}
    return named.get("name") or re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", metric.class_name).lower()


def applied_thresholds(eval_config, gates: list[dict]) -> list[dict]:
    """The thresholds an evaluation applied (its EvalConfig, as the Evaluator fitted it to the
    run): one {metric, relation, bound, change, source} each, `source` the config key that sets
    it or the first-run gate it came from."""
    found = []
    for spec in eval_config.metrics_specs if eval_config is not None else []:
        prefix = "macro_" if spec.aggregate.macro_average else ""
        for metric in spec.metrics:
            name = _metric_name(metric)
            thresholds = [metric.threshold] if metric.HasField("threshold") else []
            thresholds += [t.threshold for t in metric.per_slice_thresholds]
            for threshold in thresholds:
                if threshold.HasField("value_threshold"):
                    value = threshold.value_threshold
                    for field, relation in (("lower_bound", ">="), ("upper_bound", "<=")):
                        if value.HasField(field):
                            bound = getattr(value, field).value
                            gate = None if prefix else _matching_gate(name, bound, gates)
                            source = (
                                f"first-run gate: {describe_gate(gate)} (evaluator.first_run_margin)"
                                if gate
                                else _option_key(name, False)
                            )
                            found.append(
                                {
                                    "metric": prefix + name,
                                    "relation": relation,
                                    "bound": bound,
                                    "change": False,
                                    "source": source,
                                }
                            )
                if threshold.HasField("change_threshold"):
                    from tensorflow_model_analysis.proto import config_pb2

                    change = threshold.change_threshold
                    lower_is_better = change.direction == config_pb2.MetricDirection.LOWER_IS_BETTER
                    found.append(
                        {
                            "metric": prefix + name,
                            "relation": "<=" if lower_is_better else ">=",
                            "bound": change.absolute.value,
                            "change": True,
                            "source": _option_key(name, True),
                        }
                    )
    return found
