"""An ML Metadata gRPC server that hands each MetadataStoreService call, as bytes, to ml-metadata's own C++ store.

KFP's driver and launcher talk to ML Metadata over gRPC (backend/src/v2/metadata/client.go,
address from METADATA_GRPC_SERVICE_SERVICE_HOST/_PORT). The official server is a C++ binary
that no registry here ships; the ml-metadata wheel holds the same C++ MetadataStore behind its
pybind module `metadata_store_serialized`, which takes and returns each request and response
serialized. This server registers every method of the service's descriptor and passes the bytes
through unparsed, so what is stored and answered is ml-metadata's code, on SQLite.

One exception. ml-metadata 1.21's store refuses every `filter_query` ("filter_query is not
supported - ZetaSQL dependency removed"); KFP's official install runs the 1.14.0 server, which
has it, and KFP's client sends one form: `custom_properties.parent_dag_id.int_value = N` in
GetExecutionsByContext (metadata/client.go `GetExecutionsInDAG`). That call is answered by
paging through the context's executions in the store and keeping those whose parent_dag_id is
N; any other filter is refused as the store refuses it.

    python -m tests.kfp_backend.mlmd_grpc SQLITE_FILE PORT   (serves until interrupted)
"""

from __future__ import annotations

import re
import sys
import threading
from concurrent import futures

import grpc
from ml_metadata.metadata_store.pywrap.metadata_store_extension import (
    # The wheel's public MetadataStore parses every call into typed messages; only this module
    # takes the serialized request as it arrives over gRPC (MetadataStore._pywrap_cc_call uses it).
    metadata_store as serialized,
)
from ml_metadata.proto import metadata_store_pb2, metadata_store_service_pb2

SERVICE = "ml_metadata.MetadataStoreService"
PARENT_DAG_FILTER = re.compile(r"\s*custom_properties\.parent_dag_id\.int_value\s*=\s*(\d+)\s*")


class MetadataServer:
    """A gRPC server on 127.0.0.1 in front of one SQLite ML Metadata store."""

    def __init__(self, sqlite_path: str, port: int = 0):
        config = metadata_store_pb2.ConnectionConfig()
        config.sqlite.filename_uri = sqlite_path
        config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        self._store = serialized.CreateMetadataStore(
            config.SerializeToString(), metadata_store_pb2.MigrationOptions().SerializeToString()
        )
        self._lock = threading.Lock()  # one SQLite connection: one call at a time
        self.calls: list[str] = []
        service = metadata_store_service_pb2.DESCRIPTOR.services_by_name["MetadataStoreService"]
        handlers = {m.name: grpc.unary_unary_rpc_method_handler(self._handler(m.name)) for m in service.methods}
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")

    def _handler(self, name: str):
        method = getattr(serialized, name, None)

        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            self.calls.append(name)
            if method is None:
                context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not in ml-metadata's C++ store here")
            if name == "GetExecutionsByContext":
                parent = _parent_dag_filter(request)
                if parent is not None:
                    return self._executions_in_dag(request, parent, context)
            return self._call(method, request, context)

        return handle

    def _call(self, method, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self._lock:
            response, message, code = method(self._store, request)
        if code != 0:  # absl status codes are gRPC's
            context.abort(grpc.StatusCode(_CODES[code]), message.decode(errors="replace"))
        return response

    def _executions_in_dag(self, request: bytes, parent: int, context: grpc.ServicerContext) -> bytes:
        service = metadata_store_service_pb2
        asked = service.GetExecutionsByContextRequest.FromString(request)
        page = service.GetExecutionsByContextRequest(context_id=asked.context_id)
        page.options.max_result_size = 100
        found = []
        while True:
            answer = service.GetExecutionsByContextResponse.FromString(
                self._call(serialized.GetExecutionsByContext, page.SerializeToString(), context)
            )
            found += [e for e in answer.executions if e.custom_properties["parent_dag_id"].int_value == parent]
            if not answer.next_page_token:
                break
            page.options.next_page_token = answer.next_page_token
        limit = asked.options.max_result_size or 20  # ml-metadata's default page size
        if len(found) > limit:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"more than {limit} executions under DAG {parent}")
        return service.GetExecutionsByContextResponse(executions=found).SerializeToString()

    def start(self) -> MetadataServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)


_CODES = {code.value[0]: code.value for code in grpc.StatusCode}


def _parent_dag_filter(request: bytes) -> int | None:
    asked = metadata_store_service_pb2.GetExecutionsByContextRequest.FromString(request)
    match = PARENT_DAG_FILTER.fullmatch(asked.options.filter_query) if asked.options.filter_query else None
    return int(match.group(1)) if match else None


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python -m tests.kfp_backend.mlmd_grpc SQLITE_FILE PORT", file=sys.stderr)
        return 2
    server = MetadataServer(argv[0], int(argv[1])).start()
    print(f"ML Metadata gRPC on 127.0.0.1:{server.port}, store {argv[0]}", flush=True)
    server._server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
