"""A fingerprint of everything a local run reads, computed without importing TFX or TensorFlow.

`tfxp run` (tfxp/local_runs.py) checks it before anything imports TFX: when every input is as
the last finished run left it, it prints that run's stored summary instead of running
(docs/cached-run.md). Importing TFX's launcher imports TensorFlow, Beam and every standard
component (about 7 of a cached run's 9 CPU seconds), so deciding before that import is the
only way to reach issue 25's 5 s.

Equal fingerprints mean equal inputs: the config, the project's code and the model code, the
installed packages, the data files (names, sizes, times), the serving directory (what
`local_runner.served_state` keys ServingBaseline by), DriftCheck's inputs (logged requests,
accepted spans' statistics), what chooses the local serving platform, and the ML Metadata
store and pipeline root as the last run left them. A record is written whole or not at all (a
temporary file, then a rename).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import uuid
from typing import Any, Iterable

from pipeline.config import InfraValidation, PipelineConfig

# The project's packages: their source decides the pipeline's IR and its executors' behaviour.
CODE_PACKAGES = ("contracts", "models", "pipeline", "components", "serving", "tfxp")
RECORD_PARTIAL_PREFIX = ".last-run."  # save's temporary file (`tfxp doctor` finds a killed save's)
FORMAT = 2  # of the record file; a record of another format is never reused (1: the spike's, no exit code)


def _stat(path: str) -> list[Any]:
    """A file's name, size and modification time in ns (None for a missing file): what TFX's
    ExampleGen driver fingerprints too, there with times in whole seconds
    (tfx/utils/io_utils.py `generate_fingerprint`)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # a parent that is a file: missing too
        return [path, None, None]
    return [path, st.st_size, st.st_mtime_ns]


def _tree(directory: str, keep=lambda name: True) -> list[list[Any]]:
    """Every file under `directory` that `keep` accepts, as _stat entries relative to it."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            if keep(name):
                entry = _stat(os.path.join(root, name))
                entry[0] = os.path.relpath(entry[0], directory)
                found.append(entry)
    return found


def code_digest(packages: Iterable[str] = CODE_PACKAGES) -> str:
    """A hash of every .py file of `packages` (path relative to the package, and content)."""
    digest = hashlib.sha256()
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            digest.update(f"{package}: missing\0".encode())
            continue
        for location in spec.submodule_search_locations:
            for root, dirs, files in os.walk(location):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for name in sorted(f for f in files if f.endswith(".py")):
                    path = os.path.join(root, name)
                    with open(path, "rb") as f:
                        relative = os.path.join(package, os.path.relpath(path, location))
                        digest.update(relative.encode() + b"\0" + f.read() + b"\0")
    return digest.hexdigest()


def runtime_versions() -> list[str]:
    """Every installed distribution, by its metadata directory's name (name-version.dist-info):
    a changed dependency changes a run's results (or how TFX caches) with no project file
    changed. Listing the directories costs milliseconds; reading each one's metadata, 0.2 s."""
    found = set()
    for entry in sys.path:
        if os.path.isdir(entry):
            found.update(n for n in os.listdir(entry) if n.endswith((".dist-info", ".egg-info")))
    return sorted(found)


def served(serving_dir: str) -> list[list[Any]]:
    """The serving directory's files (versions, their SavedModels, models.config's labels).

    Not `local_runner.served_state` itself: that parses each version's saved_model.pb with
    TensorFlow's protos, whose import is TensorFlow's. Every change that changes served_state
    (a new version, the stable label moved, a SavedModel rewritten) changes this listing, so
    it can only miss more often, never reuse a stale run (the tests hold it to that)."""
    return _tree(serving_dir)


def history_dir(config: PipelineConfig) -> str:
    """Where AnomaliesGate keeps accepted spans' statistics for DriftCheck: the local run's
    `pipeline.pipeline.statistics_history_dir(config.pipeline_root)` (the test holds them equal)."""
    return f"{config.pipeline_root.rstrip('/')}/AcceptedStatistics"


def _serving_platform_inputs(config: PipelineConfig, which=shutil.which, image_present=None) -> dict[str, Any]:
    """What `local_runner.local_serving_platform` decides by (the IR holds its choice)."""
    from serving import launch

    mode = config.serving_check.infra_validator
    if mode is InfraValidation.NEVER:
        return {"mode": mode.value}
    image = config.serving_check.image or launch.OFFICIAL_IMAGE
    engines = [path for path in map(which, launch.CONTAINER_ENGINES) if path]
    present = image_present or launch.image_present
    return {
        "mode": mode.value,
        "docker_host": os.environ.get("DOCKER_HOST"),
        "docker_sock": os.path.exists("/var/run/docker.sock"),
        "engines": {path: present(path, image) for path in engines},
    }


