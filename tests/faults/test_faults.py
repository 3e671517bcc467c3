"""Faults a local run must survive and report: a full disk, a concurrent run, a killed run.

The full-disk tests mount small tmpfs file systems, so they need root in a mount namespace of
their own, which `scripts/runtime.sh` gives; elsewhere they skip. Only
`test_whole_pipeline_on_a_full_disk` runs the real pipeline (slow); the others run `tfxp` with
a stand-in for TFX's runner, which fails the way a component on a full disk does.
"""

from __future__ import annotations

import os
import pathlib
import platform
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from contracts.model_config import CONFIG_FILE
from tests.subprocesses import HOLDER, PROJECT, error_lines, python, versions

TINY_DATA = PROJECT / "tests" / "data"

# Fills a directory's file system to the last byte; shared by the scripts below.
FILL = textwrap.dedent("""
    import errno, os

    def fill(directory):
        with open(os.path.join(directory, "filler"), "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\\0" * 65536)
            except OSError as err:
                assert err.errno == errno.ENOSPC, err
""")

# `tfxp run` with TFX's runner replaced by one that fails in the Pusher on a full disk: the
# disk fills, Python's stdout holds a line meant for the log, writing saved_model.pb fails
# (reported as tf.io.gfile reports it), and recording the failure in ML Metadata (same disk)
# fails too.
FAKE_RUN = FILL + textwrap.dedent("""
    import logging, sys, types

    out, data = sys.argv[1], sys.argv[2]

    class ResourceExhaustedError(Exception):
        pass

    class Runner:
        def run(self, pipeline):
            logging.getLogger("absl").info("Component %s is running.", "Pusher")
            version = os.path.join(out, "serving", "taxi", "1796000000")
            os.makedirs(version)
            fill(out)
            print("a line a component prints, bound for the log")
            path = os.path.join(version, "saved_model.pb")
            try:
                try:
                    with open(path, "wb", buffering=0) as f:
                        f.write(b"\\0" * 65536)
                except OSError as err:
                    raise ResourceExhaustedError(f"{path}; {err.strerror}")
            except ResourceExhaustedError:
                raise RuntimeError("Error when executing query: database or disk is full")

    # TFX's local runner module (pipeline/local_runner.py imports it by this name), and its parents.
    names = ["tfx", "tfx.orchestration", "tfx.orchestration.local", "tfx.orchestration.local.local_dag_runner"]
    modules = {name: types.ModuleType(name) for name in names}
    modules[names[-1]].LocalDagRunner = Runner
    sys.modules.update(modules)

    from pipeline import local_runner
    from tfxp.main import entry_point

    local_runner.build = lambda config, data_bytes=None: types.SimpleNamespace(components=[None] * 13)
    sys.argv = ["tfxp", "run", "--set", f"data.path={data}", "--set", f"output_dir={out}"]
    entry_point()
""")


@pytest.fixture
def small_disk(tmp_path):
    """mount(size): a fresh tmpfs of that size; unmounted after the test."""
    mounted = []

    def mount(size: str) -> pathlib.Path:
        path = tmp_path / f"disk-{len(mounted)}"
        path.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
        )
        if result.returncode:
            pytest.skip(
                f"cannot mount a tmpfs ({result.stderr.strip()}); these tests need root in a "
                "mount namespace of their own: run them through scripts/runtime.sh"
            )
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


# ---------------------------------------------------------------------------- full disk


def test_terminal_output_restores_the_terminal_when_the_log_disk_is_full(small_disk):
    disk = small_disk("1m")
    script = FILL + textwrap.dedent("""
        import sys
        from pipeline.terminal import terminal_output

        try:
            with terminal_output(sys.argv[1], verbose=False) as terminal:
                fill(os.path.dirname(sys.argv[1]))
                sys.stdout.write("bound for the log, which has no room")
                raise ValueError("the component's own error")
        except ValueError as err:
            print(f"caught: {err}", file=sys.stderr)
        print("the terminal again")
    """)
    result = python("-c", script, str(disk / "run.log"))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["caught: the component's own error"]
    assert result.stdout.splitlines() == ["the terminal again"]  # the log's line went nowhere


