"""Beam: the data-heavy components under each DirectRunner mode and under PortableRunner.

Every mode runs the same whole pipeline (Tuner and cache off) on the same data; the table
shows the Beam components' times from ML Metadata and checks that each mode produced the
same record counts. PortableRunner runs against Beam's own pure-Python job service
(`local_job_service_main`) with an EXTERNAL environment served by a worker pool
(`worker_pool_main`), the Job API that Flink and Spark job servers implement: moving to
such an engine is then a matter of `beam.runner` and `beam.extra_args`.

`flink` and `spark` (asked for by name, not in the default modes) run the same pipeline on the
local clusters of scripts/flink/cluster.sh and scripts/spark/cluster.sh, which must be up
(`make flink-cluster spark-cluster`; they run on the host, outside the runtime this runs in).
"""

from __future__ import annotations

import collections
import contextlib
import glob
import json
import os
import socket
import subprocess
import sys
import time
from typing import Iterator

from benchmarks import endtoend, measure

BEAM_COMPONENTS = endtoend.BEAM_COMPONENTS
DATA_HEAVY = ["StatisticsGen", "Transform", "Evaluator"]
# multi_processing with its workers kept alive across components (beam.reuse_workers)
REUSE = "multi_processing+reuse"
MODES = ["in_memory", "multi_threading", "multi_processing", REUSE, "portable"]
# The local clusters: (runner, job endpoint, what starts them). Their ports are fixed by the scripts.
CLUSTERS = {
    "flink": ("FlinkRunner", "localhost:8099", "make flink-cluster"),
    "spark": ("SparkRunner", "localhost:8199", "make spark-cluster"),
}
CHOICES = [*MODES, *CLUSTERS]
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("localhost", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} is not listening on port {port} after {timeout:.0f} s")


@contextlib.contextmanager
def portable_services(work_dir: str, workers: int = 2) -> Iterator[tuple[str, str]]:
    """Beam's local job service and an external SDK worker pool; yields their addresses."""
    os.makedirs(work_dir, exist_ok=True)
    job_port, pool_port = free_port(), free_port()
    procs = []
    try:
        with open(os.path.join(work_dir, "job_service.log"), "w") as log:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.job_service",
                        f"--sdk_workers={workers}",
                        f"--port={job_port}",
                        f"--staging_dir={os.path.abspath(os.path.join(work_dir, 'staging'))}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        _wait_for_port(job_port, procs[-1], "the Beam job service")
        with open(os.path.join(work_dir, "worker_pool.log"), "w") as log:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "apache_beam.runners.worker.worker_pool_main",
                        f"--service_port={pool_port}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        _wait_for_port(pool_port, procs[-1], "the Beam worker pool")
        yield f"localhost:{job_port}", f"localhost:{pool_port}"
    finally:
        for proc in reversed(procs):
            measure.stop(proc, 10)


def cluster_overrides(mode: str, workers: int = 2) -> list[str]:
    """`beam` config for a local cluster (as tests/flink and tests/spark run it): its job server,
    SDK harnesses started by its workers in the project's runtime (Beam's PROCESS environment)."""
    runner, endpoint, _ = CLUSTERS[mode]
    harness = os.path.join(PROJECT, "scripts", "flink", "sdk-harness.sh")
    extra = [
        f"--job_endpoint={endpoint}",
        "--environment_type=PROCESS",
        "--environment_config=" + json.dumps({"command": harness}),
        "--environment_cache_millis=60000",
        # Spark's parallelism is its executors' cores; Flink's is asked for.
        *([f"--parallelism={workers}"] if mode == "flink" else []),
        "--no_pipeline_type_check",
    ]
    return [f"beam.runner={runner}", "beam.extra_args=" + json.dumps(extra)]


def _cluster_up(mode: str) -> None:
    _, endpoint, start = CLUSTERS[mode]
    host, _, port = endpoint.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        raise RuntimeError(f"no job server at {endpoint} ({err.strerror or err}): start it with `{start}`") from None


def mode_overrides(mode: str, workers: int = 2, job: str = "", pool: str = "") -> list[str]:
    """Config overrides selecting a Beam mode: a DirectRunner mode, REUSE, `portable`, or a cluster."""
    if mode in CLUSTERS:
        return cluster_overrides(mode, workers)
    if mode == "portable":
        extra = [f"--job_endpoint={job}", "--environment_type=EXTERNAL", f"--environment_config={pool}"]
        return ["beam.runner=PortableRunner", "beam.extra_args=[" + ",".join(extra) + "]"]
    if mode == REUSE:
        return [
            "beam.direct_running_mode=multi_processing",
            f"beam.direct_num_workers={workers}",
            "beam.reuse_workers=true",
        ]
    return [
        f"beam.direct_running_mode={mode}",
        f"beam.direct_num_workers={1 if mode == 'in_memory' else workers}",
        "beam.reuse_workers=false",
    ]


