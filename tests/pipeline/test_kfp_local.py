"""The kfp.local fix in tests/kfp_local_runner.py, shown failing without it."""

from kfp.local import docker_task_handler

from tests import kfp_local_runner as kfp_local


class _NotFound(Exception):
    pass


class _Container:
    """A container that exited with `code`; with auto-remove it is gone by the time of wait()."""

    def __init__(self, code, auto_remove):
        self.code, self.auto_remove, self.removed = code, auto_remove, False

    def logs(self, **_):
        return iter([b"step output\n"])

    def wait(self):
        if self.auto_remove:
            import docker

            raise docker.errors.NotFound("no such container")
        return {"StatusCode": self.code}

    def remove(self, force=False):
        self.removed = True


class _Client:
    def __init__(self, code):
        self.code, self.started = code, []
        self.images = self
        self.containers = self

    def list(self):
        image = type("Image", (), {"tags": ["img:latest"], "attrs": {"RepoDigests": []}})
        return [image]

    def run(self, auto_remove, **_):
        container = _Container(self.code, auto_remove)
        self.started.append(container)
        return container


def test_without_the_fix_a_failed_step_reads_as_success():
    assert docker_task_handler.run_docker_container(_Client(3), "img", ["false"], {}) == 0


def test_fix_2_reads_the_real_exit_code_and_removes_the_container(capsys):
    client = _Client(3)
    assert kfp_local.run_container_and_wait(client, "img", ["false"], {}) == 3
    assert client.started[0].removed
    assert "step output" in capsys.readouterr().out


def test_fixes_are_undone_after_the_block():
    original = docker_task_handler.run_docker_container
    with kfp_local.tfx_fixes():
        assert docker_task_handler.run_docker_container is kfp_local.run_container_and_wait
    assert docker_task_handler.run_docker_container is original


def test_task_folders_follow_kfp_local_naming(tmp_path):
    import json

    (tmp_path / "ator").mkdir()
    (tmp_path / "ator" / "executor_output.json").write_text(json.dumps({"artifacts": {}}))
    (tmp_path / "executor_output.json").write_text(json.dumps({"tuner": True}))
    outputs = kfp_local.executor_outputs(str(tmp_path))
    assert outputs[kfp_local.task_folder("Evaluator")] == {"artifacts": {}}
    assert outputs[kfp_local.task_folder("Tuner")] == {"tuner": True}
