"""The task table: per label.task, what its model answers and how it is judged.

One place for what the Tuner, the evaluator config, the Evaluator's first-run gates, the
run summary and `tfxp monitor` each need to know of a task: the tuner's objective, the
prediction TFMA's metrics read, the gate metrics a model must beat the naive predictor on, the
evaluator options that bound each metric, the metrics the summary shows, and the live metrics
the monitor holds to thresholds. Plain data: no TensorFlow at import.
"""

from __future__ import annotations

import dataclasses

from models.spec import Task


def beat(naive_value: float, margin: float, higher_is_better: bool) -> float:
    """The value that beats `naive_value` by `margin`: plus the margin (an absolute margin on a
    share), or for errors times (1 - margin) (errors are in the label's units)."""
    return naive_value + margin if higher_is_better else naive_value * (1.0 - margin)


@dataclasses.dataclass(frozen=True)
class Gate:
    """A metric a model must beat the naive predictor of its task on (its first-run gate).

    Higher-is-better metrics need the naive value plus the margin (an absolute margin on a
    share); lower-is-better ones the naive value times (1 - margin) (errors are in the label's
    units, so the margin is relative).
    """

    metric: str  # the metric's name in TFMA's results and validation (auc, accuracy, ...)
    class_name: str  # its MetricConfig class_name in the eval config
    higher_is_better: bool
    option: str  # the evaluator option that sets its value threshold instead (configured wins)
    naive: str  # the naive predictor, as the summary names it

    def bound(self, naive_value: float, margin: float) -> float:
        """The value threshold a model must meet: beat `naive_value` by `margin`."""
        return beat(naive_value, margin, self.higher_is_better)


@dataclasses.dataclass(frozen=True)
class LiveMetric:
    """A metric `tfxp monitor` measures on the labelled traffic of a window and flags.

    Its value threshold is `monitor.<option>`, else the Evaluator's `evaluator.<option>`, else
    the naive predictor's value on the window's own labels beaten by evaluator.first_run_margin
    (as a first-run gate: `bound`). Its change is judged against the version's test-split
    value recorded at push: worse by more than `monitor.<drop_option>` (in the metric's units),
    or by default than monitor.max_metric_drop (a share of the test value), is flagged.
    """

    metric: str  # its name in TFMA's results (ops.runs.evaluation_metrics)
    title: str  # as findings and the report name it
    higher_is_better: bool
    option: str  # the value threshold's key, in monitor: and evaluator: alike
    drop_option: str  # monitor.<drop_option>: how much worse than the test value is flagged
    naive: str  # the naive predictor on the window's labels, as findings name it

    def bound(self, naive_value: float, margin: float) -> float:
        """The value a live metric must meet when no option sets it: beat the naive predictor."""
        return beat(naive_value, margin, self.higher_is_better)

    def worse_by(self, live: float, reference: float) -> float:
        """How much worse `live` is than `reference` (negative: better)."""
        return reference - live if self.higher_is_better else live - reference


@dataclasses.dataclass(frozen=True)
class TaskDefinition:
    tuner_objective: tuple[str, str]  # KerasTuner's (metric, direction)
    prediction_key: str  # the serving_default output TFMA's metrics read
    threshold_options: tuple[str, ...]  # the evaluator options (evaluator.<option>) it takes
    default_thresholds: dict[str, float]  # change thresholds only: the gates set the values
    gates: tuple[Gate, ...]
    summary_metrics: tuple[str, ...]  # what the run summary shows, in this order
    live_metrics: tuple[LiveMetric, ...]  # what `tfxp monitor` flags, in this order


