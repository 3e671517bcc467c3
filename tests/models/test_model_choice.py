"""trainer.model auto's choice (models/model_choice.py): the paired comparison on the eval split."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models import model_choice
from models.spec import RegressionLoss, Task


def _binary(rows: int, network_noise: float, trees_noise: float, seed: int = 0):
    """Labels and two scores that see the same signal through different amounts of noise."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=rows)
    labels = (signal + rng.normal(size=rows) > 0).astype(np.int64)
    return labels, signal + network_noise * rng.normal(size=rows), signal + trees_noise * rng.normal(size=rows)


def test_auc_equals_scikit_learns_with_ties():
    labels, network, _ = _binary(500, 1.0, 1.0)
    rounded = np.round(network, 1)  # many ties
    for scores in (network, rounded):
        assert model_choice.objective_value(Task.BINARY, None, labels, scores) == pytest.approx(
            roc_auc_score(labels, scores), abs=1e-12
        )


def test_delong_standard_error_agrees_with_a_bootstrap():
    labels, network, trees = _binary(2000, 0.6, 0.9)
    lead, error = model_choice.network_lead(Task.BINARY, None, labels, network, trees)
    rng = np.random.default_rng(1)
    leads = []
    for _ in range(400):
        rows = rng.integers(0, len(labels), len(labels))
        leads.append(roc_auc_score(labels[rows], network[rows]) - roc_auc_score(labels[rows], trees[rows]))
    assert lead == pytest.approx(roc_auc_score(labels, network) - roc_auc_score(labels, trees), abs=1e-12)
    assert error == pytest.approx(np.std(leads), rel=0.2)


def test_a_small_lead_on_a_small_split_exports_the_trees_and_on_a_large_one_the_network():
    small = _binary(60, 0.8, 0.9, seed=3)
    large = _binary(20000, 0.8, 0.9, seed=3)
    for labels, network, trees in (small, large):
        assert model_choice.objective_value(Task.BINARY, None, labels, network) > model_choice.objective_value(
            Task.BINARY, None, labels, trees
        )
    on_small = model_choice.decide(Task.BINARY, None, small[0], {"dnn": small[1], "gbt": small[2]})
    on_large = model_choice.decide(Task.BINARY, None, large[0], {"dnn": large[1], "gbt": large[2]})
    assert on_small["model"] == "gbt" and on_small["network_lead_z"] < model_choice.NETWORK_MARGIN_Z
    assert on_large["model"] == "dnn" and on_large["network_lead_z"] > model_choice.NETWORK_MARGIN_Z
    assert on_small["eval_rows"] == 60 and "60 eval rows" in on_small["reason"]


def test_better_trees_are_exported_and_equal_models_give_the_trees():
    labels, network, trees = _binary(3000, 1.5, 0.5)
    assert model_choice.decide(Task.BINARY, None, labels, {"dnn": network, "gbt": trees})["model"] == "gbt"
    same = model_choice.decide(Task.BINARY, None, labels, {"dnn": trees, "gbt": trees})
    assert same["model"] == "gbt" and same["network_lead"] == 0.0


def test_multiclass_counts_right_answers_per_row():
    labels = np.array([0, 1, 2, 1] * 250)
    exact = np.eye(3)[labels]
    wrong_once_in_ten = exact.copy()
    wrong_once_in_ten[::10] = np.roll(exact[::10], 1, axis=1)
    record = model_choice.decide(Task.MULTICLASS, None, labels, {"dnn": exact, "gbt": wrong_once_in_ten})
    assert record["eval_scores"] == {"dnn": 1.0, "gbt": 0.9}
    assert record["model"] == "dnn" and record["network_lead"] == pytest.approx(0.1)


@pytest.mark.parametrize("loss", [None, RegressionLoss.HUBER])
def test_regression_compares_losses_per_row(loss):
    rng = np.random.default_rng(5)
    labels = rng.normal(size=400)
    close, far = labels + 0.1 * rng.normal(size=400), labels + 2.0 * rng.normal(size=400)
    record = model_choice.decide(Task.REGRESSION, loss, labels, {"dnn": far, "gbt": close})
    assert record["direction"] == "min" and record["model"] == "gbt"
    assert record["eval_scores"]["gbt"] < record["eval_scores"]["dnn"] and record["network_lead"] < 0
    assert model_choice.decide(Task.REGRESSION, loss, labels, {"dnn": close, "gbt": far})["model"] == "dnn"


def test_an_eval_split_with_one_class_exports_the_trees_and_says_why():
    record = model_choice.decide(Task.BINARY, None, np.ones(10), {"dnn": np.ones(10), "gbt": np.zeros(10)})
    assert record["model"] == "gbt" and "10 eval rows hold one class" in record["reason"]
    with pytest.raises(ValueError, match="only one class"):
        model_choice.objective_value(Task.BINARY, None, np.ones(10), np.ones(10))
