"""KFP's exit handler in the compiled pipeline (pipeline/kfp_exit_handler.py, `kubeflow.exit_handler`):
the DAG nested in a sub-DAG with every task, dependency and input as before, the root's
parameters passed through, and the exit task wired to the body's final status in the shape the
kfp SDK itself compiles `dsl.ExitHandler` to."""

# No `from __future__ import annotations`: the kfp SDK reads the components' annotations as types.
import copy

import pytest
import yaml

from pipeline import kubeflow_runner
from pipeline.config import ConfigError, load_config
from pipeline.kfp_exit_handler import EXIT_DAG, EXIT_DAG_COMPONENT, EXIT_EXECUTOR, EXIT_TASK, add_exit_handler

IMAGE = "registry.example.com/ml/tfx-kfp-pipeline:1.0.0"
NOTIFYING = [f"kubeflow.image={IMAGE}", "kubeflow.secrets.TFXP_NOTIFY_URL=tfxp-webhook/url"]


@pytest.fixture(scope="module")
def jobs():
    """(the default PipelineJob, the same pipeline with the exit handler), compiled once."""
    plain = kubeflow_runner.compile_job(load_config(None, NOTIFYING))
    with_exit = kubeflow_runner.compile_job(load_config(None, [*NOTIFYING, "kubeflow.exit_handler=true"]))
    return plain, with_exit


@pytest.fixture(scope="module")
def sdk_exit_handler(tmp_path_factory):
    """What the kfp SDK compiles for a two-step pipeline inside `dsl.ExitHandler`."""
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.12")
    def notify(status: dsl.PipelineTaskFinalStatus):
        print(status)

    @dsl.component(base_image="python:3.12")
    def step(x: str) -> str:
        return x

    @dsl.pipeline(name="exit-handler-shape")
    def pipeline(msg: str = "hi"):
        exit_task = notify()
        with dsl.ExitHandler(exit_task):
            first = step(x=msg)
            step(x=first.output)

    path = tmp_path_factory.mktemp("sdk") / "pipeline.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    return yaml.safe_load(path.read_text())


def test_every_task_moves_unchanged_into_the_sub_dag(jobs):
    plain, with_exit = (job["pipelineSpec"] for job in jobs)
    body = with_exit["components"][EXIT_DAG_COMPONENT]["dag"]["tasks"]
    assert body == plain["root"]["dag"]["tasks"]  # dependencies, inputs, caching: all as they were
    assert len(body) > 10 and "RunPage" in body and "DataFingerprint" in body
    assert set(with_exit["root"]["dag"]["tasks"]) == {EXIT_DAG, EXIT_TASK}
    # Nothing else moved: the components and executors are the default pipeline's plus the new ones.
    assert set(with_exit["components"]) == set(plain["components"]) | {EXIT_DAG_COMPONENT, EXIT_TASK}
    assert set(with_exit["deploymentSpec"]["executors"]) == set(plain["deploymentSpec"]["executors"]) | {EXIT_EXECUTOR}


def test_the_root_parameters_pass_through_to_the_body(jobs):
    plain, with_exit = (job["pipelineSpec"] for job in jobs)
    assert with_exit["root"]["inputDefinitions"] == plain["root"]["inputDefinitions"]  # defaults stay at the root
    names = set(plain["root"]["inputDefinitions"]["parameters"])
    assert names == {"data_root", "train_args", "eval_args", "eval_config"}
    sub_inputs = with_exit["components"][EXIT_DAG_COMPONENT]["inputDefinitions"]["parameters"]
    assert sub_inputs == {name: {"parameterType": "STRING"} for name in names}
    body_task = with_exit["root"]["dag"]["tasks"][EXIT_DAG]
    assert body_task["inputs"]["parameters"] == {name: {"componentInputParameter": name} for name in names}
    # Every componentInputParameter inside the body names one of the sub-DAG's inputs.
    used = {
        spec["componentInputParameter"]
        for task in with_exit["components"][EXIT_DAG_COMPONENT]["dag"]["tasks"].values()
        for spec in task.get("inputs", {}).get("parameters", {}).values()
        if "componentInputParameter" in spec
    }
    assert used and used <= names
    assert jobs[1]["runtimeConfig"] == jobs[0]["runtimeConfig"]


