"""The Kubeflow runner: what the compiled pipeline holds for KFP 2.x and Vertex AI."""

import json
import re

import pytest
import yaml

from pipeline import kubeflow_runner
from pipeline.config import ConfigError, load_config
from tests.conftest import ALL_IDS

# The compiled pipeline: every component plus the step that keys ExampleGen's cache.
TASKS = {*ALL_IDS, "DataFingerprint"}


@pytest.fixture(scope="module")
def config():
    return load_config(
        None,
        [
            "kubeflow.image=registry.example.com/ml/tfx-kfp-pipeline@sha256:" + "a" * 64,
            "kubeflow.secrets={AWS_ACCESS_KEY_ID: s3-creds/access_key, AWS_SECRET_ACCESS_KEY: s3-creds/secret_key}",
            "kubeflow.trainer_node_selector={cloud.google.com/gke-accelerator: nvidia-tesla-t4}",
            "kubeflow.trainer_tolerations=[{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]",
            "kubeflow.resources={default: {cpu_request: 500m}, Trainer: {accelerator_count: 1}}",
        ],
    )


@pytest.fixture(scope="module")
def compiled(config, tmp_path_factory):
    path = tmp_path_factory.mktemp("kfp") / "pipeline.yaml"
    kubeflow_runner.compile_pipeline(config, str(path))
    spec, platform = list(yaml.safe_load_all(path.read_text()))
    return path, spec, platform


