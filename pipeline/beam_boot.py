"""Beam's SDK container contract in Python: start one SDK harness for a runner elsewhere.

A portable runner (Flink's job server here) starts a Python SDK harness by running a
"boot" command with `--id`, `--provision_endpoint`, `--control_endpoint`,
`--logging_endpoint` and `--artifact_endpoint`: with `--environment_type=PROCESS` the
TaskManager runs it itself, with `worker_pool_main --container_executable=...` a worker
pool does. Beam's boot is a Go binary inside its SDK container image (sdks/python/container
/boot.go); pip's apache-beam has none. This module does what that boot does for an
environment that already holds the code (the project's runtime or image): ask the runner's
provision service for the pipeline options and endpoints, set the variables Beam's
`sdk_worker_main` reads, and run it. It installs nothing: staged artifacts are not fetched,
so the pipeline must not need any (`--sdk_container_image` in `beam.extra_args` keeps TFX
from staging an sdist of itself).

Usage: python -m pipeline.beam_boot --id=ID --provision_endpoint=HOST:PORT [...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from google.protobuf import json_format, text_format


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.beam_boot")
    parser.add_argument("--id", required=True)
    parser.add_argument("--provision_endpoint", required=True)
    parser.add_argument("--control_endpoint", default="")
    parser.add_argument("--logging_endpoint", default="")
    parser.add_argument("--artifact_endpoint", default="")
    parser.add_argument("--semi_persist_dir", default="")
    # Runners may pass more flags of the contract (e.g. --runner_capabilities); none is needed here.
    return parser.parse_known_args(argv)[0]


def harness_environment(args: argparse.Namespace) -> dict[str, str]:
    """The variables sdk_worker_main.create_harness reads, from the runner's provision service."""
    from apache_beam.portability.api import beam_provision_api_pb2, beam_provision_api_pb2_grpc, endpoints_pb2
    from apache_beam.runners.worker.channel_factory import GRPCChannelFactory

    with GRPCChannelFactory.insecure_channel(args.provision_endpoint) as channel:
        stub = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel)
        # The runner tells workers apart by this header (as Beam's Go boot sends it).
        info = stub.GetProvisionInfo(
            beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=[("worker_id", args.id)], timeout=60
        ).info

    def descriptor(endpoint, flag: str) -> str:
        if not endpoint.url:
            endpoint = endpoints_pb2.ApiServiceDescriptor(url=flag)
        return text_format.MessageToString(endpoint, as_one_line=True)

    env = {
        "WORKER_ID": args.id,
        "PIPELINE_OPTIONS": json_format.MessageToJson(info.pipeline_options),
        "CONTROL_API_SERVICE_DESCRIPTOR": descriptor(info.control_endpoint, args.control_endpoint),
        "LOGGING_API_SERVICE_DESCRIPTOR": descriptor(info.logging_endpoint, args.logging_endpoint),
        "RUNNER_CAPABILITIES": " ".join(info.runner_capabilities),
        "SEMI_PERSISTENT_DIRECTORY": args.semi_persist_dir,
    }
    if info.HasField("status_endpoint") and info.status_endpoint.url:
        env["STATUS_API_SERVICE_DESCRIPTOR"] = text_format.MessageToString(info.status_endpoint, as_one_line=True)
    return env


def main(argv: list[str] | None = None) -> int:
    args = _args(sys.argv[1:] if argv is None else argv)
    from apache_beam.runners.worker import sdk_worker_main

    with tempfile.TemporaryDirectory(prefix=f"beam-harness-{args.id}-") as scratch:
        args.semi_persist_dir = args.semi_persist_dir or scratch
        os.environ.update(harness_environment(args))
        sdk_worker_main.main(sys.argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