def test_the_exit_task_takes_the_bodys_final_status_after_it_completes(jobs):
    spec = jobs[1]["pipelineSpec"]
    task = spec["root"]["dag"]["tasks"][EXIT_TASK]
    assert task["dependentTasks"] == [EXIT_DAG]  # KFP's driver reads the status of dependentTasks[0]
    assert task["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    assert task["inputs"]["parameters"]["status"] == {"taskFinalStatus": {"producerTask": EXIT_DAG}}
    assert task["cachingOptions"] == {"enableCache": False}
    assert spec["components"][EXIT_TASK]["inputDefinitions"]["parameters"]["status"] == {
        "isOptional": True,
        "parameterType": "TASK_FINAL_STATUS",
    }
    container = spec["deploymentSpec"]["executors"][EXIT_EXECUTOR]["container"]
    assert container["image"] == IMAGE
    assert container["command"] == ["python", "-m", "pipeline.kfp_notify"]
    assert container["args"] == ["--executor_input", "{{$}}", "--pipeline", "taxi-big-tipper"]


def test_the_shape_is_the_one_the_kfp_sdk_compiles_for_dsl_exit_handler(jobs, sdk_exit_handler):
    ours, sdk = jobs[1]["pipelineSpec"], sdk_exit_handler
    [sdk_body] = [n for n, t in sdk["root"]["dag"]["tasks"].items() if "triggerPolicy" not in t]
    [sdk_exit] = [n for n, t in sdk["root"]["dag"]["tasks"].items() if "triggerPolicy" in t]
    assert sdk_body == EXIT_DAG and sdk["root"]["dag"]["tasks"][sdk_body]["componentRef"]["name"] == EXIT_DAG_COMPONENT
    sdk_task, our_task = sdk["root"]["dag"]["tasks"][sdk_exit], ours["root"]["dag"]["tasks"][EXIT_TASK]
    for key in ("dependentTasks", "triggerPolicy"):
        assert our_task[key] == sdk_task[key]
    [sdk_status] = sdk_task["inputs"]["parameters"].values()
    assert our_task["inputs"]["parameters"]["status"] == sdk_status
    sdk_component = sdk["components"][sdk_task["componentRef"]["name"]]
    assert ours["components"][EXIT_TASK]["inputDefinitions"] == sdk_component["inputDefinitions"]
    sdk_container = sdk["deploymentSpec"]["executors"][sdk_component["executorLabel"]]["container"]
    assert sdk_container["args"][:2] == ["--executor_input", "{{$}}"]  # the SDK's exit task reads the same input
    # The SDK's sub-DAG declares the pipeline's parameters by type only, as ours does (it renames them).
    [sdk_param] = sdk["components"][EXIT_DAG_COMPONENT]["inputDefinitions"]["parameters"].values()
    assert sdk_param == {"parameterType": "STRING"}
    assert set(sdk_task) - {"cachingOptions"} == set(our_task) - {"cachingOptions"}


def test_the_spec_is_a_valid_pipeline_spec_and_every_executor_is_found(jobs, tmp_path):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = jobs[1]["pipelineSpec"]
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())  # every field is the proto's
    labels = kubeflow_runner.executor_labels(spec)
    assert labels[EXIT_TASK] == EXIT_EXECUTOR
    assert set(labels) == set(kubeflow_runner.executor_labels(jobs[0]["pipelineSpec"])) | {EXIT_TASK}


def test_the_exit_task_gets_the_webhook_secret_but_not_the_pvc(tmp_path):
    config = load_config(None, [*NOTIFYING, "kubeflow.exit_handler=true"])
    path = tmp_path / "pipeline.yaml"
    kubeflow_runner.compile_pipeline(config, str(path))
    _, platform = yaml.safe_load_all(path.read_text())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    exit_executor, trainer = executors[EXIT_EXECUTOR], executors["Trainer_executor"]
    assert exit_executor["secretAsEnv"] == trainer["secretAsEnv"]
    assert exit_executor["secretAsEnv"][0]["keyToEnv"] == [{"envVar": "TFXP_NOTIFY_URL", "secretKey": "url"}]
    assert "pvcMount" in trainer and "pvcMount" not in exit_executor
    assert exit_executor["securityContext"] == trainer["securityContext"]


def test_without_the_setting_nothing_changes(jobs):
    plain = jobs[0]["pipelineSpec"]
    assert EXIT_DAG_COMPONENT not in plain["components"] and EXIT_TASK not in plain["root"]["dag"]["tasks"]


def test_the_exit_handler_without_a_webhook_is_refused_with_one_line():
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"kubeflow.image={IMAGE}", "kubeflow.exit_handler=true"])
    message = str(err.value)
    assert len(message.splitlines()) == 1
    assert "kubeflow.exit_handler" in message and "kubeflow.secrets.TFXP_NOTIFY_URL=SECRET_NAME/KEY" in message


def test_a_pipeline_with_an_exit_handler_is_not_given_a_second_one(jobs):
    spec = copy.deepcopy(jobs[1]["pipelineSpec"])
    with pytest.raises(ValueError, match="already has an exit handler"):
        add_exit_handler(spec, IMAGE, "p")
