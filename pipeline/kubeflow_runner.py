"""The Kubeflow runner: compiles the same pipeline for Kubeflow Pipelines 2.x and Vertex AI.

It chooses the image, the pipeline root, the serving directory and the run parameters, calls
the one pipeline factory, compiles with TFX's `KubeflowV2DagRunner`, then adds what TFX's
compiler leaves out for the open-source KFP 2.x backend:
- schema 2.1 (kfp.local and the KFP 2.x backend reject 2.0's constant parameters);
- every step runs `pipeline.kfp_executor`, TFX's entrypoint under the KFP launcher's contract;
- a DataFingerprint step before ExampleGen whose output (a hash of the files under data_root)
  is an input parameter of ExampleGen: KFP's cache key holds a task's parameters and input
  artifacts but not the files a path names (backend/src/v2/cacheutils/cache.go
  GenerateCacheKey), so new data is a cache miss and unchanged data a hit;
- per-component CPU/memory requests and limits (Transform and Trainer bigger than the rest) through TFX's
  `with_platform_config`,
  accelerators in the old and new fields, node selector and tolerations for the Trainer;
- the kfp-kubernetes platform spec: the PVC that holds the data, the serving directory and the
  accepted statistics, mounted in every step, the image pull policy, secrets as environment
  variables, and each step's security context (non-root, uid 10001) with emptyDir volumes for
  the directories it writes (kubeflow.pod_security);
- no caching for ServingBaseline and DriftCheck, whose outputs depend on what is served and
  which spans were accepted at run time;
- with `kubeflow.exit_handler`, KFP's exit handler: the whole DAG nested in a sub-DAG and a last
  task that posts run_failed whatever stopped the run (pipeline/kfp_exit_handler.py).
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import yaml

from pipeline.config import PipelineConfig

# Run parameters a user can change per run without recompiling. Protos (train_args, eval_args,
# eval_config) travel as JSON strings: TFX's v2 compiler takes a runtime parameter only as a
# whole execution property. `submit` builds them from plain config overrides.
PARAMETERS = ("data_root", "train_args", "eval_args", "eval_config")

# InferenceRows too: its cache key holds the data's path, not its contents (only
# ExampleGen gets the DataFingerprint), and new rows under the same path must be scored.
UNCACHED_TASKS = ("ServingBaseline", "DriftCheck", "DataFingerprint", "InferenceRows")

FINGERPRINT_TASK = "DataFingerprint"

# The Dockerfile's user, and the directories it writes besides the PVC: with a read-only root
# file system they must be volumes of the pod (docs/kubeflow.md, "Pod security").
STEP_UID = 10001
# /gcs, /minio and /s3: KFP's launcher stages artifacts at each URI's local path there.
WRITABLE_DIRS = {"tmp": "/tmp", "home": "/home/tfxp", "gcs": "/gcs", "minio": "/minio", "s3": "/s3"}
# An ExampleGen input that only KFP sees: kfp_executor removes kfp_* parameters before TFX.
FINGERPRINT_PARAMETER = "kfp_data_fingerprint"
TFX_COMMAND = ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]


def cluster_image_problem(image: str) -> str | None:
    """Why a cluster could not pull `image`, or None."""
    name = image.split("@", 1)[0]
    first = name.split("/", 1)[0]
    if first == "localhost" or first.startswith(("localhost:", "127.")):
        return "exists only on this machine (localhost/)"
    if "/" not in name or not ("." in first or ":" in first):
        return "names no registry"
    return None


def parameter_defaults(config: PipelineConfig) -> dict[str, str]:
    """Values of the run parameters that a config implies."""
    from google.protobuf import json_format

    from pipeline.eval_config import eval_config
    from pipeline.pipeline import train_eval_args

    train_args, eval_args = train_eval_args(config)
    return {
        "data_root": config.kubeflow.data_root,
        "train_args": json_format.MessageToJson(train_args, sort_keys=True),
        "eval_args": json_format.MessageToJson(eval_args, sort_keys=True),
        "eval_config": json_format.MessageToJson(eval_config(config), sort_keys=True),
    }


def build(config: PipelineConfig, defaults: dict[str, str]):
    """The pipeline as the Kubeflow runner compiles it: paths on the cluster, run parameters
    (with `defaults`, from parameter_defaults)."""
    from tfx.orchestration.data_types import RuntimeParameter  # not tfx.v1: pipeline/pipeline.py says why

    from pipeline.config import ConfigError, InfraValidation
    from pipeline.pipeline import create_pipeline

    kf = config.kubeflow
    parameters = {name: RuntimeParameter(name=name, ptype=str, default=value) for name, value in defaults.items()}
    # TFX's KubeflowV2DagRunner refuses InfraValidator ("The component type ... is not
    # supported", tfx/orchestration/kubeflow/v2/step_builder.py): on Kubeflow the in-process
    # serving check is the one that runs.
    if config.serving_check.infra_validator is InfraValidation.ALWAYS:
        raise ConfigError(
            "serving_check.infra_validator is 'always', but TFX's Kubeflow V2 compiler does "
            "not support InfraValidator; set it to auto (the in-process serving check runs)"
        )
    pipeline = create_pipeline(
        config,
        pipeline_root=kf.pipeline_root,
        serving_dir=kf.serving_dir(config.model_name),
        beam_pipeline_args=config.beam_args(compiled=True),
        runtime_parameters=parameters,
        state_dir=f"{kf.state_root.rstrip('/')}/{config.pipeline_name}",
    )
    for component in pipeline.components:
        # TFX's compiler copies a component's platform config into its container's resources.
        spec = resource_spec(config, component.id)
        if spec is not None:
            component.with_platform_config(spec)
    return pipeline


def check_image(config: PipelineConfig) -> None:
    """Refuses an image that a cluster cannot pull, with what to set instead."""
    from pipeline.config import ConfigError

    problem = cluster_image_problem(config.kubeflow.image)
    if problem:
        raise ConfigError(
            f"kubeflow.image '{config.kubeflow.image}' {problem}, so a cluster cannot pull it: push the "
            "image to a registry the cluster reaches and set kubeflow.image=REGISTRY/NAME:TAG "
            "(--allow-local-image compiles for kfp.local and this machine only)"
        )


def compile_job(config: PipelineConfig, allow_local_image: bool = False) -> dict[str, Any]:
    """Compiles to a PipelineJob dict ({'pipelineSpec': ..., 'runtimeConfig': ...})."""
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as v2

    if not allow_local_image:
        check_image(config)
    defaults = parameter_defaults(config)
    runner_config = v2.KubeflowV2DagRunnerConfig(default_image=config.kubeflow.image, use_pipeline_spec_2_1=True)
    with tempfile.TemporaryDirectory() as tmp:
        job = v2.KubeflowV2DagRunner(config=runner_config, output_dir=tmp, output_filename="job.json").run(
            build(config, defaults), write_out=False
        )
    job = json.loads(job) if isinstance(job, str) else job
    _set_parameter_defaults(job["pipelineSpec"], defaults)
    job.setdefault("runtimeConfig", {}).setdefault("parameterValues", {}).update(defaults)
    job["runtimeConfig"]["gcsOutputDirectory"] = config.kubeflow.pipeline_root
    _use_kfp_executor(job["pipelineSpec"])
    _add_data_fingerprint(job["pipelineSpec"], config)
    _fill_missing_resources(job["pipelineSpec"], config)
    for task in UNCACHED_TASKS:
        _disable_cache(job["pipelineSpec"], task)
    if config.kubeflow.exit_handler:
        from google.protobuf import json_format

        from pipeline.kfp_exit_handler import EXIT_TASK, add_exit_handler

        resources = resource_spec(config, EXIT_TASK)
        add_exit_handler(
            job["pipelineSpec"],
            config.kubeflow.image,
            config.pipeline_name,
            json_format.MessageToDict(resources) if resources is not None else None,
        )
    return job


def executor_labels(spec: dict[str, Any]) -> dict[str, str]:
    """Task name -> executor label, from the DAGs (the root's, and the exit handler's sub-DAG) and
    component definitions."""
    from pipeline.kfp_exit_handler import tasks_by_dag

    labels = {}
    for task, task_spec in tasks_by_dag(spec).items():
        component = spec["components"][task_spec["componentRef"]["name"]]
        if "executorLabel" in component:
            labels[task] = component["executorLabel"]
    return labels


def _set_parameter_defaults(spec: dict[str, Any], defaults: dict[str, str]) -> None:
    """Defaults in the spec itself, so a run that sets no parameter uses the config's values."""
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    for name, value in defaults.items():
        parameters[name].update(defaultValue=value, isOptional=True)