def record_counts(output_dir: str, pipeline_name: str = "taxi-big-tipper") -> dict[str, int]:
    """Records each Beam component produced or read, from its output artifacts."""
    import tensorflow as tf
    import tensorflow_data_validation as tfdv

    root = os.path.join(output_dir, "pipelines", pipeline_name)
    counts: dict[str, int] = {}
    stats = 0
    for path in glob.glob(os.path.join(root, "StatisticsGen", "statistics", "*", "Split-*", "FeatureStats.pb")):
        stats += sum(d.num_examples for d in tfdv.load_stats_binary(path).datasets)
    counts["StatisticsGen: examples in statistics"] = stats
    files = glob.glob(os.path.join(root, "Transform", "transformed_examples", "*", "Split-*", "*.gz"))
    counts["Transform: transformed examples"] = (
        sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP")) if files else 0
    )
    return counts


def run_modes(
    data: str, work_dir: str, modes: list[str], workers: int = 2, sets: list[str] = ()
) -> tuple[list[tuple[str, endtoend.PipelineResult, dict]], list[str], dict[str, str]]:
    """Each mode's run, the modes that failed, and for a cluster mode the table of its jobs, read
    as soon as its run ends (Flink's JobManager forgets a finished job after an hour)."""
    results, failures, tables = [], [], {}
    for mode in modes:
        out = os.path.join(work_dir, mode)
        if mode == "portable":
            try:
                with portable_services(os.path.join(work_dir, "portable-services"), workers) as (job, pool):
                    result = endtoend.run_ours(mode, data, out, [*sets, *mode_overrides(mode, workers, job, pool)])
            except RuntimeError as err:
                print(f"PortableRunner failed: {err}", file=sys.stderr)
                failures.append(f"{mode}: {err}")
                continue
        elif mode in CLUSTERS:
            try:
                _cluster_up(mode)
                result = endtoend.run_ours(mode, data, out, [*sets, *mode_overrides(mode, workers)])
            except RuntimeError as err:
                print(f"{mode} failed: {err}", file=sys.stderr)
                failures.append(f"{mode}: {err}")
                continue
            tables[mode] = cluster_table(mode, result, workers)
        else:
            result = endtoend.run_ours(mode, data, out, [*sets, *mode_overrides(mode, workers)])
        counts = record_counts(result.output_dir)
        counts["Evaluator: examples evaluated"] = result.examples or 0
        results.append((mode, result, counts))
    return results, failures, tables


def cluster_table(mode: str, result: endtoend.PipelineResult, workers: int = 2) -> str:
    """The per-task table of a cluster mode's jobs; a cluster that cannot tell is said so."""
    try:
        if mode == "flink":
            return flink_table(result, flink_jobs(result.windows), workers)
        return spark_table(result, spark_apps(result.windows))
    except (OSError, ValueError, KeyError) as err:
        return f"{mode}: its jobs could not be read ({type(err).__name__}: {err})"


FLINK_REST = "http://localhost:8081"  # scripts/flink/cluster.sh's JobManager


