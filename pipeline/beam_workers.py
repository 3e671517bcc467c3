"""Beam SDK worker processes kept alive across the Beam pipelines of one process.

DirectRunner's `multi_processing` mode starts fresh worker processes for every Beam
pipeline and waits for them to exit at its end. A local TFX run executes ExampleGen,
StatisticsGen, Transform and Evaluator one after another in one process, each a Beam
pipeline of its own, so every component pays for new workers that import TensorFlow, TFDV,
TFT and TFMA again (README, Benchmarks). `WarmWorkersRunner` is Beam's FnApiRunner with
the same workers, but started once per process: each is a Beam external worker pool
(`BeamFnExternalWorkerPoolServicer`, in-process harnesses) in a process of its own, and
each pipeline's `direct_num_workers` workers are spread over them.

Why a subclass with private names, not Beam's public route (read in Beam 2.77's source):
DirectRunner hands FnApiRunner its running mode's environment and never reads
`--environment_type`; PortableRunner reads EXTERNAL, but Beam's local job service runs every
job with one SDK worker and nothing public sets the count; and `worker_pool_main`'s entry point
starts a fresh `python` per harness, so imports are paid again per pipeline. The beam
benchmark tier measures that public route side by side (`portable`: PortableRunner, Beam's
job service, EXTERNAL workers from `worker_pool_main`) against this runner
(`multi_processing+reuse`): benchmarks/README.md, "Beam modes".

Selected by `beam.reuse_workers: true` with `beam.direct_running_mode: multi_processing`
(`--runner=pipeline.beam_workers.WarmWorkersRunner`). The workers end with the process
that started them: they exit when their stdin closes.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import subprocess
import sys
import threading

from apache_beam.options import pipeline_options
from apache_beam.portability import python_urns
from apache_beam.portability.api import (
    beam_fn_api_pb2,
    beam_fn_api_pb2_grpc,
    beam_provision_api_pb2,
    beam_runner_api_pb2,
    endpoints_pb2,
)
from apache_beam.runners.portability.fn_api_runner import fn_runner, worker_handlers
from apache_beam.runners.worker.channel_factory import GRPCChannelFactory

from pipeline.config import available_cores

_LOGGER = logging.getLogger(__name__)
WORKER_POOL_URN = "tfxp:env:warm_worker_pool:v1"
_READY = "worker pool listening at "


class WorkerPool:
    """`size` worker-pool processes, each serving SDK harnesses on a localhost port."""

    def __init__(self, size: int):
        self.size = size
        self._procs: list[subprocess.Popen] = []
        self.addresses: list[str] = []
        self._lock = threading.Lock()

    def ensure_started(self) -> list[str]:
        """Starts the missing or exited worker processes, side by side; returns every address."""
        with self._lock:
            missing = [i for i in range(self.size) if i >= len(self._procs) or self._procs[i].poll() is not None]
            started = {i: _spawn() for i in missing}
            for i, proc in started.items():
                address = _wait_until_serving(proc)
                _LOGGER.info("Beam worker process %d started, serving at %s", proc.pid, address)
                if i < len(self._procs):
                    self._procs[i], self.addresses[i] = proc, address
                else:
                    self._procs.append(proc)
                    self.addresses.append(address)
            return list(self.addresses)

    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.poll() is None]

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            for proc in self._procs:
                if proc.stdin and not proc.stdin.closed:
                    proc.stdin.close()
            for proc in self._procs:
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self._procs, self.addresses = [], []


def _spawn() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.beam_workers"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def _wait_until_serving(proc: subprocess.Popen) -> str:
    line = proc.stdout.readline()
    if not line.startswith(_READY):
        proc.kill()
        proc.wait()
        raise RuntimeError(
            f"a Beam worker process (python -m pipeline.beam_workers) did not start "
            f"(exit code {proc.returncode}); its errors are in the run's log"
        )
    return line[len(_READY) :].strip()


_POOLS: dict[int, WorkerPool] = {}
_POOLS_LOCK = threading.Lock()
# Handlers take the pool's addresses in turn, so the workers of one pipeline land in
# different processes.
_TURN = itertools.count()


def pool(size: int) -> WorkerPool:
    """The process's pool of `size` workers, started on first use and stopped at exit."""
    with _POOLS_LOCK:
        if size not in _POOLS:
            _POOLS[size] = WorkerPool(size)
            atexit.register(_POOLS[size].stop)
        return _POOLS[size]


