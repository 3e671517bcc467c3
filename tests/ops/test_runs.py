"""Reading runs back from ML Metadata: the pieces that do not need a pipeline run."""

import datetime
import math
import types

from ops import runs


def test_metrics_that_tfma_reports_as_nan_stay_numbers(monkeypatch):
    import tensorflow_model_analysis as tfma

    result = types.SimpleNamespace(
        slicing_metrics=[
            ((), {"": {"": {"auc": {"doubleValue": 0.91}, "precision": {"doubleValue": "NaN"}}}}),
            ((("trip_start_hour", 3),), {"": {"": {"auc": {"doubleValue": 0.5}}}}),
        ]
    )
    monkeypatch.setattr(tfma, "load_eval_result", lambda uri: result)
    metrics = runs.evaluation_metrics("unused")
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
    assert runs.format_metric("example_count", 15199.0) == "example_count=15199"
    assert runs.format_metric("auc", 0.958712) == "auc=0.9587"


def test_tensorflows_deprecation_notes_stay_out_of_the_summary(monkeypatch, caplog):
    import logging

    import tensorflow_model_analysis as tfma

    def load(uri):
        logging.getLogger("tensorflow").warning("From tfma: tf_record_iterator is deprecated")
        return types.SimpleNamespace(slicing_metrics=[((), {"": {"": {"auc": {"doubleValue": 0.8}}}})])

    monkeypatch.setattr(tfma, "load_eval_result", load)
    tf_logger = logging.getLogger("tensorflow")
    before = tf_logger.level
    with caplog.at_level(logging.WARNING):
        assert runs.evaluation_metrics("unused") == {"auc": 0.8}
    assert not [r for r in caplog.records if r.name == "tensorflow"], caplog.records
    assert tf_logger.level == before  # the note is kept out only while TFMA reads