def test_a_component_on_a_full_disk_fails_the_run_with_one_line(small_disk):
    out = small_disk("2m")
    result = python("-c", FAKE_RUN, str(out), str(TINY_DATA))
    assert result.returncode == 1, (result.returncode, result.stderr)
    errors = error_lines(result.stderr)
    assert errors == [
        f"error: Pusher failed: [Errno 28] No space left on device: '{out}/serving/taxi/1796000000/saved_model.pb'"
    ], result.stderr
    assert "The full log is in " in result.stderr
    assert versions(out / "serving" / "taxi") == []  # the partial push is gone
    assert "[1/13] Pusher ..." in result.stdout


def test_the_first_os_error_under_a_failure_is_its_message():
    import errno

    from pipeline.local_runner import PipelineFailed

    try:
        try:
            raise PermissionError(errno.EACCES, "Permission denied", "/out/Transform/transform_graph")
        except PermissionError as err:
            raise RuntimeError(f"OSError: {err}\n  [while running 'Analyze']") from err
    except RuntimeError as err:
        failed = PipelineFailed("Transform", err, "/out/logs/run.log")
    assert str(failed).splitlines() == [
        "Transform failed: [Errno 13] Permission denied: '/out/Transform/transform_graph'",
        "The full log is in /out/logs/run.log; no model was pushed by this run.",
    ]
    # A Beam worker process sends back only the text of its error.
    quoted = RuntimeError(
        "Traceback (most recent call last):\n  ...\nOSError: [Errno 28] No space left on "
        "device: '/out/ExampleGen/examples/1/train/data.gz' [while running 'Write']\n"
    )
    assert str(PipelineFailed("ExampleGen", quoted, "/log")).splitlines()[0] == (
        "ExampleGen failed: [Errno 28] No space left on device: '/out/ExampleGen/examples/1/train/data.gz'"
    )

    # A gate's own report stays whole, whatever OS error was handled before it was raised.
    try:
        try:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/out/baseline")
        except FileNotFoundError as err:
            raise RuntimeError("the data drifted:\n  fare: 0.4 > 0.1") from err
    except RuntimeError as err:
        report = PipelineFailed("AnomaliesGate", err, "/log")
    assert str(report).splitlines()[:2] == ["AnomaliesGate failed: the data drifted:", "  fare: 0.4 > 0.1"]


def test_output_that_cannot_be_written_fails_the_command(small_disk):
    disk = small_disk("1m")
    subprocess.run([sys.executable, "-c", FILL + "fill(%r)" % str(disk)], check=True)
    with open(disk / "config.json", "w") as stdout:
        result = python("-m", "tfxp", "config", stdout=stdout, stderr=subprocess.PIPE)
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert len(error_lines(result.stderr)) == 1, result.stderr
    assert "No space left on device" in result.stderr


def test_an_output_directory_that_cannot_be_created_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = python("-m", "tfxp", "run", "--set", f"data.path={TINY_DATA}", "--set", f"output_dir={blocker / 'out'}")
    assert result.returncode == 2, result.stderr  # bad input, found before any component (preflight)
    assert error_lines(result.stderr) == [
        f"error: output directory {blocker / 'out'} cannot be written: Not a "
        "directory; set output_dir (or --set output_dir=...) to a directory "
        "you can write"
    ]


