"""trainer.model auto: which trained model to export, judged on the eval split.

Gradient-boosted trees are the field's default for tabular data: they match or beat neural
networks on most tables (Grinsztajn et al., NeurIPS 2022; Shwartz-Ziv and Armon, 2021). So the
trees are exported unless the network is better on the eval split by more than the split can
tell: a one-sided paired test over the eval rows at 95% (z above NETWORK_MARGIN_Z). A few dozen
eval rows cannot tell two good models apart, and choosing by the raw score there is choosing by
noise; a large split tells small differences.

The paired test compares both models on the same rows:
- accuracy and the regression losses are means over rows: the standard error of the mean of the
  per-row differences;
- AUC is not a mean over rows: DeLong's variance of the difference of two correlated AUCs
  (DeLong, DeLong and Clarke-Pearson, Biometrics 1988), computed by midranks as in Sun and Xu,
  IEEE Signal Processing Letters 2014.
Pure NumPy: no TensorFlow, testable on arrays.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from models.spec import RegressionLoss, Task
from models.tasks import TASKS

NETWORK_MARGIN_Z = 1.645  # one-sided 95%: the network must lead by this many standard errors
PREFERRED = "gbt"
CHALLENGER = "dnn"


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def _delong(labels: np.ndarray, scores: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each score's AUC, and the covariance matrix of those AUCs (DeLong)."""
    positive = labels.reshape(-1) > 0.5
    m, n = int(positive.sum()), int((~positive).sum())
    if m == 0 or n == 0:
        raise ValueError("the eval split has only one class: AUC is undefined")
    aucs, v01, v10 = [], [], []
    for score in scores:
        score = np.asarray(score, dtype=np.float64).reshape(-1)
        x, y = score[positive], score[~positive]
        tz = _midranks(np.concatenate([x, y]))
        tx, ty = _midranks(x), _midranks(y)
        aucs.append((tz[:m].sum() - m * (m + 1) / 2.0) / (m * n))
        v01.append((tz[:m] - tx) / n)
        v10.append(1.0 - (tz[m:] - ty) / m)
    cov = np.atleast_2d(np.cov(np.stack(v01))) / m + np.atleast_2d(np.cov(np.stack(v10))) / n
    return np.asarray(aucs), cov


def row_losses(task: Task, loss: RegressionLoss | None, labels, predictions) -> np.ndarray:
    """Per eval row, what the objective averages (lower is better): 1 for a wrong class, 0 for a
    right one; the squared or Huber error of the z-scored value. Not for binary (AUC)."""
    labels = np.asarray(labels).reshape(-1)
    predictions = np.asarray(predictions)
    if task is Task.MULTICLASS:
        return (np.argmax(predictions, axis=1) != labels).astype(np.float64)
    error = predictions.reshape(-1).astype(np.float64) - labels
    if loss is RegressionLoss.HUBER:
        small = np.abs(error) <= 1.0
        return np.where(small, 0.5 * error**2, np.abs(error) - 0.5)
    return error**2


def objective_value(task: Task, loss: RegressionLoss | None, labels, predictions) -> float:
    """The tuner's objective (tasks.TASKS[task].tuner_objective) of `predictions` (what the
    model returns: probabilities, or the z-scored value) against the transformed labels."""
    if task is Task.BINARY:
        return float(_delong(np.asarray(labels), [predictions])[0][0])
    losses = row_losses(task, loss, labels, predictions)
    return float(1.0 - losses.mean()) if task is Task.MULTICLASS else float(losses.mean())


def network_lead(task: Task, loss: RegressionLoss | None, labels, network, trees) -> tuple[float, float]:
    """How far the network's objective is better than the trees' on these rows (positive: the
    network is better), and that difference's standard error, paired over the rows."""
    labels = np.asarray(labels)
    n = labels.reshape(-1).shape[0]
    if task is Task.BINARY:
        aucs, cov = _delong(labels, [network, trees])
        variance = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
        return float(aucs[0] - aucs[1]), math.sqrt(max(float(variance), 0.0))
    gains = row_losses(task, loss, labels, trees) - row_losses(task, loss, labels, network)
    spread = float(gains.std(ddof=1)) if n > 1 else 0.0
    return float(gains.mean()), spread / math.sqrt(n)


def decide(task: Task, loss: RegressionLoss | None, labels, predictions: dict[str, Any]) -> dict[str, Any]:
    """The record written to assets.extra/TRAINER_CHOICE: which of `predictions` ({"dnn": ...,
    "gbt": ...}, each on the same eval rows) to export, with each one's objective and why."""
    metric, direction = TASKS[task].tuner_objective
    rows = int(np.asarray(labels).reshape(-1).shape[0])
    if task is Task.BINARY and len(np.unique(np.asarray(labels) > 0.5)) < 2:
        return {
            "configured": "auto",
            "model": PREFERRED,
            "objective": metric,
            "direction": direction,
            "eval_scores": {},
            "eval_rows": rows,
            "reason": f"the {rows} eval rows hold one class, so {metric} cannot compare the models: the trees",
        }
    scores = {name: objective_value(task, loss, labels, p) for name, p in predictions.items()}
    lead, error = network_lead(task, loss, labels, predictions[CHALLENGER], predictions[PREFERRED])
    z = lead / error if error > 0 else (math.inf if lead > 0 else 0.0)
    best = CHALLENGER if z > NETWORK_MARGIN_Z else PREFERRED
    listed = ", ".join(f"{name} {value:.6g}" for name, value in sorted(scores.items()))
    verdict = (
        "the network leads beyond the split's noise"
        if best == CHALLENGER
        else "the trees unless the network leads beyond the split's noise, and it does not"
    )
    return {
        "configured": "auto",
        "model": best,
        "objective": metric,
        "direction": direction,
        "eval_scores": scores,
        "eval_rows": rows,
        "network_lead": lead,
        "network_lead_stderr": error,
        "network_lead_z": z if math.isfinite(z) else None,
        "needed_z": NETWORK_MARGIN_Z,
        "reason": (
            f"{metric} on {rows} eval rows ({direction}): {listed}; network's lead {lead:.4g} "
            f"(standard error {error:.3g}, z {z:.2f}, needs {NETWORK_MARGIN_Z}): {verdict}"
        ),
    }