def test_schema_2_1_with_every_task_in_our_image(compiled, config):
    _, spec, _ = compiled
    assert spec["schemaVersion"] == "2.1.0"
    assert set(spec["root"]["dag"]["tasks"]) == TASKS
    executors = spec["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {config.kubeflow.image}


def test_no_resolver_executor_that_only_vertex_implements(compiled):
    _, spec, _ = compiled
    assert all("resolver" not in e for e in spec["deploymentSpec"]["executors"].values())
    assert (
        spec["root"]["dag"]["tasks"]["Evaluator"]["inputs"]["artifacts"]["baseline_model"]["taskOutputArtifact"][
            "producerTask"
        ]
        == "ServingBaseline"
    )


def test_run_parameters_with_the_config_as_defaults(compiled, config):
    _, spec, _ = compiled
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert set(parameters) == set(kubeflow_runner.PARAMETERS)
    assert parameters["data_root"]["defaultValue"] == config.kubeflow.data_root
    # numSteps unset (None): the Trainer plans the steps from the row count (models/training_plan.py).
    assert json.loads(parameters["train_args"]["defaultValue"]).get("numSteps") == config.trainer.train_steps
    eval_config = json.loads(parameters["eval_config"]["defaultValue"])
    assert eval_config["modelSpecs"][0]["labelKey"] == "big_tipper"
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["ExampleGen"]["inputs"]["parameters"]["input_base"] == {"componentInputParameter": "data_root"}
    assert tasks["Trainer"]["inputs"]["parameters"]["train_args"] == {"componentInputParameter": "train_args"}
    assert tasks["Evaluator"]["inputs"]["parameters"]["eval_config"] == {"componentInputParameter": "eval_config"}


def test_transform_and_trainer_get_more_resources(compiled):
    _, spec, _ = compiled
    executors = spec["deploymentSpec"]["executors"]
    labels = kubeflow_runner.executor_labels(spec)
    resources = {task: executors[label]["container"]["resources"] for task, label in labels.items()}
    assert resources["Pusher"] == {"cpuRequest": 0.5, "resourceCpuRequest": "500m"}
    assert resources["ExampleGen"] == resources["Pusher"]  # TFX drops it for ExampleGen; we add it
    # KFP 2.4+ read resourceType/resourceCount, 2.2 and 2.3 the deprecated type/count
    assert resources["Trainer"]["accelerator"] == {
        "resourceType": "nvidia.com/gpu",
        "resourceCount": "1",
        "type": "nvidia.com/gpu",
        "count": "1",
    }


def test_default_resources_give_transform_and_trainer_more():
    config = load_config(None, ["kubeflow.image=registry.example.com/ml/tfx:1"])
    job = kubeflow_runner.compile_job(config)
    spec = job["pipelineSpec"]
    executors = spec["deploymentSpec"]["executors"]
    resources = {
        task: executors[label]["container"]["resources"]
        for task, label in kubeflow_runner.executor_labels(spec).items()
    }
    for big in ("Transform", "Trainer"):
        assert resources[big]["memoryLimit"] > resources["StatisticsGen"]["memoryLimit"]
        assert resources[big]["resourceCpuLimit"] == "4"
    assert resources["Pusher"]["resourceMemoryRequest"] == "2G"


def test_platform_spec_mounts_the_pvc_and_secrets_everywhere(compiled, config):
    _, spec, platform = compiled
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == set(kubeflow_runner.executor_labels(spec).values())
    for executor in executors.values():
        assert executor["pvcMount"] == [{"constant": "tfx-pipeline", "mountPath": "/mnt/pipeline"}]
        assert executor["imagePullPolicy"] == "IfNotPresent"
        envs = {
            e["keyToEnv"][0]["envVar"]: (e["secretName"], e["keyToEnv"][0]["secretKey"])
            for e in executor["secretAsEnv"]
        }
        assert envs["AWS_SECRET_ACCESS_KEY"] == ("s3-creds", "secret_key")


def test_a_null_pull_policy_is_left_out_for_kfp_2_0(compiled):
    # KFP 2.0.x's driver refuses the imagePullPolicy field (tests/kfp_backend/test_kfp_go_compiler.py).
    _, spec, _ = compiled
    platform = kubeflow_runner.kubernetes_platform_spec(load_config(None, ["kubeflow.image_pull_policy=null"]), spec)
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors and all("imagePullPolicy" not in e and e["pvcMount"] for e in executors.values())


def test_only_the_trainer_is_scheduled_on_gpu_nodes(compiled):
    _, spec, platform = compiled
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    labels = kubeflow_runner.executor_labels(spec)
    trainer = executors[labels["Trainer"]]
    assert trainer["nodeSelector"]["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    assert trainer["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert "nodeSelector" not in executors[labels["Transform"]]


def test_serving_baseline_is_never_cached(compiled):
    _, spec, _ = compiled
    tasks = spec["root"]["dag"]["tasks"]
    for task in ("ServingBaseline", "DriftCheck", "DataFingerprint"):
        assert tasks[task]["cachingOptions"] == {"enableCache": False}
    assert tasks["Trainer"]["cachingOptions"] == {"enableCache": True}


def test_the_kfp_sdk_loads_the_compiled_pipeline(compiled):
    from kfp import components

    path, _, _ = compiled
    component = components.load_component_from_file(str(path))
    assert set(component.component_spec.inputs) == set(kubeflow_runner.PARAMETERS)
    assert component.platform_spec.platforms["kubernetes"]


def test_vertex_job_json(config, tmp_path):
    path = kubeflow_runner.compile_pipeline(config, str(tmp_path / "job.json"))
    job = json.loads(open(path).read())
    assert job["pipelineSpec"]["schemaVersion"] == "2.1.0"
    assert set(job["runtimeConfig"]["parameterValues"]) >= {"data_root", "train_args"}


def test_vertex_gets_the_pipeline_root_in_the_job(config, tmp_path):
    path = kubeflow_runner.compile_pipeline(config, str(tmp_path / "job.json"))
    assert json.loads(open(path).read())["runtimeConfig"]["gcsOutputDirectory"] == config.kubeflow.pipeline_root


def test_object_store_roots_need_no_pvc(tmp_path):
    config = load_config(
        None,
        [
            "kubeflow.pvc=",
            "kubeflow.pipeline_root=gs://bucket/root",
            "kubeflow.state_root=gs://bucket/state",
            "kubeflow.image=gcr.io/p/tfx:1",
        ],
    )
    path = tmp_path / "p.yaml"
    kubeflow_runner.compile_pipeline(config, str(path))
    _, platform = list(yaml.safe_load_all(path.read_text()))
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors and all("pvcMount" not in e for e in executors.values())


def test_every_tfx_step_runs_the_kfp_executor(compiled):
    _, spec, _ = compiled
    executors = spec["deploymentSpec"]["executors"]
    commands = {
        task: executors[label]["container"]["command"] for task, label in kubeflow_runner.executor_labels(spec).items()
    }
    assert commands.pop("DataFingerprint") == ["python", "-m", "pipeline.kfp_fingerprint"]
    assert set(map(tuple, commands.values())) == {("python", "-m", "pipeline.kfp_executor")}


def test_example_gen_is_keyed_by_the_data_fingerprint(compiled):
    _, spec, _ = compiled
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["DataFingerprint"]["inputs"]["parameters"]["data_root"] == {"componentInputParameter": "data_root"}
    assert tasks["ExampleGen"]["inputs"]["parameters"]["kfp_data_fingerprint"] == {
        "taskOutputParameter": {"producerTask": "DataFingerprint", "outputParameterKey": "fingerprint"}
    }
    assert "DataFingerprint" in tasks["ExampleGen"]["dependentTasks"]
    component = spec["components"][tasks["ExampleGen"]["componentRef"]["name"]]
    assert component["inputDefinitions"]["parameters"]["kfp_data_fingerprint"] == {"parameterType": "STRING"}
    executor = spec["deploymentSpec"]["executors"]["DataFingerprint_executor"]["container"]
    assert executor["args"][executor["args"].index("--pattern") + 1] == "*.csv"


def test_accepted_statistics_live_on_the_pvc_not_in_the_object_store(compiled, config):
    _, spec, _ = compiled
    history = spec["root"]["dag"]["tasks"]["DriftCheck"]["inputs"]["parameters"]["history_dir"]
    assert history == {"runtimeValue": {"constant": "/mnt/pipeline/state/taxi-big-tipper/AcceptedStatistics"}}


@pytest.mark.parametrize(
    "image, problem",
    [
        ("localhost/tfx-kfp-pipeline:latest", "exists only on this machine"),
        ("localhost:5000/tfx:1", "exists only on this machine"),
        ("tfx-kfp-pipeline:1", "names no registry"),
        ("ml/tfx-kfp-pipeline:1", "names no registry"),
    ],
)
def test_images_a_cluster_cannot_pull_are_refused(image, problem, tmp_path):
    config = load_config(None, [f"kubeflow.image={image}"])
    expected = f"'{re.escape(image)}' {problem}.*, so a cluster cannot pull it: .* kubeflow.image="
    with pytest.raises(ConfigError, match=expected):
        kubeflow_runner.compile_pipeline(config, str(tmp_path / "p.yaml"))
    kubeflow_runner.compile_pipeline(config, str(tmp_path / "p.yaml"), allow_local_image=True)


@pytest.mark.parametrize(
    "image",
    [
        "registry.example.com:5000/ml/tfx:1",
        "ghcr.io/org/tfx@sha256:" + "b" * 64,
        "123.dkr.ecr.eu-west-1.amazonaws.com/tfx:2",
    ],
)
def test_registry_images_are_accepted(image):
    assert kubeflow_runner.cluster_image_problem(image) is None


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "kubeflow.secrets={TOKEN: just-a-name}",
            "kubeflow.secrets.TOKEN: 'just-a-name' is not of the form SECRET_NAME/KEY",
        ),
        (
            "kubeflow.resources={Trainer: {cpu_limt: 2}}",
            r"kubeflow.resources.Trainer: unknown option 'cpu_limt' "
            r"\(did you mean 'cpu_limit'\?\)",
        ),
        ("kubeflow.imge=x", "did you mean 'image'"),
        ("kubeflow.pipeline_root=/mnt/pipeline/root", "not an object-store URI: Kubeflow Pipelines 2.x accepts only"),
        ("kubeflow.pipeline_root=minio://", "not an object-store URI"),
        (
            "kubeflow.image_pull_policy=Sometimes",
            "kubeflow.image_pull_policy: 'Sometimes' is not one of: Always, IfNotPresent, Never",
        ),
    ],
)
def test_bad_kubeflow_options(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_the_pusher_needs_the_in_process_serving_checks_blessing(compiled):
    _, spec, _ = compiled
    tasks = spec["root"]["dag"]["tasks"]
    assert (
        tasks["Pusher"]["inputs"]["artifacts"]["infra_blessing"]["taskOutputArtifact"]["producerTask"] == "ServingCheck"
    )


def test_infra_validator_always_is_refused_for_kubeflow_which_tfx_cannot_compile_it_for(config):
    from pipeline.config import InfraValidation

    always = config.model_copy(
        update={"serving_check": config.serving_check.model_copy(update={"infra_validator": InfraValidation.ALWAYS})}
    )
    with pytest.raises(ConfigError, match="Kubeflow V2 compiler does not support InfraValidator"):
        kubeflow_runner.compile_job(always)


@pytest.mark.parametrize("quantity, cores", [("500m", 0.5), ("2", 2.0), ("1.5", 1.5)])
def test_cpu_quantities(quantity, cores):
    assert kubeflow_runner.cpu_cores(quantity) == cores


@pytest.mark.parametrize("quantity, gb", [("4G", 4.0), ("512M", 0.512), ("1Gi", 1.073741824), ("16Gi", 17.179869184)])
def test_memory_quantities_in_gb(quantity, gb):
    assert kubeflow_runner.memory_gb(quantity) == pytest.approx(gb)


def test_an_inference_step_compiles_uncached_beside_the_unchanged_pipeline(compiled, config, tmp_path):
    """inference.data_path adds InferenceRows and BulkInferrer (the golden files hold the
    pipeline without them); every other task compiles as without it."""
    path = tmp_path / "pipeline.yaml"
    with_inference = load_config(
        None,
        [
            *(f"{k}={v}" for k, v in {"kubeflow.image": config.kubeflow.image}.items()),
            "kubeflow.secrets={AWS_ACCESS_KEY_ID: s3-creds/access_key, AWS_SECRET_ACCESS_KEY: s3-creds/secret_key}",
            "kubeflow.trainer_node_selector={cloud.google.com/gke-accelerator: nvidia-tesla-t4}",
            "kubeflow.trainer_tolerations=[{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]",
            "kubeflow.resources={default: {cpu_request: 500m}, Trainer: {accelerator_count: 1}}",
            "inference.data_path=/mnt/pipeline/inference",
        ],
    )
    kubeflow_runner.compile_pipeline(with_inference, str(path))
    spec, platform = list(yaml.safe_load_all(path.read_text()))
    _, base, base_platform = compiled
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == TASKS | {"InferenceRows", "BulkInferrer"}
    assert tasks["InferenceRows"]["cachingOptions"] == {"enableCache": False}
    inputs = tasks["BulkInferrer"]["inputs"]["artifacts"]
    assert {name: a["taskOutputArtifact"]["producerTask"] for name, a in inputs.items()} == {
        "examples": "InferenceRows",
        "model": "ServingWarmup",
        "model_blessing": "Evaluator",
    }
    for task, task_spec in base["root"]["dag"]["tasks"].items():
        assert tasks[task] == task_spec, task
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) - set(base_platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]) == {
        "BulkInferrer_executor",
        "InferenceRows_executor",
    }


