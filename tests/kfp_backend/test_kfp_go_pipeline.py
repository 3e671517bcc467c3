"""The whole compiled pipeline, run by KFP 2.0.5's own API server, driver and launcher: every decision KFP's.

Each run is created through KFP 2.0.5's own API server (`apiserver` on Debian's MariaDB,
tests/kfp_backend/argo_runner.py `ApiServer`, as test_kfp_go_driver.py does): its CreateRun of the
compiled YAML with the run's parameters and pipeline root makes the Workflow and creates it in
Kubernetes (tests/kfp_backend/kube_api.py keeps it), and tests/kfp_backend/argo_runner.py walks
that Workflow's whole DAG in podman, each step a container of our image with KFP's static
`driver` or `launcher-v2` in it: the root DAG driver, then for every task its container driver
(inputs from ML Metadata, the cache's verdict from the API server's TaskService, output URIs, the
pod-spec patch) and, unless the driver said `cached-decision` true, its executor pod (the
launcher downloads the inputs from the object store, runs our step, uploads the outputs and
records them in ML Metadata, and records the task in the cache with CreateTaskV1: a row of the
API server's MariaDB). Where MariaDB is not installed, the Workflow comes from KFP's API-server
code (`run-workflow`) and the cache is `task-service`, our stand-in, and the test says so. The
other services are those of tests/kfp_backend/ (argo_runner.KfpServices: ML Metadata, SeaweedFS,
the Kubernetes API), kept from run to run with the API server, as the Python harness's test
(test_kfp_backend_pipeline.py) keeps its backend:

1. span 1: every task runs and a model is pushed to the PVC's serving directory;
2. span 2 lands in the same data_root: DataFingerprint changes, so nothing from ExampleGen on
   is served from the cache;
3. the same data with a stricter eval_config: ExampleGen to Trainer are served from KFP's cache
   (the launcher's CreateTaskV1 rows of run 2, the driver's ListTasksV1 in run 3), the
   Evaluator refuses, nothing is pushed.

Between runs 1 and 2 the Python harness (harness.py, the fast tier) runs the same compiled
pipeline on the same span 1, and agreement.py holds what it made to what KFP's binaries made:
every task's executor input, what ML Metadata recorded and what was uploaded, less the
differences between KFP 2.0.5 and 2.5 that agreement.KNOWN names.

Minutes of work on two cores: the `kfp_real` marker keeps it out of `make test`;
`make test-kfp-real` runs it and prints each run's summary line (build/kfp-go-pipeline-test/summary.txt).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import time
import uuid

import pytest

from components.serving_baseline.executor import NOTHING_SERVED
from tests.conftest import NEEDS_PODMAN_AND_IMAGE
from tests.kfp_backend.common import KFP_205, SPAN_PIPELINE, add_span, config, served_versions

pytestmark = [
    pytest.mark.slow,
    pytest.mark.kfp_real,
    NEEDS_PODMAN_AND_IMAGE,
    pytest.mark.skipif(
        not os.environ.get("TFXP_KFP_GO"),
        reason="needs KFP's Go binaries: `make test-kfp-real` builds them and sets TFXP_KFP_GO",
    ),
]

# Under the checkout: the same path on the host (podman) and in the runtime environment.
WORK = pathlib.Path(__file__).resolve().parents[2] / "build" / "kfp-go-pipeline-test"
PVC = WORK / "pvc" / "tfx-pipeline"  # the claim the compiled steps mount at /mnt/pipeline
ROOT = "minio://mlpipeline/v2/artifacts"
PIPELINE = "taxi-big-tipper"
ROWS_PER_SPAN = 2000
UPSTREAM_OF_EVALUATOR = ("ExampleGen", "StatisticsGen", "SchemaGen", "Transform", "Trainer")


def _config(*overrides):
    return config(*KFP_205, *SPAN_PIPELINE, *overrides)


def _versions() -> list[str]:
    return served_versions(PVC)


def _value(value):
    """An ML Metadata property as Python."""
    from google.protobuf import json_format

    kind = value.WhichOneof("value")
    if kind == "struct_value":
        return json_format.MessageToDict(value.struct_value)
    return getattr(value, kind) if kind else None


class Run:
    """One run's Workflow nodes (argo_runner) and its tasks' records in ML Metadata."""

    def __init__(self, runner, store, run_id: str, seconds: float):
        self.runner, self.run_id, self.seconds = runner, run_id, seconds
        [context] = [c for c in store.get_contexts_by_type("system.PipelineRun") if c.name == run_id]
        container = store.get_execution_type("system.ContainerExecution").id  # not the root DAG's
        self.executions = {
            e.custom_properties["task_name"].string_value: e
            for e in store.get_executions_by_context(context.id)
            if e.type_id == container
        }
        self.store = store

    def cached(self, task: str) -> bool:
        return self.runner.task(task)["cached"]

    def ran(self, task: str) -> bool:
        return self.runner.task(task)["ran"]

    def outputs(self, task: str) -> dict[str, dict]:
        """Output name -> {"id", "uri", "properties"} of the artifacts ML Metadata links to the task."""
        execution = self.executions[task]
        events = [e for e in self.store.get_events_by_execution_ids([execution.id]) if e.type == e.OUTPUT]
        artifacts = {a.id: a for a in self.store.get_artifacts_by_id([e.artifact_id for e in events])}
        return {
            event.path.steps[0].key: {
                "id": event.artifact_id,
                "uri": artifacts[event.artifact_id].uri,
                "properties": {k: _value(v) for k, v in artifacts[event.artifact_id].custom_properties.items()},
            }
            for event in events
        }

    def parameter(self, task: str, name: str):
        from google.protobuf import json_format

        return json_format.MessageToDict(self.executions[task].custom_properties["outputs"].struct_value)[name]

    def succeeded(self) -> int:
        """Tasks whose execution ML Metadata records as done: run (COMPLETE) or from KFP's cache (CACHED)."""
        from ml_metadata.proto import metadata_store_pb2

        done = {metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED}
        return sum(e.last_known_state in done for e in self.executions.values())

    def summary(self, number: int) -> str:
        tasks = sorted(self.executions)
        ran = [t for t in tasks if self.ran(t)]
        cached = [t for t in tasks if self.cached(t)]
        return (
            f"run {number} ({self.run_id}): {len(tasks)} tasks, {len(ran)} ran, {len(cached)} from KFP's cache "
            f"({', '.join(cached) or 'none'}), {self.seconds:.0f} s"
        )


