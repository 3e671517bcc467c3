"""Reading runs back from ML Metadata: the pieces that do not need a pipeline run."""

import datetime
import math
import types

from components.evaluator import results
from ops import runs


def test_metrics_that_tfma_reports_as_nan_stay_numbers(monkeypatch):
    import tensorflow_model_analysis as tfma

    result = types.SimpleNamespace(
        config=None,  # TFMA's EvalResult: no config read back
        slicing_metrics=[
            ((), {"": {"": {"auc": {"doubleValue": 0.91}, "precision": {"doubleValue": "NaN"}}}}),
            ((("trip_start_hour", 3),), {"": {"": {"auc": {"doubleValue": 0.5}}}}),
        ],
    )
    monkeypatch.setattr(tfma, "load_eval_result", lambda uri, model_name=None: result)
    metrics = results.evaluation_metrics("unused")
    assert metrics["auc"] == 0.91 and math.isnan(metrics["precision"])
    run = runs.RunInfo(
        run_id="r",
        started=datetime.datetime(2026, 1, 1),
        executions=[],
        metrics=metrics,
        blessed=False,
        pushed_to=None,
        failures=[],
        span=3,
        drift_baseline_span=2,
        drift_accepted=True,
    )
    shown = runs.format_run(run)
    assert "test-split metrics: auc=0.91, precision=nan" in shown
    assert "data span: 3 (compared with span 2); drift accepted (drift.accept)" in shown


def test_counts_print_whole_and_metrics_to_four_digits():
    assert results.format_metric("example_count", 15199.0) == "example_count=15199"
    assert results.format_metric("auc", 0.958712) == "auc=0.9587"


def test_tensorflows_deprecation_notes_stay_out_of_the_summary(monkeypatch, caplog):
    import logging

    import tensorflow_model_analysis as tfma

    def load(uri, model_name=None):
        logging.getLogger("tensorflow").warning("From tfma: tf_record_iterator is deprecated")
        return types.SimpleNamespace(config=None, slicing_metrics=[((), {"": {"": {"auc": {"doubleValue": 0.8}}}})])

    monkeypatch.setattr(tfma, "load_eval_result", load)
    tf_logger = logging.getLogger("tensorflow")
    before = tf_logger.level
    with caplog.at_level(logging.WARNING):
        assert results.evaluation_metrics("unused") == {"auc": 0.8}
    assert not [r for r in caplog.records if r.name == "tensorflow"], caplog.records
    assert tf_logger.level == before  # the note is kept out only while TFMA reads


def _failure(name: str, value: float, *, lower=None, upper=None, change=None, macro=False):
    """A TFMA ValidationFailure, as tfma.load_validation_result returns them."""
    from tensorflow_model_analysis.proto import config_pb2, metrics_for_slice_pb2, validation_result_pb2

    failure = validation_result_pb2.ValidationFailure(
        metric_key=metrics_for_slice_pb2.MetricKey(name=name, is_diff=change is not None)
    )
    if macro:
        failure.metric_key.aggregation_type.macro_average = True
    failure.metric_value.double_value.value = value
    if lower is not None:
        failure.metric_threshold.value_threshold.lower_bound.value = lower
    if upper is not None:
        failure.metric_threshold.value_threshold.upper_bound.value = upper
    if change is not None:
        failure.metric_threshold.change_threshold.absolute.value = change
        failure.metric_threshold.change_threshold.direction = config_pb2.MetricDirection.HIGHER_IS_BETTER
    return failure


ACCURACY_GATE = {
    "metric": "accuracy",
    "naive": "majority class share",
    "naive_value": 0.41,
    "margin": 0.02,
    "threshold": 0.43,
    "higher_is_better": True,
}


def test_a_refusal_by_a_first_run_gate_names_the_naive_predictor_and_the_margin_key():
    line = results.describe_failure(_failure("accuracy", 0.38, lower=0.43), [ACCURACY_GATE])
    assert line == (
        "accuracy = 0.38 is below the threshold 0.43: first-run gate: majority class share 0.41 + margin 0.02 "
        "(evaluator.first_run_margin; set evaluator.min_accuracy to choose the threshold)"
    )


def test_a_refusal_by_a_configured_threshold_names_its_key():
    # The same metric bounded by the config, not by the gate: the bound differs from the gate's.
    line = results.describe_failure(_failure("accuracy", 0.78, lower=0.8), [ACCURACY_GATE])
    assert line == "accuracy = 0.78 is below the threshold 0.8: evaluator.min_accuracy"
    line = results.describe_failure(_failure("mean_absolute_error", 5.1, upper=4.0), [])
    assert line == "mean_absolute_error = 5.1 is above the threshold 4: evaluator.max_mae"
    line = results.describe_failure(_failure("f1_score", 0.2, lower=0.5, macro=True), [])
    assert line == "macro_f1_score = 0.2 is below the threshold 0.5: evaluator.min_macro_f1"


def test_a_refusal_by_a_change_threshold_names_its_key():
    line = results.describe_failure(_failure("auc", -0.03, change=-0.01), [])
    assert line.endswith("the allowed change is >= -0.01 (evaluator.max_auc_decrease)")


