"""KFP 2.0.5's own driver and launcher run our first task, in podman with our image, against ML Metadata.

The run is created through KFP 2.0.5's own API server (`apiserver`, on Debian's MariaDB, in a
container as its pod; tests/kfp_backend/argo_runner.py `ApiServer`): its CreateRun makes the
Workflow and creates it in Kubernetes (tests/kfp_backend/kube_api.py keeps it). Where MariaDB is
not installed, the Workflow comes from KFP's API-server code (`run-workflow`) and the cache is
`task-service`, our stand-in, and the tests of the API server itself skip. The Workflow's first
steps run as it describes them (tests/kfp_backend/argo_runner.py, which test_kfp_go_pipeline.py runs
over the whole DAG), each in a container of our image with KFP's static binary mounted in:

1. the root DAG driver (`system-dag-driver`) records the pipeline and run contexts and the root
   execution in ML Metadata (tests/kfp_backend/mlmd_grpc.py: ml-metadata's own C++ store);
2. DataFingerprint's container driver resolves its inputs and writes the pod-spec patch: our
   image, our command behind KFP's launcher, the PVC, the resources;
3. the executor pod: the init container copies `launcher-v2` to /kfp-launcher/launch, the main
   container runs the patched command (less Argo's `argoexec emissary`, which the runner stands
   in for) with the pod's downward-API environment and service-account files; the launcher runs
   our step and publishes its output parameter to ML Metadata;
4. ExampleGen's container driver takes that parameter from ML Metadata, asks KFP's cache (the
   API server's TaskService, ListTasksV1) and, on a miss, writes the patch with ExampleGen's
   output URIs under the run's pipeline root;
5. ExampleGen's pod: our entrypoint writes the examples through the launcher's local path
   (/minio/...), the launcher uploads them to the object store of the `minio://` root with its own
   MinIO settings (SeaweedFS, a real S3 server, which checks the credentials from the Secret that
   tests/kfp_backend/kube_api.py serves) and records the artifact in ML Metadata, and the
   launcher records ExampleGen in the cache (CreateTaskV1): a row of the API server's MariaDB,
   which needs the run's row (a foreign key), so the run must be the API server's own.

Needs the podman API, the image and KFP's Go binaries (and MariaDB): `make test` provides them.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import pytest

from tests.conftest import NEEDS_PODMAN_AND_IMAGE, TINY_CSV
from tests.kfp_backend import common
from tests.kfp_backend.argo_runner import api_server_missing

pytestmark = [
    pytest.mark.slow,
    NEEDS_PODMAN_AND_IMAGE,
    common.NEEDS_KFP_GO,
]

# Under the checkout: the same path on the host (podman) and in the runtime environment.
WORK = pathlib.Path(__file__).resolve().parents[2] / "build" / "kfp-go-driver-test"
PIPELINE_ROOT = "minio://mlpipeline/v2/artifacts"  # a default install's: the launcher's MinIO settings
RUN_ID = "0f1e2d3c-0000-4000-8000-000000000001"  # run-workflow's, where the API server cannot run
NAMESPACE = "kubeflow"
PARAMETERS = {"data_root": "/mnt/pipeline/data"}
NEEDS_API_SERVER = pytest.mark.skipif(
    bool(api_server_missing()), reason=f"KFP's API server needs MariaDB: {api_server_missing()}"
)


@pytest.fixture(scope="module")
def ran():
    """The Workflow's root driver, DataFingerprint and ExampleGen, run by tests/kfp_backend/argo_runner.py."""
    from pipeline import kubeflow_runner
    from tests.kfp_backend import common
    from tests.kfp_backend.argo_runner import ArgoRunner, Pod, StepFailed, kfp_backend, make_workflow

    kfp_go = pathlib.Path(os.environ["TFXP_KFP_GO"])
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "pvc" / "tfx-pipeline" / "data").mkdir(parents=True)
    shutil.copyfile(TINY_CSV, WORK / "pvc" / "tfx-pipeline" / "data" / "taxi_tiny.csv")
    config = common.config(*common.KFP_205)
    kubeflow_runner.compile_pipeline(config, str(WORK / "pipeline.yaml"), allow_local_image=True)
    with kfp_backend(WORK / "services", kfp_go, os.environ["TFXP_IMAGE"]) as backend:
        services, api = backend.services, backend.api
        result = {"services": services, "api": api, "failed": None}
        if api is not None:
            run_id, workflow = api.create_run(WORK / "pipeline.yaml", PIPELINE_ROOT, PARAMETERS)
        else:
            run_id, workflow = RUN_ID, make_workflow(kfp_go, WORK / "pipeline.yaml", PIPELINE_ROOT, RUN_ID, PARAMETERS)
        pod = Pod(backend.client, os.environ["TFXP_IMAGE"], services.account, backend.env)
        runner = ArgoRunner(
            workflow,
            pod,
            kfp_go,
            WORK / "run",
            WORK / "pvc",
            services.config_maps,
            only={"DataFingerprint", "ExampleGen"},
        )
        result.update(workflow=workflow, run_id=run_id, runner=runner)
        try:
            runner.run()
        except StepFailed as failed:
            result["failed"] = failed
        yield result


