"""Runs a compiled pipeline YAML with `kfp.local`'s container runner, every step in our image.

This is how we prove the compiled pipeline runs as compiled, without a cluster. kfp.local
gets two things wrong for TFX pipelines; the fixes live here, and only while `tfx_fixes()`
is active (each has a test in tests/pipeline/test_kfp_local.py):

1. Artifact types. TFX describes its artifact types by `instanceSchema` (`title: tfx.Examples`)
   and leaves `schemaTitle` empty. kfp.local rebuilds each output artifact from `schemaTitle`
   alone, so the next step receives `system.Artifact` and TFX fails with "Could not import
   system.Artifact". The fix carries the instance schema's title over as the schema title.
2. Exit codes. kfp.local starts containers with `auto_remove=True`; with podman the container
   is gone before `wait()`, kfp.local then assumes exit code 0 and reports a failed step as
   SUCCESS. The fix runs containers without auto-remove, waits, then removes them.

The container engine is Docker's API: podman's `podman system service` works (see README).
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Iterator

import yaml


def instance_schema_title(artifact_type: dict[str, Any]) -> str | None:
    """The `title` of an artifact type's instance schema (TFX's type name), if it has one."""
    schema = artifact_type.get("instanceSchema")
    if not schema:
        return None
    parsed = yaml.safe_load(schema)
    return parsed.get("title") if isinstance(parsed, dict) else None


def _runtime_artifact_to_dsl_artifact(original):
    def convert(runtime_artifact):
        from google.protobuf import json_format

        artifact = original(runtime_artifact)
        as_dict = json_format.MessageToDict(runtime_artifact)
        title = instance_schema_title(as_dict.get("type", {}))
        if title and not as_dict.get("type", {}).get("schemaTitle"):
            artifact.schema_title = title  # an instance attribute shadows the class's "system.Artifact"
        return artifact

    return convert


def run_container_and_wait(client, image: str, command: list[str], volumes: dict[str, Any],
                           **container_run_args) -> int:
    """Like kfp.local's run_docker_container, but keeps the container until its exit code is read."""
    from kfp.local import docker_task_handler

    image = docker_task_handler.add_latest_tag_if_not_present(image)
    if not any(image in (i.tags + i.attrs.get("RepoDigests", [])) for i in client.images.list()):
        client.images.pull(image)
    container_run_args.pop("auto_remove", None)
    container = client.containers.run(image=image, command=command, detach=True, stdout=True,
                                      stderr=True, volumes=volumes, auto_remove=False,
                                      **container_run_args)
    try:
        for line in container.logs(stream=True, follow=True):
            print(line.decode(errors="replace"), end="")
        return int(container.wait()["StatusCode"])
    finally:
        container.remove(force=True)


@contextlib.contextmanager
def tfx_fixes() -> Iterator[None]:
    """Applies both fixes to kfp.local while the block runs."""
    from kfp.local import docker_task_handler, executor_output_utils

    saved = (docker_task_handler.run_docker_container,
             executor_output_utils.runtime_artifact_to_dsl_artifact)
    docker_task_handler.run_docker_container = run_container_and_wait
    executor_output_utils.runtime_artifact_to_dsl_artifact = _runtime_artifact_to_dsl_artifact(saved[1])
    try:
        yield
    finally:
        (docker_task_handler.run_docker_container,
         executor_output_utils.runtime_artifact_to_dsl_artifact) = saved


def load_pipeline_spec(path: str):
    """The PipelineSpec (first YAML document) of a compiled pipeline."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    with open(path) as f:
        spec_dict = next(yaml.safe_load_all(f))
    return json_format.ParseDict(spec_dict, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=True)


def run(pipeline_yaml: str, pipeline_root: str, arguments: dict[str, Any] | None = None) -> None:
    """Runs every step of the compiled pipeline in containers; raises if any step fails."""
    from kfp import local
    from kfp.local import pipeline_orchestrator

    pipeline_root = os.path.abspath(pipeline_root)
    os.makedirs(pipeline_root, exist_ok=True)
    local.init(runner=local.DockerRunner(), pipeline_root=pipeline_root, raise_on_error=True)
    with tfx_fixes():
        pipeline_orchestrator.run_local_pipeline(load_pipeline_spec(pipeline_yaml), arguments or {})


def task_folder(task: str) -> str:
    """The folder kfp.local gives a task's outputs inside a run: it drops the first five
    characters of the task name ("Evaluator" -> "ator"; "Tuner" -> the run folder itself)."""
    return task[5:] or "."


def executor_outputs(pipeline_root: str) -> dict[str, dict[str, Any]]:
    """Each task folder's executor_output.json under a kfp.local run folder, by folder name."""
    found = {}
    for directory, _, files in os.walk(pipeline_root):
        if "executor_output.json" in files:
            with open(os.path.join(directory, "executor_output.json")) as f:
                found[os.path.relpath(directory, pipeline_root)] = json.load(f)
    return found