@pytest.mark.slow
def test_whole_pipeline_on_a_full_disk(small_disk, taxi_config, tmp_path):
    # Enough room for every component's output, not for the Pusher's two copies of the model.
    out = small_disk("4500k")
    data = tmp_path / "data"
    data.mkdir()
    rows = pathlib.Path(taxi_config.data.path, "data.csv").read_text().splitlines(keepends=True)[:3001]
    (data / "data.csv").write_text("".join(rows))
    result = python(
        "-m",
        "tfxp",
        "run",
        "--set",
        f"data.path={data}",
        "--set",
        f"output_dir={out}",
        "--set",
        "tuner.enabled=false",
        "--set",
        "trainer.train_steps=50",
        "--set",
        "trainer.eval_steps=10",
        "--set",
        "enable_cache=false",
    )
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr[-2000:]
    assert re.match(r"error: \w+ failed: \[Errno 28\] No space left on device: '/", errors[0]), errors
    assert versions(out / "serving" / "taxi") == []


# ---------------------------------------------------------------------------- concurrent runs


@pytest.fixture
def holder(tmp_path):
    """A process that holds the run lock of tmp_path/out until killed."""
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    assert proc.stdout.readline().strip() == "held"
    yield out, proc
    proc.kill()
    proc.wait()


def test_a_second_run_is_refused_at_once_naming_the_first(holder):
    out, proc = holder
    started = time.monotonic()
    result = python("-m", "tfxp", "run", "--set", f"data.path={TINY_DATA}", "--set", f"output_dir={out}")
    assert time.monotonic() - started < 60
    assert result.returncode == 2, result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and f"pid {proc.pid}, started " in errors[0], result.stderr
    assert result.stderr.strip() == errors[0]
    assert not (out / "logs").exists()  # refused before anything was written


def test_the_lock_of_a_killed_run_is_free(holder):
    from pipeline import run_lock

    out, proc = holder
    with pytest.raises(run_lock.LockHeld):
        with run_lock.hold(str(out)):
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with run_lock.hold(str(out)) as path:
        assert run_lock.read_holder(path)["pid"] == os.getpid()


def test_wait_lock_waits_for_the_holder(holder):
    from pipeline import run_lock

    out, proc = holder
    told = []
    killer = threading.Timer(1.0, proc.kill)
    killer.start()
    try:
        with run_lock.hold(str(out), wait=True, on_wait=told.append):
            assert [h["pid"] for h in told] == [proc.pid]
            assert proc.poll() is not None
    finally:
        killer.cancel()


# `_new_log` with the clock stopped at one second, in a process of its own.
SAME_SECOND_LOG = textwrap.dedent("""
    import datetime, sys
    from pipeline import local_runner

    class Stopped(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 12, 1, 12, 0, 0)

    local_runner.datetime = type("Clock", (), {"datetime": Stopped})
    for _ in range(int(sys.argv[2])):
        print(local_runner._new_log(sys.argv[1]))
""")


def test_run_logs_of_the_same_second_have_names_of_their_own(tmp_path):
    names = []
    for count in (2, 1):  # two runs of one process, then another process
        result = python("-c", SAME_SECOND_LOG, str(tmp_path), str(count))
        assert result.returncode == 0, result.stderr
        names += result.stdout.split()
    assert len(names) == 3 and len(set(names)) == 3, names
    assert all(pathlib.Path(n).name.startswith("run-20261201-120000-") for n in names), names
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(pathlib.Path(n).name for n in names)


# ---------------------------------------------------------------------------- runtime mounts


def _runtime_uses_chroot() -> bool:
    libc, version = platform.libc_ver()
    new_glibc = libc == "glibc" and tuple(int(p) for p in version.split(".")[:2]) >= (2, 38)
    venv = new_glibc and (3, 10) <= sys.version_info[:2] <= (3, 13)
    return os.environ.get("TFXP_ENV_MODE", "chroot" if not venv else "venv") == "chroot"


def _why_not_runtime_mounts() -> str | None:
    """Why the runtime mount test cannot run here, or None."""
    if sys.prefix == "/opt/venv":
        return (
            "inside the runtime's root, where scripts/runtime.sh cannot start again: on the host, "
            "run `bash tests/faults/runtime_rbind.sh` or `python3 -m pytest tests/faults -k runtime`"
        )
    if os.geteuid() != 0:
        return "mounting a tmpfs under the checkout needs root"
    if not _runtime_uses_chroot():
        return "scripts/runtime.sh uses a plain virtual environment on this host: nothing is bind-mounted"
    if shutil.which("mount") is None:
        return "no mount command"
    return None


