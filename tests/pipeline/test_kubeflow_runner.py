"""The Kubeflow runner: what the compiled pipeline holds for KFP 2.x and Vertex AI."""

import json

import pytest
import yaml

from pipeline import kubeflow_runner
from pipeline.config import ConfigError, load_config

TASKS = {"ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "DriftCheck", "AnomaliesGate", "Transform",
         "Tuner", "Trainer", "ServingWarmup", "ServingBaseline", "Evaluator", "ServingCheck", "Pusher"}


@pytest.fixture(scope="module")
def config():
    return load_config(None, [
        "kubeflow.image=registry.example.com/ml/tfx-kfp-pipeline@sha256:" + "a" * 64,
        "kubeflow.secrets={AWS_ACCESS_KEY_ID: s3-creds/access_key, AWS_SECRET_ACCESS_KEY: s3-creds/secret_key}",
        "kubeflow.trainer_node_selector={cloud.google.com/gke-accelerator: nvidia-tesla-t4}",
        "kubeflow.trainer_tolerations=[{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]",
    ])


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
    assert spec["root"]["dag"]["tasks"]["Evaluator"]["inputs"]["artifacts"]["baseline_model"][
        "taskOutputArtifact"]["producerTask"] == "ServingBaseline"


def test_run_parameters_with_the_config_as_defaults(compiled, config):
    _, spec, _ = compiled
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert set(parameters) == set(kubeflow_runner.PARAMETERS)
    assert parameters["data_root"]["defaultValue"] == config.kubeflow.data_root
    assert json.loads(parameters["train_args"]["defaultValue"])["numSteps"] == config.trainer.train_steps
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
        envs = {e["keyToEnv"][0]["envVar"]: (e["secretName"], e["keyToEnv"][0]["secretKey"])
                for e in executor["secretAsEnv"]}
        assert envs["AWS_SECRET_ACCESS_KEY"] == ("s3-creds", "secret_key")


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
    for task in ("ServingBaseline", "DriftCheck"):
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


def test_object_store_roots_need_no_pvc(tmp_path):
    config = load_config(None, ["kubeflow.pvc=", "kubeflow.pipeline_root=gs://bucket/root"])
    path = tmp_path / "p.yaml"
    kubeflow_runner.compile_pipeline(config, str(path))
    _, platform = list(yaml.safe_load_all(path.read_text()))
    assert platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"] == {}


@pytest.mark.parametrize("override, message", [
    ("kubeflow.secrets={TOKEN: just-a-name}", "is not of the form SECRET_NAME/KEY"),
    ("kubeflow.resources={Trainer: {cpu_limt: 2}}", "did you mean 'cpu_limit'"),
    ("kubeflow.imge=x", "did you mean 'image'"),
])
def test_bad_kubeflow_options(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_the_pusher_needs_the_in_process_serving_checks_blessing(compiled):
    _, spec, _ = compiled
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["Pusher"]["inputs"]["artifacts"]["infra_blessing"]["taskOutputArtifact"]["producerTask"] == \
        "ServingCheck"


def test_infra_validator_always_is_refused_for_kubeflow_which_tfx_cannot_compile_it_for(config):
    import dataclasses

    from pipeline.config import InfraValidation

    always = dataclasses.replace(config, serving_check=dataclasses.replace(
        config.serving_check, infra_validator=InfraValidation.ALWAYS))
    with pytest.raises(ConfigError, match="Kubeflow V2 compiler does not support InfraValidator"):
        kubeflow_runner.compile_job(always)
