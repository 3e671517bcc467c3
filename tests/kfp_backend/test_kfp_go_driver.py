"""KFP 2.0.5's own driver and launcher run our first task, in podman with our image, against ML Metadata.

The start of the runner issue 31 asks for: the Workflow comes from KFP's API-server code
(`run-workflow`), and its steps run as the Workflow describes them, each in a container of our
image with KFP's static binary mounted in:

1. the root DAG driver (`system-dag-driver`) records the pipeline and run contexts and the root
   execution in ML Metadata (tests/kfp_backend/mlmd_grpc.py: ml-metadata's own C++ store);
2. DataFingerprint's container driver resolves its inputs and writes the pod-spec patch: our
   image, our command behind KFP's launcher, the PVC, the resources;
3. the executor pod: the init container copies `launcher-v2` to /kfp-launcher/launch, the main
   container runs the patched command (less Argo's `argoexec emissary`, which the runner stands
   in for) with the pod's downward-API environment and service-account files; the launcher runs
   our step and publishes its output parameter to ML Metadata;
4. ExampleGen's container driver takes that parameter from ML Metadata, asks KFP's cache
   (task-service: KFP's TaskService API, ours behind KFP's generated gRPC code) and, on a miss,
   writes the patch with ExampleGen's output URIs under the run's pipeline root;
5. ExampleGen's pod: our entrypoint writes the examples through the launcher's local path
   (/minio/...), the launcher uploads them to the object store of the `minio://` root with its own
   MinIO settings (s3-server, an S3-compatible stand-in; the credentials from the Secret that
   tests/kfp_backend/kube_api.py serves) and records the artifact in ML Metadata.

Needs the podman API, the image and KFP's Go binaries: `make test` provides all three.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess

import pytest

from tests.conftest import NEEDS_PODMAN_AND_IMAGE, TINY_CSV

pytestmark = [
    pytest.mark.slow,
    NEEDS_PODMAN_AND_IMAGE,
    pytest.mark.skipif(
        not os.environ.get("TFXP_KFP_GO"),
        reason="needs KFP's Go binaries: `make test` or `make test-kfp-backend` builds them and sets TFXP_KFP_GO",
    ),
]

# Under the checkout: the same path on the host (podman) and in the runtime environment.
WORK = pathlib.Path(__file__).resolve().parents[2] / "build" / "kfp-go-driver-test"
PIPELINE_ROOT = "minio://mlpipeline/v2/artifacts"  # a default install's: the launcher's MinIO settings
TOKEN = "service-account-token"
RUN_ID = "0f1e2d3c-0000-4000-8000-000000000001"
NAMESPACE = "kubeflow"
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def _binary(name: str) -> str:
    return str(pathlib.Path(os.environ["TFXP_KFP_GO"]) / name)


class Pod:
    """Runs one container as a pod of the Workflow would: our image, the pod's files and env."""

    def __init__(self, client, env: dict[str, str]):
        self.client, self.env = client, env

    def run(self, name, command, volumes, env=None) -> tuple[int, str]:
        from tests.subprocesses import writable_as_fs_group

        writable_as_fs_group(volumes)  # the image runs as uid 10001
        container = self.client.containers.run(
            image=os.environ["TFXP_IMAGE"],
            entrypoint=command[:1],
            command=command[1:],
            detach=True,
            name=f"tfxp-kfp-go-{name}-{os.getpid()}",
            environment={**self.env, **(env or {})},
            volumes={
                str(WORK / "serviceaccount"): {"bind": SERVICE_ACCOUNT, "mode": "ro"},
                **{str(host): {"bind": path, "mode": "rw"} for host, path in volumes.items()},
            },
            network_mode="host",  # the services listen on 127.0.0.1 of this machine
        )
        try:
            code = int(container.wait(timeout=900)["StatusCode"])
            logs = container.logs(stdout=True, stderr=True).decode(errors="replace")
        finally:
            container.remove(force=True)
        (WORK / "logs").mkdir(exist_ok=True)
        (WORK / "logs" / f"{name}.log").write_text(logs)
        return code, logs


def _service(command: list[str], log: pathlib.Path) -> tuple[subprocess.Popen, int]:
    """One of our Go stand-ins, started on a free port (it prints "listening on HOST:PORT")."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    return process, int(process.stdout.readline().rsplit(":", 1)[1])


def _substitute(template, values: dict[str, str], outputs: pathlib.Path) -> list[str]:
    """A driver template's args with its input parameters and output paths filled in, as Argo does."""
    args = []
    for arg in template["container"]["args"]:
        if arg.startswith("{{inputs.parameters."):
            arg = values[arg[len("{{inputs.parameters.") : -2]]
        elif arg.startswith("{{outputs.parameters."):
            arg = str(outputs / arg[len("{{outputs.parameters.") : -len(".path}}")])
        args.append(arg.replace("{{workflow.uid}}", RUN_ID))
    return args


