"""The stand-in's servers: REST and gRPC over one ModelRepository, a thread that polls the base
path for pushes, and `serve_forever`, which `tfxp serve` runs.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent import futures
from typing import Self

from serving.standin.grpc_server import grpc_servicers
from serving.standin.http_body import MAX_BODY_BYTES, RestHTTPServer
from serving.standin.repository import ModelRepository
from serving.standin.rest import make_rest_handler

log = logging.getLogger(__name__)


class StandInServer:
    """REST and gRPC servers over one ModelRepository, with a thread that polls for pushes."""

    def __init__(
        self,
        model_name: str,
        base_path: str,
        host: str = "127.0.0.1",
        rest_port: int = 8501,
        grpc_port: int = 8500,
        poll_seconds: float = 2.0,
        request_log_dir: str | None = None,
        metrics_path: str | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        model_config_file: str | None = None,
        config_poll_seconds: float = 0.0,
        allow_labels_for_unavailable: bool = True,
    ):
        import grpc

        from components.drift_check.request_log import RequestLogger

        logger = RequestLogger(request_log_dir) if request_log_dir else None
        self.repository = ModelRepository(
            model_name,
            base_path,
            logger,
            config_file=model_config_file,
            allow_labels_for_unavailable=allow_labels_for_unavailable,
        )
        # --model_config_file_poll_wait_seconds: 0 reads the config file at start only.
        self.config_poll_seconds = config_poll_seconds
        self.repository.refresh()
        self.metrics_path = metrics_path
        self._rest = RestHTTPServer((host, rest_port), make_rest_handler(self.repository, metrics_path, max_body_bytes))
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        grpc_servicers(self.repository)(self._grpc)
        self.grpc_port = self._grpc.add_insecure_port(f"{host}:{grpc_port}")
        self.rest_port = self._rest.server_address[1]
        self.host, self.poll_seconds = host, poll_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _poll(self) -> None:
        import time

        last_read = time.monotonic()
        while not self._stop.wait(self.poll_seconds):
            due = self.config_poll_seconds > 0 and time.monotonic() - last_read >= self.config_poll_seconds
            try:
                self.repository.refresh(read_config=due)
            except Exception:
                log.exception("could not look for new versions")
            if due:
                last_read = time.monotonic()

    def start(self) -> StandInServer:
        self._grpc.start()
        for target in (self._rest.serve_forever, self._poll):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._rest.shutdown()
        self._rest.server_close()
        self._grpc.stop(grace=None).wait()
        for thread in self._threads:
            thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_forever(
    model_name: str,
    base_path: str,
    host: str,
    rest_port: int,
    grpc_port: int,
    poll_seconds: float,
    request_log_dir: str | None = None,
    metrics_path: str | None = None,
    model_config_file: str | None = None,
    config_poll_seconds: float = 0.0,
    allow_labels_for_unavailable: bool = True,
) -> None:
    """Runs the stand-in until SIGINT or SIGTERM, then leaves the process at once.

    Leaving with os._exit skips the interpreter's final garbage collection, which can crash
    on TensorFlow objects that the server's threads touched; the server has nothing to flush.
    """
    import signal
    import sys

    # Handlers first: a client may signal as soon as it has read the banner below.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = StandInServer(
        model_name,
        base_path,
        host,
        rest_port,
        grpc_port,
        poll_seconds,
        request_log_dir,
        metrics_path,
        model_config_file=model_config_file,
        config_poll_seconds=config_poll_seconds,
        allow_labels_for_unavailable=allow_labels_for_unavailable,
    ).start()
    version = server.repository.refresh(read_config=False)
    print(
        f"TF Serving stand-in (not tensorflow_model_server) serving model '{model_name}' "
        f"{f'version {version}' if version else '(no version yet)'} from {base_path}\n"
        f"REST: http://{host}:{server.rest_port}  gRPC: {host}:{server.grpc_port}",
        flush=True,
    )
    if model_config_file:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(server.repository.labels.items())) or "none"
        every = f"every {config_poll_seconds:g} s" if config_poll_seconds > 0 else "at start only"
        print(f"model config: {model_config_file} (read {every}); labels: {labels}", flush=True)
    if request_log_dir:
        print(f"logging requests to {server.repository.request_logger.path}", flush=True)
    if metrics_path:
        print(f"Prometheus metrics: http://{host}:{server.rest_port}{metrics_path}", flush=True)
    stop.wait()
    server.stop()
    sys.stdout.flush()
    os._exit(0)
