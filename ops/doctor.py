"""`tfxp doctor`: what killed runs left behind in an output directory, and removing it.

A kill -9 (or a power cut) ends a run with nothing cleaned up. What it can leave:

- in the serving directory: a hidden push copy (`.partial-<v>`, see
  `contracts.serving_dir.publish_version`) or rollback staging (`.rollback-*`, see
  `ops/rollback.py`), and an all-digit version without a complete SavedModel (written before
  pushes were atomic, or by hand), which TF Serving would try to load;
- in ML Metadata: executions left RUNNING (the next run, or `--fix`, marks them INTERRUPTED);
- under the pipeline root: the output directories TFX made for executions that never
  completed, `<component>/<output>/<execution id>` as tfx/orchestration/portable/outputs_utils.py
  names them (TFX's launcher removes them when an executor fails, not when it is killed),
  their `.system/executor_execution/<id>` and `.system/stateful_working_dir/*` (removed on
  success), and `*.partial` copies of the drift history;
- beside the store: a temporary copy of the record a re-run with nothing changed reuses
  (`.last-run.*.partial`, see pipeline/run_fingerprint.py `save`). The record itself,
  `last-run.json`, is never a leftover: it is written whole, and a store or pipeline root
  changed since (a killed run, `--fix` moving them aside) makes the next run a real one.

A damaged ML Metadata store (one SQLite cannot read: truncated, overwritten, a disk fault) is
found too. `--fix` moves it aside with the pipeline root, both kept under timestamped names
(`.damaged-<UTC time>`): the next run starts a fresh store, whose execution ids start again at
1, so TFX's output directories named by them must not hold the old executions' files. The
drift check's accepted statistics (pipeline.pipeline.statistics_history_dir) are files of their
own, not records, and stay; the serving directory is not touched, so the next run compares
against the model served.

The run lock is an flock: the kernel releases it when its holder dies, so it is never stale;
doctor says whether a run holds it. While one does, what the run is writing cannot be told
from leftovers: only certain leftovers are reported, and `--fix` is refused. `--fix` holds the
lock itself, so no run starts while it removes.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

from contracts.model_config import CONFIG_FILE
from contracts.serving_dir import PARTIAL_PREFIX, ROLLBACK_PREFIX, incomplete_reason, is_version
from pipeline import run_lock
from pipeline.config import PipelineConfig
from pipeline.run_fingerprint import RECORD_PARTIAL_PREFIX, record_path

SYSTEM_DIR = ".system"  # TFX's per-component bookkeeping (outputs_utils._SYSTEM)


DAMAGED_SUFFIX = ".damaged-"
SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")  # a damaged store's journal belongs to it


@dataclasses.dataclass
class Finding:
    path: str | None  # what --fix removes (None: an ML Metadata record only)
    why: str
    execution_ids: list[int] = dataclasses.field(default_factory=list)  # to mark INTERRUPTED
    move_aside: bool = False  # --fix keeps it under a timestamped name instead of removing it
    moved: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (from, to) once moved

    def line(self, fixed: bool = False) -> str:
        if not self.path:
            return ("marked INTERRUPTED: " if fixed else "") + self.why
        if fixed and self.moved:
            return "; ".join(f"moved {old} to {new}" for old, new in self.moved) + f": {self.why}"
        return f"{'removed ' if fixed else ''}{self.path}: {self.why}"


def find(config: PipelineConfig, live_run: bool = False) -> list[Finding]:
    """The leftovers of killed runs under `config.output_dir`. With `live_run` (another process
    holds the run lock) what that run may be writing is left out."""
    from pipeline import metadata

    damage = metadata.store_damage(config.metadata_path)
    if damage is None:
        try:
            return (
                _serving(config.serving_dir, live_run)
                + _store_and_outputs(config, live_run)
                + _record_copies(config, live_run)
            )
        except metadata.StoreDamaged as err:  # found by ML Metadata's own reading
            damage = err.reason
    # Without the store, outputs cannot be told from leftovers: they are moved aside with it.
    why = (
        f"the ML Metadata store does not open ({damage}); --fix moves it and the pipeline root "
        f"aside (kept), the next run starts a fresh store; {config.serving_dir} is untouched"
    )
    return _serving(config.serving_dir, live_run) + [Finding(config.metadata_path, why, move_aside=True)]


def _move_store_aside(config: PipelineConfig) -> list[tuple[str, str]]:
    """Renames the store (and its SQLite side files) and the pipeline root to `<name>.damaged-<UTC
    time>`; the accepted statistics go back into a new, empty pipeline root."""
    import datetime

    from pipeline.pipeline import statistics_history_dir

    suffix = DAMAGED_SUFFIX + datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    moved = []
    for path in [config.metadata_path] + [config.metadata_path + s for s in SQLITE_SIDE_FILES]:
        if os.path.lexists(path):
            os.rename(path, path + suffix)
            moved.append((path, path + suffix))
    root = config.pipeline_root.rstrip("/")
    if os.path.isdir(root):
        os.rename(root, root + suffix)
        moved.append((root, root + suffix))
        kept = statistics_history_dir(root + suffix)
        if os.path.isdir(kept):
            os.makedirs(root)
            os.rename(kept, statistics_history_dir(root))
    return moved


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _serving(serving_dir: str, live_run: bool) -> list[Finding]:
    found = []
    for name in _listdir(serving_dir):
        path = os.path.join(serving_dir, name)
        if is_version(name):
            reason = incomplete_reason(path)
            if reason is not None:
                found.append(
                    Finding(
                        path, f"version {name} is not a complete SavedModel ({reason}); TF Serving would try to load it"
                    )
                )
        elif live_run:
            continue  # a push or rollback in progress stages its copy under these names
        elif name.startswith(PARTIAL_PREFIX):
            found.append(Finding(path, "a push cut short (hidden from TF Serving)"))
        elif name.startswith(ROLLBACK_PREFIX):
            found.append(Finding(path, "a rollback cut short (hidden from TF Serving)"))
        elif name.startswith(f".{CONFIG_FILE}."):
            # contracts.model_config.write_config's temporary file: the config in use stayed whole.
            found.append(Finding(path, f"a write of {CONFIG_FILE} cut short (the file in use is whole)"))
    return found


def _store_and_outputs(config: PipelineConfig, live_run: bool) -> list[Finding]:
    if not os.path.exists(config.metadata_path):
        return []  # no run recorded: nothing under the pipeline root can be told apart
    from ml_metadata.proto import metadata_store_pb2

    from pipeline import metadata

    store = metadata.open_store(config.metadata_path)
    executions = {e.id: e for e in store.get_executions()}
    unfinished = (metadata_store_pb2.Execution.RUNNING, metadata_store_pb2.Execution.NEW)
    succeeded = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
    found = []
    dead = sorted(i for i, e in executions.items() if e.last_known_state in unfinished)
    if dead and not live_run:
        names = ", ".join(f"{metadata.node_id(store, executions[i], config.pipeline_name)} ({i})" for i in dead)
        found.append(Finding(None, f"{len(dead)} execution(s) left RUNNING by a run that is gone: {names}", dead))
    recorded = {os.path.normpath(a.uri) for a in store.get_artifacts() if a.uri}

    def why_not_kept(execution_id: int) -> str | None:
        """Why the output of an execution is a leftover, or None if it is not."""
        execution = executions.get(execution_id)
        if execution is None or execution.last_known_state in succeeded:
            return None  # an unknown id is nothing TFX made for this store: not ours to judge
        if execution.last_known_state in unfinished:
            return None if live_run else "interrupted (left RUNNING)"
        if metadata.custom_property(execution, metadata.INTERRUPTED_PROPERTY):
            return "interrupted"
        return metadata_store_pb2.Execution.State.Name(execution.last_known_state).lower()

    root = config.pipeline_root
    for node in _listdir(root):
        node_dir = os.path.join(root, node)
        for key in _listdir(node_dir):
            key_dir = os.path.join(node_dir, key)
            if key == SYSTEM_DIR:
                found += _system_leftovers(node, key_dir, why_not_kept, live_run)
                continue
            for child in _listdir(key_dir):
                path = os.path.join(key_dir, child)
                if child.isdigit() and os.path.normpath(path) not in recorded:
                    why = why_not_kept(int(child))
                    if why:
                        found.append(Finding(path, f"output '{key}' of {node} execution {child}, {why}"))
                elif child.endswith(".partial") and not live_run:  # drift history's staging copies
                    found.append(Finding(path, "a copy cut short"))
    return found


def _record_copies(config: PipelineConfig, live_run: bool) -> list[Finding]:
    """Temporary copies of the run record that a killed run left (a live run may be writing one)."""
    if live_run:
        return []
    directory = os.path.dirname(record_path(config))
    return [
        Finding(os.path.join(directory, name), "a write of the run record cut short (the record in use is whole)")
        for name in _listdir(directory)
        if name.startswith(RECORD_PARTIAL_PREFIX) and name.endswith(".partial")
    ]


def _system_leftovers(node: str, system_dir: str, why_not_kept, live_run: bool) -> list[Finding]:
    found = []
    executor_dir = os.path.join(system_dir, "executor_execution")
    for child in _listdir(executor_dir):
        why = why_not_kept(int(child)) if child.isdigit() else None
        if why:
            found.append(Finding(os.path.join(executor_dir, child), f"scratch of {node} execution {child}, {why}"))
    if not live_run:  # TFX removes an execution's stateful working directory when it succeeds
        stateful = os.path.join(system_dir, "stateful_working_dir")
        found += [
            Finding(os.path.join(stateful, n), f"working directory of a {node} execution that did not complete")
            for n in _listdir(stateful)
        ]
    return found


def leftover_notes(config: PipelineConfig) -> list[str]:
    """The line a run shows when killed runs left something behind: a run does not need it gone
    (pushes and baselines skip incomplete versions, interrupted executions run again), but disk
    does. For `local_runner.run(notes=...)`, which calls it holding the run lock."""
    count = len(find(config))
    return [f"{count} leftover(s) from interrupted runs: run `tfxp doctor --fix`"] if count else []


@dataclasses.dataclass
class Report:
    holder: dict | None  # the run lock's holder, None when free
    findings: list[Finding]
    fixed: bool = False


def check(config: PipelineConfig) -> Report:
    holder = run_lock.holder_of(config.output_dir)
    return Report(holder, find(config, live_run=holder is not None))


class RunInProgress(RuntimeError):
    pass


def fix(config: PipelineConfig) -> Report:
    """Removes every leftover, holding the run lock; RunInProgress if a run holds it."""
    from pipeline import metadata

    try:
        with run_lock.hold(config.output_dir, command="doctor --fix"):
            findings = find(config)
            for finding in findings:
                if finding.move_aside:
                    finding.moved = _move_store_aside(config)
                    continue
                if finding.execution_ids:
                    metadata.mark_interrupted(config.metadata_path)
                if finding.path and os.path.isdir(finding.path):
                    shutil.rmtree(finding.path)
                elif finding.path and os.path.lexists(finding.path):
                    os.remove(finding.path)
    except run_lock.LockHeld as err:
        raise RunInProgress(
            f"a run is using {config.output_dir} ({run_lock.describe(err.holder)}): "
            "leftovers cannot be told from its work; run `tfxp doctor --fix` after it ends"
        ) from None
    return Report(None, findings, fixed=True)


def format_report(report: Report) -> list[str]:
    lines = []
    if report.holder is not None:
        lines.append(f"run lock: held by {run_lock.describe(report.holder)}; what that run is writing is not counted")
    elif not report.fixed:
        lines.append("run lock: free (no run in progress)")
    for finding in report.findings:
        lines.append(finding.line(report.fixed))
    damaged = any(finding.move_aside for finding in report.findings)
    count = len(report.findings) - damaged
    if not count and not damaged:
        lines.append("no leftovers")
    elif report.fixed:
        lines.append(f"{count} leftover(s) removed" + ("; the damaged store moved aside" if damaged else ""))
    elif not damaged:
        lines.append(f"{count} leftover(s) from interrupted runs: run `tfxp doctor --fix` to remove them")
    else:
        lines.append(
            (f"{count} leftover(s) from interrupted runs and " if count else "")
            + "a damaged ML Metadata store: run `tfxp doctor --fix` to move the store aside"
            + (" and remove them" if count else "")
        )
    return lines