def _flink_get(path: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(FLINK_REST + path, timeout=30) as response:
        return json.load(response)


def flink_jobs(windows: dict[str, tuple[float, float]]) -> list[dict]:
    """The finished Flink jobs that started inside a component's window (ML Metadata's times),
    from the JobManager's REST API: the job's own time, and each subtask's running time by the
    TaskManager that ran it (a DataSet job's operators report no busy time: `accumulated-busy-time`
    is NaN, so a subtask's time is from its start to its end, waits for its inputs included)."""
    jobs = []
    for job in _flink_get("/jobs/overview")["jobs"]:
        start = job["start-time"] / 1000
        component = next((c for c, (s, e) in windows.items() if s - 1 <= start <= e + 1), None)
        if component is None or job["state"] != "FINISHED":
            continue
        by_taskmanager: dict[str, float] = {}
        longest, subtasks = 0.0, 0
        for vertex in _flink_get(f"/jobs/{job['jid']}")["vertices"]:
            for subtask in _flink_get(f"/jobs/{job['jid']}/vertices/{vertex['id']}")["subtasks"]:
                seconds = max(subtask["duration"], 0) / 1000
                by_taskmanager[subtask["taskmanager-id"]] = by_taskmanager.get(subtask["taskmanager-id"], 0.0) + seconds
                longest, subtasks = max(longest, seconds), subtasks + 1
        jobs.append(
            {
                "component": component,
                "job_seconds": job["duration"] / 1000,
                "subtasks": subtasks,
                "by_taskmanager": by_taskmanager,
                "longest_subtask": longest,
            }
        )
    return jobs


def _by_component(result: endtoend.PipelineResult, runs: list[dict]) -> Iterator[tuple[str, float, list[dict]]]:
    """(component, its seconds, its cluster jobs) for each Beam component that ran on a cluster."""
    for component in BEAM_COMPONENTS:
        mine = [r for r in runs if r["component"] == component]
        if mine and component in result.components:
            yield component, result.components[component], mine


def _shares(runs: list[dict], key: str) -> str:
    """Each worker's seconds over `runs` (`key` maps a worker to its seconds), in worker order."""
    total: collections.Counter = collections.Counter()
    for run in runs:
        total.update(run[key])
    return " / ".join(f"{seconds:.0f}" for _, seconds in sorted(total.items()))


def flink_table(result: endtoend.PipelineResult, jobs: list[dict], taskmanagers: int = 2) -> str:
    """Per Beam component on Flink: its time outside the Flink job (pipeline construction,
    submission, artifact staging: no TaskManager shortens it), the job's time, each TaskManager's
    subtask-seconds, and what one more TaskManager with its own cores would leave: the time
    outside the job plus the job's time times taskmanagers / (taskmanagers + 1), the most one
    more slot of an evenly split job buys, and never below the job's longest subtask."""
    body = []
    for component, wall, mine in _by_component(result, jobs):
        in_jobs = sum(j["job_seconds"] for j in mine)
        scaled = max(in_jobs * taskmanagers / (taskmanagers + 1), max(j["longest_subtask"] for j in mine))
        body.append(
            [
                component,
                f"{wall:.1f}",
                f"{wall - in_jobs:.1f}",
                f"{in_jobs:.1f}",
                str(sum(j["subtasks"] for j in mine)),
                _shares(mine, "by_taskmanager"),
                f"{max(j['longest_subtask'] for j in mine):.1f}",
                f"{wall - in_jobs + scaled:.1f}",
            ]
        )
    head = [
        "Flink",
        "component, s",
        "outside the job, s",
        "job, s",
        "subtasks",
        "subtask-s per TaskManager",
        "longest subtask, s",
        f"with {taskmanagers + 1} TaskManagers, s (at best)",
    ]
    return measure.table(head, body) if body else "no Flink job found for the Beam components"


# scripts/spark/cluster.sh's job server writes each application's event log here
SPARK_EVENTS = os.path.join(PROJECT, "build", "spark-events")


def _spans_seconds(spans: list[tuple[float, float]]) -> float:
    """The time covered by the union of (start, end) spans."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def spark_apps(windows: dict[str, tuple[float, float]], events_dir: str = SPARK_EVENTS) -> list[dict]:
    """The finished Spark applications (one per Beam job) that started inside a component's
    window, from their event logs: Spark's listener events, one JSON object per line. Each
    application's UI ends with it, and the history server would serve these same files, so they
    are read directly. A task's time is from its launch to its finish, as a Flink subtask's."""
    apps = []
    for path in sorted(glob.glob(os.path.join(events_dir, "*"))):
        if path.endswith(".inprogress"):
            continue
        start = end = None
        jobs: dict[int, list[float]] = {}
        by_executor: dict[str, float] = {}
        longest, tasks = 0.0, 0
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                event = json.loads(line)
                kind = event["Event"]
                if kind == "SparkListenerApplicationStart":
                    start = event["Timestamp"] / 1000
                elif kind == "SparkListenerApplicationEnd":
                    end = event["Timestamp"] / 1000
                elif kind == "SparkListenerJobStart":
                    jobs[event["Job ID"]] = [event["Submission Time"] / 1000, 0.0]
                elif kind == "SparkListenerJobEnd" and event["Job ID"] in jobs:
                    jobs[event["Job ID"]][1] = event["Completion Time"] / 1000
                elif kind == "SparkListenerTaskEnd":
                    info = event["Task Info"]
                    seconds = max(info["Finish Time"] - info["Launch Time"], 0) / 1000
                    by_executor[info["Executor ID"]] = by_executor.get(info["Executor ID"], 0.0) + seconds
                    longest, tasks = max(longest, seconds), tasks + 1
        if start is None or end is None:
            continue
        component = next((c for c, (s, e) in windows.items() if s - 1 <= start <= e + 1), None)
        if component is None:
            continue
        apps.append(
            {
                "component": component,
                "app_seconds": end - start,
                "job_seconds": _spans_seconds([(s, e) for s, e in jobs.values() if e >= s]),
                "tasks": tasks,
                "by_executor": by_executor,
                "longest_task": longest,
            }
        )
    return apps


def spark_table(result: endtoend.PipelineResult, apps: list[dict]) -> str:
    """Per Beam component on Spark: its time outside the applications (pipeline construction,
    submission, staging), the applications' time, the part of it in Spark jobs (what more
    executors can shorten; the rest is the application's start, its executor's launch and the
    jars it fetches), each executor's task-seconds, and what a second worker like the one there
    (its own cores) would leave at best: the jobs' time halved, never below the longest task."""
    body = []
    for component, wall, mine in _by_component(result, apps):
        in_apps = sum(a["app_seconds"] for a in mine)
        in_jobs = sum(a["job_seconds"] for a in mine)
        longest = max(a["longest_task"] for a in mine)
        scaled = max(in_jobs / 2, longest)
        body.append(
            [
                component,
                f"{wall:.1f}",
                f"{wall - in_apps:.1f}",
                f"{in_apps:.1f}",
                f"{in_jobs:.1f}",
                str(sum(a["tasks"] for a in mine)),
                _shares(mine, "by_executor"),
                f"{longest:.1f}",
                f"{wall - in_jobs + scaled:.1f}",
            ]
        )
    head = [
        "Spark",
        "component, s",
        "outside the applications, s",
        "applications, s",
        "in Spark jobs, s",
        "tasks",
        "task-s per executor",
        "longest task, s",
        "with a second worker, s (at best)",
    ]
    return measure.table(head, body) if body else "no Spark application found for the Beam components"


