"""kill -9 of a whole `tfxp run` at component boundaries and inside the Pusher (slow).

One complete run is made first and its output directory kept; each case starts from a copy of
it at the same path (ML Metadata records absolute paths). The kill is timed from outside: the
test reads the run's progress lines and watches the output directory, and kills the run's
process group once the next component has made its output directories (a kill at the very
boundary leaves nothing to clean up), or, in the Pusher, once the new version has been renamed
into place (before TFX records the push in ML Metadata). After each kill: no version TF Serving
would see is incomplete, `tfxp runs` reads the store and shows INTERRUPTED, `tfxp doctor`
reports the leftovers and the next run says so, succeeds and compares its model with the last
complete push, and `doctor --fix` removes them.

Measured here (2 shared cores, 2026-12-02): the complete run 3 to 4.5 min; the cases after
ExampleGen 4.7 min, after Transform 3.7 min, after the Evaluator 3.8 min, in the Pusher 2.3 min
(each: the killed run, four `tfxp` commands that import TensorFlow, the next run from the
first component whose inputs changed). About 18 min in all.
"""

from __future__ import annotations

import csv
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from contracts.model_config import CONFIG_FILE
from tests.subprocesses import PROJECT, python, versions

pytestmark = [pytest.mark.slow, pytest.mark.kills]
PIPELINE = "taxi-big-tipper"
SMALL = [
    "--set",
    "tuner.enabled=false",
    "--set",
    "trainer.eval_steps=10",
    # the network, whose model 10 more steps change (auto's trees ignore the step count, and the
    # same model is not pushed twice)
    "--set",
    "trainer.model=dnn",
    # the next run's model must be pushed whatever 10 more steps do to it
    "--set",
    "evaluator.max_auc_decrease=1",
    "--set",
    "evaluator.min_auc=0.5",
]


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory, taxi_config):
    base = tmp_path_factory.mktemp("kills")
    data, out = base / "data", base / "out"
    data.mkdir()
    rows = pathlib.Path(taxi_config.data.path, "data.csv").read_text().splitlines(keepends=True)[:3001]
    (data / "data.csv").write_text("".join(rows))
    args = ["--set", f"data.path={data}", "--set", f"output_dir={out}", *SMALL]
    first = python("-m", "tfxp", "run", *args, "--set", "trainer.train_steps=50")
    assert first.returncode == 0, first.stderr[-3000:]
    [pushed] = versions(out / "serving" / "taxi")
    shutil.copytree(out, base / "complete", symlinks=True)
    return out, base / "complete", args, pushed


def _digit_dirs(path: pathlib.Path) -> set[pathlib.Path]:
    return {p for p in path.glob("*/*") if p.name.isdigit()} if path.exists() else set()


