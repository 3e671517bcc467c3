"""The Evaluator's thresholds as a run sees them: change thresholds only against a baseline,
and first-run gates, from the data, on the gate metrics no value threshold bounds.

A first-run gate asks a model to beat the naive predictor of its task (models/tasks.py) by a
margin, measured on this run's test split: class priors for AUC (0.5), the best constant
answer for accuracy (the test split's most frequent class), the train split's median for MAE
and its mean for RMSE.
"""

from __future__ import annotations

import collections
import json
import math
import os
import statistics
from typing import Callable, Iterator, Sequence

from models.spec import Task
from models.tasks import TASKS, Gate, LiveMetric

# Written into the evaluation artifact: the gates applied, for the run summary.
GATES_FILE = "first_run_gates.json"


def majority_share(test: Sequence) -> float:
    """The best accuracy a constant answer gets on `test`: the share of its most frequent class.

    Not the train split's majority measured on `test`: a small test split may hold few or none
    of that class, which made the gate close to 0 on balanced data.
    """
    if not test:
        raise ValueError("the majority class needs labels in the test split")
    return max(collections.Counter(test).values()) / len(test)


def naive_mae(train: Sequence[float], test: Sequence[float]) -> float:
    """The MAE on `test` of always predicting the median of `train`."""
    if not train or not test:
        raise ValueError("the naive MAE needs labels in both the train and the test split")
    m = statistics.median(train)
    return sum(abs(y - m) for y in test) / len(test)


def naive_rmse(train: Sequence[float], test: Sequence[float]) -> float:
    """The RMSE on `test` of always predicting the mean of `train`."""
    if not train or not test:
        raise ValueError("the naive RMSE needs labels in both the train and the test split")
    mean = statistics.fmean(train)
    return math.sqrt(sum((y - mean) ** 2 for y in test) / len(test))


def naive_value(gate: Gate | LiveMetric, train: Sequence, test: Sequence) -> float:
    """The naive predictor's value of `gate`'s metric on the test labels (a live metric's too:
    ops/monitoring/monitor.py)."""
    if gate.metric == "auc":
        return 0.5  # a constant score (the class priors) ranks no positive above a negative
    if gate.metric == "accuracy":
        return majority_share(test)
    if gate.metric == "mean_absolute_error":
        return naive_mae(train, test)
    if gate.metric == "root_mean_squared_error":
        return naive_rmse(train, test)
    raise ValueError(f"no naive predictor for {gate.metric}")


def split_labels(examples_uri: str, split: str, label_key: str) -> list:
    """The label values of one split of an Examples artifact (TFRecord of tf.Example, as
    ExampleGen writes them); rows without a label are left out. Numbers as floats, text as
    bytes."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    labels: list = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        feature = tf.train.Example.FromString(record).features.feature.get(label_key)
        if feature is None:
            continue
        kind = feature.WhichOneof("kind")
        values = getattr(feature, kind).value if kind else []
        if values:
            labels.append(float(values[0]) if kind != "bytes_list" else values[0])
    return labels


def _gate_metrics(config, gate: Gate) -> Iterator:
    """The eval config's MetricConfigs of `gate`'s metric (overall: not macro-averaged or binarized)."""
    for spec in config.metrics_specs:
        if not spec.aggregate.macro_average and not spec.HasField("binarize"):
            yield from (metric for metric in spec.metrics if metric.class_name == gate.class_name)


def _value_bounded(config, gate: Gate) -> bool:
    """Whether the eval config already bounds `gate`'s metric by a value threshold."""
    return any(
        per_slice.threshold.HasField("value_threshold")
        for metric in _gate_metrics(config, gate)
        for per_slice in metric.per_slice_thresholds
    )


def _add_value_threshold(config, gate: Gate, bound: float) -> None:
    from tensorflow_model_analysis.proto import config_pb2

    metric = next(_gate_metrics(config, gate), None)
    if metric is None:
        raise ValueError(f"the eval config has no {gate.class_name} metric to gate on")
    threshold = config_pb2.MetricThreshold()
    if gate.higher_is_better:
        threshold.value_threshold.lower_bound.value = bound
    else:
        threshold.value_threshold.upper_bound.value = bound
    metric.per_slice_thresholds.append(
        config_pb2.PerSliceMetricThreshold(slicing_specs=[config_pb2.SlicingSpec()], threshold=threshold)
    )


def without_change_thresholds(config) -> None:
    """Drops every change threshold (in place): with no baseline model there is nothing to
    change from, and TFMA would report them missing and not bless."""
    for spec in config.metrics_specs:
        for metric in spec.metrics:
            kept = []
            for per_slice in metric.per_slice_thresholds:
                per_slice.threshold.ClearField("change_threshold")
                if per_slice.threshold.HasField("value_threshold"):
                    kept.append(per_slice)
            del metric.per_slice_thresholds[:]
            metric.per_slice_thresholds.extend(kept)
        for name, threshold in list(spec.thresholds.items()):
            threshold.ClearField("change_threshold")
            if not threshold.HasField("value_threshold"):
                del spec.thresholds[name]
        for threshold in spec.per_slice_thresholds.values():
            for per_slice in threshold.thresholds:
                per_slice.threshold.ClearField("change_threshold")


def gate_eval_config(
    config,
    task: Task,
    margin: float,
    labels: Callable[[], tuple[Sequence, Sequence]],
    has_baseline: bool,
) -> list[dict]:
    """Adjusts the TFMA EvalConfig `config` in place for this run and returns the first-run
    gates it added ({metric, naive, naive_value, margin, threshold, higher_is_better}).

    `labels()` returns (train labels, test labels); it is called only when a gate needs them.
    """
    if not has_baseline:
        without_change_thresholds(config)
    gates = [g for g in TASKS[task].gates if not _value_bounded(config, g)]
    train = test = None
    added = []
    for gate in gates:
        if gate.metric != "auc" and train is None:
            train, test = labels()
        naive = naive_value(gate, train or [], test or [])
        bound = gate.bound(naive, margin)
        _add_value_threshold(config, gate, bound)
        added.append(
            {
                "metric": gate.metric,
                "naive": gate.naive,
                "naive_value": naive,
                "margin": margin,
                "threshold": bound,
                "higher_is_better": gate.higher_is_better,
            }
        )
    return added


def write_gates(evaluation_uri: str, gates: list[dict]) -> None:
    import tensorflow as tf

    with tf.io.gfile.GFile(os.path.join(evaluation_uri, GATES_FILE), "w") as f:
        json.dump(gates, f, indent=2, sort_keys=True)


def read_gates(evaluation_uri: str) -> list[dict]:
    """The first-run gates an evaluation applied ([] when none, or an older run)."""
    path = os.path.join(evaluation_uri, GATES_FILE)
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        return json.load(f)
