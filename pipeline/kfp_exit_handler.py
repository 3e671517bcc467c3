"""KFP's exit handler for the compiled pipeline: a last task that runs whatever became of the others
and posts run_failed when the run did not complete (pipeline/kfp_notify.py).

TFX's `KubeflowV2DagRunner` has no exit handler, so the compiled PipelineSpec is rewritten into
the shape the kfp SDK (2.17) compiles `with dsl.ExitHandler(exit_task): ...` to:

- the root DAG's tasks move, unchanged, into a sub-DAG component (`comp-exit-handler-1`) whose
  inputDefinitions repeat the root's parameters; the root runs that sub-DAG as the task
  `exit-handler-1` and passes each parameter through (`componentInputParameter`). The SDK renames
  them `pipelinechannel--NAME` inside the group; we keep the names, so that no task inside needs
  rewriting (KFP resolves a componentInputParameter by name in the enclosing DAG's inputs);
- the exit task, beside it in the root: `dependentTasks: [exit-handler-1]`, `triggerPolicy:
  {strategy: ALL_UPSTREAM_TASKS_COMPLETED}`, and an optional input of type TASK_FINAL_STATUS fed
  by `taskFinalStatus: {producerTask: exit-handler-1}`. Its container takes the executor input
  (`--executor_input {{$}}`) as the SDK's do. Unlike the SDK's default, it is never cached: a
  cache hit would swallow the notification of a second identical failure.

KFP's backend accepts a TASK_FINAL_STATUS input from 2.14.0 only (kubeflow/pipelines#11953): every
earlier backend release (2.0.x to 2.5.0, the one before 2.14.0) refuses the run with "failed to add
implicit deps: task final status not supported yet" (backend/src/v2/compiler/argocompiler/dag.go). Hence
`kubeflow.exit_handler` is off by default (docs/kubeflow.md).
"""

from __future__ import annotations

import copy
from typing import Any

# The kfp SDK's names for the first dsl.ExitHandler group (kfp/compiler/pipeline_spec_builder.py).
EXIT_DAG = "exit-handler-1"
EXIT_DAG_COMPONENT = "comp-exit-handler-1"
EXIT_TASK = "NotifyOnExit"
EXIT_EXECUTOR = f"{EXIT_TASK}_executor"
STATUS_INPUT = "status"
COMMAND = ["python", "-m", "pipeline.kfp_notify"]


def tasks_by_dag(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every container task of the pipeline, root and sub-DAGs alike: task name -> task spec."""
    found: dict[str, dict[str, Any]] = {}

    def walk(dag: dict[str, Any]) -> None:
        for name, task in dag.get("tasks", {}).items():
            component = spec["components"][task["componentRef"]["name"]]
            if "dag" in component:
                walk(component["dag"])
            else:
                found[name] = task

    walk(spec["root"]["dag"])
    return found


def add_exit_handler(
    spec: dict[str, Any], image: str, pipeline_name: str, resources: dict[str, Any] | None = None
) -> None:
    """Nests the root DAG in the exit handler's sub-DAG and adds the exit task (module docstring)."""
    root = spec["root"]
    if EXIT_DAG_COMPONENT in spec["components"] or "outputs" in root["dag"]:
        raise ValueError("the pipeline already has an exit handler, or root outputs it cannot pass on")
    parameters = root.get("inputDefinitions", {}).get("parameters", {})
    artifacts = root.get("inputDefinitions", {}).get("artifacts", {})
    sub_inputs: dict[str, Any] = {}
    if parameters:
        sub_inputs["parameters"] = {name: {"parameterType": p["parameterType"]} for name, p in parameters.items()}
    if artifacts:
        sub_inputs["artifacts"] = {
            name: {k: v for k, v in a.items() if k in ("artifactType", "isArtifactList")}
            for name, a in artifacts.items()
        }
    spec["components"][EXIT_DAG_COMPONENT] = {"dag": root["dag"], "inputDefinitions": copy.deepcopy(sub_inputs)}
    body_inputs: dict[str, Any] = {}
    if parameters:
        body_inputs["parameters"] = {name: {"componentInputParameter": name} for name in parameters}
    if artifacts:
        body_inputs["artifacts"] = {name: {"componentInputArtifact": name} for name in artifacts}
    body = {"componentRef": {"name": EXIT_DAG_COMPONENT}, "taskInfo": {"name": EXIT_DAG}}
    if body_inputs:
        body["inputs"] = body_inputs
    exit_task = {
        "cachingOptions": {"enableCache": False},
        "componentRef": {"name": EXIT_TASK},
        "dependentTasks": [EXIT_DAG],
        "inputs": {"parameters": {STATUS_INPUT: {"taskFinalStatus": {"producerTask": EXIT_DAG}}}},
        "taskInfo": {"name": EXIT_TASK},
        "triggerPolicy": {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"},
    }
    root["dag"] = {"tasks": {EXIT_DAG: body, EXIT_TASK: exit_task}}
    spec["components"][EXIT_TASK] = {
        "executorLabel": EXIT_EXECUTOR,
        "inputDefinitions": {"parameters": {STATUS_INPUT: {"isOptional": True, "parameterType": "TASK_FINAL_STATUS"}}},
    }
    container: dict[str, Any] = {
        "image": image,
        "command": list(COMMAND),
        "args": ["--executor_input", "{{$}}", "--pipeline", pipeline_name],
    }
    if resources:
        container["resources"] = resources
    spec["deploymentSpec"]["executors"][EXIT_EXECUTOR] = {"container": container}