TASKS = {
    Task.BINARY: TaskDefinition(
        tuner_objective=("val_auc", "max"),
        prediction_key="probabilities",
        threshold_options=("min_auc", "max_auc_decrease", "min_accuracy", "max_accuracy_decrease"),
        default_thresholds={"max_auc_decrease": 0.01},
        gates=(Gate("auc", "AUC", True, "min_auc", "class priors"),),
        summary_metrics=("auc", "binary_accuracy", "precision", "recall", "f1_score", "example_count"),
        live_metrics=(
            LiveMetric("auc", "AUC", True, "min_auc", "max_auc_drop", "class priors"),
            LiveMetric("binary_accuracy", "accuracy", True, "min_accuracy", "max_accuracy_drop", "majority class"),
        ),
    ),
    Task.MULTICLASS: TaskDefinition(
        tuner_objective=("val_accuracy", "max"),
        prediction_key="probabilities",
        threshold_options=("min_auc", "max_auc_decrease", "min_accuracy", "max_accuracy_decrease", "min_macro_f1"),
        default_thresholds={"max_accuracy_decrease": 0.01},
        gates=(Gate("accuracy", "SparseCategoricalAccuracy", True, "min_accuracy", "majority class share"),),
        summary_metrics=("accuracy", "macro_f1_score", "macro_auc", "example_count"),
        live_metrics=(
            LiveMetric("accuracy", "accuracy", True, "min_accuracy", "max_accuracy_drop", "majority class"),
            LiveMetric(
                "macro_f1_score", "macro F1", True, "min_macro_f1", "max_macro_f1_drop", "majority class's macro F1"
            ),
        ),
    ),
    Task.REGRESSION: TaskDefinition(
        tuner_objective=("val_loss", "min"),
        prediction_key="predictions",
        threshold_options=("max_mae", "max_mae_increase", "max_rmse", "max_rmse_increase"),
        default_thresholds={},
        gates=(
            Gate("mean_absolute_error", "MeanAbsoluteError", False, "max_mae", "MAE of the train median"),
            Gate("root_mean_squared_error", "RootMeanSquaredError", False, "max_rmse", "RMSE of the train mean"),
        ),
        summary_metrics=(
            "mean_absolute_error",
            "root_mean_squared_error",
            "mean_absolute_percentage_error",
            "calibration",
            "example_count",
        ),
        live_metrics=(
            LiveMetric("mean_absolute_error", "MAE", False, "max_mae", "max_mae_increase", "window's median"),
            LiveMetric("root_mean_squared_error", "RMSE", False, "max_rmse", "max_rmse_increase", "window's mean"),
        ),
    ),
}

# The TFMA metric class each evaluator option bounds. Value thresholds: min_ is a lower bound,
# max_ an upper one; change thresholds against the baseline: _decrease is how much lower (higher
# is better), _increase how much higher.
OPTION_METRICS = {
    "min_auc": "AUC",
    "max_auc_decrease": "AUC",
    "min_accuracy": "accuracy",
    "max_accuracy_decrease": "accuracy",
    "min_macro_f1": "F1Score",
    "max_mae": "MeanAbsoluteError",
    "max_mae_increase": "MeanAbsoluteError",
    "max_rmse": "RootMeanSquaredError",
    "max_rmse_increase": "RootMeanSquaredError",
}

# The evaluator options (evaluator.<option>) that bound each metric, by its name in TFMA's
# results: (value threshold, change threshold against the baseline).
METRIC_OPTIONS = {
    "auc": ("min_auc", "max_auc_decrease"),
    "accuracy": ("min_accuracy", "max_accuracy_decrease"),
    "binary_accuracy": ("min_accuracy", "max_accuracy_decrease"),
    "f1_score": ("min_macro_f1", None),
    "mean_absolute_error": ("max_mae", "max_mae_increase"),
    "root_mean_squared_error": ("max_rmse", "max_rmse_increase"),
}


# The monitor's options (monitor.<option>) and the tasks they apply to, from the table.
LIVE_OPTIONS = {
    option: tuple(task for task, d in TASKS.items() if any(option in (m.option, m.drop_option) for m in d.live_metrics))
    for option in dict.fromkeys(o for d in TASKS.values() for m in d.live_metrics for o in (m.option, m.drop_option))
}


def describe_gate(gate: dict) -> str:
    """How an applied gate's threshold was made (a record of components/evaluator/gates.py),
    as the run summary and the refusal lines say it: 'class priors 0.5 + margin 0.02'."""
    if gate["higher_is_better"]:
        return f"{gate['naive']} {gate['naive_value']:.4g} + margin {gate['margin']:g}"
    return f"{gate['naive']} {gate['naive_value']:.4g} x (1 - margin {gate['margin']:g})"