def _use_kfp_executor(spec: dict[str, Any]) -> None:
    from pipeline.kfp_executor import COMMAND

    for executor in spec["deploymentSpec"]["executors"].values():
        container = executor.get("container")
        if container is not None and container.get("command") == TFX_COMMAND:
            container["command"] = list(COMMAND)


def _add_data_fingerprint(spec: dict[str, Any], config: PipelineConfig) -> None:
    """The DataFingerprint step (pipeline/kfp_fingerprint.py), uncached, feeding ExampleGen."""
    from google.protobuf import json_format

    from pipeline.kfp_fingerprint import COMMAND
    from pipeline.pipeline import example_gen_input

    _, input_config = example_gen_input(config, data_root="")
    patterns = [arg for split in input_config.splits for arg in ("--pattern", split.pattern)]
    label = f"{FINGERPRINT_TASK}_executor"
    spec["components"][FINGERPRINT_TASK] = {
        "executorLabel": label,
        "inputDefinitions": {"parameters": {"data_root": {"parameterType": "STRING"}}},
        "outputDefinitions": {"parameters": {"fingerprint": {"parameterType": "STRING"}}},
    }
    container = {
        "image": config.kubeflow.image,
        "command": list(COMMAND),
        "args": [
            "--input-base",
            "{{$.inputs.parameters['data_root']}}",
            *patterns,
            "--output-file",
            "{{$.outputs.parameters['fingerprint'].output_file}}",
        ],
    }
    resources = resource_spec(config, FINGERPRINT_TASK)
    if resources is not None:
        container["resources"] = json_format.MessageToDict(resources)
    spec["deploymentSpec"]["executors"][label] = {"container": container}
    tasks = spec["root"]["dag"]["tasks"]
    tasks[FINGERPRINT_TASK] = {
        "componentRef": {"name": FINGERPRINT_TASK},
        "taskInfo": {"name": FINGERPRINT_TASK},
        "inputs": {"parameters": {"data_root": {"componentInputParameter": "data_root"}}},
    }
    example_gen = tasks["ExampleGen"]
    example_gen.setdefault("inputs", {}).setdefault("parameters", {})[FINGERPRINT_PARAMETER] = {
        "taskOutputParameter": {"producerTask": FINGERPRINT_TASK, "outputParameterKey": "fingerprint"}
    }
    example_gen["dependentTasks"] = sorted({*example_gen.get("dependentTasks", []), FINGERPRINT_TASK})
    component = spec["components"][example_gen["componentRef"]["name"]]
    component.setdefault("inputDefinitions", {}).setdefault("parameters", {})[FINGERPRINT_PARAMETER] = {
        "parameterType": "STRING"
    }


