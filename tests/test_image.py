"""The image every Kubeflow step runs in (Dockerfile): the project installed, every package of
docs/layers.md importable, the `tfxp` command on the path, and no test or lint tools
(requirements/dev.in stays out of it)."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import FLOORS, NEEDS_PODMAN_AND_IMAGE

pytestmark = NEEDS_PODMAN_AND_IMAGE

PROBE = """
import importlib, importlib.util, json, shutil
print(json.dumps({
    "imported": [importlib.import_module(p).__name__ for p in PACKAGES],
    "tfxp": shutil.which("tfxp"),
    "dev_tools": [m for m in ("pytest", "_pytest", "pytest_timeout", "ruff") if importlib.util.find_spec(m)],
}))
"""


def _run(command: list[str]) -> tuple[int, str]:
    import docker

    client = docker.from_env()
    # Not auto-removed: podman removes such a container before its exit code can be read.
    container = client.containers.run(os.environ["TFXP_IMAGE"], command, detach=True)
    try:
        code = container.wait()["StatusCode"]
        return code, container.logs().decode()
    finally:
        container.remove(force=True)


def test_the_image_holds_the_project_and_no_test_tools():
    packages = [p for p in FLOORS if p != "benchmarks"]  # benchmarks measure; the image runs steps
    code, out = _run(["python", "-c", f"PACKAGES = {packages!r}\n{PROBE}"])
    assert code == 0, out
    found = json.loads(out.strip().splitlines()[-1])
    assert found["imported"] == packages
    assert found["tfxp"], "the tfxp command is not on the image's PATH"
    assert found["dev_tools"] == [], f"test or lint tools in the image: {found['dev_tools']}"


@pytest.mark.parametrize(
    "command",
    [
        ["tfxp", "--help"],
        ["python", "-m", "tfxp", "config"],
        # LightGBM's library loads only with the OpenMP runtime (libgomp1) in the image.
        ["python", "-c", "import lightgbm"],
    ],
)
def test_the_command_runs_in_the_image(command):
    code, out = _run(command)
    assert code == 0, out