def _values(workflow, task, template) -> dict[str, str]:
    annotations = workflow["metadata"]["annotations"]
    values = {p["name"]: p.get("default") for p in template["inputs"]["parameters"]}
    for parameter in task["arguments"]["parameters"]:
        value = parameter["value"]
        if value.startswith("{{workflow.annotations."):
            value = annotations[value[len("{{workflow.annotations.") : -2]]
        values[parameter["name"]] = value
    return values


@pytest.fixture(scope="module")
def ran():
    import docker

    from pipeline import kubeflow_runner
    from pipeline.config import load_config
    from tests.kfp_backend.kube_api import KubeApi
    from tests.kfp_backend.mlmd_grpc import MetadataServer

    shutil.rmtree(WORK, ignore_errors=True)
    for directory in ("serviceaccount", "pvc/data"):
        (WORK / directory).mkdir(parents=True)
    (WORK / "serviceaccount" / "namespace").write_text(NAMESPACE)
    (WORK / "serviceaccount" / "token").write_text(TOKEN)
    shutil.copyfile(TINY_CSV, WORK / "pvc" / "data" / "taxi_tiny.csv")
    # KFP 2.0.5's driver refuses imagePullPolicy (test_kfp_go_compiler.py), the security context
    # and emptyDir mounts (kubeflow.pod_security).
    config = load_config(
        None,
        [
            f"kubeflow.image={os.environ['TFXP_IMAGE']}",
            "kubeflow.image_pull_policy=null",
            "kubeflow.pod_security=false",
        ],
    )
    kubeflow_runner.compile_pipeline(config, str(WORK / "pipeline.yaml"), allow_local_image=True)
    made = subprocess.run(
        [_binary("run-workflow"), "-pipeline", str(WORK / "pipeline.yaml"), "-pipeline_root", PIPELINE_ROOT]
        + ["-run_id", RUN_ID, "-parameters", json.dumps({"data_root": "/mnt/pipeline/data"})],
        capture_output=True,
        text=True,
        check=True,
    )
    workflow = json.loads(made.stdout)
    templates = {t["name"]: t for t in workflow["spec"]["templates"]}
    server = MetadataServer(str(WORK / "mlmd.sqlite")).start()
    kube = KubeApi(WORK, TOKEN, {(NAMESPACE, "mlpipeline-minio-artifact"): {"accesskey": "ak", "secretkey": "sk"}})
    shutil.copyfile(kube.ca, WORK / "serviceaccount" / "ca.crt")
    kube.start()
    cache, cache_port = _service(
        [_binary("task-service"), "-addr", "127.0.0.1:0", "-store", str(WORK / "tasks.json")],
        WORK / "task-service.log",
    )
    s3, s3_port = _service([_binary("s3-server"), "-bucket", "mlpipeline"], WORK / "s3-server.log")
    client = docker.from_env(timeout=900)
    pod = Pod(
        client,
        {
            # What Kubernetes and KFP's install give every pod in the kubeflow namespace: the
            # services' variables and the metadata-grpc-configmap (the executor's envFrom).
            "METADATA_GRPC_SERVICE_SERVICE_HOST": "127.0.0.1",
            "METADATA_GRPC_SERVICE_SERVICE_PORT": str(server.port),
            "METADATA_GRPC_SERVICE_HOST": "127.0.0.1",
            "METADATA_GRPC_SERVICE_PORT": str(server.port),
            "ML_PIPELINE_SERVICE_HOST": "127.0.0.1",  # the API server's TaskService (the cache)
            "ML_PIPELINE_SERVICE_PORT_GRPC": str(cache_port),
            "MINIO_SERVICE_SERVICE_HOST": "127.0.0.1",  # the object store of minio:// roots
            "MINIO_SERVICE_SERVICE_PORT": str(s3_port),
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(kube.port),
        },
    )
    result = {"workflow": workflow, "server": server, "kube": kube, "s3_port": s3_port}
    tasks = {t["name"]: t for t in templates["root"]["dag"]["tasks"]}
    container_driver = templates["system-container-driver"]
    driver = {pathlib.Path(_binary("driver")): "/bin/kfp-driver"}

    def drive(name: str, parent: str) -> tuple[int, str]:
        task = tasks[f"{name}-driver"]
        values = dict(_values(workflow, task, container_driver), **{"parent-dag-id": parent})
        outputs = WORK / "out" / name
        outputs.mkdir(parents=True)
        args = _substitute(container_driver, values, pathlib.Path("/tmp/outputs"))
        return pod.run(f"{name}-driver", ["/bin/kfp-driver", *args], {**driver, outputs: "/tmp/outputs"})

    def execute(name: str, uid: str) -> tuple[int, str]:
        """The executor pod: the launcher's init container, then the patched main container."""
        patch = json.loads((WORK / "out" / name / "pod-spec-patch").read_text())
        impl = templates["system-container-impl"]
        [init] = impl["initContainers"]
        launcher_dir = {WORK / "launcher" / name: init["volumeMounts"][0]["mountPath"]}
        copy = ["/bin/launcher-v2", *init["command"][1:]]
        binary = {pathlib.Path(_binary("launcher-v2")): "/bin/launcher-v2"}
        code, logs = pod.run(f"{name}-init", copy, {**binary, **launcher_dir})
        assert code == 0, logs[-3000:]
        [main] = patch["containers"]
        command = main["command"][main["command"].index("--") + 1 :] + main["args"]  # past argoexec emissary
        pod_env = {"KFP_POD_NAME": f"{name.lower()}-pod", "KFP_POD_UID": uid}
        command = [_expand(arg, {**pod.env, **pod_env}) for arg in command]
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in patch.get("volumes", [])}
        mounts = dict(launcher_dir)
        for mount in main.get("volumeMounts", []):
            assert claims[mount["name"]] == "tfx-pipeline"
            mounts[WORK / "pvc"] = mount["mountPath"]
        return pod.run(name, command, mounts, pod_env)

    try:
        # 1. The root DAG driver, as the entrypoint's root-driver task runs it.
        root_task = templates["entrypoint"]["dag"]["tasks"][0]
        dag_driver = templates[root_task["template"]]
        args = _substitute(dag_driver, _values(workflow, root_task, dag_driver), pathlib.Path("/tmp/outputs"))
        (WORK / "out" / "root").mkdir(parents=True)
        result["root"] = pod.run(
            "root-driver", ["/bin/kfp-driver", *args], {**driver, WORK / "out" / "root": "/tmp/outputs"}
        )
        root_id = (WORK / "out" / "root" / "execution-id").read_text()
        # 2, 3. DataFingerprint's driver and pod, under the root DAG's execution.
        result["driver"] = drive("DataFingerprint", root_id)
        result["patch"] = json.loads((WORK / "out" / "DataFingerprint" / "pod-spec-patch").read_text())
        result["executor"] = execute("DataFingerprint", "7c1d2e3f-0000-4000-8000-000000000002")
        # 4, 5. ExampleGen's driver and pod.
        result["examplegen"] = drive("ExampleGen", root_id)
        if result["examplegen"][0] == 0:
            result["examplegen-pod"] = execute("ExampleGen", "7c1d2e3f-0000-4000-8000-000000000003")
        yield result
    finally:
        client.close()
        server.stop()
        kube.stop()
        for process in (cache, s3):
            process.terminate()
            process.wait(timeout=30)


