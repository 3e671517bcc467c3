"""The Evaluator's thresholds fitted to a run: first-run gates from tiny data for each task,
configured value thresholds kept, change thresholds dropped without a baseline."""

from __future__ import annotations

import math

import pytest

from components.evaluator import gates
from models.spec import Task
from models.tasks import TASKS
from pipeline.config import load_config
from pipeline.eval_config import eval_config

MULTICLASS = "pipeline/configs/taxi_multiclass.yaml"
REGRESSION = "pipeline/configs/taxi_regression.yaml"


def test_majority_share_is_the_best_constant_answer_on_test():
    # "a" is 2 answers in 4 on the test split, whatever the train split's majority.
    assert gates.majority_share(["a", "a", "b", "c"]) == 0.5
    assert gates.naive_value(gates.TASKS[gates.Task.MULTICLASS].gates[0], ["b", "b"], ["a", "a", "b", "c"]) == 0.5


def test_naive_errors_use_the_train_median_and_mean():
    train, test = [0.0, 1.0, 10.0], [2.0, 4.0]
    assert gates.naive_mae(train, test) == pytest.approx((1.0 + 3.0) / 2)  # median 1
    mean = 11.0 / 3
    assert gates.naive_rmse(train, test) == pytest.approx(math.sqrt(((2 - mean) ** 2 + (4 - mean) ** 2) / 2))


def test_a_split_without_labels_is_an_error():
    with pytest.raises(ValueError, match="the test split"):
        gates.majority_share([])
    with pytest.raises(ValueError, match="train and the test split"):
        gates.naive_mae([], [1.0])


def _bounds(config) -> dict[str, tuple]:
    """{metric class (macro_ for macro averages): (lower, upper, change)} of its thresholds."""
    found = {}
    for spec in config.metrics_specs:
        prefix = "macro_" if spec.aggregate.macro_average else ""
        for metric in spec.metrics:
            for per_slice in metric.per_slice_thresholds:
                t = per_slice.threshold
                v = t.value_threshold
                bounds = (
                    v.lower_bound.value if v.HasField("lower_bound") else None,
                    v.upper_bound.value if v.HasField("upper_bound") else None,
                    t.change_threshold.absolute.value if t.HasField("change_threshold") else None,
                )
                before = found.get(prefix + metric.class_name, (None, None, None))
                found[prefix + metric.class_name] = tuple(b if b is not None else a for a, b in zip(before, bounds))
    return found


def _no_labels():
    raise AssertionError("the labels were read although no gate needs them")


def test_binary_gate_is_auc_above_one_half_plus_the_margin_with_no_data_read():
    config = eval_config(load_config(None))
    added = gates.gate_eval_config(config, Task.BINARY, 0.05, _no_labels, has_baseline=False)
    assert [(g["metric"], g["naive_value"]) for g in added] == [("auc", 0.5)]
    assert _bounds(config)["AUC"] == (pytest.approx(0.55), None, None)  # the change threshold gone


def test_multiclass_gate_is_the_majority_share_plus_the_margin_and_change_thresholds_stay_with_a_baseline():
    config = eval_config(load_config(MULTICLASS, ["evaluator.min_accuracy=null"]))
    labels = lambda: (["x", "x", "y"], ["x", "y", "y", "y"])  # noqa: E731
    added = gates.gate_eval_config(config, Task.MULTICLASS, 0.02, labels, has_baseline=True)
    assert added[0]["metric"] == "accuracy" and added[0]["naive_value"] == 0.75  # "y", 3 in 4
    # The gate, and the configured change threshold kept: there is a baseline.
    assert _bounds(config)["SparseCategoricalAccuracy"] == (pytest.approx(0.77), None, -0.01)


def test_regression_gates_are_relative_to_the_naive_errors():
    config = eval_config(load_config(REGRESSION, ["evaluator.max_mae=null", "evaluator.max_mae_increase=null"]))
    labels = lambda: ([1.0, 2.0, 3.0], [1.0, 5.0])  # noqa: E731
    added = gates.gate_eval_config(config, Task.REGRESSION, 0.1, labels, has_baseline=False)
    by_metric = {g["metric"]: g for g in added}
    assert by_metric["mean_absolute_error"]["naive_value"] == pytest.approx(2.0)  # |1-2|, |5-2|
    assert _bounds(config)["MeanAbsoluteError"] == (None, pytest.approx(1.8), None)
    assert _bounds(config)["RootMeanSquaredError"][1] == pytest.approx(math.sqrt(5.0) * 0.9)


def test_a_configured_value_threshold_wins_over_the_gate():
    config = eval_config(load_config(MULTICLASS))  # min_accuracy: 0.8
    added = gates.gate_eval_config(config, Task.MULTICLASS, 0.02, _no_labels, has_baseline=False)
    assert added == []
    assert _bounds(config)["SparseCategoricalAccuracy"] == (0.8, None, None)


def test_no_baseline_leaves_no_change_threshold():
    config = eval_config(load_config(REGRESSION))  # max_mae 4.0, max_mae_increase 0.25
    gates.gate_eval_config(config, Task.REGRESSION, 0.02, lambda: ([1.0], [1.0]), has_baseline=False)
    assert all(change is None for _, _, change in _bounds(config).values())
    assert _bounds(config)["MeanAbsoluteError"] == (None, 4.0, None)


def test_every_task_has_a_gate_whose_metric_the_eval_config_computes():
    for task, path in ((Task.BINARY, None), (Task.MULTICLASS, MULTICLASS), (Task.REGRESSION, REGRESSION)):
        classes = {m.class_name for s in eval_config(load_config(path)).metrics_specs for m in s.metrics}
        assert {g.class_name for g in TASKS[task].gates} <= classes
