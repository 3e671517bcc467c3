"""pipeline/beam_boot.py against a provision service of the test's own (no runner, no harness)."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest
from apache_beam.portability.api import beam_provision_api_pb2, beam_provision_api_pb2_grpc, endpoints_pb2
from apache_beam.runners.worker import sdk_worker_main
from google.protobuf import struct_pb2, text_format

from pipeline import beam_boot


class _Provision(beam_provision_api_pb2_grpc.ProvisionServiceServicer):
    def __init__(self, info):
        self.info, self.worker_ids = info, []

    def GetProvisionInfo(self, request, context):
        self.worker_ids.append(dict(context.invocation_metadata()).get("worker_id"))
        return beam_provision_api_pb2.GetProvisionInfoResponse(info=self.info)


@pytest.fixture
def provision():
    options = struct_pb2.Struct()
    options.update({"beam:option:job_name:v1": "taxi", "beam:option:no_pipeline_type_check:v1": True})
    servicer = _Provision(
        beam_provision_api_pb2.ProvisionInfo(
            pipeline_options=options,
            logging_endpoint=endpoints_pb2.ApiServiceDescriptor(url="localhost:1001"),
            runner_capabilities=["beam:protocol:a:v1", "beam:protocol:b:v1"],
        )
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    beam_provision_api_pb2_grpc.add_ProvisionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("localhost:0")
    server.start()
    yield servicer, f"localhost:{port}"
    server.stop(0)


def test_environment_from_the_provision_service(provision):
    servicer, address = provision
    args = beam_boot._args(
        ["--id=2-1", f"--provision_endpoint={address}", "--control_endpoint=localhost:1002", "--unknown_flag=x"]
    )
    args.semi_persist_dir = "/tmp/semi"
    env = beam_boot.harness_environment(args)

    assert servicer.worker_ids == ["2-1"]  # the runner tells workers apart by this header
    assert env["WORKER_ID"] == "2-1"
    # Endpoints the provision info names win; the flags fill in the ones it leaves out.
    logging_endpoint = text_format.Parse(env["LOGGING_API_SERVICE_DESCRIPTOR"], endpoints_pb2.ApiServiceDescriptor())
    control = text_format.Parse(env["CONTROL_API_SERVICE_DESCRIPTOR"], endpoints_pb2.ApiServiceDescriptor())
    assert (logging_endpoint.url, control.url) == ("localhost:1001", "localhost:1002")
    assert env["RUNNER_CAPABILITIES"].split() == ["beam:protocol:a:v1", "beam:protocol:b:v1"]
    # As Beam's harness reads them (private: sdk_worker_main has no public parser of PIPELINE_OPTIONS).
    options = sdk_worker_main._load_pipeline_options(env["PIPELINE_OPTIONS"])
    assert options == {"job_name": "taxi", "no_pipeline_type_check": True}
    assert env["SEMI_PERSISTENT_DIRECTORY"] == "/tmp/semi"
    assert "STATUS_API_SERVICE_DESCRIPTOR" not in env


def test_missing_provision_endpoint_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        beam_boot._args(["--id=1"])
    assert exit_info.value.code == 2
    assert "--provision_endpoint" in capsys.readouterr().err
