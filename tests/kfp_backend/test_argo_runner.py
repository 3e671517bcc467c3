"""argo_runner's walk of a Workflow, without podman: order, `when`, skipped executors, failures.

A Workflow shaped as KFP 2.0.5's compiler writes one (a root DAG driver, then per task a
container driver and a `system-container-executor` whose inner task has the cached-decision
`when`), run with a fake pod that plays the driver: the real binaries run in
test_kfp_go_driver.py and test_kfp_go_pipeline.py.
"""

from __future__ import annotations

import pathlib

import pytest

from tests.kfp_backend.argo_runner import ArgoRunner, StepFailed, topological, upstream

DRIVER = {
    "name": "system-container-driver",
    "inputs": {"parameters": [{"name": "task"}, {"name": "parent-dag-id"}]},
    "outputs": {
        "parameters": [
            {"name": "pod-spec-patch", "valueFrom": {"path": "/tmp/outputs/pod-spec-patch", "default": ""}},
            {"name": "cached-decision", "valueFrom": {"path": "/tmp/outputs/cached-decision", "default": "false"}},
        ]
    },
    "container": {
        "image": "driver-image",
        "command": ["driver"],
        "args": [
            "--task",
            "{{inputs.parameters.task}}",
            "--parent",
            "{{inputs.parameters.parent-dag-id}}",
            "--run",
            "{{workflow.uid}}",
            "--cached_decision_path",
            "{{outputs.parameters.cached-decision.path}}",
        ],
    },
}
DAG_DRIVER = {
    "name": "system-dag-driver",
    "inputs": {"parameters": [{"name": "component", "default": ""}]},
    "outputs": {"parameters": [{"name": "execution-id", "valueFrom": {"path": "/tmp/outputs/execution-id"}}]},
    "container": {"image": "driver-image", "command": ["driver"], "args": ["--type", "ROOT_DAG"]},
}
EXECUTOR = {
    "name": "system-container-executor",
    "inputs": {"parameters": [{"name": "pod-spec-patch"}, {"name": "cached-decision", "default": "false"}]},
    "dag": {
        "tasks": [
            {
                "name": "executor",
                "template": "system-container-impl",
                "arguments": {
                    "parameters": [{"name": "pod-spec-patch", "value": "{{inputs.parameters.pod-spec-patch}}"}]
                },
                "when": "{{inputs.parameters.cached-decision}} != true",
            }
        ]
    },
}
IMPL = {
    "name": "system-container-impl",
    "inputs": {"parameters": [{"name": "pod-spec-patch"}]},
    "podSpecPatch": "{{inputs.parameters.pod-spec-patch}}",
    "volumes": [{"name": "kfp-launcher", "emptyDir": {}}],
    "initContainers": [
        {
            "name": "kfp-launcher",
            "command": ["launcher-v2", "--copy", "/kfp-launcher/launch"],
            "volumeMounts": [{"name": "kfp-launcher", "mountPath": "/kfp-launcher"}],
        }
    ],
    "container": {
        "image": "placeholder",
        "command": ["placeholder"],
        "volumeMounts": [{"name": "kfp-launcher", "mountPath": "/kfp-launcher"}],
        "envFrom": [{"configMapRef": {"name": "metadata-grpc-configmap", "optional": True}}],
        "env": [
            {"name": "KFP_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "KFP_POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        ],
    },
}


def _task(name: str, after: list[str]) -> list[dict]:
    depends = " && ".join(f"{a}.Succeeded" for a in after) or None
    driver = {
        "name": f"{name}-driver",
        "template": "system-container-driver",
        "arguments": {
            "parameters": [
                {"name": "task", "value": name},
                {"name": "parent-dag-id", "value": "{{inputs.parameters.parent-dag-id}}"},
            ]
        },
        **({"depends": depends} if depends else {}),
    }
    executor = {
        "name": name,
        "template": "system-container-executor",
        "depends": f"{name}-driver.Succeeded",
        "arguments": {
            "parameters": [
                {"name": "pod-spec-patch", "value": f"{{{{tasks.{name}-driver.outputs.parameters.pod-spec-patch}}}}"},
                {"name": "cached-decision", "value": f"{{{{tasks.{name}-driver.outputs.parameters.cached-decision}}}}"},
            ]
        },
    }
    return [driver, executor]


def _workflow() -> dict:
    root = {
        "name": "root",
        "inputs": {"parameters": [{"name": "parent-dag-id"}]},
        # listed out of order: the runner sorts them
        "dag": {"tasks": _task("Trainer", ["ExampleGen"]) + _task("ExampleGen", []) + _task("Pusher", ["Trainer"])},
    }
    entrypoint = {
        "name": "entrypoint",
        "dag": {
            "tasks": [
                {"name": "root-driver", "template": "system-dag-driver"},
                {
                    "name": "root",
                    "template": "root",
                    "depends": "root-driver.Succeeded",
                    "arguments": {
                        "parameters": [
                            {"name": "parent-dag-id", "value": "{{tasks.root-driver.outputs.parameters.execution-id}}"}
                        ]
                    },
                },
            ]
        },
    }
    return {
        "metadata": {"name": "wf", "uid": "run-uid", "annotations": {}},
        "spec": {"entrypoint": "entrypoint", "templates": [entrypoint, root, DRIVER, DAG_DRIVER, EXECUTOR, IMPL]},
    }


class FakePod:
    """Plays KFP's driver (writes its outputs; `cached` says which tasks hit the cache) and the step."""

    def __init__(self, cached=(), failing=()):
        self.env, self.cached, self.failing, self.calls = {"X": "1"}, set(cached), set(failing), []

    def run(self, name, command, volumes, env=None, logs_dir=pathlib.Path("logs")):
        self.calls.append((name, command, {path: host for host, path in volumes.items()}, env))
        outputs = {path: host for host, path in volumes.items()}.get("/tmp/outputs")
        if command[0] == "/kfp-bin/driver" and "ROOT_DAG" in command:
            (outputs / "execution-id").write_text("7")
        elif command[0] == "/kfp-bin/driver":
            task = command[command.index("--task") + 1]
            patch = {
                "containers": [
                    {
                        "name": "main",
                        "image": "ours",
                        "command": ["/var/run/argo/argoexec", "emissary", "--", "/kfp-launcher/launch", task],
                    }
                ]
            }
            (outputs / "pod-spec-patch").write_text(__import__("json").dumps(patch))
            (outputs / "cached-decision").write_text("true" if task in self.cached else "false")
        logs_dir.mkdir(parents=True, exist_ok=True)
        log = logs_dir / f"{name}.log"
        failed = command[-1] in self.failing
        text = "\n".join(f"line {i}" for i in range(100)) + ("\nboom" if failed else "")
        log.write_text(text)
        return (1 if failed else 0), text, log


def _runner(tmp_path, pod) -> ArgoRunner:
    return ArgoRunner(
        _workflow(),
        pod,
        tmp_path / "kfp-go",
        tmp_path / "run",
        tmp_path / "pvc",
        {"metadata-grpc-configmap": {"METADATA_GRPC_SERVICE_HOST": "h"}},
    )


def test_upstream_reads_kfps_depends_and_argos_dependencies():
    assert upstream({"name": "a", "depends": "b.Succeeded && c.Succeeded"}) == ["b", "c"]
    assert upstream({"name": "a", "dependencies": ["b"]}) == ["b"]
    assert upstream({"name": "a"}) == []
    with pytest.raises(ValueError, match="conjunction"):
        upstream({"name": "a", "depends": "b.Succeeded || b.Failed"})


def test_topological_order_puts_each_task_after_its_upstream_and_refuses_cycles():
    tasks = _workflow()["spec"]["templates"][1]["dag"]["tasks"]
    order = [t["name"] for t in topological(tasks)]
    for task in tasks:
        for up in upstream(task):
            assert order.index(up) < order.index(task["name"]), (up, task["name"])
    with pytest.raises(ValueError, match="cycle"):
        topological([{"name": "a", "depends": "b.Succeeded"}, {"name": "b", "depends": "a.Succeeded"}])
    with pytest.raises(ValueError, match="not tasks of its DAG"):
        topological([{"name": "a", "depends": "z.Succeeded"}])


def test_driver_then_executor_for_each_task_and_the_executor_skipped_on_a_cache_hit(tmp_path):
    pod = FakePod(cached={"Trainer"})
    nodes = _runner(tmp_path, pod).run()
    ran = [name for name, *_ in pod.calls]
    assert ran == [
        "root-driver",
        "root-examplegen-driver",
        "root-examplegen-executor-init0",
        "root-examplegen-executor",
        "root-trainer-driver",
        "root-pusher-driver",
        "root-pusher-executor-init0",
        "root-pusher-executor",
    ]
    assert nodes["wf.root.Trainer.executor"].phase == "Skipped"
    assert nodes["wf.root.Trainer-driver"].template == "system-container-driver"
    assert nodes["wf.root.Trainer"].phase == "Succeeded"  # so Pusher runs, as Argo does it
    # The root driver's execution id reached the container drivers; the run's uid was filled in.
    [(_, driver, mounts, _)] = [c for c in pod.calls if c[0] == "root-trainer-driver"]
    assert driver[driver.index("--parent") + 1] == "7" and driver[driver.index("--run") + 1] == "run-uid"
    assert driver[0] == "/kfp-bin/driver" and mounts["/kfp-bin/driver"] == tmp_path / "kfp-go" / "driver"
    # The executor: the patch's command past argoexec, the downward API and the configmap.
    [(_, command, mounts, env)] = [c for c in pod.calls if c[0] == "root-pusher-executor"]
    assert command == ["/kfp-launcher/launch", "Pusher"]
    assert env["KFP_POD_NAME"] == nodes["wf.root.Pusher.executor"].pod and env["METADATA_GRPC_SERVICE_HOST"] == "h"
    [(_, _, init_mounts, _)] = [c for c in pod.calls if c[0] == "root-pusher-executor-init0"]
    assert mounts["/kfp-launcher"] == init_mounts["/kfp-launcher"]  # the launcher copied in by the init container


def test_a_failed_step_names_itself_its_last_log_lines_and_its_log(tmp_path):
    pod = FakePod(failing={"Trainer"})
    runner = _runner(tmp_path, pod)
    with pytest.raises(StepFailed) as failed:
        runner.run()
    message = str(failed.value)
    assert message.startswith("step wf.root.Trainer.executor failed: exit code 1")
    assert message.rstrip().endswith("boom") and "line 99" in message and "line 50" not in message
    assert str(tmp_path / "run" / "logs" / "root-trainer-executor.log") in message
    assert "root-pusher-driver" not in [name for name, *_ in pod.calls]


def test_a_workflow_with_loops_is_refused(tmp_path):
    workflow = _workflow()
    workflow["spec"]["templates"][1]["dag"]["tasks"][0]["withSequence"] = {"count": "3"}
    with pytest.raises(ValueError, match="withSequence"):
        ArgoRunner(workflow, FakePod(), tmp_path, tmp_path, tmp_path).run()
