"""The live metrics of each task (models/tasks.py, live_metrics): what TFMA computes with the
monitor's eval config on tiny labelled data, checked against scikit-learn; their thresholds and
defaults; and the findings a multiclass and a regression model raise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as sk

from models.tasks import LIVE_OPTIONS, TASKS
from ops.monitoring import monitor
from pipeline.config import ConfigError, Task, load_config

CONFIGS = {
    Task.BINARY: "pipeline/configs/taxi.yaml",
    Task.MULTICLASS: "pipeline/configs/taxi_multiclass.yaml",
    Task.REGRESSION: "pipeline/configs/taxi_regression.yaml",
}
# Tiny labelled data with its predictions: labels, and binary P(1), multiclass one probability
# per class, regression the prediction.
DATA = {
    Task.BINARY: ([1, 0, 1, 1, 0, 0, 1, 0], [0.9, 0.2, 0.4, 0.7, 0.6, 0.1, 0.8, 0.3]),
    Task.MULTICLASS: (
        [0, 1, 2, 3, 0, 1, 1, 0, 2],
        [
            [0.7, 0.1, 0.1, 0.1],
            [0.2, 0.6, 0.1, 0.1],
            [0.1, 0.2, 0.6, 0.1],
            [0.5, 0.2, 0.2, 0.1],
            [0.3, 0.4, 0.2, 0.1],
            [0.1, 0.8, 0.05, 0.05],
            [0.1, 0.3, 0.5, 0.1],
            [0.6, 0.2, 0.1, 0.1],
            [0.1, 0.1, 0.7, 0.1],
        ],
    ),
    Task.REGRESSION: ([3.0, 10.5, 7.25, 22.0, 5.0, 8.0], [4.0, 9.0, 7.0, 18.5, 6.5, 8.0]),
}


def _config(task: Task, *overrides: str):
    return load_config(CONFIGS[task], ["evaluator.slices=[]", *overrides])


def _examples(config, labels, predictions) -> list[bytes]:
    import tensorflow as tf

    found = []
    for label, prediction in zip(labels, predictions):
        example = tf.train.Example()
        feature = example.features.feature
        if config.label.task is Task.REGRESSION:
            feature[config.label.name].float_list.value.append(label)
        else:
            feature[config.label.name].int64_list.value.append(label)
        feature["prediction"].float_list.value.extend(np.atleast_1d(prediction).tolist())
        found.append(example.SerializeToString())
    return found


def _model_free(config):
    """The monitor's eval config reading the predictions from the examples, not a model."""
    ec = monitor.live_eval_config(config)
    [spec] = ec.model_specs
    spec.ClearField("signature_name")
    spec.ClearField("preprocessing_function_names")
    spec.prediction_key = "prediction"
    return ec


@pytest.mark.parametrize("task", list(Task))
def test_live_metrics_of_each_task_are_scikit_learns(task, tmp_path):
    config = _config(task, f"output_dir={tmp_path}")
    labels, predictions = DATA[task]
    metrics, _ = monitor.evaluate(config, _model_free(config), None, _examples(config, *DATA[task]), str(tmp_path))
    if task is Task.BINARY:
        expected = {
            "auc": sk.roc_auc_score(labels, predictions),
            "binary_accuracy": sk.accuracy_score(labels, np.array(predictions) > 0.5),
        }
    elif task is Task.MULTICLASS:
        # Accuracy of the most probable class; F1 per class one-vs-rest (TFMA's binarize: the
        # class's probability above 0.5), macro F1 their mean.
        scores = np.array(predictions)
        per_class = [
            sk.f1_score(np.array(labels) == i, scores[:, i] > 0.5, zero_division=0) for i in range(scores.shape[1])
        ]
        expected = {
            "accuracy": sk.accuracy_score(labels, scores.argmax(axis=1)),
            "macro_f1_score": float(np.mean(per_class)),
        }
        for index, value in enumerate(per_class):
            assert metrics[f"f1_score/classId:{index}"] == pytest.approx(value, abs=1e-4)
    else:
        expected = {
            "mean_absolute_error": sk.mean_absolute_error(labels, predictions),
            "root_mean_squared_error": math.sqrt(sk.mean_squared_error(labels, predictions)),
        }
    assert [m.metric for m in TASKS[task].live_metrics] == list(expected)
    # TFMA's AUC is a Riemann sum over 10000 thresholds: close to the exact value.
    assert {k: metrics[k] for k in expected} == pytest.approx(expected, abs=1e-3)
    assert metrics["example_count"] == len(labels)


