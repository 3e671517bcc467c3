"""The local runner: chooses local paths, a SQLite metadata store and Beam's DirectRunner.

It calls the one pipeline factory, shows progress as components start and finish, and keeps
TFX's own logs in a file under the output directory.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import shutil
import sys
import time
from typing import Iterator, TextIO

from pipeline.config import PipelineConfig


class ProgressHandler(logging.Handler):
    """Turns LocalDagRunner's 'Component X is running/finished' log lines into progress lines."""

    def __init__(self, total: int, stream: TextIO):
        super().__init__(logging.INFO)
        self.total, self.stream = total, stream
        self.done = 0
        self.current: str | None = None
        self.cached = False
        self.started = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Component %s is running.":
            self.current, self.cached, self.started = record.args[0], False, time.monotonic()
            self.stream.write(f"[{self.done + 1}/{self.total}] {self.current} ...\n")
        elif record.msg == "A cached execution %d is used.":
            self.cached = True
            return
        elif record.msg == "Component %s is finished.":
            self.done += 1
            how = "cached" if self.cached else f"done ({time.monotonic() - self.started:.1f} s)"
            self.stream.write(f"[{self.done}/{self.total}] {record.args[0]} {how}\n")
            self.current = None
        else:
            return
        self.stream.flush()


@contextlib.contextmanager
def _terminal_output(log_path: str, verbose: bool) -> Iterator[TextIO]:
    """Sends whatever is written to file descriptors 1 and 2 to the log; yields the terminal.

    TensorFlow's C++ start-up lines, Beam's worker processes and Keras' progress bars write
    straight to those descriptors, so only swapping the descriptors keeps the terminal to
    the progress lines. With `verbose` nothing is redirected.
    """
    if verbose:
        yield sys.stdout
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    terminal = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    try:
        yield terminal
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log_fd):
            os.close(fd)
        terminal.close()


@contextlib.contextmanager
def _captured_logs(log_path: str, verbose: bool) -> Iterator[ProgressHandler]:
    """Sends TFX's logs to a file (and the terminal when verbose); progress to the terminal."""
    from absl import logging as absl_logging

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    file_handler = logging.FileHandler(log_path)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    with _terminal_output(log_path, verbose) as terminal:
        progress = ProgressHandler(0, terminal)
        root.handlers = [file_handler, progress] + ([absl_logging.get_absl_handler()] if verbose else [])
        root.setLevel(logging.INFO)
        absl_logging.set_verbosity(absl_logging.INFO)
        try:
            yield progress
        finally:
            root.handlers, root.level = saved_handlers, saved_level
            absl_logging.set_verbosity(absl_logging.WARNING)
            file_handler.close()


def local_serving_platform(config: PipelineConfig, which=shutil.which, image_present=None,
                           environ=os.environ):
    """The InfraValidator's ServingSpec for a local run, or None for the in-process check only.

    TFX's InfraValidator starts TF Serving locally through the Docker API (its local_docker
    platform): it is used where docker or podman already holds the serving image and a Docker
    API socket is there (DOCKER_HOST, as `podman system service` gives one, or docker's own).
    """
    from pipeline.config import ConfigError, InfraValidation
    from pipeline.pipeline import infra_validation_spec
    from serving import launch

    mode = config.serving_check.infra_validator
    if mode is InfraValidation.NEVER:
        return None
    image = config.serving_check.image or launch.OFFICIAL_IMAGE
    present = image_present or launch.image_present
    socket = environ.get("DOCKER_HOST") or ("unix:///var/run/docker.sock"
                                            if os.path.exists("/var/run/docker.sock") else None)
    engines = [path for path in map(which, launch.CONTAINER_ENGINES) if path]
    if socket and any(present(path, image) for path in engines):
        spec = infra_validation_spec(config, "local_docker")
        spec.local_docker.client_base_url = socket
        return spec
    if mode is InfraValidation.ALWAYS:
        raise ConfigError(f"serving_check.infra_validator is 'always', but no docker or podman here holds "
                          f"{image} behind a Docker API socket (DOCKER_HOST); pull the image, or set "
                          "serving_check.infra_validator=auto to use the in-process check alone")
    return None


def build(config: PipelineConfig):
    """The pipeline as the local runner runs it."""
    from pipeline.metadata import sqlite_config
    from pipeline.pipeline import create_pipeline

    return create_pipeline(config, pipeline_root=config.pipeline_root, serving_dir=config.serving_dir,
                           metadata_connection_config=sqlite_config(config.metadata_path),
                           beam_pipeline_args=config.beam.args(),
                           baseline_lookup_token=datetime.datetime.now().isoformat(),
                           serving_platform=local_serving_platform(config))


class PipelineFailed(RuntimeError):
    def __init__(self, component: str | None, cause: BaseException, log_path: str):
        self.component, self.cause, self.log_path = component, cause, log_path
        message = str(cause).strip() or type(cause).__name__
        super().__init__(f"{component or 'the pipeline'} failed: {message}\n"
                         f"The full log is in {log_path}; no model was pushed by this run.")


def run(config: PipelineConfig, verbose: bool = False) -> str:
    """Runs the whole pipeline locally; returns the log path. Raises PipelineFailed."""
    from pipeline.preflight import check_data

    check_data(config)
    print(f"Running pipeline '{config.pipeline_name}' on {config.data.path}\n"
          f"  outputs under {config.output_dir}", flush=True)
    for path in (config.pipeline_root, os.path.dirname(config.metadata_path), config.serving_dir):
        os.makedirs(path, exist_ok=True)
    log_dir = os.path.join(config.output_dir, "logs")
    os.makedirs(log_dir, exist_ok=True)
    log_path = os.path.join(log_dir, f"run-{datetime.datetime.now():%Y%m%d-%H%M%S}.log")
    with _captured_logs(log_path, verbose) as progress:
        try:
            from tfx import v1 as tfx

            pipeline = build(config)  # inside: importing TensorFlow already writes to stderr
            progress.total = len(pipeline.components)
            tfx.orchestration.LocalDagRunner().run(pipeline)
        except Exception as err:  # noqa: BLE001 - reported as one clear failure below
            logging.getLogger(__name__).exception("pipeline failed")
            raise PipelineFailed(progress.current, err, log_path) from err
    return log_path
