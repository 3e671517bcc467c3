"""Reading runs back from ML Metadata: the pieces that do not need a pipeline run."""

import datetime
import math
import types

from pipeline import metadata


def test_metrics_that_tfma_reports_as_nan_stay_numbers(monkeypatch):
    import tensorflow_model_analysis as tfma

    result = types.SimpleNamespace(slicing_metrics=[
        ((), {"": {"": {"auc": {"doubleValue": 0.91}, "precision": {"doubleValue": "NaN"}}}}),
        ((("trip_start_hour", 3),), {"": {"": {"auc": {"doubleValue": 0.5}}}}),
    ])
    monkeypatch.setattr(tfma, "load_eval_result", lambda uri: result)
    metrics = metadata.evaluation_metrics("unused")
    assert metrics["auc"] == 0.91 and math.isnan(metrics["precision"])
    run = metadata.RunInfo(run_id="r", started=datetime.datetime(2026, 1, 1), executions=[], metrics=metrics,
                           blessed=False, pushed_to=None, failures=[], span=3, drift_baseline_span=2,
                           drift_accepted=True)
    shown = metadata.format_run(run)
    assert "test-split metrics: auc=0.91, precision=nan" in shown
    assert "data span: 3 (compared with span 2); drift accepted (drift.accept)" in shown


def test_counts_print_whole_and_metrics_to_four_digits():
    from pipeline.metadata import format_metric

    assert format_metric("example_count", 15199.0) == "example_count=15199"
    assert format_metric("auc", 0.958712) == "auc=0.9587"


def test_executions_a_dead_run_left_running_are_marked_interrupted(tmp_path):
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    path = str(tmp_path / "metadata.sqlite")
    store = metadata_store.MetadataStore(metadata.sqlite_config(path))
    type_id = store.put_execution_type(metadata_store_pb2.ExecutionType(name="Trainer"))
    states = [metadata_store_pb2.Execution.RUNNING, metadata_store_pb2.Execution.COMPLETE]
    ids = store.put_executions([metadata_store_pb2.Execution(type_id=type_id, last_known_state=s) for s in states])
    assert metadata.mark_interrupted(path) == 1
    running, complete = store.get_executions_by_id(ids)
    assert running.last_known_state == metadata_store_pb2.Execution.CANCELED
    assert metadata.custom_property(running, metadata.INTERRUPTED_PROPERTY) == 1
    assert complete.last_known_state == metadata_store_pb2.Execution.COMPLETE
    assert metadata.INTERRUPTED_PROPERTY not in complete.custom_properties
    assert metadata.mark_interrupted(path) == 0  # nothing left to mark
    assert metadata.mark_interrupted(str(tmp_path / "none.sqlite")) == 0  # no store yet: no run died