def _beam_args(spec) -> dict[str, list[str]]:
    """Each TFX step's Beam arguments (what follows the TFX entrypoint's own flags)."""
    executors = spec["deploymentSpec"]["executors"]
    found = {}
    for task, label in kubeflow_runner.executor_labels(spec).items():
        args = executors[label]["container"].get("args", [])
        found[task] = [a for a in args if a.startswith("--") and "=" in a]
    found.pop("DataFingerprint")
    return found


def test_the_beam_sdk_image_is_the_pipelines_image(compiled, config):
    _, spec, _ = compiled
    for task, args in _beam_args(spec).items():
        assert [a for a in args if a.startswith("--sdk_container_image")] == [
            f"--sdk_container_image={config.kubeflow.image}"
        ], task


FLINK = "beam.flink_on_kubernetes={job_endpoint: beam-flink-jobserver.ml:8099, parallelism: 4}"


def test_beam_steps_on_flink_on_kubernetes_use_the_worker_pool_and_the_shared_pvc(tmp_path):
    """beam.flink_on_kubernetes: every Beam step runs on the job server with the worker-pool
    sidecar of its TaskManager pod, and exchanges artifacts through the PVC that kubernetes/flink
    mounts in the TaskManager pods at the steps' mount path."""
    image = "registry.example.com/ml/tfx-kfp-pipeline:2.0.0"
    config = load_config(None, [f"kubeflow.image={image}", FLINK])
    path = tmp_path / "pipeline.yaml"
    kubeflow_runner.compile_pipeline(config, str(path))
    spec, platform = list(yaml.safe_load_all(path.read_text()))
    expected = [
        "--runner=FlinkRunner",
        "--job_endpoint=beam-flink-jobserver.ml:8099",
        "--artifact_endpoint=beam-flink-jobserver.ml:8098",
        "--environment_type=EXTERNAL",
        "--environment_config=localhost:50000",
        "--parallelism=4",
        f"--sdk_container_image={image}",
        "--tfxp_beam_exchange_dir=/mnt/pipeline/beam-exchange",
    ]
    beam_steps = {"ExampleGen", "StatisticsGen", "Transform", "Evaluator"}
    args = _beam_args(spec)
    for task in beam_steps:
        assert args[task][: len(expected)] == expected, task
    # The exchange directory is on the PVC every step mounts.
    mounts = {
        m["mountPath"]
        for e in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()
        for m in e.get("pvcMount", [])
    }
    assert mounts == {config.kubeflow.mount_path}
    # A local run of the same config stays on its own runner.
    assert config.beam_args()[0] == "--runner=DirectRunner"
    assert not any(a.startswith("--tfxp_beam_exchange_dir") for a in config.beam_args())


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["beam.extra_args=[--sdk_container_image=x/y:1]"],
            r"^beam.extra_args: remove --sdk_container_image=x/y:1: the Beam SDK image is kubeflow.image",
        ),
        (
            [FLINK, "beam.extra_args=[--environment_type=PROCESS]"],
            r"^beam.extra_args: remove --environment_type=PROCESS: beam.flink_on_kubernetes sets it",
        ),
        (
            ["beam.flink_on_kubernetes={job_endpoint: http://jobserver}"],
            r"^beam.flink_on_kubernetes.job_endpoint: 'http://jobserver' is not HOST:PORT",
        ),
        (
            [FLINK, "kubeflow.pvc="],
            r"^beam.flink_on_kubernetes.exchange_dir: '/mnt/pipeline/beam-exchange' must be on the PVC",
        ),
        (
            ["beam.flink_on_kubernetes={job_endpoint: j:8099, exchange_dir: /data/x}"],
            r"^beam.flink_on_kubernetes.exchange_dir: '/data/x' must be on the PVC .* \(/mnt/pipeline\)",
        ),
    ],
)
def test_bad_beam_cluster_options_are_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_config(None, overrides)
    assert "\n" not in str(err.value)
