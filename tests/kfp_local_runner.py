"""Runs a compiled pipeline YAML with `kfp.local`'s container runner, every step in our image.

A second, lighter proof beside tests/kfp_backend (which runs it as the KFP 2.5 backend does).
kfp.local hands each step local paths, and rebuilds each output artifact from `schemaTitle`
alone, so the next step receives TFX's artifacts as `system.Artifact`; the step entrypoint in
the image (pipeline/kfp_executor.py) restores their types from the step's inputs spec, as it
does for the backend's untyped inputs.

A test tool: the product submits to a KFP backend (pipeline/submit.py) and never runs kfp.local.

One kfp.local bug is fixed here, while `tfx_fixes()` is active (tests/pipeline/test_kfp_local.py):
kfp.local starts containers with `auto_remove=True`; with podman the container is gone before
`wait()`, kfp.local then assumes exit code 0 and reports a failed step as SUCCESS. The fix runs
containers without auto-remove, waits, then removes them.

The container engine is Docker's API: podman's `podman system service` works (see README).
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Iterator

import yaml


def run_container_and_wait(
    client, image: str, command: list[str], volumes: dict[str, Any], **container_run_args
) -> int:
    """Like kfp.local's run_docker_container, but keeps the container until its exit code is read."""
    from kfp.local import docker_task_handler

    image = docker_task_handler.add_latest_tag_if_not_present(image)
    if not any(image in (i.tags + i.attrs.get("RepoDigests", [])) for i in client.images.list()):
        client.images.pull(image)
    container_run_args.pop("auto_remove", None)
    from tests.subprocesses import writable_as_fs_group

    writable_as_fs_group(volumes)  # the image runs as uid 10001
    container = client.containers.run(
        image=image,
        command=command,
        detach=True,
        stdout=True,
        stderr=True,
        volumes=volumes,
        auto_remove=False,
        **container_run_args,
    )
    try:
        for line in container.logs(stream=True, follow=True):
            print(line.decode(errors="replace"), end="")
        return int(container.wait()["StatusCode"])
    finally:
        container.remove(force=True)


@contextlib.contextmanager
def tfx_fixes() -> Iterator[None]:
    """Applies the fix to kfp.local while the block runs."""
    from kfp.local import docker_task_handler

    saved = docker_task_handler.run_docker_container
    docker_task_handler.run_docker_container = run_container_and_wait
    try:
        yield
    finally:
        docker_task_handler.run_docker_container = saved


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