def test_a_regression_gate_is_shown_as_a_share_of_the_naive_error():
    gate = {
        "metric": "mean_absolute_error",
        "naive": "MAE of the train median",
        "naive_value": 5.0,
        "margin": 0.02,
        "threshold": 4.9,
        "higher_is_better": False,
    }
    line = results.describe_failure(_failure("mean_absolute_error", 5.2, upper=4.9), [gate])
    assert "first-run gate: MAE of the train median 5 x (1 - margin 0.02)" in line
    run = runs.RunInfo("r", datetime.datetime(2026, 1, 1), [], {}, True, None, [], gates=[gate])
    assert "first-run gate: mean_absolute_error <= 4.9 (MAE of the train median 5 x (1 - margin 0.02)" in (
        runs.format_run(run)
    )


def test_a_refused_classifiers_classes_are_named_from_the_candidate(tmp_path):
    from contracts.saved_model import ASSETS_EXTRA, CLASSES_FILE

    (tmp_path / ASSETS_EXTRA).mkdir()
    (tmp_path / ASSETS_EXTRA / CLASSES_FILE).write_text("setosa\nversicolor\n")
    run = runs.RunInfo(
        run_id="r",
        started=datetime.datetime(2026, 1, 1),
        executions=[],
        metrics={"accuracy": 0.5, "recall/classId:0": 0.9, "recall/classId:1": 0.1},
        blessed=False,
        pushed_to=None,
        failures=["accuracy = 0.5 is below the threshold 0.8: evaluator.min_accuracy"],
        candidate=str(tmp_path),
    )
    shown = runs.format_run(run)
    assert "class 0 (setosa): recall=0.9" in shown and "class 1 (versicolor): recall=0.1" in shown
    assert "blessed: no\n    - accuracy = 0.5 is below the threshold 0.8: evaluator.min_accuracy" in shown


def test_the_summary_says_which_model_the_trainer_chose(tmp_path):
    import json

    from contracts.saved_model import ASSETS_EXTRA, TRAINER_CHOICE

    def shown(choice):
        (tmp_path / ASSETS_EXTRA).mkdir(exist_ok=True)
        (tmp_path / ASSETS_EXTRA / TRAINER_CHOICE).write_text(json.dumps(choice))
        run = runs.RunInfo(
            run_id="r",
            started=datetime.datetime(2026, 1, 1),
            executions=[],
            metrics={"auc": 0.9},
            blessed=True,
            pushed_to=str(tmp_path),
            failures=[],
        )
        return runs.format_run(run)

    auto = {
        "configured": "auto",
        "model": "gbt",
        "objective": "val_auc",
        "eval_scores": {"gbt": 0.96512, "dnn": 0.95},
    }
    assert "  trained model: gbt (trainer.model auto: val_auc on the eval split: dnn 0.95, gbt 0.9651)\n" in shown(auto)
    paired = {**auto, "eval_scores": {"gbt": 0.9, "dnn": 0.95}, "eval_rows": 41}
    paired.update(network_lead_z=1.2, needed_z=1.645)
    assert (
        "  trained model: gbt (trainer.model auto: val_auc on 41 eval rows: dnn 0.95, gbt 0.9; "
        "the network leads by 1.20 standard errors, needs 1.645)\n"
    ) in shown(paired)
    assert "  trained model: dnn (trainer.model)\n" in shown({"configured": "dnn", "model": "dnn"})
    (tmp_path / ASSETS_EXTRA / TRAINER_CHOICE).unlink()
    assert "trained model" not in runs.format_run(
        runs.RunInfo(
            run_id="r",
            started=datetime.datetime(2026, 1, 1),
            executions=[],
            metrics={},
            blessed=None,
            pushed_to=str(tmp_path),
            failures=[],
        )
    )


def test_a_gate_is_called_a_first_run_gate_only_when_the_run_compared_with_no_baseline():
    gate = {**ACCURACY_GATE, "metric": "auc", "naive": "class priors", "naive_value": 0.5, "threshold": 0.52}
    first = runs.RunInfo("r", datetime.datetime(2026, 1, 1), [], {}, True, None, [], gates=[gate])
    assert "  first-run gate: auc >= 0.52 (class priors 0.5 + margin 0.02" in runs.format_run(first)
    # After `tfxp doctor --fix`: a fresh store, but the Evaluator compared with the served version.
    compared = runs.RunInfo(
        "r",
        datetime.datetime(2026, 1, 1),
        [],
        {},
        True,
        None,
        [],
        baseline="/srv/serving/taxi/1796000000",
        gates=[gate],
        compared_with_baseline=True,
    )
    text = runs.format_run(compared)
    assert "first-run gate" not in text
    assert "  baseline: /srv/serving/taxi/1796000000\n" in text
    assert "  gate from the data, besides the baseline: auc >= 0.52 (class priors 0.5 + margin 0.02" in text


def test_the_summary_names_the_labels_on_the_pushed_version_and_why_they_did_not_move():
    pushed = "/srv/serving/taxi/1796000001"
    labelled = runs.RunInfo("r", datetime.datetime(2026, 1, 1), [], {}, True, pushed, [], labels=["stable", "canary"])
    assert f"  pushed model: {pushed} (labels now: stable, canary)" in runs.format_run(labelled)
    pending = runs.RunInfo(
        "r",
        datetime.datetime(2026, 1, 1),
        [],
        {},
        True,
        pushed,
        [],
        labels_pending="the labels stay where they were: version 1796000001 is LOADING",
    )
    text = runs.format_run(pending)
    assert f"  pushed model: {pushed}\n" in text + "\n" and "(labels now" not in text
    assert "  labels not moved: the labels stay where they were: version 1796000001 is LOADING" in text