def _killed_run(args: list[str], after: str, out: pathlib.Path) -> tuple[str, list[str]]:
    """Runs `tfxp run`, kills its process group as described above; returns (the component
    running at the kill, the progress lines)."""
    run = subprocess.Popen(
        [sys.executable, "-m", "tfxp", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=PROJECT,
        start_new_session=True,
    )
    watchdog = threading.Timer(900, os.killpg, (run.pid, signal.SIGKILL))
    watchdog.start()
    lines, running = [], None
    try:
        for line in run.stdout:
            lines.append(line.rstrip())
            if re.search(rf"\] {after} (done|cached)", line):
                break
        else:
            raise AssertionError(f"the run ended before {after} finished:\n" + "\n".join(lines))
        if after == "ServingCheck":  # the Pusher is next: wait for its version, renamed into place
            running, serving = "Pusher", out / "serving" / "taxi"
            before = set(versions(serving))
            while not set(versions(serving)) - before:
                assert run.poll() is None, "the run ended before its push was seen"
                time.sleep(0.001)
        else:
            line = run.stdout.readline()
            lines.append(line.rstrip())
            running = re.match(r"\[\d+/\d+\] (\w+) \.\.\.$", line.strip())[1]
            node = out / "pipelines" / PIPELINE / running
            before = _digit_dirs(node)
            while not _digit_dirs(node) - before:
                assert run.poll() is None, f"the run ended before {running} made its outputs"
                time.sleep(0.005)
        os.killpg(run.pid, signal.SIGSTOP)  # at once, every process of the run
        os.killpg(run.pid, signal.SIGKILL)
    finally:
        watchdog.cancel()
        run.wait(timeout=60)
    assert run.returncode == -signal.SIGKILL
    return running, lines


def _tfxp(out: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    return python("-m", "tfxp", *args, "--set", f"output_dir={out}")


@pytest.mark.parametrize("after", ["ExampleGen", "Transform", "Evaluator", "ServingCheck"])
def test_a_run_killed_after_a_component_leaves_nothing_half_served_and_the_next_run_pushes(complete_run, after):
    from contracts import saved_model, serving_dir

    out, complete, args, first_version = complete_run
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(complete, out, symlinks=True)
    serving = out / "serving" / "taxi"
    # Executed, not taken from the cache, up to the kill: ExampleGen and Transform only run
    # again without the cache; a new step count makes the Trainer onwards run again.
    killed_args = [*args, "--set", "trainer.train_steps=60"]
    running, lines = _killed_run(
        killed_args + (["--set", "enable_cache=false"] if after in ("ExampleGen", "Transform") else []), after, out
    )

    # What TF Serving would load: only complete SavedModels.
    on_disk = versions(serving)
    assert [str(v) for v in serving_dir.served_versions(str(serving))] == on_disk
    assert all(serving_dir.incomplete_reason(str(serving / v)) is None for v in on_disk)
    assert on_disk[0] == first_version
    killed_push = on_disk[1] if after == "ServingCheck" else None
    assert len(on_disk) == (2 if killed_push else 1), on_disk

    shown = _tfxp(out, "runs", "--last", "1")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert re.search(rf"{running}\s+INTERRUPTED", shown.stdout), shown.stdout

    if killed_push:  # the version is served, ML Metadata has no record of the push: the version's own
        found = _tfxp(out, "lineage", killed_push)
        assert found.returncode == 0, found.stderr[-2000:]
        assert (
            "not recorded in ML Metadata (the run was stopped after the push): from tfxp-push.json" in found.stdout
        ), found.stdout
        assert re.search(r"pushed by run: \S+", found.stdout) and "pushed by run: unknown" not in found.stdout
        assert re.search(r"Trainer \(execution \d+\)", found.stdout), found.stdout
        assert "Pusher (execution" in found.stdout, found.stdout

    report = _tfxp(out, "doctor")
    assert report.returncode == 1, report.stdout + report.stderr[-2000:]
    findings = report.stdout.splitlines()[1:-1]
    assert any(f"/{running}/" in line and f"of {running} execution" in line for line in findings), findings
    assert any(line.startswith("1 execution(s) left RUNNING") for line in findings), findings

    again = python("-m", "tfxp", "run", *killed_args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert re.search(r"\d+ leftover\(s\) from interrupted runs: run `tfxp doctor --fix`", again.stdout), again.stdout
    now = versions(serving)
    if killed_push:  # the killed push is the newest served: the same model is not pushed twice
        assert now == on_disk
        assert f"pushed model: none (the same model is already served: {serving / killed_push})" in again.stdout
    else:
        assert len(now) == 2, now
        assert f"baseline: {serving / first_version}" in again.stdout, again.stdout
        assert f"pushed model: {serving / now[1]}" in again.stdout, again.stdout
        assert (serving / now[1] / saved_model.PUSH_RECORD).is_file()
        if after == "Evaluator":  # a version with its push record loads on TF Serving's path and in TF's CLI
            _loads(serving / now[1])
    # Nothing hidden left in serving; beside the versions, only the Pusher's TF Serving model config.
    assert sorted(p.name for p in serving.iterdir() if p.name != CONFIG_FILE) == now

    fixed = _tfxp(out, "doctor", "--fix")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr[-2000:]
    assert re.search(r"^\d+ leftover\(s\) removed$", fixed.stdout.splitlines()[-1]), fixed.stdout
    clean = _tfxp(out, "doctor")
    assert clean.returncode == 0 and clean.stdout.splitlines()[-1] == "no leftovers", clean.stdout


def _loads(version: pathlib.Path) -> None:
    from components.serving_check.loader import SessionModel
    from tests.conftest import TINY_CSV, to_example
    from tests.serving.saved_model_cli import cli_inputs, saved_model_cli

    with open(TINY_CSV, newline="") as f:
        rows = list(csv.DictReader(f))[:3]
    with SessionModel(str(version)) as model:
        examples = [to_example(r, drop=("tips",)).SerializeToString() for r in rows]
        assert model.run("serving_default", {"examples": examples})["probabilities"].shape == (3,)
    result = saved_model_cli(version, "serving_default", cli_inputs(version, "serving_default"))
    assert result.returncode == 0 and "Result for output key" in result.stdout, result.stderr[-2000:]
