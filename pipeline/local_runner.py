"""The local runner: chooses local paths, a SQLite metadata store and Beam's DirectRunner.

It calls the one pipeline factory, shows progress as components start and finish, and keeps
TFX's own logs in a file under the output directory.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import itertools
import logging
import os
import re
import shutil
import time
from typing import Callable, Iterator, TextIO

from contracts.serving_dir import version_names
from pipeline.config import PipelineConfig
from pipeline.terminal import terminal_output


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
def _captured_logs(log_path: str, verbose: bool) -> Iterator[ProgressHandler]:
    """Sends TFX's logs to a file (and the terminal when verbose); progress to the terminal."""
    from absl import logging as absl_logging

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    file_handler = logging.FileHandler(log_path)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    with terminal_output(log_path, verbose) as terminal:
        progress = ProgressHandler(0, terminal)
        root.handlers = [file_handler, progress] + ([absl_logging.get_absl_handler()] if verbose else [])
        root.setLevel(logging.INFO)
        absl_logging.set_verbosity(absl_logging.INFO)
        try:
            yield progress
        finally:
            root.handlers, root.level = saved_handlers, saved_level
            absl_logging.set_verbosity(absl_logging.WARNING)
            with contextlib.suppress(OSError):  # what a full disk kept out of the log is lost
                file_handler.close()


def local_serving_platform(config: PipelineConfig, which=shutil.which, image_present=None, environ=os.environ):
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
    socket = environ.get("DOCKER_HOST") or (
        "unix:///var/run/docker.sock" if os.path.exists("/var/run/docker.sock") else None
    )
    engines = [path for path in map(which, launch.CONTAINER_ENGINES) if path]
    if socket and any(present(path, image) for path in engines):
        spec = infra_validation_spec(config, "local_docker")
        spec.local_docker.client_base_url = socket
        return spec
    if mode is InfraValidation.ALWAYS:
        raise ConfigError(
            f"serving_check.infra_validator is 'always', but no docker or podman here holds "
            f"{image} behind a Docker API socket (DOCKER_HOST); pull the image, or set "
            "serving_check.infra_validator=auto to use the in-process check alone"
        )
    return None


def served_state(serving_dir: str) -> str:
    """What ServingBaseline reads, as its cache key: the version production traffic gets (the
    model config's `stable`, else the newest complete version) and its SavedModel file's size
    and time. Published versions are never changed in place (a rollback or a push makes a new
    one), so an equal key means the same baseline, and a run with nothing new is served from
    the cache up to the Pusher. Objects stores: a new key each run (no cheap stat there)."""
    from components.serving_baseline.executor import baseline_version

    if "://" in serving_dir:
        return datetime.datetime.now().isoformat()
    if not os.path.isdir(serving_dir):
        return "none"
    stable = baseline_version(serving_dir)
    if stable is None:
        return "none"
    saved = os.stat(os.path.join(serving_dir, str(stable), "saved_model.pb"))
    return f"{stable}:{saved.st_size}:{saved.st_mtime_ns}"


def input_bytes(files: list[str]) -> int | None:
    """The input files' total size (None where one cannot be read), for beam.direct_running_mode
    auto."""
    try:
        return sum(os.path.getsize(f) for f in files)
    except OSError:
        return None


def beam_line(config: PipelineConfig, data_bytes: int | None) -> str | None:
    """What beam.direct_running_mode auto chose, and why; None for any other setting."""
    from pipeline.config import DirectRunningMode

    beam = config.beam
    if beam.runner != "DirectRunner" or beam.direct_running_mode is not DirectRunningMode.AUTO:
        return None
    mode, workers = beam.direct_mode(data_bytes)
    size = "unknown" if data_bytes is None else f"{data_bytes / 2**20:.1f} MiB"
    if mode is DirectRunningMode.IN_MEMORY:
        how = "in_memory (one process)"
    else:
        kept = ", kept across components" if beam.reuse_workers else ""
        how = f"multi_processing, {workers} workers{kept}"
    return f"  Beam: {how}, for {size} of input data (beam.direct_running_mode auto; set it to choose)"