def run_inputs(config: PipelineConfig, *, which=shutil.which, image_present=None) -> dict[str, Any]:
    """Everything a local run reads, as JSON-able data (the fingerprint's source, kept in the
    record so that a miss can say what changed)."""
    from components.drift_check.request_log import LOG_PATTERN
    from pipeline.data_files import data_files, files_at
    from pipeline.model_code import model_code_version

    paths = (config.output_dir, config.data.path, config.serving_dir, config.drift.serving_requests or "")
    remote = [p for p in paths if "://" in p]
    data = [_stat(path) for path in data_files(config)] if not remote else []
    inference = []
    if config.inference.data_path:
        inference = [
            _stat(path) for path in files_at(config.inference.data_path, config.inference.format or config.data.format)
        ]
    requests = []
    if config.drift.enabled and config.drift.serving_requests:
        import fnmatch

        requests = _tree(config.drift.serving_requests, lambda name: fnmatch.fnmatch(name, LOG_PATTERN))
    return {
        "format": FORMAT,
        # Object stores have no cheap stat: a run there is never reused (a new value each time).
        "remote": [remote, uuid.uuid4().hex] if remote else None,
        "config": config.model_dump(mode="json"),
        "code": code_digest(CODE_PACKAGES),
        # trainer.run_fn may live outside the project's packages: hashed as create_pipeline does.
        "model_code": model_code_version(modules=(config.trainer.run_fn.rpartition(".")[0],)),
        "runtime": runtime_versions(),
        "data": data,
        "inference_data": inference,
        "schema_file": _stat(config.schema.path) if config.schema.path else None,
        "served": served(config.serving_dir),
        "serving_platform": _serving_platform_inputs(config, which, image_present),
        "requests": requests,
        "accepted_statistics": _tree(history_dir(config)),
        # As the last run left them: any run, `tfxp` command or hand that changes the store or
        # removes an output makes the next run a real one.
        "store": _stat(config.metadata_path),
        "pipeline_root": _stat(config.pipeline_root),
    }


def fingerprint(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def changed(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The names of the inputs that differ (for a log line on a miss)."""
    return sorted(key for key in set(before) | set(now) if before.get(key) != now.get(key))


# What every run changes itself without changing what the next run does: the store (each run
# records its executions) and the pipeline root's directory entry.
BOOKKEEPING = ("store", "pipeline_root")


def own_changes(start: dict[str, Any], end: dict[str, Any]) -> list[str]:
    """The inputs a run changed itself that the next run acts on: a push into the serving
    directory (the next run evaluates against it), a newly accepted span, a request logged while
    it ran. Not the bookkeeping, nor AnomaliesGate's rewrite of an accepted span's statistics
    (the same file, size and name, copied again from the cached StatisticsGen's output)."""

    def comparable(key: str, value: Any) -> Any:
        if key == "accepted_statistics" and isinstance(value, list):
            return [entry[:2] for entry in value]
        return value

    keys = (set(start) | set(end)) - set(BOOKKEEPING)
    return sorted(k for k in keys if comparable(k, start.get(k)) != comparable(k, end.get(k)))


def record_inputs(start: dict[str, Any], end: dict[str, Any]) -> dict[str, Any]:
    """What to save for a run that read `start` and left `end`: `end`, except that an input the
    run changed itself keeps its value from the start, so that the next run is a real one and
    its line names that input. A run reused must be one that a real run now would repeat."""
    return {**end, **{key: start.get(key) for key in own_changes(start, end)}}


def record_path(config: PipelineConfig) -> str:
    return os.path.join(config.output_dir, "metadata", config.pipeline_name, "last-run.json")


def save(
    path: str,
    inputs: dict[str, Any],
    summary: str,
    run_id: str | None = None,
    finished: str | None = None,
    exit_code: int = 0,
) -> None:
    """Writes the record of a finished run: whole or not at all (temporary file, fsync, rename).
    `summary` is printed as it is when the run is reused, and the command exits `exit_code`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    record = {
        "format": FORMAT,
        "fingerprint": fingerprint(inputs),
        "inputs": inputs,
        "summary": summary,
        "run_id": run_id,
        "finished": finished,
        "exit_code": exit_code,
    }
    fd, partial = tempfile.mkstemp(prefix=RECORD_PARTIAL_PREFIX, suffix=".partial", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    except BaseException:
        try:
            os.unlink(partial)
        except FileNotFoundError:
            pass
        raise


def load(path: str) -> dict[str, Any] | None:
    """The last record, or None (none yet, unreadable, or of another format: never reused)."""
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    if not isinstance(record.get("inputs"), dict) or not isinstance(record.get("summary"), str):
        return None
    if not isinstance(record.get("exit_code"), int):
        return None
    return record


def unchanged(config: PipelineConfig, record: dict[str, Any] | None, **platform) -> bool:
    """Whether `record` was written for exactly the inputs `config` would read now."""
    if record is None or not config.enable_cache:
        return False  # enable_cache: false runs every component: never a reused run
    return not differences(record, run_inputs(config, **platform))


def differences(record: dict[str, Any], inputs: dict[str, Any]) -> list[str]:
    """The names of the inputs that differ between `record` and `inputs` (run_inputs now): []
    when the record's run can stand for a run now."""
    now = json.loads(json.dumps(inputs, sort_keys=True, default=str))  # as the record holds them
    found = changed(record["inputs"], now)
    if not found and record.get("fingerprint") != fingerprint(now):
        return ["fingerprint"]  # equal inputs under another fingerprint: a record edited by hand
    return found