@pytest.mark.skipif(_why_not_runtime_mounts() is not None, reason=str(_why_not_runtime_mounts()))
def test_runtime_shows_mounts_below_the_checkout():
    result = subprocess.run(
        ["bash", str(PROJECT / "tests" / "faults" / "runtime_rbind.sh")], capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("ok")


# ---------------------------------------------------------------------------- kills


@pytest.mark.slow
def test_a_run_killed_in_the_trainer_is_marked_interrupted_and_the_next_one_pushes(taxi_config, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    rows = pathlib.Path(taxi_config.data.path, "data.csv").read_text().splitlines(keepends=True)[:3001]
    (data / "data.csv").write_text("".join(rows))
    args = [
        sys.executable,
        "-m",
        "tfxp",
        "run",
        "--set",
        f"data.path={data}",
        "--set",
        f"output_dir={out}",
        "--set",
        "tuner.enabled=false",
        "--set",
        "trainer.train_steps=2000",
        "--set",
        "trainer.eval_steps=10",
    ]
    run = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=PROJECT, start_new_session=True
    )
    try:
        for line in run.stdout:
            if line.rstrip().endswith("Trainer ..."):
                break
        else:
            raise AssertionError(f"the run ended before the Trainer started (exit {run.wait()})")
        time.sleep(2)
        os.killpg(run.pid, signal.SIGKILL)  # the whole process group: nothing gets to clean up
    finally:
        run.wait(timeout=60)
    assert run.returncode == -signal.SIGKILL

    again = subprocess.run(
        [*args[:-4], "--set", "trainer.train_steps=50", "--set", "trainer.eval_steps=10"],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=1200,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert re.search(r"\d+ execution\(s\) of an interrupted run marked INTERRUPTED", again.stdout), again.stdout
    shown = python("-m", "tfxp", "runs", "--last", "2", "--set", f"output_dir={out}").stdout
    assert re.search(r"Trainer\s+INTERRUPTED", shown), shown
    serving = out / "serving" / "taxi"
    assert len(versions(serving)) == 1
    # No hidden partial copy; beside the versions, only the Pusher's TF Serving model config.
    assert sorted(p.name for p in serving.iterdir() if p.name != CONFIG_FILE) == versions(serving)


KILLED_PUBLISH = textwrap.dedent("""
    import sys
    from contracts.serving_dir import publish_version

    publish_version(sys.argv[1], sys.argv[2], 9)
""")


def test_a_push_killed_mid_copy_leaves_no_version_or_a_whole_one(tmp_path):
    from contracts import serving_dir
    from tests.serving import fake_saved_model

    source = fake_saved_model.write(tmp_path / "model", "big", shards=3)
    for i in range(300):  # enough files that the copy takes a while
        (source / "assets" / f"vocabulary-{i}").parent.mkdir(exist_ok=True)
        (source / "assets" / f"vocabulary-{i}").write_bytes(os.urandom(256 * 1024))
    serving = tmp_path / "serving"
    serving.mkdir()
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    push = subprocess.Popen([sys.executable, "-c", KILLED_PUBLISH, str(source), str(serving)], env=env, cwd=PROJECT)
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(serving_dir.PARTIAL_PREFIX) for p in serving.iterdir()):
        assert push.poll() is None, "the push ended before its copy was seen"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    push.kill()
    push.wait(timeout=60)
    # What TF Serving would see: every all-digit directory. Either none, or a complete model.
    for version in versions(serving):
        assert serving_dir.incomplete_reason(str(serving / version)) is None, version
    assert serving_dir.served_versions(str(serving)) in ([], [9])
    assert "9" not in versions(serving), "the copy was not cut short; the test saw nothing"