@pytest.fixture(scope="module")
def backend():
    from pipeline import kubeflow_runner
    from pipeline.sample_drops import write_drops
    from tests.kfp_backend.argo_runner import Pod, kfp_backend

    kfp_go = pathlib.Path(os.environ["TFXP_KFP_GO"])
    shutil.rmtree(WORK, ignore_errors=True)
    drops = write_drops(str(WORK / "drops"), ROWS_PER_SPAN)  # 1 and 2: random shares of the sample, alike
    add_span(PVC, 1, drops[0])
    kubeflow_runner.compile_pipeline(_config(), str(WORK / "pipeline.yaml"), allow_local_image=True)
    state = {"kfp_go": kfp_go, "drops": drops, "runs": 0}
    # WORK stays for a look after a failure; the next setup removes it
    with kfp_backend(WORK / "services", kfp_go, os.environ["TFXP_IMAGE"], timeout=1800) as backend:
        state.update(services=backend.services, api=backend.api, kubernetes=backend.services.kubernetes)
        if backend.missing:  # said plainly in the summary: the Workflow and the cache are then our stand-ins'
            state["fallback"] = f"no API server ({backend.missing}): run-workflow's Workflow, task-service's cache"
        # the drivers' and launchers' cache: the API server's gRPC port
        state["pod"] = Pod(backend.client, os.environ["TFXP_IMAGE"], backend.services.account, backend.env)
        yield state
    # The tier's last line: every task of every run, and the KFP release whose binaries ran them.
    tasks = len(_pipeline_tasks()) * state["runs"]
    succeeded = sum(run.succeeded() for run in state.get("done", []))
    release = (kfp_go / "BUILD_INFO").read_text().split("\n", 1)[0].removeprefix("KFP ")
    line = f"kfp-real: {succeeded} of {tasks} tasks succeeded under KFP {release}'s compiler, driver and launcher"
    with open(WORK / "summary.txt", "a") as summary:
        if "fallback" in state:
            summary.write(f"fallback: {state['fallback']}\n")
        summary.write(f"kubernetes: {state.get('kubernetes', 'not started')}\n")
        summary.write(line + "\n")


