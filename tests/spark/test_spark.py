"""The pipeline's Beam components on the local Spark cluster give the DirectRunner's outputs.

`make test-spark` starts the cluster (scripts/spark/cluster.sh: a standalone master, one worker,
Beam's Spark job server), runs this file and stops the cluster. The pipeline runs twice on the
tiny sample, with the DirectRunner and with `beam.runner: SparkRunner` against the job server;
ExampleGen, StatisticsGen, Transform and the Evaluator must write the same things both times
(tests/runners/compare.py), and the master and worker must show the Beam jobs as Spark
applications that finished with an executor on the worker.
"""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from tests.runners import compare
from tests.runners import runs as runs_
from tests.spark.conftest import SUMMARY

pytestmark = [pytest.mark.spark, pytest.mark.slow]

MASTER = "http://localhost:8180"
WORKER = "http://localhost:8181"
JOB_ENDPOINT = "localhost:8199"


def spark_overrides(job_endpoint: str = JOB_ENDPOINT) -> list[str]:
    """`beam` config for the local cluster. SparkRunner with --job_endpoint is PortableRunner
    against that job server (Beam 2.77's spark_runner.py: its own --spark_master_url is read only
    when it starts a job server itself); the master is the job server's --spark-master-url.
    Spark's parallelism is the executors' cores, so no --parallelism."""
    return runs_.portable_overrides("SparkRunner", job_endpoint)


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    try:
        master = _get(MASTER + "/json/")
    except OSError as err:
        pytest.fail(f"no Spark master at {MASTER} ({err}): start the cluster with `make spark-cluster`")
    assert master["aliveworkers"] == 1, master
    before = {a["id"] for a in master["completedapps"] + master["activeapps"]}
    base = tmp_path_factory.mktemp("spark")
    direct, spark = base / "direct", base / "spark"
    runs_.run_pipeline(direct, [])
    runs_.run_pipeline(spark, spark_overrides())
    apps = [a for a in _get(MASTER + "/json/")["completedapps"] if a["id"] not in before]
    return direct, spark, apps


def test_jobs_ran_on_the_worker(runs):
    _, _, apps = runs
    # ExampleGen, StatisticsGen, Transform and the Evaluator each submit at least one Beam job,
    # which the job server runs as a Spark application of its own.
    assert len(apps) >= 4, [a["name"] for a in apps]
    assert {a["state"] for a in apps} == {"FINISHED"}, [(a["name"], a["state"]) for a in apps]
    executors = _get(WORKER + "/json/")["finishedexecutors"]
    ran = {e["appid"] for e in executors}
    assert {a["id"] for a in apps} <= ran, (ran, [a["id"] for a in apps])


def test_outputs_equal_the_direct_runners(runs):
    direct, spark, _ = runs
    results = compare.compare(str(direct), str(spark))
    different = [f"{key}: {detail}" for key, equal, detail in results if not equal]
    assert not different, different
    components = {key.split("/")[0] for key, _, _ in results}
    assert components == set(compare.COMPONENTS), components
    import apache_beam

    script = (runs_.PROJECT / "scripts" / "spark" / "cluster.sh").read_text()
    spark_version = re.search(r"^SPARK_VERSION=(\S+)", script, re.M).group(1)
    job_server = re.search(r"^BEAM_JOB_SERVER_VERSION=(\S+)", script, re.M).group(1)
    SUMMARY.append(
        f"spark: {', '.join(compare.COMPONENTS)} on Spark {spark_version} (Beam job server {job_server}, "
        f"SDK {apache_beam.__version__}): outputs equal the DirectRunner's"
    )
