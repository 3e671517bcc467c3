"""The ML Metadata gRPC server for KFP's Go binaries (mlmd_grpc.py), through ml-metadata's own client."""

from __future__ import annotations

import grpc
import pytest
from ml_metadata import errors, metadata_store
from ml_metadata.proto import metadata_store_pb2, metadata_store_service_pb2, metadata_store_service_pb2_grpc

from tests.kfp_backend.mlmd_grpc import MetadataServer


@pytest.fixture
def server(tmp_path):
    server = MetadataServer(str(tmp_path / "mlmd.sqlite")).start()
    yield server
    server.stop()


def _store(server) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(
        metadata_store_pb2.MetadataStoreClientConfig(host="127.0.0.1", port=server.port)
    )


def _run_with_executions(store, parents: list[int]) -> int:
    """A run context holding one execution per parent DAG id given; the context's id."""
    type_id = store.put_execution_type(metadata_store_pb2.ExecutionType(name="system.ContainerExecution"))
    context_type = store.put_context_type(metadata_store_pb2.ContextType(name="system.PipelineRun"))
    [context_id] = store.put_contexts([metadata_store_pb2.Context(type_id=context_type, name="run-1")])
    executions = []
    for parent in parents:
        execution = metadata_store_pb2.Execution(type_id=type_id)
        execution.custom_properties["parent_dag_id"].int_value = parent
        executions.append(execution)
    ids = store.put_executions(executions)
    store.put_attributions_and_associations(
        [], [metadata_store_pb2.Association(context_id=context_id, execution_id=i) for i in ids]
    )
    return context_id


def test_calls_reach_ml_metadatas_store_and_its_errors_come_back(server):
    store = _store(server)
    type_id = store.put_artifact_type(metadata_store_pb2.ArtifactType(name="system.Artifact"))
    [artifact_id] = store.put_artifacts([metadata_store_pb2.Artifact(type_id=type_id, uri="s3://b/x")])
    assert store.get_artifacts_by_id([artifact_id])[0].uri == "s3://b/x"
    with pytest.raises(errors.NotFoundError):
        store.get_artifact_type("no.such.Type")
    assert {"PutArtifactType", "PutArtifacts", "GetArtifactsByID", "GetArtifactType"} <= set(server.calls)


def test_kfps_parent_dag_filter_is_answered_from_the_contexts_executions(server):
    store = _store(server)
    context_id = _run_with_executions(store, [1, 7, 1, 7, 7])
    stub = metadata_store_service_pb2_grpc.MetadataStoreServiceStub(grpc.insecure_channel(f"127.0.0.1:{server.port}"))
    request = metadata_store_service_pb2.GetExecutionsByContextRequest(context_id=context_id)
    request.options.filter_query = "custom_properties.parent_dag_id.int_value = 7"  # as KFP's client.go writes it
    answer = stub.GetExecutionsByContext(request)
    assert [e.custom_properties["parent_dag_id"].int_value for e in answer.executions] == [7, 7, 7]


def test_any_other_filter_is_refused_as_the_store_refuses_it(server):
    store = _store(server)
    context_id = _run_with_executions(store, [1])
    stub = metadata_store_service_pb2_grpc.MetadataStoreServiceStub(grpc.insecure_channel(f"127.0.0.1:{server.port}"))
    request = metadata_store_service_pb2.GetExecutionsByContextRequest(context_id=context_id)
    request.options.filter_query = "name = 'x'"
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetExecutionsByContext(request)
    assert "filter_query is not supported" in refused.value.details()
