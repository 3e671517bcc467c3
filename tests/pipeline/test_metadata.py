"""The pipeline's ML Metadata connection: what the local runner does to a dead run's records."""

from pipeline import metadata


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