def _run(backend, parameters: dict[str, str] | None = None) -> Run:
    from tests.kfp_backend.argo_runner import ArgoRunner, make_workflow

    backend["runs"] += 1
    number = backend["runs"]
    parameters = {"data_root": "/mnt/pipeline/data", **(parameters or {})}
    if backend["api"] is not None:  # CreateRun: the Workflow it created in the Kubernetes API
        run_id, workflow = backend["api"].create_run(WORK / "pipeline.yaml", ROOT, parameters)
    else:
        run_id = str(uuid.uuid4())
        workflow = make_workflow(backend["kfp_go"], WORK / "pipeline.yaml", ROOT, run_id, parameters)
    services = backend["services"]
    runner = ArgoRunner(
        workflow, backend["pod"], backend["kfp_go"], WORK / f"run-{number}", WORK / "pvc", services.config_maps
    )
    started = time.monotonic()
    runner.run()  # a failed step raises StepFailed: the step, its pod's last log lines, the log's path
    run = Run(runner, services.store(), run_id, time.monotonic() - started)
    backend.setdefault("done", []).append(run)
    with open(WORK / "summary.txt", "a") as summary:
        summary.write(run.summary(number) + "\n")
    with open(WORK / f"run-{number}" / "steps.tsv", "w") as steps:  # each step's phase and seconds
        steps.writelines(f"{n.path}\t{n.phase}\t{n.seconds:.1f}\n" for n in runner.nodes.values())
    return run


@pytest.fixture(scope="module")
def first_run(backend):
    return _run(backend)


@pytest.fixture(scope="module")
def second_run(backend, first_run):
    add_span(PVC, 2, backend["drops"][1])
    return _run(backend)


@pytest.fixture(scope="module")
def third_run(backend, second_run):
    from pipeline import kubeflow_runner

    strict = kubeflow_runner.parameter_defaults(_config("evaluator.min_auc=0.9999"))["eval_config"]
    return _run(backend, {"eval_config": strict})


def _pipeline_tasks() -> set[str]:
    import yaml

    with open(WORK / "pipeline.yaml") as f:
        return set(next(yaml.safe_load_all(f))["root"]["dag"]["tasks"])


def test_first_run_trains_and_pushes_with_every_step_run_by_kfps_driver_and_launcher(backend, first_run):
    tasks = _pipeline_tasks()
    assert set(first_run.executions) == tasks  # every task has its execution in ML Metadata
    for task in tasks:
        assert first_run.ran(task) and not first_run.cached(task), task
        assert first_run.executions[task].last_known_state == first_run.executions[task].COMPLETE, task
    # The launcher uploaded the examples under the run's root and recorded their remote URI.
    examples = first_run.outputs("ExampleGen")["examples"]
    assert examples["uri"] == f"{ROOT}/{PIPELINE}/{first_run.run_id}/ExampleGen/examples"
    files = backend["services"].objects(examples["uri"][len("minio://mlpipeline/") :] + "/")
    assert any(f.startswith("Split-train/") for f in files) and any(f.startswith("Split-test/") for f in files)
    assert examples["properties"]["span"] == 1  # ExampleGen resolved {SPAN} itself
    assert first_run.outputs("ServingBaseline")["baseline_model"]["properties"]["baseline_source"] == NOTHING_SERVED
    assert first_run.outputs("Evaluator")["blessing"]["properties"]["blessed"] == 1
    assert first_run.outputs("Pusher")["pushed_model"]["properties"]["pushed"] == 1
    # The Pusher wrote the version on the PVC, where TF Serving reads it.
    [version] = _versions()
    assert (PVC / "serving" / "taxi" / version / "saved_model.pb").is_file()
    # The Trainer's model went through the object store to the Evaluator and the Pusher.
    model = first_run.outputs("Trainer")["model"]["uri"]
    assert backend["services"].objects(model[len("minio://mlpipeline/") :] + "/"), model


def test_the_pushed_model_loads_and_predicts_on_tf_servings_path(first_run, tiny_rows):
    from components.serving_check.loader import SessionModel
    from tests.conftest import to_example

    version = PVC / "serving" / "taxi" / _versions()[0]
    examples = [to_example(r, drop=("tips",)).SerializeToString() for r in tiny_rows[:3]]
    with SessionModel(str(version)) as model:
        assert model.run("serving_default", {"examples": examples})["probabilities"].shape == (3,)


@pytest.fixture(scope="module")
def harness_first_run(backend, first_run):
    """The Python harness (harness.py, the fast tier) on the same compiled pipeline and the same
    span 1, with a PVC and a store of its own; before run 2 adds span 2."""
    import docker

    from tests.kfp_backend.harness import Backend, podman_runner

    pvc = WORK / "harness" / "pvc"
    shutil.rmtree(WORK / "harness", ignore_errors=True)
    assert sorted(p.name for p in (PVC / "data").iterdir()) == ["span-1"]
    # copy2 keeps the file's times: TFX's input fingerprint of ExampleGen reads them
    shutil.copytree(PVC / "data", pvc / "tfx-pipeline" / "data")
    client = docker.from_env(timeout=1800)
    try:
        harness = Backend(WORK / "harness" / "backend", podman_runner(client), pvcs=pvc)
        results = harness.run(str(WORK / "pipeline.yaml"), {"data_root": "/mnt/pipeline/data"}, ROOT)
    finally:
        client.close()
    return harness, results