def _node(ran, step: str):
    """The node of `root.<step>` once it succeeded, else the runner's failure."""
    node = ran["runner"].nodes.get(f"{ran['runner'].name}.{step}")
    if node is None or node.phase != "Succeeded":
        pytest.fail(f"{step}: {node.phase if node else 'not reached'}; {ran['failed']}")
    return node


def _store(ran):
    return ran["services"].store()


def _patch(ran, task: str) -> dict:
    return json.loads(_node(ran, f"root.{task}-driver").outputs["pod-spec-patch"])


def test_the_root_driver_records_the_run_in_ml_metadata(ran):
    _node(ran, "root-driver")
    store = _store(ran)
    [run] = store.get_contexts_by_type("system.PipelineRun")
    assert run.name == ran["run_id"]
    # KFP 2.0.5 keeps each run's artifacts under <root>/<pipeline>/<run id> (metadata/client.go GetPipeline)
    assert run.custom_properties["pipeline_root"].string_value == f"{PIPELINE_ROOT}/taxi-big-tipper/{ran['run_id']}"
    [pipeline] = store.get_contexts_by_type("system.Pipeline")
    assert pipeline.name == "taxi-big-tipper"


def test_the_container_driver_patches_in_our_image_command_pvc_and_resources(ran):
    patch = _patch(ran, "DataFingerprint")
    [main] = patch["containers"]
    assert main["image"] == os.environ["TFXP_IMAGE"]
    assert main["command"][:4] == ["/var/run/argo/argoexec", "emissary", "--", "/kfp-launcher/launch"]
    assert main["args"][:3] == ["python", "-m", "pipeline.kfp_fingerprint"]
    assert main["volumeMounts"] == [{"name": "tfx-pipeline", "mountPath": "/mnt/pipeline"}]
    assert patch["volumes"] == [{"name": "tfx-pipeline", "persistentVolumeClaim": {"claimName": "tfx-pipeline"}}]
    assert main["resources"]["limits"] == {"cpu": "1", "memory": "4G"}
    launch = dict(zip(main["command"][4::2], main["command"][5::2]))
    executor_input = json.loads(launch["--executor_input"])
    assert executor_input["inputs"]["parameterValues"] == {"data_root": "/mnt/pipeline/data"}
    assert set(executor_input["outputs"]) == {"parameters", "outputFile"}  # no executor-logs in 2.0.5
    assert _node(ran, "root.DataFingerprint-driver").outputs["cached-decision"] == "false"


def test_the_launcher_runs_our_step_and_publishes_its_output(ran):
    _node(ran, "root.DataFingerprint.executor")
    store = _store(ran)
    [execution] = [
        e for e in store.get_executions() if e.custom_properties["task_name"].string_value == "DataFingerprint"
    ]
    assert execution.last_known_state == execution.COMPLETE
    pod = _node(ran, "root.DataFingerprint.executor").pod
    assert execution.custom_properties["pod_name"].string_value == pod  # the downward API's KFP_POD_NAME
    # The launcher read the parameter file our step wrote and recorded it for the next driver.
    from components.example_gen.fingerprint import content_fingerprint

    [published] = execution.custom_properties["outputs"].struct_value.fields.items()
    assert published[0] == "fingerprint"
    assert published[1].string_value == content_fingerprint(str(WORK / "pvc" / "tfx-pipeline" / "data"), ["*.csv"])