def build(config: PipelineConfig, data_bytes: int | None = None):
    """The pipeline as the local runner runs it; `data_bytes`, the input's size, resolves
    beam.direct_running_mode auto."""
    from pipeline.metadata import sqlite_config
    from pipeline.pipeline import create_pipeline

    return create_pipeline(
        config,
        pipeline_root=config.pipeline_root,
        serving_dir=config.serving_dir,
        metadata_connection_config=sqlite_config(config.metadata_path),
        beam_pipeline_args=config.beam_args(data_bytes=data_bytes),
        baseline_lookup_token=served_state(config.serving_dir),
        drift_lookup_token=datetime.datetime.now().isoformat(),
        serving_platform=local_serving_platform(config),
    )


class PipelineFailed(RuntimeError):
    def __init__(self, component: str | None, cause: BaseException, log_path: str):
        self.component, self.cause, self.log_path = component, cause, log_path
        super().__init__(
            f"{component or 'the pipeline'} failed: {describe_failure(cause)}\n"
            f"The full log is in {log_path}; no model was pushed by this run."
        )


# What the OS reports for a file it cannot write, as TensorFlow's file system ends its messages.
_OS_ERRNOS = (
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.EIO,
    errno.ENOENT,
    errno.EMFILE,
    errno.ENFILE,
    errno.ENAMETOOLONG,
    errno.EFBIG,
)
_TF_OS_ERROR = re.compile(
    r"^(?P<path>.+); (?P<strerror>" + "|".join(re.escape(os.strerror(code)) for code in _OS_ERRNOS) + r")$", re.S
)


# An OSError quoted in another error's text: a Beam worker process reports one that way.
_QUOTED_OS_ERROR = re.compile(r"\[Errno (?P<code>\d+)\] ")
_QUOTED_PATH = re.compile(r": '(?P<path>[^'\n]+)'")


def _quoted_os_error(text: str) -> OSError | None:
    for match in _QUOTED_OS_ERROR.finditer(text):
        code = int(match["code"])
        strerror = os.strerror(code)
        if text.startswith(strerror, match.end()):
            path = _QUOTED_PATH.match(text, match.end() + len(strerror))
            return OSError(code, strerror, *([path["path"]] if path else []))
    return None


def _os_error(err: BaseException) -> OSError | None:
    """`err` as an OSError: if it is one, is TensorFlow's report of one ("<path>; <strerror>"),
    or quotes one."""
    if isinstance(err, OSError):
        return err
    text = str(err).strip()
    match = _TF_OS_ERROR.match(text)
    if match is not None:
        code = next(c for c in _OS_ERRNOS if os.strerror(c) == match["strerror"])
        return OSError(code, match["strerror"], match["path"])
    return _quoted_os_error(text)


def describe_failure(cause: BaseException) -> str:
    """The message of a component's failure; the OS error it is or quotes, on one line.

    A component that hits a full disk fails with an OS error, and recording that failure in
    ML Metadata (on the same disk) then fails as well: then the first OS error under the
    store's error that names a file is what the user can act on. Other errors keep their
    own message (a gate's report), whatever was handled before them.
    """
    own = _os_error(cause)
    if own is None and _store_failure(cause):
        chain, seen, err = [], set(), cause
        while err is not None and id(err) not in seen:
            seen.add(id(err))
            chain.append(err)
            err = err.__cause__ or err.__context__
        os_errors = [e for e in map(_os_error, reversed(chain)) if e is not None]  # the earliest first
        # A write to an open file fails naming no file; a later report of it may name one.
        named = [e for e in os_errors if e.filename] or os_errors
        own = named[0] if named else None
    if own is not None:
        return " ".join(str(own).split())
    return str(cause).strip() or type(cause).__name__


def _store_failure(err: BaseException) -> bool:
    """Whether `err` is ML Metadata's (SQLite's) failure to write, as on a full disk."""
    return type(err).__module__.startswith("ml_metadata") or "database or disk is full" in str(err)


def _new_log(log_dir: str) -> str:
    """A log file of its own for this run: named by time and pid, created exclusively."""
    base = os.path.join(log_dir, f"run-{datetime.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}")
    for attempt in itertools.count(1):
        path = base + (f"-{attempt}" if attempt > 1 else "") + ".log"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            return path
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def _remove_new_versions(serving_dir: str, before: set[str]) -> None:
    """Removes the version directories a failed run wrote: a Pusher stopped by a full disk
    leaves a partial one, and TF Serving would try to load it."""
    for name in set(version_names(serving_dir)) - before:
        path = os.path.join(serving_dir, name)
        logging.getLogger(__name__).warning("removing %s, pushed by a run that failed", path)
        shutil.rmtree(path, ignore_errors=True)