def test_the_python_harness_makes_what_kfps_binaries_make_of_the_same_run(backend, first_run, harness_first_run):
    from tests.kfp_backend import agreement

    harness, results = harness_first_run
    executor_inputs = {
        task: agreement.executor_input_of(first_run.runner.task(task)["driver"].outputs["pod-spec-patch"])
        for task in first_run.executions
    }
    kfp = agreement.of_kfp(first_run.store, first_run.run_id, executor_inputs, backend["services"].objects)
    ours = agreement.known(agreement.of_harness(harness, results, ROOT))
    assert set(kfp) == set(ours) == _pipeline_tasks()
    # Both records hold something to compare: the examples' splits and the Trainer's model uploaded.
    assert any(f.startswith("Split-train/") for f in kfp["ExampleGen"]["uploaded"]["examples"])
    assert any(f.endswith("saved_model.pb") for f in kfp["Trainer"]["uploaded"]["model"])
    assert kfp["Evaluator"]["recorded"]["artifacts"]["blessing"]["custom_properties"]["blessed"] == 1.0
    with open(WORK / "agreement.json", "w") as f:  # for a look when they differ
        json.dump({"kfp": kfp, "harness": ours, "known": agreement.KNOWN}, f, indent=1, sort_keys=True)
    assert agreement.differences(kfp, ours) == []


def test_new_files_in_the_same_data_root_are_not_served_from_kfps_cache(first_run, second_run):
    assert first_run.parameter("DataFingerprint", "fingerprint") != second_run.parameter(
        "DataFingerprint", "fingerprint"
    )
    for task in (*UPSTREAM_OF_EVALUATOR, "Evaluator"):
        assert second_run.ran(task) and not second_run.cached(task), task
    assert second_run.outputs("ExampleGen")["examples"]["properties"]["span"] == 2
    first_version = _versions()[0]
    assert (
        second_run.outputs("ServingBaseline")["baseline_model"]["properties"]["baseline_source"]
        == f"/mnt/pipeline/serving/taxi/{first_version}"
    )


def test_a_stricter_eval_config_is_refused_and_unchanged_data_comes_from_kfps_cache(backend, second_run, third_run):
    versions = _versions()
    for task in UPSTREAM_OF_EVALUATOR:
        assert third_run.cached(task) and not third_run.ran(task), task
        # KFP reuses the earlier execution's artifacts: the same ones, in run 2's directory.
        assert {k: v["id"] for k, v in third_run.outputs(task).items()} == {
            k: v["id"] for k, v in second_run.outputs(task).items()
        }, task
    assert not third_run.cached("DataFingerprint") and not third_run.cached("ServingBaseline")
    assert third_run.outputs("Evaluator")["blessing"]["properties"]["blessed"] == 0
    assert third_run.outputs("Pusher")["pushed_model"]["properties"]["pushed"] == 0
    assert _versions() == versions
    # The cache's verdicts: run 3's driver found run 2's execution by its fingerprint, and the
    # launcher of run 2 had recorded it (CreateTaskV1): in the API server's MariaDB, or, without
    # one, in task-service.
    for task in UPSTREAM_OF_EVALUATOR:
        cached = third_run.executions[task].custom_properties
        assert cached["cached_execution_id"].string_value == str(second_run.executions[task].id), task
    if backend["api"] is not None:
        rows = {row["mlmdExecutionID"]: row for row in backend["api"].tasks()}
        for task in UPSTREAM_OF_EVALUATOR:
            row = rows[str(second_run.executions[task].id)]
            assert row["runId"] == second_run.run_id, (task, row)
            fingerprint = third_run.executions[task].custom_properties["cache_fingerprint"].string_value
            assert row["fingerprint"] == fingerprint, (task, row)
        assert "/api.TaskService/ListTasksV1 handler finished" in backend["api"].log()
        return
    lines = (WORK / "services" / "task-service.log").read_text().splitlines()
    created = {line.rsplit("execution=", 1)[1] for line in lines if line.startswith("CreateTaskV1 ")}
    for task in UPSTREAM_OF_EVALUATOR:
        assert str(second_run.executions[task].id) in created, task
    hits = [line for line in lines if line.startswith("ListTasksV1 ") and not line.endswith(": 0 found")]
    assert len(hits) >= len(UPSTREAM_OF_EVALUATOR), hits
