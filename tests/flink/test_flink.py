"""The pipeline's Beam components on the local Flink cluster give the DirectRunner's outputs.

`make test-flink` starts the cluster (scripts/flink/cluster.sh: a JobManager, two TaskManagers,
Beam's Flink job server), runs this file and stops the cluster. The pipeline runs twice on the
tiny sample, with the DirectRunner and with `beam.runner: FlinkRunner` against the job server;
ExampleGen, StatisticsGen, Transform and the Evaluator must write the same things both times
(tests/runners/compare.py), and Flink's REST API must show the jobs finished on both TaskManagers.
"""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import urllib.request

import pytest

from tests.flink.conftest import SUMMARY
from tests.runners import compare
from tests.runners import runs as runs_

pytestmark = [pytest.mark.flink, pytest.mark.slow]

PROJECT = pathlib.Path(__file__).resolve().parents[2]
REST = "http://localhost:8081"
JOB_ENDPOINT = "localhost:8099"


def flink_overrides(job_endpoint: str = JOB_ENDPOINT, parallelism: int = 2) -> list[str]:
    """`beam` config for the local cluster: its job server, harnesses started by the TaskManagers."""
    return runs_.portable_overrides("FlinkRunner", job_endpoint, parallelism)


def _get(path: str):
    with urllib.request.urlopen(REST + path, timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def direct(tmp_path_factory):
    """The pipeline on the DirectRunner: what every Flink run here is compared with."""
    out = tmp_path_factory.mktemp("direct") / "direct"
    runs_.run_pipeline(out, [])
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, direct):
    try:
        overview = _get("/overview")
    except OSError as err:
        pytest.fail(f"no Flink REST API at {REST} ({err}): start the cluster with `make flink-cluster`")
    assert overview["taskmanagers"] == 2, overview
    before = {j["jid"] for j in _get("/jobs/overview")["jobs"]}
    flink = tmp_path_factory.mktemp("flink") / "flink"
    runs_.run_pipeline(flink, flink_overrides())
    jobs = [j for j in _get("/jobs/overview")["jobs"] if j["jid"] not in before]
    return direct, flink, jobs, overview["flink-version"]


def test_jobs_ran_on_both_taskmanagers(runs):
    _, _, jobs, _ = runs
    # ExampleGen, StatisticsGen, Transform and the Evaluator each submit at least one job.
    assert len(jobs) >= 4, [j["name"] for j in jobs]
    assert {j["state"] for j in jobs} == {"FINISHED"}, [(j["name"], j["state"]) for j in jobs]
    taskmanagers = set()
    for job in jobs:
        for vertex in _get(f"/jobs/{job['jid']}")["vertices"]:
            for tm in _get(f"/jobs/{job['jid']}/vertices/{vertex['id']}/taskmanagers")["taskmanagers"]:
                taskmanagers.add(tm["taskmanager-id"])
    assert len(taskmanagers) == 2, taskmanagers


def test_outputs_equal_the_direct_runners(runs):
    direct, flink, _, flink_version = runs
    results = compare.compare(str(direct), str(flink))
    different = [f"{key}: {detail}" for key, equal, detail in results if not equal]
    assert not different, different
    components = {key.split("/")[0] for key, _, _ in results}
    assert components == set(compare.COMPONENTS), components
    import apache_beam

    script = (PROJECT / "scripts" / "flink" / "cluster.sh").read_text()
    job_server = re.search(r"^BEAM_JOB_SERVER_VERSION=(\S+)", script, re.M).group(1)
    SUMMARY.append(
        f"flink: {', '.join(compare.COMPONENTS)} on Flink {flink_version} (Beam job server {job_server}, "
        f"SDK {apache_beam.__version__}): outputs equal the DirectRunner's"
    )


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _transform_job(before: set[str]) -> str | None:
    """The id of a running job of this run whose plan holds tf.Transform's analysis, once its
    tasks run: with one slot per TaskManager and parallelism 2, both TaskManagers then hold one."""
    for job in _get("/jobs/overview")["jobs"]:
        if job["jid"] in before or job["state"] != "RUNNING":
            continue
        vertices = _get(f"/jobs/{job['jid']}")["vertices"]
        if any("Analyze" in v["name"] for v in vertices) and any(v["status"] == "RUNNING" for v in vertices):
            return job["jid"]
    return None


def test_a_taskmanager_killed_during_transform(tmp_path, direct):
    """SIGKILL one TaskManager while Transform's job runs; the cluster's supervisor starts a new
    one (as a Kubernetes Deployment replaces a lost pod; scripts/flink/cluster.sh supervise).

    With Flink's exponential-delay restart strategy (scripts/flink/config.yaml) the lost
    TaskManager's task failures, which all come before the pending restart, count as one attempt;
    Flink restarts the failed regions on the new TaskManager, the job finishes, and the run
    completes with the DirectRunner's outputs (docs/beam.md; fixed-delay and failure-rate ran out
    of attempts on the same kill and failed the run)."""
    import os
    import signal
    import time

    cluster = PROJECT / "scripts" / "flink" / "cluster.sh"
    home = pathlib.Path(
        subprocess.run([str(cluster), "home"], capture_output=True, text=True, check=True).stdout.strip()
    )
    (pid_file,) = (home / "run" / "pid").glob("flink-*-taskexecutor.pid")
    # A live one: Flink's pid file keeps the pid of a TaskManager killed earlier (a second run on
    # the same cluster), beside its replacement's.
    victim = next(pid for pid in map(int, pid_file.read_text().split()) if _alive(pid))
    before = {j["jid"] for j in _get("/jobs/overview")["jobs"]}
    output = tmp_path / "killed"
    cmd = runs_.tfxp_run_command(output, flink_overrides())
    log = output.with_suffix(".log")
    with open(log, "w") as f:
        run = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 1200
            job = None
            while job is None:
                assert run.poll() is None, f"tfxp run ended ({run.returncode}) before Transform's job ran; see {log}"
                assert time.monotonic() < deadline, f"no Transform job came up; see {log}"
                time.sleep(1)
                job = _transform_job(before)
            os.kill(victim, signal.SIGKILL)
            returncode = run.wait(timeout=1800)
        finally:
            if run.poll() is None:
                run.kill()
    assert returncode == 0, f"tfxp run exited {returncode} after the TaskManager was killed; see {log}"
    assert _get(f"/jobs/{job}")["state"] == "FINISHED"
    # Flink's record of the restarts: one entry per attempt, the failures it merged beside it.
    attempts = _get(f"/jobs/{job}/exceptions")["exceptionHistory"]["entries"]
    failures = [e for a in attempts for e in [a, *a["concurrentExceptions"]]]
    assert any("is no longer reachable" in e["stacktrace"] for e in failures), "no restart for the lost TaskManager"
    results = compare.compare(str(direct), str(output))
    different = [f"{key}: {detail}" for key, equal, detail in results if not equal]
    assert not different, different
    SUMMARY.insert(
        0,
        f"flink: a TaskManager killed during Transform: {len(failures)} task failures, "
        f"{len(attempts)} restart attempt(s), the run completed with the DirectRunner's outputs",
    )