def _two_places(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def modes_table(results, failures: list[str] = ()) -> str:
    failed = "".join(f"\nfailed: {f}" for f in failures)
    if not results:
        return "no mode ran" + failed
    names = [m for m, _, _ in results]
    body = []
    for component in BEAM_COMPONENTS:
        body.append([f"{component}, s"] + [f"{r.components.get(component, float('nan')):.1f}" for _, r, _ in results])
    heavy = [sum(r.components.get(c, 0.0) for c in DATA_HEAVY) for _, r, _ in results]
    body.append(["StatisticsGen+Transform+Evaluator, s"] + [f"{h:.1f}" for h in heavy])
    if "in_memory" in names:
        base = heavy[names.index("in_memory")]
        body.append(["speed-up vs in_memory"] + [f"{base / h:.2f}x" for h in heavy])
    rows = results[0][2].get("StatisticsGen: examples in statistics")
    if rows:
        body.append(["rows/s through the three"] + [f"{rows / h:.0f}" for h in heavy])
    body.append(["whole pipeline wall, s"] + [f"{r.measured.seconds:.1f}" for _, r, _ in results])
    body.append(
        ["peak PSS, pipeline's process tree, GiB"] + [f"{r.measured.peak_tree_pss / 2**30:.2f}" for _, r, _ in results]
    )
    for component in BEAM_COMPONENTS:
        body.append(
            [f"  during {component}"] + [_two_places(endtoend.gib(r.peak_pss(component))) for _, r, _ in results]
        )
    for component in BEAM_COMPONENTS:  # CPU seconds over wall seconds
        body.append([f"cores busy during {component}"] + [_two_places(r.cores(component)) for _, r, _ in results])
    body.append(
        ["peak RSS, pipeline's process tree, GiB"] + [f"{r.measured.peak_tree_rss / 2**30:.2f}" for _, r, _ in results]
    )
    body.append(
        ["peak RSS, largest process, GiB"] + [f"{r.measured.peak_process_rss / 2**30:.2f}" for _, r, _ in results]
    )
    for key in results[0][2]:
        body.append([key] + [str(c.get(key)) for _, _, c in results])
    agree = all(c == results[0][2] for _, _, c in results)
    if any(m in CLUSTERS for m in names):
        failed += (
            "\nflink, spark: the clusters' processes (JobManager, TaskManagers, Spark master, worker and "
            "executors, the job servers and their SDK harnesses) run outside the pipeline's process tree; "
            "their memory and CPU are not in the PSS, RSS and cores rows"
        )
    if "portable" in names:
        failed += (
            "\nportable: Beam's job service and its worker pool run outside the pipeline's "
            "process tree; their memory is not in the RSS row"
        )
    text = measure.table(["", *names], body)
    return text + f"\nrecord counts equal across modes: {'yes' if agree else 'NO'}" + failed