def test_naive_values_are_the_constant_predictors_on_the_window():
    live = {m.metric: m for d in TASKS.values() for m in d.live_metrics}
    assert monitor.naive_value(live["auc"], [0, 1, 1]) == 0.5
    assert monitor.naive_value(live["binary_accuracy"], [0, 1, 1, 1]) == 0.75
    # Always class 1 (share 0.5): F1 2 * 0.5 / 1.5 for it, 0 for the other labelled two
    # (scikit-learn's macro average: over the classes that occur).
    labels = [1, 1, 0, 2]
    expected = sk.f1_score(labels, [1] * 4, average="macro", zero_division=0)
    assert monitor.naive_value(live["macro_f1_score"], labels) == pytest.approx(expected)
    assert monitor.naive_value(live["accuracy"], labels) == 0.5
    values = [1.0, 2.0, 4.0, 9.0]
    assert monitor.naive_value(live["mean_absolute_error"], values) == pytest.approx(
        sk.mean_absolute_error(values, [3.0] * 4)
    )
    assert monitor.naive_value(live["root_mean_squared_error"], values) == pytest.approx(
        math.sqrt(sk.mean_squared_error(values, [4.0] * 4))
    )


def test_thresholds_come_from_monitor_then_evaluator_then_the_naive_predictor():
    labels = [0, 0, 0, 1, 2, 3]  # majority share 0.5, four classes
    test = {"accuracy": 0.9, "macro_f1_score": 0.6}
    # taxi_multiclass sets evaluator.min_accuracy 0.8; min_macro_f1 is nobody's.
    config = _config(Task.MULTICLASS)
    found = monitor.live_thresholds(config, labels, test)
    assert found["accuracy"]["threshold"] == 0.8 and found["accuracy"]["source"] == "evaluator.min_accuracy"
    naive = 2 * 0.5 / 1.5 / 4
    assert found["macro_f1_score"]["threshold"] == pytest.approx(naive + 0.02)
    assert "majority class" in found["macro_f1_score"]["source"]
    assert found["macro_f1_score"]["source"].endswith("evaluator.first_run_margin")
    # The drop: max_metric_drop of the test value unless the metric's own key sets it.
    assert found["accuracy"]["drop"] == pytest.approx(0.05 * 0.9)
    config = _config(Task.MULTICLASS, "monitor.min_accuracy=0.7", "monitor.max_macro_f1_drop=0.2")
    found = monitor.live_thresholds(config, labels, test)
    assert (found["accuracy"]["threshold"], found["accuracy"]["source"]) == (0.7, "monitor.min_accuracy")
    assert (found["macro_f1_score"]["drop"], found["macro_f1_score"]["drop_source"]) == (
        0.2,
        "monitor.max_macro_f1_drop",
    )
    # Regression: errors are bounded above, the naive value times (1 - margin).
    values = [1.0, 2.0, 4.0, 9.0]
    config = _config(Task.REGRESSION, "evaluator.max_mae=null", "monitor.max_rmse=3.5")
    found = monitor.live_thresholds(config, values, {})
    assert found["mean_absolute_error"]["threshold"] == pytest.approx(sk.mean_absolute_error(values, [3.0] * 4) * 0.98)
    assert found["root_mean_squared_error"]["threshold"] == 3.5
    assert "drop" not in found["mean_absolute_error"]  # no test value to drop from


def test_binarys_keys_keep_working():
    config = _config(Task.BINARY, "monitor.min_auc=0.7", "monitor.max_auc_drop=0.1")
    found = monitor.live_thresholds(config, [0, 1, 1], {"auc": 0.95})
    assert (found["auc"]["threshold"], found["auc"]["drop"]) == (0.7, 0.1)
    assert found["binary_accuracy"]["threshold"] == pytest.approx(2 / 3 + 0.02)


@pytest.mark.parametrize(
    "task, override, message",
    [
        (Task.BINARY, "monitor.max_mae=3", "monitor.max_mae: does not apply to label.task binary"),
        (Task.REGRESSION, "monitor.min_macro_f1=0.5", "monitor.min_macro_f1: does not apply to label.task regression"),
        (Task.MULTICLASS, "monitor.min_macro_f1=2", "monitor.min_macro_f1: must lie between 0 and 1, got 2.0"),
        (Task.REGRESSION, "monitor.max_rmse=-1", "monitor.max_rmse: must not be negative, got -1"),
        (Task.BINARY, "monitor.max_metric_drop=1.5", "monitor.max_metric_drop: must lie between 0 and 1, got 1.5"),
    ],
)
def test_bad_live_thresholds_are_one_line_naming_the_key(task, override, message):
    with pytest.raises(ConfigError) as err:
        _config(task, override)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_every_task_takes_its_own_live_options():
    assert LIVE_OPTIONS["min_macro_f1"] == (Task.MULTICLASS,)
    assert LIVE_OPTIONS["min_accuracy"] == (Task.BINARY, Task.MULTICLASS)
    assert set(LIVE_OPTIONS) == {
        "min_auc",
        "max_auc_drop",
        "min_accuracy",
        "max_accuracy_drop",
        "min_macro_f1",
        "max_macro_f1_drop",
        "max_mae",
        "max_mae_increase",
        "max_rmse",
        "max_rmse_increase",
    }


