"""The Evaluator's TFMA EvalConfig: the task's test-split metrics and the thresholds a candidate
must meet, from the config's evaluator options (used by the factory, the Kubeflow runner's run
parameters and the live monitor)."""

from __future__ import annotations

import json
from typing import Mapping

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2

from components.evaluator.executor import set_class_ids
from contracts.saved_model import DEFAULT_SIGNATURE, TRANSFORM_SIGNATURE
from models.tasks import OPTION_METRICS, TASKS
from pipeline.config import PipelineConfig, Task


def _threshold(options: Mapping[str, float]) -> tfma.MetricThreshold | None:
    """The value and change thresholds of one metric, from its evaluator options."""
    threshold = tfma.MetricThreshold()
    for name, value in options.items():
        if name.startswith("min_"):
            threshold.value_threshold.lower_bound.value = value
        elif name.endswith("_decrease"):
            threshold.change_threshold.direction = tfma.MetricDirection.HIGHER_IS_BETTER
            threshold.change_threshold.absolute.value = -value
        elif name.endswith("_increase"):
            threshold.change_threshold.direction = tfma.MetricDirection.LOWER_IS_BETTER
            threshold.change_threshold.absolute.value = value
        else:
            threshold.value_threshold.upper_bound.value = value
    return threshold if options else None


def _metric(class_name: str, thresholds: Mapping[str, Mapping[str, float]], **options) -> tfma.MetricConfig:
    """A MetricConfig with its thresholds, which judge the whole test split, not each slice."""
    metric = tfma.MetricConfig(class_name=class_name, config=json.dumps(options) if options else "")
    threshold = _threshold(thresholds.get(class_name, {}))
    if threshold is not None:
        metric.per_slice_thresholds.append(
            config_pb2.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)
        )
    return metric


def eval_config(config: PipelineConfig) -> tfma.EvalConfig:
    """TFMA: the task's test-split metrics, with value thresholds and change thresholds against
    the baseline (evaluator options of label.task, EvaluatorConfig.thresholds). The Evaluator
    fits them to each run: no change thresholds without a baseline, and first-run gates from
    the data (components/evaluator/gates.py).

    binary: AUC, accuracy, precision, recall, F1. multiclass: accuracy, a confusion matrix, and
    per class (one-vs-rest) precision, recall, F1 and AUC with their macro averages.
    regression: MAE, MSE and RMSE, MAPE, calibration (mean prediction over mean label).
    Multiclass without label.classes leaves the class ids to the Evaluator, which reads them
    from the candidate model (components/evaluator, with_class_ids).
    """
    ev, task = config.evaluator, config.label.task
    thresholds: dict[str, dict[str, float]] = {}
    for option, value in ev.thresholds(task).items():
        thresholds.setdefault(OPTION_METRICS[option], {})[option] = value
    specs = [tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name="ExampleCount")])]
    if task is Task.BINARY:
        specs[0].metrics.extend(
            [
                _metric("AUC", thresholds),
                _metric("BinaryAccuracy", {"BinaryAccuracy": thresholds.get("accuracy", {})}),
                _metric("Precision", thresholds),
                _metric("Recall", thresholds),
                _metric("F1Score", thresholds),
                # Confusion matrices at 100 thresholds: the ROC curve and confusion matrix of `tfxp report`.
                tfma.MetricConfig(class_name="ConfusionMatrixPlot", config='"num_thresholds": 100'),
            ]
        )
    elif task is Task.MULTICLASS:
        specs[0].metrics.extend(
            [
                _metric(
                    "SparseCategoricalAccuracy",
                    {"SparseCategoricalAccuracy": thresholds.get("accuracy", {})},
                    name="accuracy",
                ),
                tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
            ]
        )
        per_class = tfma.MetricsSpec(metrics=[_metric(name, {}) for name in ("Precision", "Recall", "F1Score", "AUC")])
        # Averaged over the classes (macro): the thresholds apply here, not to each class.
        macro = tfma.MetricsSpec(
            metrics=[_metric("F1Score", thresholds), _metric("AUC", thresholds)],
            aggregate=config_pb2.AggregationOptions(macro_average=True),
        )
        set_class_ids(per_class, macro, len(config.label.classes))
        specs += [per_class, macro]
    else:
        specs[0].metrics.extend(
            [
                _metric("MeanAbsoluteError", thresholds),
                _metric("MeanSquaredError", {}),
                _metric("RootMeanSquaredError", thresholds),  # Keras' (TFMA has none of its own)
                _metric("MeanAbsolutePercentageError", {}),
                _metric("Calibration", {}),
                _metric("MeanLabel", {}),
                _metric("MeanPrediction", {}),
            ]
        )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=DEFAULT_SIGNATURE,
                label_key=config.label.name,
                prediction_key=TASKS[task].prediction_key,
                preprocessing_function_names=[TRANSFORM_SIGNATURE],
            )
        ],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[f]) for f in ev.slices],
        metrics_specs=specs,
    )