def _write_notes(notes: Callable[[PipelineConfig], list[str]], config: PipelineConfig, stream: TextIO) -> None:
    try:
        lines = notes(config)
    except Exception as err:  # noqa: BLE001 - a note the run does not need must not fail it
        logging.getLogger(__name__).warning("could not make the run's notes: %s", err)
        return
    for line in lines:
        stream.write(f"  {line}\n")


def run(
    config: PipelineConfig,
    verbose: bool = False,
    wait_lock: bool = False,
    notes: Callable[[PipelineConfig], list[str]] | None = None,
    finished: Callable[[str], None] | None = None,
) -> str:
    """Runs the whole pipeline locally; returns the log path.

    `notes`, called holding the run lock before the pipeline starts, gives lines shown with the
    progress (`tfxp run` passes ops.doctor's count of leftovers from killed runs). `finished`,
    called with the log path holding the run lock after the pipeline completed (never after a
    failure), sees the outputs as the run left them: `tfxp run` prints the summary there and
    saves the record a re-run with nothing changed reuses (pipeline/run_fingerprint.py).

    Raises ConfigError (the data or the output directory fail pipeline/preflight.py's checks),
    PipelineFailed, metadata.StoreDamaged (the ML Metadata store cannot be read), run_lock.LockHeld
    (another run uses the output directory, and not `wait_lock`) or OSError (the output directory
    cannot be written later, e.g. a full disk).
    """
    from pipeline import run_lock
    from pipeline.preflight import check_data, check_job_endpoint, check_output

    data_bytes = input_bytes(check_data(config))
    check_job_endpoint(config)
    check_output(config)

    def waiting(holder: dict) -> None:
        print(f"waiting for the run using {config.output_dir} to end: {run_lock.describe(holder)}", flush=True)

    with run_lock.hold(config.output_dir, wait=wait_lock, on_wait=waiting):
        print(
            f"Running pipeline '{config.pipeline_name}' on {config.data.path}\n  outputs under {config.output_dir}",
            flush=True,
        )
        chosen = beam_line(config, data_bytes)
        if chosen:
            print(chosen, flush=True)

        for path in (config.pipeline_root, os.path.dirname(config.metadata_path), config.serving_dir):
            os.makedirs(path, exist_ok=True)
        log_dir = os.path.join(config.output_dir, "logs")
        os.makedirs(log_dir, exist_ok=True)
        log_path = _new_log(log_dir)
        versions_before = set(version_names(config.serving_dir))
        with _captured_logs(log_path, verbose) as progress:
            try:
                # Not tfx.v1 (pipeline/pipeline.py says why).
                from tfx.orchestration.local.local_dag_runner import LocalDagRunner

                # The run lock is ours, so an execution still RUNNING belongs to a dead run.
                if os.path.exists(config.metadata_path):
                    from pipeline import metadata

                    metadata.check_store(config.metadata_path, config.serving_dir)
                    interrupted = metadata.mark_interrupted(config.metadata_path)
                    if interrupted:
                        progress.stream.write(
                            f"  {interrupted} execution(s) of an interrupted run marked INTERRUPTED; they run again\n"
                        )
                if notes is not None:
                    _write_notes(notes, config, progress.stream)

                pipeline = build(config, data_bytes)  # inside: importing TensorFlow already writes to stderr
                progress.total = len(pipeline.components)
                LocalDagRunner().run(pipeline)
            except BaseException as err:
                _remove_new_versions(config.serving_dir, versions_before)
                if not isinstance(err, Exception):
                    raise  # KeyboardInterrupt, SystemExit: reported by the caller
                logging.getLogger(__name__).exception("pipeline failed")
                from pipeline import metadata

                if isinstance(err, metadata.StoreDamaged):
                    raise metadata.StoreDamaged(err.metadata_path, err.reason, config.serving_dir) from None
                # A store damaged under the run fails whichever component touches it next.
                metadata.check_store(config.metadata_path, config.serving_dir)
                raise PipelineFailed(progress.current, err, log_path) from err
        if finished is not None:
            finished(log_path)
    return log_path