def _result(task: Task, metrics, test_metrics, names=()):
    return monitor.MonitorResult(
        model="m",
        version=1,
        window=(0.0, 1.0),
        requests=10,
        labelled=10,
        metrics=metrics,
        test_metrics=test_metrics,
        task=task.value,
        class_names=list(names),
    )


def test_a_multiclass_model_raises_a_finding_naming_its_classes():
    names = ["Cash", "Credit Card", "No Charge", "Unknown"]
    config = _config(Task.MULTICLASS)
    metrics = {
        "accuracy": 0.3,
        "macro_f1_score": 0.2,
        "f1_score/classId:0": 0.5,
        "f1_score/classId:1": 0.3,
        "f1_score/classId:2": 0.0,
        "f1_score/classId:3": 0.0,
    }
    result = _result(Task.MULTICLASS, metrics, {"accuracy": 0.9, "macro_f1_score": 0.55}, names)
    result.thresholds = monitor.live_thresholds(config, [0, 0, 1, 2, 3, 0, 1, 0, 1, 1], result.test_metrics)
    findings = monitor.metric_findings(result)
    assert findings[0].startswith("live accuracy 0.3 is below the threshold 0.8 (evaluator.min_accuracy)")
    assert "live accuracy 0.3 is 0.6 below the version's test accuracy 0.9; allowed: 0.045" in findings[1]
    assert any(f.startswith("live macro F1 0.2 is 0.35 below the version's test macro F1 0.55") for f in findings)
    assert all("lowest class F1: 'No Charge' 0, 'Unknown' 0" in f for f in findings)
    shown = monitor.format_result(result)
    assert "class 1 ('Credit Card'): f1_score=0.3" in shown
    # Good live metrics: nothing.
    result.metrics = {"accuracy": 0.88, "macro_f1_score": 0.54}
    assert monitor.metric_findings(result) == []


def test_a_regression_model_raises_a_finding_above_its_errors():
    config = _config(Task.REGRESSION)  # evaluator.max_mae 4.0
    result = _result(
        Task.REGRESSION,
        {"mean_absolute_error": 4.5, "root_mean_squared_error": 5.0},
        {"mean_absolute_error": 2.0, "root_mean_squared_error": 4.9},
    )
    result.thresholds = monitor.live_thresholds(config, [1.0, 2.0, 4.0, 30.0], result.test_metrics)
    findings = monitor.metric_findings(result)
    assert findings == [
        "live MAE 4.5 is above the threshold 4 (evaluator.max_mae)",
        "live MAE 4.5 is 2.5 above the version's test MAE 2; allowed: 0.1 "
        "(monitor.max_metric_drop 0.05 of the test value)",
    ]
    # RMSE 5.0 is within 5% of 4.9, and below the naive RMSE of the window's mean.
    assert result.thresholds["root_mean_squared_error"]["threshold"] > 5.0


@pytest.mark.parametrize(
    "task, rows, expected",
    [
        (Task.BINARY, [{"tips": "3.0", "fare": "10"}, {"tips": "1.0", "fare": "10"}], [1, 0]),
        (Task.MULTICLASS, [{"payment_type": "No Charge"}, {"payment_type": "Cash"}, {"payment_type": "x"}], [2, 0, -1]),
        (Task.REGRESSION, [{"fare": "7.25"}, {"fare": "12"}], [7.25, 12.0]),
    ],
)
def test_window_labels_are_the_models_labels(task, rows, expected):
    import tensorflow as tf

    config = _config(task)
    examples = []
    for row in rows:
        example = tf.train.Example()
        for column, text in row.items():
            try:
                example.features.feature[column].float_list.value.append(float(text))
            except ValueError:
                example.features.feature[column].bytes_list.value.append(text.encode())
        examples.append(example.SerializeToString())
    names = ["Cash", "Credit Card", "No Charge", "Unknown"]
    assert monitor.window_labels(config, examples, names) == expected


def test_macro_f1_is_over_the_classes_that_occur_as_scikit_learns():
    # TFMA's F1 of a class neither labelled nor predicted is NaN, and so its macro average.
    labels, chosen = [0, 0, 1, 1, 2], [0, 1, 1, 1, 0]
    per_class = sk.f1_score(labels, chosen, average=None, labels=range(3), zero_division=0)
    tfma = {"macro_f1_score": float("nan"), "f1_score/classId:3": float("nan")}
    tfma.update({f"f1_score/classId:{i}": v for i, v in enumerate(per_class)})
    found = monitor.with_macro_f1(tfma)
    assert found["macro_f1_score"] == pytest.approx(sk.f1_score(labels, chosen, average="macro", zero_division=0))
    assert monitor.with_macro_f1({"auc": 0.7}) == {"auc": 0.7}  # no per-class F1: unchanged
