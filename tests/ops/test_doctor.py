"""`tfxp doctor` on an output directory laid out as killed runs leave it: a real ML Metadata
store (SQLite) with executions in each state, TFX's output directories, and a serving
directory with hidden and incomplete versions."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from tests.serving import fake_saved_model
from tests.subprocesses import HOLDER, PROJECT, error_lines, python

PIPELINE = "taxi-big-tipper"


def _store(path: pathlib.Path):
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as mlmd

    from pipeline.metadata import sqlite_config

    path.parent.mkdir(parents=True, exist_ok=True)
    store = metadata_store.MetadataStore(sqlite_config(str(path)))
    node_type = store.put_context_type(mlmd.ContextType(name="node"))
    artifact_type = store.put_artifact_type(mlmd.ArtifactType(name="Examples"))

    def execution(node: str, state, interrupted: bool = False, output_uri: str | None = None) -> int:
        execution_type = store.put_execution_type(mlmd.ExecutionType(name=f"tfx.{node}"))
        run = mlmd.Execution(type_id=execution_type, last_known_state=state)
        if interrupted:
            run.custom_properties["interrupted"].int_value = 1
        [execution_id] = store.put_executions([run])
        found = store.get_contexts_by_type("node")
        context = next((c.id for c in found if c.name == f"{PIPELINE}.{node}"), None)
        if context is None:
            [context] = store.put_contexts([mlmd.Context(type_id=node_type, name=f"{PIPELINE}.{node}")])
        store.put_attributions_and_associations([], [mlmd.Association(execution_id=execution_id, context_id=context)])
        if output_uri:
            [artifact] = store.put_artifacts([mlmd.Artifact(type_id=artifact_type, uri=output_uri)])
            store.put_events([mlmd.Event(artifact_id=artifact, execution_id=execution_id, type=mlmd.Event.OUTPUT)])
        return execution_id

    return store, execution, mlmd


@pytest.fixture
def leftovers(tmp_path):
    """An output directory after a kill; returns (output dir, what doctor must keep, what it must remove)."""
    out = tmp_path / "out"
    root = out / "pipelines" / PIPELINE
    serving = out / "serving" / "taxi"
    store, execution, mlmd = _store(out / "metadata" / PIPELINE / "metadata.sqlite")
    examples = root / "ExampleGen" / "examples"
    done = execution("ExampleGen", mlmd.Execution.COMPLETE, output_uri=str(examples / "1"))
    running = execution("Transform", mlmd.Execution.RUNNING)
    interrupted = execution("Trainer", mlmd.Execution.CANCELED, interrupted=True)
    keep = [
        examples / str(done),
        root / "ExampleGen" / ".system" / "executor_execution" / str(done),
        root / "Trainer" / "model" / "99",  # no such execution: nothing TFX made for this store
        root / "AcceptedStatistics" / "span-0" / "FeatureStats.pb",
        fake_saved_model.write(serving / "1796000000", "complete"),
        serving / "models.config",  # the model config in use (contracts/model_config.py)
        out / "metadata" / PIPELINE / "last-run.json",  # the record a re-run reuses (run_fingerprint)
    ]
    remove = [
        root / "Transform" / "transform_graph" / str(running),
        root / "Transform" / ".system" / "executor_execution" / str(running),
        root / "Trainer" / "model" / str(interrupted),
        root / "Trainer" / "model_run" / str(interrupted),
        root / "Trainer" / ".system" / "stateful_working_dir" / "0c5d",
        root / "AcceptedStatistics" / "span-0" / "FeatureStats.pb.1f2e.partial",
        serving / "1796000001",
        serving / ".partial-1796000002",
        serving / ".rollback-x1y2",
        serving / ".models.config.k3j9",  # a write of the model config cut short
        out / "metadata" / PIPELINE / ".last-run.x7k2.partial",  # a write of that record cut short
    ]
    for path in keep + remove:
        if path.name.startswith(("FeatureStats", "models.config", ".models.config", "last-run", ".last-run")):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("stats")
        else:
            path.mkdir(parents=True, exist_ok=True)
    (serving / ".partial-1796000002" / "saved_model.pb").write_bytes(b"cut short")
    return out, keep, remove, (running, interrupted)


def doctor(out: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    return python("-m", "tfxp", "doctor", "--set", f"output_dir={out}", *args)


def test_doctor_reports_each_leftover_once_and_fix_removes_only_those(leftovers):
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as mlmd

    from pipeline.metadata import sqlite_config

    out, keep, remove, (running, interrupted) = leftovers
    report = doctor(out)
    assert report.returncode == 1, report.stdout + report.stderr
    lines = report.stdout.splitlines()
    assert lines[0] == "run lock: free (no run in progress)"
    assert lines[-1] == "12 leftover(s) from interrupted runs: run `tfxp doctor --fix` to remove them", lines
    findings = lines[1:-1]
    assert len(findings) == 12, findings
    for path in remove:
        assert sum(line.startswith(f"{path}: ") for line in findings) == 1, (path, findings)
    assert (
        f"{out}/serving/taxi/1796000001: version 1796000001 is not a complete SavedModel (no saved_model.pb); "
        "TF Serving would try to load it" in findings
    )
    assert (
        f"{out}/pipelines/{PIPELINE}/Trainer/model/{interrupted}: output 'model' of Trainer execution "
        f"{interrupted}, interrupted" in findings
    )
    assert f"1 execution(s) left RUNNING by a run that is gone: Transform ({running})" in findings
    assert all(path.exists() for path in keep + remove)  # a report removes nothing

    fixed = doctor(out, "--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert fixed.stdout.splitlines()[-1] == "12 leftover(s) removed"
    assert [p for p in remove if p.exists()] == []
    assert [p for p in keep if not p.exists()] == []
    store = metadata_store.MetadataStore(sqlite_config(str(out / "metadata" / PIPELINE / "metadata.sqlite")))
    [marked] = store.get_executions_by_id([running])
    assert marked.last_known_state == mlmd.Execution.CANCELED
    assert marked.custom_properties["interrupted"].int_value == 1

    again = doctor(out)
    assert again.returncode == 0, again.stdout
    assert again.stdout.splitlines() == ["run lock: free (no run in progress)", "no leftovers"]


def test_doctor_refuses_to_fix_while_a_run_holds_the_lock(leftovers):
    out, keep, remove, _ = leftovers
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        fixed = doctor(out, "--fix")
        assert fixed.returncode == 2, fixed.stdout + fixed.stderr
        [error] = error_lines(fixed.stderr)
        assert f"pid {holder.pid}" in error and "after it ends" in error, error
        assert all(path.exists() for path in keep + remove)
        # Reported: only what the live run cannot be writing (a version that is not whole, and the
        # outputs of an execution that ended interrupted); not the RUNNING execution's or the staging.
        report = doctor(out)
        assert report.returncode == 1
        lines = report.stdout.splitlines()
        assert lines[0].startswith(f"run lock: held by `tfxp run`, pid {holder.pid}, started "), lines
        assert lines[-1].startswith("3 leftover(s)"), lines
        assert not any(".partial-" in line or "Transform" in line for line in lines), lines
    finally:
        holder.kill()
        holder.wait()


def test_a_run_that_meets_a_probe_of_the_lock_still_starts(tmp_path):
    import fcntl
    import threading

    from pipeline import run_lock

    out = tmp_path / "out"
    out.mkdir()
    probe = os.open(run_lock.lock_path(str(out)), os.O_RDWR | os.O_CREAT)
    fcntl.flock(probe, fcntl.LOCK_SH)  # what holder_of takes, held here long enough to be met
    threading.Timer(0.3, fcntl.flock, (probe, fcntl.LOCK_UN)).start()
    try:
        with run_lock.hold(str(out)) as path:
            assert run_lock.read_holder(path)["command"] == "run"
            assert run_lock.holder_of(str(out))["pid"] == os.getpid()
        assert run_lock.holder_of(str(out)) is None
    finally:
        os.close(probe)