def _expand(arg: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of the container's command."""
    for name, value in env.items():
        arg = arg.replace(f"$({name})", value)
    return arg


def _store(ran):
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.MetadataStoreClientConfig(host="127.0.0.1", port=ran["server"].port)
    return metadata_store.MetadataStore(config)


def test_the_root_driver_records_the_run_in_ml_metadata(ran):
    code, logs = ran["root"]
    assert code == 0, logs[-3000:]
    store = _store(ran)
    [run] = store.get_contexts_by_type("system.PipelineRun")
    assert run.name == RUN_ID
    # KFP 2.0.5 keeps each run's artifacts under <root>/<pipeline>/<run id> (metadata/client.go GetPipeline)
    assert run.custom_properties["pipeline_root"].string_value == f"{PIPELINE_ROOT}/taxi-big-tipper/{RUN_ID}"
    [pipeline] = store.get_contexts_by_type("system.Pipeline")
    assert pipeline.name == "taxi-big-tipper"


def test_the_container_driver_patches_in_our_image_command_pvc_and_resources(ran):
    code, logs = ran["driver"]
    assert code == 0, logs[-3000:]
    [main] = ran["patch"]["containers"]
    assert main["image"] == os.environ["TFXP_IMAGE"]
    assert main["command"][:4] == ["/var/run/argo/argoexec", "emissary", "--", "/kfp-launcher/launch"]
    assert main["args"][:3] == ["python", "-m", "pipeline.kfp_fingerprint"]
    assert main["volumeMounts"] == [{"name": "tfx-pipeline", "mountPath": "/mnt/pipeline"}]
    assert ran["patch"]["volumes"] == [{"name": "tfx-pipeline", "persistentVolumeClaim": {"claimName": "tfx-pipeline"}}]
    assert main["resources"]["limits"] == {"cpu": "1", "memory": "4G"}
    launch = dict(zip(main["command"][4::2], main["command"][5::2]))
    executor_input = json.loads(launch["--executor_input"])
    assert executor_input["inputs"]["parameterValues"] == {"data_root": "/mnt/pipeline/data"}
    assert set(executor_input["outputs"]) == {"parameters", "outputFile"}  # no executor-logs in 2.0.5
    assert (WORK / "out" / "DataFingerprint" / "cached-decision").read_text() == "false"


def test_the_launcher_runs_our_step_and_publishes_its_output(ran):
    code, logs = ran["executor"]
    assert code == 0, logs[-3000:]
    store = _store(ran)
    [execution] = [
        e for e in store.get_executions() if e.custom_properties["task_name"].string_value == "DataFingerprint"
    ]
    assert execution.last_known_state == execution.COMPLETE
    assert execution.custom_properties["pod_name"].string_value == "datafingerprint-pod"
    # The launcher read the parameter file our step wrote and recorded it for the next driver.
    from components.example_gen.fingerprint import content_fingerprint

    [published] = execution.custom_properties["outputs"].struct_value.fields.items()
    assert published[0] == "fingerprint"
    assert published[1].string_value == content_fingerprint(str(WORK / "pvc" / "data"), ["*.csv"])


def test_examplegens_driver_takes_the_fingerprint_from_ml_metadata_and_asks_kfps_cache(ran):
    code, logs = ran["examplegen"]
    assert code == 0, logs[-3000:]
    assert (WORK / "out" / "ExampleGen" / "cached-decision").read_text() == "false"
    [main] = json.loads((WORK / "out" / "ExampleGen" / "pod-spec-patch").read_text())["containers"]
    launch = dict(zip(main["command"][4::2], main["command"][5::2]))
    executor_input = json.loads(launch["--executor_input"])
    store = _store(ran)
    [fingerprint] = [
        e for e in store.get_executions() if e.custom_properties["task_name"].string_value == "DataFingerprint"
    ]
    published = fingerprint.custom_properties["outputs"].struct_value.fields["fingerprint"].string_value
    assert executor_input["inputs"]["parameterValues"]["kfp_data_fingerprint"] == published
    [examples] = executor_input["outputs"]["artifacts"]["examples"]["artifacts"]
    assert examples["uri"].startswith(f"{PIPELINE_ROOT}/taxi-big-tipper/{RUN_ID}/ExampleGen/")
    assert main["args"][:3] == ["python", "-m", "pipeline.kfp_executor"]
    # KFP's cache was asked for this fingerprint, and had nothing.
    assert "ListTasksV1" in (WORK / "task-service.log").read_text()
    assert ": 0 found" in (WORK / "task-service.log").read_text()


def _objects(port: int, prefix: str) -> list[str]:
    """Keys under a prefix of the mlpipeline bucket, through the S3 API."""
    import urllib.parse
    import urllib.request
    import xml.etree.ElementTree as ET

    query = urllib.parse.urlencode({"list-type": "2", "prefix": prefix})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/mlpipeline?{query}", timeout=30) as answer:
        tree = ET.fromstring(answer.read())
    return [key.text[len(prefix) :] for key in tree.iter() if key.tag.endswith("}Key") or key.tag == "Key"]


def test_examplegen_runs_under_kfps_launcher_and_its_examples_land_in_the_object_store(ran):
    code, logs = ran["examplegen-pod"]
    assert code == 0, logs[-4000:]
    store = _store(ran)
    [execution] = [e for e in store.get_executions() if e.custom_properties["task_name"].string_value == "ExampleGen"]
    assert execution.last_known_state == execution.COMPLETE
    outputs = [e.artifact_id for e in store.get_events_by_execution_ids([execution.id]) if e.type == e.OUTPUT]
    [examples] = store.get_artifacts_by_id(outputs)
    uri = f"{PIPELINE_ROOT}/taxi-big-tipper/{RUN_ID}/ExampleGen/examples"
    assert examples.uri == uri  # the remote URI again, as our entrypoint writes it back
    files = _objects(ran["s3_port"], uri[len("minio://mlpipeline/") :] + "/")
    assert any(f.startswith("Split-train/") for f in files) and any(f.startswith("Split-test/") for f in files), files
    # The launcher read the object store's credentials, and nothing else, from the Kubernetes API.
    assert ran["kube"].unexpected == []
    assert set(ran["kube"].calls) == {f"/api/v1/namespaces/{NAMESPACE}/secrets/mlpipeline-minio-artifact"}
