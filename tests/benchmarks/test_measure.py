"""Pure helpers of the benchmarks: percentiles, tables, Beam mode overrides, process-tree RSS."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import pytest

from benchmarks import beam, endtoend, measure


def test_percentile_interpolates_between_ranks():
    values = [4.0, 1.0, 3.0, 2.0]
    assert measure.percentile(values, 0) == 1.0
    assert measure.percentile(values, 50) == 2.5
    assert measure.percentile(values, 100) == 4.0
    assert measure.percentile(list(range(101)), 99) == 99
    with pytest.raises(ValueError):
        measure.percentile([], 50)


def test_table_aligns_numbers_right_and_text_left():
    text = measure.table(["name", "seconds"], [["a", 1.5], ["longer", 12.25], ["c", None]])
    lines = text.splitlines()
    assert lines[0].startswith("name  ")
    assert lines[1] == "------  -------"
    assert lines[2] == "a         1.500"
    assert lines[3] == "longer     12.2"
    assert lines[4] == "c"


def test_mode_overrides_make_a_valid_config():
    from pipeline.config import load_config

    for mode in ("in_memory", "multi_threading", "multi_processing"):
        config = load_config(None, beam.mode_overrides(mode, workers=2))
        assert config.beam.direct_running_mode == mode
        assert config.beam.direct_num_workers == (1 if mode == "in_memory" else 2)
        assert config.beam.args()[0] == "--runner=DirectRunner"  # Beam's own, workers per component
    config = load_config(None, beam.mode_overrides(beam.REUSE, workers=2))
    assert config.beam.args()[:3] == [
        "--runner=pipeline.beam_workers.WarmWorkersRunner",
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=2",
    ]
    config = load_config(None, beam.mode_overrides("portable", 2, "localhost:1", "localhost:2"))
    args = config.beam.args()
    assert args[0] == "--runner=PortableRunner"
    assert "--environment_type=EXTERNAL" in args and "--environment_config=localhost:2" in args
    assert "--job_endpoint=localhost:1" in args
    for mode, runner, endpoint in (
        ("flink", "FlinkRunner", "localhost:8099"),
        ("spark", "SparkRunner", "localhost:8199"),
    ):
        args = load_config(None, beam.mode_overrides(mode, workers=2)).beam.args()
        assert args[0] == f"--runner={runner}"
        assert f"--job_endpoint={endpoint}" in args and "--environment_type=PROCESS" in args
        assert ("--parallelism=2" in args) == (mode == "flink")  # Spark's is its executors' cores
        harness = json.loads(next(a for a in args if a.startswith("--environment_config=")).split("=", 1)[1])
        assert os.path.isfile(harness["command"]), harness


def test_a_cluster_mode_without_its_cluster_is_a_failure_not_a_crash(tmp_path, monkeypatch):
    # Nothing listens on the job endpoint: the mode is reported failed, and no pipeline runs.
    monkeypatch.setitem(beam.CLUSTERS, "spark", ("SparkRunner", f"localhost:{beam.free_port()}", "make spark-cluster"))
    monkeypatch.setattr(beam.endtoend, "run_ours", lambda *a, **k: pytest.fail("a pipeline ran"))
    results, failures, tables = beam.run_modes("unused.csv", str(tmp_path), ["spark"])
    assert results == [] and tables == {}
    assert len(failures) == 1 and failures[0].startswith("spark: no job server at localhost:")
    assert "make spark-cluster" in failures[0]


def test_run_measures_a_child_and_its_memory(tmp_path):
    # The child holds ~200 MB for a second: both memory figures must see it.
    code = "import time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1.2)"
    result = measure.run([sys.executable, "-c", code], log_path=str(tmp_path / "log"), interval=0.1)
    assert result.returncode == 0
    assert result.seconds >= 1.2
    assert result.peak_process_rss > 200 * 2**20
    assert result.peak_tree_rss > 200 * 2**20
    assert result.peak_tree_pss > 200 * 2**20
    assert measure.run([sys.executable, "-c", "raise SystemExit(3)"]).returncode == 3


def test_tree_rss_counts_this_process():
    assert measure.sample(os.getpid()).tree_rss > 0
    assert "cores" in measure.machine() and "loadavg" in measure.machine()


def test_pss_splits_pages_that_processes_share(tmp_path):
    # A parent touches 200 MB and forks: until either writes, the pages are shared, so summed
    # RSS counts them twice while summed PSS counts them once.
    code = (
        "import os, time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
        "pid = os.fork(); time.sleep(1.5); pid and os.waitpid(pid, 0)"
    )
    result = measure.run([sys.executable, "-c", code], log_path=str(tmp_path / "log"), interval=0.1)
    assert result.returncode == 0
    assert result.peak_tree_rss > 400 * 2**20
    assert 200 * 2**20 < result.peak_tree_pss < 330 * 2**20


def test_run_counts_the_cpu_seconds_of_the_whole_tree(tmp_path):
    # Two grandchildren burn 1 s of CPU each, the parent idles. The samples' CPU must match
    # what the kernel charged to the tree (its rusage), whatever else keeps the cores busy.
    burn = "import time\nwhile time.process_time() < 1.0: pass"
    code = (
        f"import subprocess, sys; ps = [subprocess.Popen([sys.executable, '-c', {burn!r}]) for _ in range(2)]; "
        "[p.wait() for p in ps]"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = measure.run([sys.executable, "-c", code], log_path=str(tmp_path / "log"), interval=0.1)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert result.returncode == 0
    charged = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    first, last = result.samples[0].at, result.samples[-1].at
    sampled = result.cores_between(first, last) * (last - first)
    assert charged >= 2.0
    # the window misses what ran before the first sample (start-up) and after the last
    assert charged - 0.6 < sampled <= charged + 0.05, (sampled, charged)
    assert all(s.tree_rss > 0 for s in result.samples)
    assert result.cores_between(0.0, 1.0) is None


def test_peak_pss_between_looks_only_inside_the_window():
    samples = [
        measure.Sample(at, rss, pss) for at, rss, pss in [(10.0, 5, 1), (11.0, 9, 7), (12.0, 6, 3), (13.0, 8, 9)]
    ]
    measured = measure.Measured(4.0, 9, 0, samples)
    assert measured.peak_pss_between(10.5, 12.0) == 7
    assert measured.peak_pss_between(11.5, 12.5) == 3
    assert measured.peak_pss_between(13.0, 13.0) == 9
    assert measured.peak_pss_between(20.0, 21.0) is None


def test_pss_of_a_gone_process_is_zero():
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert measure._pss(int(proc.stdout)) == 0
    assert measure._pss(os.getpid()) > 0


def _result(rows_seconds: dict[str, tuple[float, float]], samples) -> endtoend.PipelineResult:
    measured = measure.Measured(30.0, 0, 0, samples)
    return endtoend.PipelineResult("ours", measured, rows_seconds, 0.9, 100, "out", "log")


def test_tables_show_the_memory_of_each_beam_component():
    gib = 2**30
    samples = [
        measure.Sample(at, pss + gib, pss, cpu)
        for at, pss, cpu in [
            (100.0, 1 * gib, 0.0),
            (101.0, 3 * gib, 2.0),
            (105.0, 2 * gib, 3.0),
            (105.4, 1 * gib, 3.6),
            (106.0, 5 * gib, 4.0),
        ]
    ]
    result = _result({"ExampleGen": (100.5, 102.0), "Transform": (104.0, 105.5), "Evaluator": (107.0, 108.0)}, samples)
    assert result.peak_pss("ExampleGen") == 3 * gib
    assert result.peak_pss("Transform") == 2 * gib
    assert result.peak_pss("Evaluator") is None  # no sample fell inside it
    assert result.peak_pss("Trainer") is None
    assert result.cores("ExampleGen") is None  # one sample inside: no interval to measure

    scale = endtoend.scale_table([(1000, 1.0, result)]).splitlines()
    assert [line.split() for line in scale if line.startswith("  during")] == [
        ["during", "ExampleGen", "3.00"],
        ["during", "StatisticsGen", "-"],
        ["during", "Transform", "2.00"],
        ["during", "Evaluator", "-"],
    ]
    assert ["cores", "busy", "during", "Transform", "1.50"] in [line.split() for line in scale]
    assert any(line.split()[:5] == ["peak", "PSS", "tree,", "GiB", "5.00"] for line in scale)

    modes = beam.modes_table([("in_memory", result, {"rows": 1}), ("multi_processing", result, {"rows": 1})])
    assert ["during", "ExampleGen", "3.00", "3.00"] in [line.split() for line in modes.splitlines()]


def test_cores_ignore_a_sample_that_read_low():
    # The last sample missed a just-reaped child's CPU seconds: the window still ends at 3.0.
    samples = [measure.Sample(at, 1, 1, cpu) for at, cpu in [(0.0, 0.0), (1.0, 2.0), (2.0, 3.0), (2.0 + 1e-3, 0.5)]]
    measured = measure.Measured(2.0, 1, 0, samples)
    assert measured.cores_between(0.0, 2.0) == 1.5
    assert abs(measured.cores_between(0.0, 3.0) - 3.0 / 2.001) < 1e-9


def test_the_flink_table_takes_each_components_jobs_from_the_jobmanager(monkeypatch):
    """flink_jobs reads the JobManager's REST API (here its answers, as Flink 1.19 gives them) and
    keeps the finished jobs that started in a component's window; flink_table sets what no
    TaskManager shortens (the time outside the job) apart from what a third one could."""
    jid, vertex = "j1", "v1"
    answers = {
        "/jobs/overview": {
            "jobs": [
                {"jid": jid, "state": "FINISHED", "start-time": 101_000, "duration": 60_000},
                {"jid": "other", "state": "FINISHED", "start-time": 500_000, "duration": 1_000},
                {"jid": "failed", "state": "FAILED", "start-time": 102_000, "duration": 1_000},
            ]
        },
        f"/jobs/{jid}": {"vertices": [{"id": vertex}]},
        f"/jobs/{jid}/vertices/{vertex}": {
            "subtasks": [
                {"duration": 30_000, "taskmanager-id": "tm-a"},
                {"duration": 24_000, "taskmanager-id": "tm-b"},
                {"duration": -1, "taskmanager-id": "(unassigned)"},
            ]
        },
    }
    monkeypatch.setattr(beam, "_flink_get", lambda path: answers[path])
    jobs = beam.flink_jobs({"Transform": (100.0, 180.0)})
    assert jobs == [
        {
            "component": "Transform",
            "job_seconds": 60.0,
            "subtasks": 3,
            "by_taskmanager": {"tm-a": 30.0, "tm-b": 24.0, "(unassigned)": 0.0},
            "longest_subtask": 30.0,
        }
    ]
    result = endtoend.PipelineResult("flink", None, {"Transform": (100.0, 180.0)}, None, None, "out", "log")
    [row] = [line for line in beam.flink_table(result, jobs).splitlines() if line.startswith("Transform")]
    # 80 s in all, 20 s outside the job; with 3 TaskManagers the job at best 60 * 2/3 = 40 s
    assert row.split()[1:5] == ["80.0", "20.0", "60.0", "3"]
    assert row.split()[-1] == "60.0"
    assert beam.flink_table(result, []) == "no Flink job found for the Beam components"


def test_the_spark_table_takes_each_components_applications_from_their_event_logs(tmp_path):
    """spark_apps reads Spark's event logs (the listener events' JSON, as Spark 3.5 writes them;
    fields trimmed to those read) and keeps the finished applications that started in a
    component's window; spark_table halves only the time in Spark jobs for a second worker."""

    def log(name: str, start_ms: int, end_ms: int | None, tasks: list[tuple[str, int, int]]) -> None:
        events = [
            {"Event": "SparkListenerApplicationStart", "App ID": name, "Timestamp": start_ms},
            {"Event": "SparkListenerJobStart", "Job ID": 0, "Submission Time": start_ms + 10_000},
            {"Event": "SparkListenerJobStart", "Job ID": 1, "Submission Time": start_ms + 20_000},
        ]
        for executor, launch, finish in tasks:
            info = {"Executor ID": executor, "Launch Time": launch, "Finish Time": finish}
            events.append({"Event": "SparkListenerTaskEnd", "Stage ID": 0, "Task Info": info})
        events.append({"Event": "SparkListenerJobEnd", "Job ID": 0, "Completion Time": start_ms + 30_000})
        events.append({"Event": "SparkListenerJobEnd", "Job ID": 1, "Completion Time": start_ms + 40_000})
        if end_ms is not None:
            events.append({"Event": "SparkListenerApplicationEnd", "Timestamp": end_ms})
        (tmp_path / name).write_text("".join(json.dumps(e) + "\n" for e in events))

    log("app-1", 101_000, 151_000, [("0", 111_000, 131_000), ("0", 112_000, 120_000), ("1", 121_000, 126_000)])
    log("app-2", 900_000, 950_000, [("0", 910_000, 911_000)])  # outside every window
    log("app-3.inprogress", 102_000, None, [("0", 112_000, 113_000)])  # still running
    apps = beam.spark_apps({"Transform": (100.0, 180.0)}, str(tmp_path))
    assert apps == [
        {
            "component": "Transform",
            "app_seconds": 50.0,
            "job_seconds": 30.0,  # jobs 0 and 1 overlap: 10 s to 40 s after the start
            "tasks": 3,
            "by_executor": {"0": 28.0, "1": 5.0},
            "longest_task": 20.0,
        }
    ]
    result = endtoend.PipelineResult("spark", None, {"Transform": (100.0, 180.0)}, None, None, "out", "log")
    [row] = [line for line in beam.spark_table(result, apps).splitlines() if line.startswith("Transform")]
    # 80 s in all, 30 s outside the application, 30 s of its 50 in jobs; a second worker at best
    # halves those 30 s to 15, but the longest task takes 20: 80 - 30 + 20
    assert row.split()[1:6] == ["80.0", "30.0", "50.0", "30.0", "3"]
    assert row.split()[-1] == "70.0"
    assert beam.spark_table(result, []) == "no Spark application found for the Beam components"
    assert beam._spans_seconds([(0, 10), (5, 12), (20, 21)]) == 13
