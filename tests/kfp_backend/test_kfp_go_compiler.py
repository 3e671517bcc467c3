"""Kubeflow Pipelines' own backend compiler (Go, KFP 2.0.5) on the pipeline we compile.

`make test-kfp-backend` builds KFP's `compiler` from the Go module proxy
(scripts/kfp-binaries.sh, cached) and runs these tests with TFXP_KFP_GO set to the directory of
the binaries; without it they skip. The compiler (backend/src/v2/cmd/compiler) turns a
PipelineJob into the Argo Workflow that KFP submits: what it does with our spec is KFP's code,
not our reading of it. The checks:

- every TFX component (and DataFingerprint) becomes a driver task and an executor task in the
  root DAG, and the drivers wait for exactly the components TFX says are upstream;
- each driver gets our component spec, task spec and container spec (our image and command);
  the executor pod copies the launcher in, and the driver's pod-spec patch supplies the image and
  command at run time (argocompiler/container.go);
- the pipeline root and the run parameters reach the root DAG driver, with the spec's defaults
  filled in for parameters the run does not set;
- the exit handler (kubeflow.exit_handler): 2.0.5 refuses its TASK_FINAL_STATUS input (supported
  from KFP 2.14); without that input it compiles the rest, the body as a sub-DAG with every task
  of the default pipeline and the exit task after it in any end state.

The `compiler` command passes no Kubernetes platform spec to argocompiler.Compile; only the API
server does (template/v2_template.go). `run-workflow` (ours, scripts/kfp-go/2.0.5/run-workflow)
calls the API server's code as its CreateRun does, for the uploaded YAML with both documents:

- each driver gets our platform spec (PVC, pull policy) for its executor, and a run parameter the
  pipeline does not declare is refused;
- KFP's driver binary, given each task's arguments, parses our specs as it does in the pod; it
  stops at the pod's namespace file, which exists only in a pod (cmd/driver/main.go `drive`).
  KFP 2.0.5's driver refuses `imagePullPolicy` (kubernetes_platform gained it in KFP 2.1):
  `kubeflow.image_pull_policy: null` leaves it out.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess

import pytest
import yaml

pytestmark = pytest.mark.skipif(
    not os.environ.get("TFXP_KFP_GO"),
    reason="needs KFP's Go binaries: `make test-kfp-backend` builds them and sets TFXP_KFP_GO",
)

IMAGE = "registry.example.com/ml/tfx-kfp-pipeline:1.0.0"
DRIVER_IMAGE = "localhost/kfp-driver:2.0.5"
LAUNCHER_IMAGE = "localhost/kfp-launcher:2.0.5"
PIPELINE_ROOT = "s3://tfxp-test/pipeline-root"
DATA_ROOT = "/mnt/pipeline/data/run-7"
NEWER_RESOURCE_FIELDS = {"resourceCpuLimit", "resourceCpuRequest", "resourceMemoryLimit", "resourceMemoryRequest"}


def _binary(name: str) -> str:
    return str(pathlib.Path(os.environ["TFXP_KFP_GO"]) / name)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(our PipelineJob, KFP's Workflow, the TFX pipeline's upstream ids per component)."""
    from pipeline import kubeflow_runner
    from pipeline.config import load_config

    config = load_config(None, [f"kubeflow.image={IMAGE}"])
    job = kubeflow_runner.compile_job(config)
    # A run that sets one parameter and its own pipeline root, as `tfxp submit` sends them.
    job["runtimeConfig"] = {"parameterValues": {"data_root": DATA_ROOT}, "gcsOutputDirectory": PIPELINE_ROOT}
    path = tmp_path_factory.mktemp("kfp-go") / "job.json"
    path.write_text(json.dumps(job))
    # KFP 2.0.5 reads the container driver's and the launcher's image from these variables only
    # (argocompiler/container.go GetDriverImage, GetLauncherImage); -driver reaches the DAG driver.
    env = dict(os.environ, V2_DRIVER_IMAGE=DRIVER_IMAGE, V2_LAUNCHER_IMAGE=LAUNCHER_IMAGE)
    result = subprocess.run(
        [_binary("compiler"), "-job", str(path), "-driver", DRIVER_IMAGE, "-launcher", LAUNCHER_IMAGE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"KFP's compiler refused our pipeline: {result.stderr.strip()[-2000:]}"
    pipeline = kubeflow_runner.build(config, kubeflow_runner.parameter_defaults(config))
    upstream = {c.id: {u.id for u in c.upstream_nodes} for c in pipeline.components}
    return job, yaml.safe_load(result.stdout), upstream, kubeflow_runner.parameter_defaults(config)


def _templates(workflow):
    return {t["name"]: t for t in workflow["spec"]["templates"]}


def _arguments(task):
    return {p["name"]: p.get("value") for p in task.get("arguments", {}).get("parameters", [])}


def _depends(task) -> set[str]:
    return set(filter(None, (part.strip() for part in task.get("depends", "").split("&&"))))


def _annotation(workflow, placeholder: str):
    """The JSON an argument's {{workflow.annotations.NAME}} placeholder stands for."""
    assert placeholder.startswith("{{workflow.annotations.") and placeholder.endswith("}}"), placeholder
    return json.loads(workflow["metadata"]["annotations"][placeholder[len("{{workflow.annotations.") : -2]])


def _without_false_cache(task_spec):
    """protojson leaves out a false field: {"enableCache": false} is written as {}."""
    caching = {k: v for k, v in task_spec["cachingOptions"].items() if not (k == "enableCache" and v is False)}
    return dict(task_spec, cachingOptions=caching)


def test_kfp_compiles_our_pipeline_to_an_argo_workflow(compiled):
    job, workflow, _, _ = compiled
    assert job["pipelineSpec"]["schemaVersion"] == "2.1.0"
    assert workflow["kind"] == "Workflow" and workflow["apiVersion"] == "argoproj.io/v1alpha1"
    assert workflow["metadata"]["generateName"] == job["pipelineSpec"]["pipelineInfo"]["name"] + "-"
    assert workflow["spec"]["entrypoint"] == "entrypoint"


def test_every_component_is_a_driver_and_an_executor_task_after_its_tfx_upstream(compiled):
    job, workflow, upstream, _ = compiled
    expected = dict(upstream, DataFingerprint=set())
    expected["ExampleGen"] = expected["ExampleGen"] | {"DataFingerprint"}  # our cache key step
    assert set(job["pipelineSpec"]["root"]["dag"]["tasks"]) == set(expected)
    tasks = {t["name"]: t for t in _templates(workflow)["root"]["dag"]["tasks"]}
    assert set(tasks) == set(expected) | {f"{name}-driver" for name in expected}
    for name, before in expected.items():
        driver, executor = tasks[f"{name}-driver"], tasks[name]
        assert driver["template"] == "system-container-driver", name
        assert _depends(driver) == {f"{u}.Succeeded" for u in before}, name
        assert executor["template"] == "system-container-executor", name
        assert _depends(executor) == {f"{name}-driver.Succeeded"}, name
        assert _arguments(executor) == {
            "pod-spec-patch": f"{{{{tasks.{name}-driver.outputs.parameters.pod-spec-patch}}}}",
            "cached-decision": f"{{{{tasks.{name}-driver.outputs.parameters.cached-decision}}}}",
        }


def test_each_driver_gets_our_component_task_and_container_specs(compiled):
    job, workflow, _, _ = compiled
    spec = job["pipelineSpec"]
    tasks = {t["name"]: t for t in _templates(workflow)["root"]["dag"]["tasks"]}
    for name, task_spec in spec["root"]["dag"]["tasks"].items():
        arguments = _arguments(tasks[f"{name}-driver"])
        component = spec["components"][task_spec["componentRef"]["name"]]
        assert json.loads(arguments["task"]) == _without_false_cache(task_spec), name
        assert _annotation(workflow, arguments["component"]) == component, name
        ours = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
        container = _annotation(workflow, arguments["container"])
        # KFP 2.0.5's proto predates the string resource fields (KFP 2.4) and drops them
        # (compiler/visitor.go GetDeploymentConfig: AllowUnknownFields); it keeps the numeric
        # ones, which we write as well, with the same values.
        resources = {k: v for k, v in ours["resources"].items() if k not in NEWER_RESOURCE_FIELDS}
        assert container == dict(ours, resources=resources), name
        assert resources["cpuLimit"] == float(ours["resources"]["resourceCpuLimit"]), name
        assert f"{resources['memoryLimit']:g}G" == ours["resources"]["resourceMemoryLimit"], name
        assert container["image"] == IMAGE, name
        module = "pipeline.kfp_fingerprint" if name == "DataFingerprint" else "pipeline.kfp_executor"
        assert container["command"] == ["python", "-m", module], name
        assert arguments["parent-dag-id"] == "{{inputs.parameters.parent-dag-id}}"
    # The tasks we turn the cache off for reach the driver with it off.
    for name in ("DataFingerprint", "DriftCheck", "ServingBaseline"):
        assert not json.loads(_arguments(tasks[f"{name}-driver"])["task"])["cachingOptions"].get("enableCache"), name
    assert json.loads(_arguments(tasks["Trainer-driver"])["task"])["cachingOptions"] == {"enableCache": True}


def test_the_driver_and_the_launcher_are_kfps_and_the_driver_patches_in_our_pod(compiled):
    _, workflow, _, _ = compiled
    templates = _templates(workflow)
    driver = templates["system-container-driver"]["container"]
    assert driver["image"] == DRIVER_IMAGE and driver["command"] == ["driver"]
    args = dict(zip(driver["args"][::2], driver["args"][1::2]))
    assert args["--type"] == "CONTAINER"
    assert args["--pipeline_name"] == "taxi-big-tipper"
    for flag, parameter in (("--component", "component"), ("--task", "task"), ("--container", "container")):
        assert args[flag] == f"{{{{inputs.parameters.{parameter}}}}}"
    assert args["--pod_spec_patch_path"] == "{{outputs.parameters.pod-spec-patch.path}}"
    # The executor skips the pod on a cache hit and runs the driver's patch otherwise.
    [executor] = templates["system-container-executor"]["dag"]["tasks"]
    assert executor["when"] == "{{inputs.parameters.cached-decision}} != true"
    impl = templates[executor["template"]]
    assert impl["podSpecPatch"] == "{{inputs.parameters.pod-spec-patch}}"
    [launcher] = impl["initContainers"]
    assert launcher["image"] == LAUNCHER_IMAGE
    assert launcher["command"] == ["launcher-v2", "--copy", "/kfp-launcher/launch"]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in impl["container"]["env"]}
    assert env == {"KFP_POD_NAME": "metadata.name", "KFP_POD_UID": "metadata.uid"}  # kfp_executor's test


def test_the_pipeline_root_and_run_parameters_reach_the_root_driver(compiled):
    _, workflow, _, defaults = compiled
    templates = _templates(workflow)
    [root_driver, root] = templates["entrypoint"]["dag"]["tasks"]
    assert root_driver["template"] == "system-dag-driver" and root["template"] == "root"
    assert templates["system-dag-driver"]["container"]["image"] == DRIVER_IMAGE
    arguments = _arguments(root_driver)
    assert arguments["driver-type"] == "ROOT_DAG"
    runtime = json.loads(arguments["runtime-config"])
    assert runtime["gcsOutputDirectory"] == PIPELINE_ROOT
    # The run's data_root; the others from the defaults in our spec, filled in by KFP's compiler.
    assert runtime["parameterValues"] == dict(defaults, data_root=DATA_ROOT)
    assert defaults["data_root"] != DATA_ROOT
    assert _arguments(root)["parent-dag-id"] == "{{tasks.root-driver.outputs.parameters.execution-id}}"


# ---------------------------------------------------------------- the API server's path


def _api_workflow(directory: pathlib.Path, overrides=(), parameters=None):
    """(our compiled YAML's two documents, the Workflow KFP's API server makes for a run of it)."""
    from pipeline import kubeflow_runner
    from pipeline.config import load_config

    path = directory / "pipeline.yaml"
    kubeflow_runner.compile_pipeline(load_config(None, [f"kubeflow.image={IMAGE}", *overrides]), str(path))
    result = _run_workflow(path, parameters or {"data_root": DATA_ROOT})
    assert result.returncode == 0, f"KFP's API server refused the run: {result.stderr.strip()[-2000:]}"
    return list(yaml.safe_load_all(path.read_text())), json.loads(result.stdout)


def _run_workflow(path: pathlib.Path, parameters: dict) -> subprocess.CompletedProcess:
    command = [_binary("run-workflow"), "-pipeline", str(path), "-parameters", json.dumps(parameters)]
    command += ["-pipeline_root", PIPELINE_ROOT]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    return _api_workflow(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def api_run_for_kfp_2_0(tmp_path_factory):
    return _api_workflow(
        tmp_path_factory.mktemp("api-2.0"), ["kubeflow.image_pull_policy=null", "kubeflow.pod_security=false"]
    )


def test_the_api_server_hands_each_driver_our_platform_spec(api_run):
    (spec, platform), workflow = api_run
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    tasks = {t["name"]: t for t in _templates(workflow)["root"]["dag"]["tasks"]}
    for name, task_spec in spec["root"]["dag"]["tasks"].items():
        label = spec["components"][task_spec["componentRef"]["name"]]["executorLabel"]
        config = _annotation(workflow, _arguments(tasks[f"{name}-driver"])["kubernetes-config"])
        assert config == executors[label], name
        assert config["pvcMount"] == [{"constant": "tfx-pipeline", "mountPath": "/mnt/pipeline"}], name
    runtime = json.loads(_arguments(_templates(workflow)["entrypoint"]["dag"]["tasks"][0])["runtime-config"])
    assert runtime["gcsOutputDirectory"] == PIPELINE_ROOT
    assert runtime["parameterValues"]["data_root"] == DATA_ROOT


def test_the_api_server_refuses_a_parameter_the_pipeline_does_not_declare(api_run, tmp_path):
    (spec, platform), _ = api_run
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump_all([spec, platform]))
    result = _run_workflow(path, {"data_rot": "/mnt/pipeline/data"})
    assert result.returncode == 2
    assert "parameter(s) provided are not required by pipeline: data_rot" in result.stderr


NOT_IN_A_POD = "failed to get namespace in Pod"  # what the driver does after parsing its inputs


def _drive(workflow, name: str, tmp_path: pathlib.Path) -> str:
    """KFP's driver on a task's arguments, as the Workflow's driver templates pass them: its error line."""
    templates = _templates(workflow)
    if name == "root":  # the root DAG's driver, in the entrypoint
        task = templates["entrypoint"]["dag"]["tasks"][0]
        template = templates[task["template"]]
    else:
        task = {t["name"]: t for t in templates["root"]["dag"]["tasks"]}[f"{name}-driver"]
        template = templates[task["template"]]
    values = {p["name"]: p.get("default") for p in template["inputs"]["parameters"]}
    values.update(
        {
            k: _annotation_text(workflow, v) if v.startswith("{{workflow.annotations.") else v
            for k, v in _arguments(task).items()
        }
    )
    values["parent-dag-id"] = "1"
    command = [_binary("driver")]
    for arg in template["container"]["args"]:
        if arg.startswith("{{inputs.parameters."):
            arg = values[arg[len("{{inputs.parameters.") : -2]]
        elif arg.startswith("{{outputs.parameters."):
            arg = str(tmp_path / arg[len("{{outputs.parameters.") : -len(".path}}")])
        command.append(arg.replace("{{workflow.uid}}", "run-1"))
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0  # outside a pod it always stops
    [line] = [line for line in result.stderr.splitlines() if "KFP driver: " in line]
    return line


def _annotation_text(workflow, placeholder: str) -> str:
    return workflow["metadata"]["annotations"][placeholder[len("{{workflow.annotations.") : -2]]


def test_kfp_2_0s_driver_refuses_the_fields_we_write_by_default(api_run, tmp_path):
    # imagePullPolicy, and kubeflow.pod_security's securityContext and emptyDirMounts: KFP
    # 2.0.5's KubernetesExecutorConfig has none of them, and its driver names the first it meets.
    (spec, _), workflow = api_run
    refused = re.compile(
        r'unknown field "(imagePullPolicy|securityContext|emptyDirMounts)" in kfp_kubernetes.KubernetesExecutorConfig'
    )
    for name in spec["root"]["dag"]["tasks"]:
        last = _drive(workflow, name, tmp_path)
        assert refused.search(last), (name, last)


def test_kfp_2_0s_driver_parses_every_task_without_the_pull_policy(api_run_for_kfp_2_0, tmp_path):
    (spec, _), workflow = api_run_for_kfp_2_0
    for name in ["root", *spec["root"]["dag"]["tasks"]]:
        last = _drive(workflow, name, tmp_path)
        assert NOT_IN_A_POD in last, (name, last)


# ---------------------------------------------------------------- the exit handler (kubeflow.exit_handler)


def _kfp_compile(job: dict, directory: pathlib.Path) -> subprocess.CompletedProcess:
    path = directory / "job.json"
    path.write_text(json.dumps(job))
    env = dict(os.environ, V2_DRIVER_IMAGE=DRIVER_IMAGE, V2_LAUNCHER_IMAGE=LAUNCHER_IMAGE)
    return subprocess.run(
        [_binary("compiler"), "-job", str(path), "-driver", DRIVER_IMAGE, "-launcher", LAUNCHER_IMAGE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def exit_handler_job():
    from pipeline import kubeflow_runner
    from pipeline.config import load_config

    config = load_config(
        None,
        [f"kubeflow.image={IMAGE}", "kubeflow.secrets.TFXP_NOTIFY_URL=tfxp-webhook/url", "kubeflow.exit_handler=true"],
    )
    job = kubeflow_runner.compile_job(config)
    job["runtimeConfig"] = {"parameterValues": {"data_root": DATA_ROOT}, "gcsOutputDirectory": PIPELINE_ROOT}
    return job


def test_kfp_2_0_refuses_the_exit_tasks_final_status_input(exit_handler_job, tmp_path):
    """KFP's backend takes a TASK_FINAL_STATUS input from 2.14.0 on (kubeflow/pipelines#11953);
    2.0.5's argocompiler/dag.go addImplicitDependencies refuses it, as every release before 2.14
    does: hence kubeflow.exit_handler is off by default (docs/kubeflow.md)."""
    result = _kfp_compile(exit_handler_job, tmp_path)
    assert result.returncode != 0
    assert (
        'compiling DAG "root": failed to add implicit deps: task final status not supported yet'
        in result.stderr.strip().splitlines()[-1]
    )


def test_kfp_2_0_nests_the_dag_and_runs_the_exit_task_after_it_whatever_its_state(exit_handler_job, compiled, tmp_path):
    """The rest of the exit handler's structure is 2.0.5's own: with the status input left out,
    its compiler runs the body as a sub-DAG holding every task of the default pipeline, with the
    same dependencies and arguments, and the exit task after the body whether it succeeded,
    was skipped, failed or errored (dag.go depends_exit_handler for ALL_UPSTREAM_TASKS_COMPLETED)."""
    from pipeline.kfp_exit_handler import EXIT_DAG, EXIT_DAG_COMPONENT, EXIT_TASK

    job = json.loads(json.dumps(exit_handler_job))
    del job["pipelineSpec"]["root"]["dag"]["tasks"][EXIT_TASK]["inputs"]
    del job["pipelineSpec"]["components"][EXIT_TASK]["inputDefinitions"]
    result = _kfp_compile(job, tmp_path)
    assert result.returncode == 0, f"KFP's compiler refused the exit handler: {result.stderr.strip()[-2000:]}"
    workflow = yaml.safe_load(result.stdout)
    templates = _templates(workflow)
    root = {t["name"]: t for t in templates["root"]["dag"]["tasks"]}
    assert set(root) == {f"{EXIT_DAG}-driver", EXIT_DAG, f"{EXIT_TASK}-driver", EXIT_TASK}
    assert root[f"{EXIT_DAG}-driver"]["template"] == "system-dag-driver"
    assert root[EXIT_DAG]["template"] == EXIT_DAG_COMPONENT
    assert _depends(root[EXIT_DAG]) == {f"{EXIT_DAG}-driver.Succeeded"}
    exit_driver = root[f"{EXIT_TASK}-driver"]
    assert exit_driver["template"] == "system-container-driver"
    assert exit_driver["depends"] == " || ".join(
        f"{EXIT_DAG}.{state}" for state in ("Succeeded", "Skipped", "Failed", "Errored")
    )
    assert _depends(root[EXIT_TASK]) == {f"{EXIT_TASK}-driver.Succeeded"}
    container = _annotation(workflow, _arguments(exit_driver)["container"])
    assert container["image"] == IMAGE and container["command"] == ["python", "-m", "pipeline.kfp_notify"]
    assert json.loads(_arguments(exit_driver)["task"])["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    # The body passes the run's parameters on, by name, to the tasks inside.
    body_task = json.loads(_arguments(root[f"{EXIT_DAG}-driver"])["task"])
    assert body_task["inputs"]["parameters"]["data_root"] == {"componentInputParameter": "data_root"}
    # Inside the body: the default pipeline's root DAG, task for task.
    default_root = sorted(_templates(compiled[1])["root"]["dag"]["tasks"], key=lambda t: t["name"])
    body = sorted(templates[EXIT_DAG_COMPONENT]["dag"]["tasks"], key=lambda t: t["name"])
    assert [t["name"] for t in body] == [t["name"] for t in default_root]
    assert [t.get("depends") for t in body] == [t.get("depends") for t in default_root]
    assert [_arguments(t).get("task") for t in body] == [_arguments(t).get("task") for t in default_root]