def _resources_for(config: PipelineConfig, task: str) -> dict[str, Any]:
    resources = config.kubeflow.resources
    chosen = resources.get(task, resources.get("default"))
    return chosen.model_dump(exclude_none=True) if chosen else {}


_MEMORY_UNITS = {
    "": 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def cpu_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity ("500m", "2") in cores."""
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def memory_gb(quantity: str) -> float:
    """A Kubernetes memory quantity ("512Mi", "4G") in GB, the unit of ResourceSpec's float fields."""
    number = quantity.rstrip("".join(set("".join(_MEMORY_UNITS))))
    unit = quantity[len(number) :]
    if unit not in _MEMORY_UNITS:
        raise ValueError(f"memory quantity {quantity!r}: unknown unit {unit!r}")
    return float(number) * _MEMORY_UNITS[unit] / 10**9


def resource_spec(config: PipelineConfig, task: str):
    """The task's CPU, memory and accelerators as KFP's ResourceSpec, or None for none.

    The string fields (resourceCpuLimit, ...) are what KFP 2.x reads; the float fields and the
    accelerator's type/count are their deprecated forms, which KFP 2.2 and 2.3 still read.
    """
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec_class = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec
    wanted = _resources_for(config, task)
    spec = spec_class()
    for kind, to_float in (("cpu", cpu_cores), ("memory", memory_gb)):
        for bound in ("request", "limit"):
            value = wanted.get(f"{kind}_{bound}")
            if value is not None:
                setattr(spec, f"resource_{kind}_{bound}", str(value))
                setattr(spec, f"{kind}_{bound}", to_float(str(value)))
    if wanted.get("accelerator_count"):
        kind, count = str(wanted.get("accelerator_type", "nvidia.com/gpu")), int(wanted["accelerator_count"])
        spec.accelerator.resource_type, spec.accelerator.resource_count = kind, str(count)
        spec.accelerator.type, spec.accelerator.count = kind, count
    return spec if spec.ByteSize() else None


def _fill_missing_resources(spec: dict[str, Any], config: PipelineConfig) -> None:
    """Resources for the containers TFX's compiler built without the platform config: it drops it
    for file-based ExampleGens (step_builder.py `_build_file_based_example_gen_spec`)."""
    from google.protobuf import json_format

    executors = spec["deploymentSpec"]["executors"]
    for task, label in executor_labels(spec).items():
        container = executors[label].get("container")
        resources = resource_spec(config, task)
        if container is not None and "resources" not in container and resources is not None:
            container["resources"] = json_format.MessageToDict(resources)


def _disable_cache(spec: dict[str, Any], task: str) -> None:
    task_spec = spec["root"]["dag"]["tasks"].get(task)
    if task_spec is not None:
        task_spec["cachingOptions"] = {"enableCache": False}


def kubernetes_platform_spec(config: PipelineConfig, spec: dict[str, Any]) -> dict[str, Any]:
    """The kfp-kubernetes platform spec: PVC, pod security, Trainer scheduling and secrets per executor."""
    from google.protobuf import json_format
    from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s

    from pipeline.kfp_exit_handler import EXIT_TASK

    kf = config.kubeflow
    executors = {}
    for task, label in executor_labels(spec).items():
        executor = k8s.KubernetesExecutorConfig(image_pull_policy=kf.image_pull_policy or "")
        # The exit task reads no data: without the PVC it still runs when the volume is what failed.
        if kf.pvc and task != EXIT_TASK:
            executor.pvc_mount.append(k8s.PvcMount(constant=kf.pvc, mount_path=kf.mount_path))
        for env, ref in sorted(kf.secrets.items()):
            name, key = ref.split("/")
            executor.secret_as_env.append(
                k8s.SecretAsEnv(
                    secret_name=name, key_to_env=[k8s.SecretAsEnv.SecretKeyToEnvMap(secret_key=key, env_var=env)]
                )
            )
        if kf.pod_security:
            executor.security_context.CopyFrom(
                k8s.SecurityContext(run_as_user=STEP_UID, run_as_group=STEP_UID, run_as_non_root=True)
            )
            for name, path in WRITABLE_DIRS.items():
                executor.empty_dir_mounts.append(k8s.EmptyDirMount(volume_name=name, mount_path=path))
        if task == "Trainer":
            executor.node_selector.labels.update(kf.trainer_node_selector)
            for toleration in kf.trainer_tolerations:
                executor.tolerations.append(json_format.ParseDict(dict(toleration), k8s.Toleration()))
        as_dict = json_format.MessageToDict(executor)
        if as_dict:
            executors[label] = as_dict
    return {"platforms": {"kubernetes": {"deploymentSpec": {"executors": executors}}}}


def compile_pipeline(config: PipelineConfig, output_path: str, allow_local_image: bool = False) -> str:
    """Writes the compiled pipeline.

    `.yaml`: a PipelineSpec for open-source KFP 2.x with the Kubernetes platform spec as a
    second YAML document. `.json`: a Vertex AI PipelineJob (pipelineSpec plus runtimeConfig;
    Vertex takes machine resources from the container specs and ignores Kubernetes settings).
    """
    job = compile_job(config, allow_local_image)
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    if output_path.endswith(".json"):
        with open(output_path, "w") as f:
            json.dump(job, f, indent=2, sort_keys=True)
        return output_path
    if not output_path.endswith((".yaml", ".yml")):
        raise ValueError(f"{output_path}: the output must end in .yaml (KFP) or .json (Vertex AI)")
    spec = job["pipelineSpec"]
    documents = [spec, kubernetes_platform_spec(config, spec)]
    with open(output_path, "w") as f:
        f.write(
            f"# PIPELINE DEFINITION\n# Name: {spec['pipelineInfo']['name']}\n"
            "# Compiled by `tfxp compile` for Kubeflow Pipelines 2.x; run parameters: "
            f"{', '.join(PARAMETERS)}\n"
        )
        yaml.safe_dump_all(documents, f, sort_keys=True)
    return output_path
