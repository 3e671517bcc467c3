"""The KFP harness (harness.py) on the exit handler's structure (pipeline/kfp_exit_handler.py), fast:
a two-step body and our exit task, each run as a local process instead of a pod (the commands
need nothing of the image). The body's steps see the run parameters passed through the sub-DAG;
the exit task runs after the body whatever its end, takes KFP's final status and posts run_failed
to a loopback webhook when the body failed; the run itself still fails."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

from pipeline.kfp_exit_handler import EXIT_DAG, EXIT_TASK, add_exit_handler
from tests.kfp_backend.harness import Backend, TaskFailed
from tests.pipeline.test_notify import webhook

PROJECT = pathlib.Path(__file__).resolve().parents[2]
# Exits with the run parameter `code`; the second step records that it ran.
STEP = "import pathlib, sys; pathlib.Path(sys.argv[2]).write_text(sys.argv[1]); sys.exit(int(sys.argv[1]))"


def _pipeline(path: pathlib.Path, ran: pathlib.Path) -> str:
    def step(name: str) -> dict:
        return {
            "executorLabel": f"{name}_executor",
            "inputDefinitions": {"parameters": {"code": {"parameterType": "STRING"}}},
        }

    def container(name: str) -> dict:
        args = ["{{$.inputs.parameters['code']}}", str(ran / name)]
        return {"container": {"image": "local", "command": ["python", "-c", STEP], "args": args}}

    spec = {
        "pipelineInfo": {"name": "tiny"},
        "schemaVersion": "2.1.0",
        "components": {"First": step("First"), "Second": step("Second")},
        "deploymentSpec": {"executors": {"First_executor": container("First"), "Second_executor": container("Second")}},
        "root": {
            "inputDefinitions": {
                "parameters": {"code": {"parameterType": "STRING", "defaultValue": "0", "isOptional": True}}
            },
            "dag": {
                "tasks": {
                    name: {
                        "componentRef": {"name": name},
                        "taskInfo": {"name": name},
                        "inputs": {"parameters": {"code": {"componentInputParameter": "code"}}},
                        **({"dependentTasks": ["First"]} if name == "Second" else {}),
                    }
                    for name in ("First", "Second")
                }
            },
        },
    }
    add_exit_handler(spec, "local", "tiny")
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def _local_runner(url: str, seen: list):
    def run(image, command, mounts, env, security=None):
        seen.append(command[:3])
        result = subprocess.run(
            [sys.executable, *command[1:]],
            env={**os.environ, **env, "TFXP_NOTIFY_URL": url},  # as kubeflow.secrets sets it
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.returncode, result.stdout + result.stderr

    return run


@pytest.mark.parametrize("code", ["0", "3"])
def test_the_exit_task_runs_after_the_body_and_notifies_only_a_failure(tmp_path, code):
    ran, seen = tmp_path / "ran", []
    ran.mkdir()
    with webhook() as (server, url):
        backend = Backend(tmp_path / "kfp", _local_runner(url, seen))
        pipeline = _pipeline(tmp_path / "pipeline.yaml", ran)
        if code == "0":
            results = backend.run(pipeline)
            assert set(results) == {"First", "Second", EXIT_TASK}
        else:
            with pytest.raises(TaskFailed) as failed:
                backend.run(pipeline, {"code": code})
            assert str(failed.value) == "task First failed: exit code 3"  # the run fails with the step's error
    assert (ran / "First").read_text() == code  # the run parameter reached the step inside the sub-DAG
    assert (ran / "Second").exists() == (code == "0")  # no new task after a failure ...
    assert seen[-1] == ["python", "-m", "pipeline.kfp_notify"]  # ... but the exit task, last
    assert backend.states[EXIT_DAG] == ("COMPLETE" if code == "0" else "FAILED")
    if code == "0":
        assert server.received == []
        return
    [received] = server.received
    assert received["event"] == "run_failed" and received["pipeline"] == "tiny"
    assert received["text"] == f"a Kubeflow run of tiny failed: {EXIT_DAG} ended FAILED"
    assert received["details"]["run"] == backend.run_name and received["details"]["task"] == EXIT_DAG
    assert json.dumps(received)  # a plain JSON event
