"""Reading a TFMA evaluation back: a two-model evaluation (candidate against the served baseline)
is read by model name, so each model's metrics are its own and TFMA logs no warning per slice."""

import logging
import os

import pytest

from components.evaluator import results


def _write_evaluation(path: str, *, baseline: bool) -> None:
    """An evaluation as TFMA's Evaluator writes it: the EvalRun config, metrics and plots records."""
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow_model_analysis.proto import config_pb2, metrics_for_slice_pb2

    names = ["candidate", "baseline"] if baseline else [""]
    specs = [config_pb2.ModelSpec(name=n, is_baseline=(n == "baseline")) for n in names]
    run = config_pb2.EvalRun(eval_config=config_pb2.EvalConfig(model_specs=specs), version="0.48.0")
    os.makedirs(path)
    with open(os.path.join(path, "eval_config.json"), "w") as f:
        f.write(json_format.MessageToJson(run))
    auc = {"candidate": 0.9, "baseline": 0.8, "": 0.7}
    metrics = metrics_for_slice_pb2.MetricsForSlice()
    plots = metrics_for_slice_pb2.PlotsForSlice()
    for name in names:
        kv = metrics.metric_keys_and_values.add()
        kv.key.name, kv.key.model_name = "auc", name
        kv.value.double_value.value = auc[name]
        pkv = plots.plot_keys_and_values.add()
        pkv.key.model_name = name
        pkv.value.confusion_matrix_at_thresholds.matrices.add(threshold=0.5, true_positives=auc[name])
    if baseline:
        kv = metrics.metric_keys_and_values.add()
        kv.key.name, kv.key.model_name, kv.key.is_diff = "auc", "candidate", True
        kv.value.double_value.value = 0.1
    for kind, record in (("metrics", metrics), ("plots", plots)):
        with tf.io.TFRecordWriter(os.path.join(path, f"{kind}-00000-of-00001.tfrecord")) as w:
            w.write(record.SerializeToString())


def _overall(result) -> dict:
    return next(results.metric_values(m) for k, m in result.slicing_metrics if not k)


@pytest.mark.parametrize("baseline", [True, False])
def test_each_model_is_read_by_name_without_warnings(tmp_path, caplog, baseline):
    uri = str(tmp_path / "evaluation")
    _write_evaluation(uri, baseline=baseline)
    with caplog.at_level(logging.WARNING):
        candidate, base = results.eval_results(uri)
        metrics, compared = results.evaluation_overview(uri)
    assert not [r for r in caplog.records if "Fail to find" in r.getMessage()], caplog.records
    assert compared is baseline
    if baseline:
        assert _overall(candidate)["auc"] == pytest.approx(0.9) and _overall(base)["auc"] == pytest.approx(0.8)
        assert candidate.plots and base.plots  # each model's own plots, found by name
        assert metrics["auc"] == pytest.approx(0.9) and metrics["auc_diff"] == pytest.approx(0.1)
    else:
        assert base is None and _overall(candidate)["auc"] == pytest.approx(0.7) and candidate.plots
        assert metrics == {"auc": pytest.approx(0.7)}
