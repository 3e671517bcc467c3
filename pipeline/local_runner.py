"""The local runner: chooses local paths, a SQLite metadata store and Beam's DirectRunner.

It calls the one pipeline factory, shows progress as components start and finish, and keeps
TFX's own logs in a file under the output directory.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
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
        self.started = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Component %s is running.":
            self.current, self.started = record.args[0], time.monotonic()
            self.stream.write(f"[{self.done + 1}/{self.total}] {self.current} ...\n")
        elif record.msg == "Component %s is finished.":
            self.done += 1
            self.stream.write(f"[{self.done}/{self.total}] {record.args[0]} done "
                              f"({time.monotonic() - self.started:.1f} s)\n")
            self.current = None
        else:
            return
        self.stream.flush()


@contextlib.contextmanager
def _captured_logs(log_path: str, total: int, verbose: bool) -> Iterator[ProgressHandler]:
    """Sends TFX's logs to a file (and the terminal when verbose); progress to stdout."""
    from absl import logging as absl_logging

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    absl_handler = absl_logging.get_absl_handler()
    file_handler = logging.FileHandler(log_path)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    progress = ProgressHandler(total, sys.stdout)
    root.handlers = [file_handler, progress] + ([absl_handler] if verbose else [])
    root.setLevel(logging.INFO)
    absl_logging.set_verbosity(absl_logging.INFO)
    try:
        yield progress
    finally:
        root.handlers, root.level = saved_handlers, saved_level
        file_handler.close()


def build(config: PipelineConfig):
    """The pipeline as the local runner runs it."""
    from pipeline.metadata import sqlite_config
    from pipeline.pipeline import create_pipeline

    return create_pipeline(config, pipeline_root=config.pipeline_root, serving_dir=config.serving_dir,
                           metadata_connection_config=sqlite_config(config.metadata_path),
                           beam_pipeline_args=config.beam.args())


class PipelineFailed(RuntimeError):
    def __init__(self, component: str | None, cause: BaseException, log_path: str):
        self.component, self.cause, self.log_path = component, cause, log_path
        message = str(cause).strip() or type(cause).__name__
        super().__init__(f"{component or 'the pipeline'} failed: {message}\n"
                         f"The full log is in {log_path}; no model was pushed by this run.")


def run(config: PipelineConfig, verbose: bool = False) -> str:
    """Runs the whole pipeline locally; returns the log path. Raises PipelineFailed."""
    from tfx import v1 as tfx

    from pipeline.preflight import check_data

    check_data(config)
    for path in (config.pipeline_root, os.path.dirname(config.metadata_path), config.serving_dir):
        os.makedirs(path, exist_ok=True)
    log_dir = os.path.join(config.output_dir, "logs")
    os.makedirs(log_dir, exist_ok=True)
    log_path = os.path.join(log_dir, f"run-{datetime.datetime.now():%Y%m%d-%H%M%S}.log")
    pipeline = build(config)
    total = len(pipeline.components)
    with _captured_logs(log_path, total, verbose) as progress:
        try:
            tfx.orchestration.LocalDagRunner().run(pipeline)
        except Exception as err:  # noqa: BLE001 - reported as one clear failure below
            logging.getLogger(__name__).exception("pipeline failed")
            raise PipelineFailed(progress.current, err, log_path) from err
    return log_path
