"""The quick tier's per-task figures: the metrics computed for scikit-learn and the task table."""

import math

import numpy as np
import pandas as pd
import pytest

from benchmarks import endtoend, measure
from pipeline.config import load_config


def test_macro_f1_is_tfmas_one_vs_rest_at_one_half():
    classes = ["a", "b", "c"]
    truth = ["a", "a", "b", "c", "c"]
    probabilities = [
        [0.7, 0.2, 0.1],  # a: tp
        [0.4, 0.6, 0.0],  # a: fn for a, fp for b
        [0.1, 0.8, 0.1],  # b: tp
        [0.3, 0.3, 0.4],  # c: fn (no class above 0.5)
        [0.0, 0.0, 1.0],
    ]  # c: tp
    # a: 2*1/(2+0+1) = 2/3; b: 2*1/(2+1+0) = 2/3; c: 2*1/(2+0+1) = 2/3
    assert endtoend.macro_f1_one_vs_rest(truth, probabilities, classes) == pytest.approx(2 / 3)
    # Exactly 0.5 is not above the threshold, as in TFMA.
    assert endtoend.macro_f1_one_vs_rest(["a", "b"], [[0.5, 0.5], [0.5, 0.5]], ["a", "b"]) == 0.0
    # A class neither seen nor predicted has no F1 (0/0): TFMA's macro average is NaN then.
    assert math.isnan(endtoend.macro_f1_one_vs_rest(truth, [p + [0.0] for p in probabilities], classes + ["d"]))


def test_macro_f1_agrees_with_scikit_learn_per_class():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    classes = ["x", "y", "z", "w"]
    truth = rng.choice(classes, 200)
    probabilities = rng.dirichlet([1, 1, 1, 1], 200)
    expected = np.mean([f1_score(truth == c, probabilities[:, i] > 0.5) for i, c in enumerate(classes)])
    assert endtoend.macro_f1_one_vs_rest(truth, probabilities, classes) == pytest.approx(expected)


def test_task_metrics():
    multiclass = endtoend.task_metrics(
        "multiclass", ["a", "b", "b", "a"], [[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]], ["a", "b"]
    )
    assert multiclass["accuracy"] == 0.5
    assert multiclass["macro_f1_score"] == pytest.approx(0.5)  # each class: tp 1, fp 1, fn 1
    regression = endtoend.task_metrics("regression", [1.0, 2.0, 4.0], [2.0, 2.0, 1.0])
    assert regression["mean_absolute_error"] == pytest.approx(4 / 3)
    assert regression["root_mean_squared_error"] == pytest.approx(math.sqrt(10 / 3))
    assert endtoend.task_metrics("binary", [0, 1, 1, 0], [0.1, 0.8, 0.4, 0.5])["auc"] == 0.75


def test_labels_follow_each_bundled_config():
    frame = pd.DataFrame({"tips": [3.0, None, 0.5], "fare": [10.0, 5.0, None], "payment_type": ["Cash", "x", "y"]})
    binary = load_config(endtoend.TASK_CONFIGS["binary"], [])
    assert list(endtoend.labels(frame, binary)) == [1, 0, 1]  # tips > 0.2 * fare, missing as 0
    assert list(endtoend.labels(frame, load_config(endtoend.TASK_CONFIGS["multiclass"], []))) == ["Cash", "x", "y"]
    regression = load_config(endtoend.TASK_CONFIGS["regression"], [])
    assert list(endtoend.labels(frame, regression))[:2] == [10.0, 5.0]
    numeric, categorical = endtoend.feature_columns(regression)
    assert "fare" not in numeric and "pickup_latitude" in numeric and "payment_type" in categorical
    assert set(endtoend.TASK_METRICS) == set(endtoend.TASK_CONFIGS)


def test_task_table_puts_each_model_beside_ours():
    measured = measure.Measured(42.0, 0, 0, [])
    ours = [
        endtoend.PipelineResult(
            "regression",
            measured,
            {},
            None,
            1492,
            "out",
            "log",
            {"mean_absolute_error": 1.42, "root_mean_squared_error": 3.8149},
        )
    ]
    sklearn = [
        endtoend.SklearnResult(
            "scikit-learn ridge regression",
            1.5,
            0.25,
            {"mean_absolute_error": 2.0, "root_mean_squared_error": 4.5},
            12011,
            1492,
        ),
        endtoend.SklearnResult(
            "scikit-learn gradient boosting",
            1.5,
            0.75,
            {"mean_absolute_error": 1.25, "root_mean_squared_error": 3.5},
            12011,
            1492,
        ),
    ]
    lines = endtoend.task_table("regression", ours, sklearn).splitlines()
    assert lines[0].split("  ")[0] == "regression: model"
    assert "MAE" in lines[0] and "RMSE" in lines[0] and "wall time, s" in lines[0]
    assert lines[2].split() == ["ours", "(tfxp", "run;", "Evaluator)", "1.4200", "3.8149", "42.0", "-", "12011", "1492"]
    assert lines[3].split()[-6:] == ["2.0000", "4.5000", "0.2", "1.5", "12011", "1492"]
    assert lines[4].split()[-6:] == ["1.2500", "3.5000", "0.8", "1.5", "12011", "1492"]
    # A metric the Evaluator did not report shows as "-".
    ours[0].metrics.pop("root_mean_squared_error")
    assert endtoend.task_table("regression", ours, sklearn).splitlines()[2].split()[5] == "-"