@worker_handlers.WorkerHandler.register_environment(WORKER_POOL_URN, beam_runner_api_pb2.ExternalPayload)
class _PooledWorkerHandler(worker_handlers.ExternalWorkerHandler):
    """Asks one of the pool's processes for a harness, and tells it when the pipeline is done."""

    def start_worker(self) -> None:
        # Private: ExternalWorkerHandler keeps the environment's payload only as
        # `_external_payload`; Beam has no accessor for a handler's environment.
        addresses = self._external_payload.params["addresses"].split(",")
        self._address = addresses[next(_TURN) % len(addresses)]
        self._channel = GRPCChannelFactory.insecure_channel(self._address)
        self._pool = beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolStub(self._channel)
        control = endpoints_pb2.ApiServiceDescriptor(url=self.control_address)
        response = self._pool.StartWorker(
            beam_fn_api_pb2.StartWorkerRequest(
                worker_id=self.worker_id,
                control_endpoint=control,
                artifact_endpoint=control,
                provision_endpoint=control,
                logging_endpoint=self.logging_api_service_descriptor(),
            )
        )
        if response.error:
            raise RuntimeError(f"the Beam worker at {self._address} could not start a harness: {response.error}")

    def stop_worker(self) -> None:
        self._pool.StopWorker(beam_fn_api_pb2.StopWorkerRequest(worker_id=self.worker_id))
        self._channel.close()

    def host_from_worker(self) -> str:
        # The workers are this process's children, on this machine. (Beam's default,
        # socket.getfqdn(), is for workers elsewhere and need not resolve in a chroot.)
        return "localhost"


class WarmWorkersRunner(fn_runner.FnApiRunner):
    """FnApiRunner whose `multi_processing` workers outlive the pipeline (see module doc)."""

    def run_pipeline(self, pipeline, options):
        direct = options.view_as(pipeline_options.DirectOptions)
        if direct.direct_running_mode != "multi_processing":
            raise ValueError(
                f"WarmWorkersRunner keeps multi_processing workers; got "
                f"--direct_running_mode={direct.direct_running_mode}. Use "
                f"--runner=DirectRunner for the other modes (the config does so)."
            )
        # What DirectRunner gives FnApiRunner: the pipeline options, for the workers.
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        # Private: FnApiRunner takes provision info only in its constructor (DirectRunner builds
        # a new FnApiRunner per pipeline with it), but `--runner=` builds this runner without
        # arguments before the pipeline's options are known.
        self._provision_info = fn_runner.ExtendedProvisionInfo(
            beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
        )
        size = direct.direct_num_workers or available_cores()
        self._addresses = pool(size).ensure_started()
        return super().run_pipeline(pipeline, options)

    def run_via_runner_api(self, pipeline_proto, options):
        # run_pipeline gave the pipeline a subprocess environment; point it at the pool.
        payload = beam_runner_api_pb2.ExternalPayload(
            endpoint=endpoints_pb2.ApiServiceDescriptor(url=self._addresses[0]),
            params={"addresses": ",".join(self._addresses)},
        )
        for env in pipeline_proto.components.environments.values():
            if env.urn == python_urns.SUBPROCESS_SDK:
                env.urn, env.payload = WORKER_POOL_URN, payload.SerializeToString()
        return super().run_via_runner_api(pipeline_proto, options)


def _serve() -> int:
    """One worker process: Beam's external worker pool with in-process harnesses."""
    from apache_beam.runners.worker import worker_pool_main

    # sdk_worker_main's defaults: --max_cache_memory_usage_mb=100, no output buffering delay.
    address, server = worker_pool_main.BeamFnExternalWorkerPoolServicer.start(
        use_process=False, port=0, state_cache_size=100 << 20, data_buffer_time_limit_ms=0
    )
    print(_READY + address, flush=True)
    os.dup2(2, 1)  # nobody reads our stdout after this line; harness output goes to the log
    sys.stdin.read()  # returns when the parent closes our stdin or exits
    server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(_serve())