def test_examplegens_driver_takes_the_fingerprint_from_ml_metadata_and_asks_kfps_cache(ran):
    assert _node(ran, "root.ExampleGen-driver").outputs["cached-decision"] == "false"
    [main] = _patch(ran, "ExampleGen")["containers"]
    launch = dict(zip(main["command"][4::2], main["command"][5::2]))
    executor_input = json.loads(launch["--executor_input"])
    store = _store(ran)
    [fingerprint] = [
        e for e in store.get_executions() if e.custom_properties["task_name"].string_value == "DataFingerprint"
    ]
    published = fingerprint.custom_properties["outputs"].struct_value.fields["fingerprint"].string_value
    assert executor_input["inputs"]["parameterValues"]["kfp_data_fingerprint"] == published
    [examples] = executor_input["outputs"]["artifacts"]["examples"]["artifacts"]
    assert examples["uri"].startswith(f"{PIPELINE_ROOT}/taxi-big-tipper/{ran['run_id']}/ExampleGen/")
    assert main["args"][:3] == ["python", "-m", "pipeline.kfp_executor"]
    # KFP's cache was asked for this fingerprint, and had nothing (the driver's decision above).
    if ran["api"] is not None:
        assert "/api.TaskService/ListTasksV1 handler finished" in ran["api"].log()
    else:
        assert "ListTasksV1" in (WORK / "services" / "task-service.log").read_text()
        assert ": 0 found" in (WORK / "services" / "task-service.log").read_text()


def test_examplegen_runs_under_kfps_launcher_and_its_examples_land_in_the_object_store(ran):
    _node(ran, "root.ExampleGen.executor")
    store = _store(ran)
    [execution] = [e for e in store.get_executions() if e.custom_properties["task_name"].string_value == "ExampleGen"]
    assert execution.last_known_state == execution.COMPLETE
    outputs = [e.artifact_id for e in store.get_events_by_execution_ids([execution.id]) if e.type == e.OUTPUT]
    [examples] = store.get_artifacts_by_id(outputs)
    uri = f"{PIPELINE_ROOT}/taxi-big-tipper/{ran['run_id']}/ExampleGen/examples"
    assert examples.uri == uri  # the remote URI again, as our entrypoint writes it back
    prefix = uri[len("minio://mlpipeline/") :] + "/"
    files = ran["services"].objects(prefix)
    assert any(f.startswith("Split-train/") for f in files) and any(f.startswith("Split-test/") for f in files), files
    # SeaweedFS took them from its one identity, whose keys are the Secret's: the launcher signed with them.
    query = {"list-type": "2", "prefix": prefix, "fetch-owner": "true"}
    status, listing = ran["services"].s3.request("GET", "/mlpipeline", query)
    assert status == 200 and listing.count(b"<Owner><ID>kfp</ID>") == len(files), listing[:500]
    # The launcher read the object store's credentials, and nothing else, from the Kubernetes API
    # (and the API server created the Workflow): kube-apiserver's audit log, or the stand-in's record.
    kube = ran["services"].kube
    assert kube.unexpected == [], ran["services"].kubernetes
    calls = {f"/api/v1/namespaces/{NAMESPACE}/secrets/mlpipeline-minio-artifact"}
    if ran["api"] is not None:
        calls.add(f"POST /apis/argoproj.io/v1alpha1/namespaces/{NAMESPACE}/workflows")
    assert set(kube.calls) == calls, ran["services"].kubernetes


@NEEDS_API_SERVER
def test_kfps_api_server_made_the_workflow_run_workflow_makes(ran):
    """run-workflow (our call of the API server's code, where it cannot run) makes the same Workflow."""
    from tests.kfp_backend.argo_runner import make_workflow

    made = make_workflow(
        pathlib.Path(os.environ["TFXP_KFP_GO"]), WORK / "pipeline.yaml", PIPELINE_ROOT, ran["run_id"], PARAMETERS
    )
    created = ran["workflow"]
    assert created["metadata"]["labels"]["pipeline/runid"] == ran["run_id"]
    assert created["spec"]["templates"] == made["spec"]["templates"]
    assert created["spec"]["arguments"] == made["spec"]["arguments"]


@NEEDS_API_SERVER
def test_the_launcher_records_examplegen_in_kfps_cache_on_mariadb(ran):
    _node(ran, "root.ExampleGen.executor")
    store = _store(ran)
    [execution] = [e for e in store.get_executions() if e.custom_properties["task_name"].string_value == "ExampleGen"]
    tasks = [t for t in ran["api"].tasks() if t["mlmdExecutionID"] == str(execution.id)]
    assert len(tasks) == 1, ran["api"].tasks()
    [task] = tasks
    assert task["runId"] == ran["run_id"]
    assert task["pipelineName"] == "pipeline/taxi-big-tipper"
    assert task["namespace"] == NAMESPACE
    # the key the next run's driver asks for: ExampleGen's fingerprint, from its inputs and spec
    assert task["fingerprint"] and task["fingerprint"] == execution.custom_properties["cache_fingerprint"].string_value
