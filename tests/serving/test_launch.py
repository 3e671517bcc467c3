"""Which server `tfxp serve` starts: the real binary, the official image, or the stand-in."""

import pathlib
import subprocess
import sys

import pytest

from serving import launch

DEPLOYMENT = pathlib.Path(__file__).parents[2] / "kubernetes" / "serving" / "base" / "deployment.yaml"


def _choose(found=(), images=(), **kwargs):
    options = dict(host="127.0.0.1", rest_port=8501, grpc_port=8500, poll_seconds=2.0)
    options.update(kwargs)
    return launch.choose(
        "taxi",
        "/srv/models/taxi",
        which=lambda name: f"/usr/bin/{name}" if name in found else None,
        image_present=lambda engine, image: (engine, image) in images,
        **options,
    )


def test_the_real_binary_comes_first():
    server = _choose(found=("tensorflow_model_server", "docker"), images={("/usr/bin/docker", launch.OFFICIAL_IMAGE)})
    assert server.kind == "binary"
    assert server.argv == (
        "/usr/bin/tensorflow_model_server",
        "--port=8500",
        "--rest_api_port=8501",
        "--model_name=taxi",
        "--model_base_path=/srv/models/taxi",
        "--file_system_poll_wait_seconds=2",
    )


def test_the_official_image_when_an_engine_has_it():
    server = _choose(found=("docker", "podman"), images={("/usr/bin/podman", launch.OFFICIAL_IMAGE)})
    assert server.kind == "container" and "podman" in server.description
    assert server.argv == (
        "/usr/bin/podman",
        "run",
        "--rm",
        "--init",
        "-p",
        "127.0.0.1:8501:8501",
        "-p",
        "127.0.0.1:8500:8500",
        "-v",
        "/srv/models/taxi:/models/taxi:ro",
        "-e",
        "MODEL_NAME=taxi",
        launch.OFFICIAL_IMAGE,
        "--file_system_poll_wait_seconds=2",
    )


def test_the_monitoring_config_file_reaches_tf_serving():
    binary = _choose(found=("tensorflow_model_server",), monitoring_config_file="/etc/m.config")
    assert binary.argv[-1] == "--monitoring_config_file=/etc/m.config"
    container = _choose(
        found=("podman",), images={("/usr/bin/podman", launch.OFFICIAL_IMAGE)}, monitoring_config_file="/etc/m.config"
    )
    assert f"/etc/m.config:{launch.CONTAINER_MONITORING_FILE}:ro" in container.argv
    assert container.argv[-1] == f"--monitoring_config_file={launch.CONTAINER_MONITORING_FILE}"


def test_the_stand_in_when_nothing_else_is_there():
    assert _choose(found=("docker",)).kind == "standin"
    # Free ports (0) cannot be published by a container: the stand-in takes them.
    assert (
        _choose(found=("docker",), images={("/usr/bin/docker", launch.OFFICIAL_IMAGE)}, rest_port=0).kind == "standin"
    )


@pytest.mark.parametrize(
    "engine, message",
    [
        ("binary", "tensorflow_model_server is not on PATH"),
        ("container", f"no docker or podman here has the image {launch.OFFICIAL_IMAGE}; pull it first"),
        ("kubernetes", "--engine kubernetes: expected one of auto, binary, container, standin"),
    ],
)
def test_a_forced_engine_that_is_not_there_is_an_error(engine, message):
    with pytest.raises(launch.LaunchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _choose(found=("docker",), engine=engine)


def test_forcing_the_stand_in_skips_the_binary():
    assert _choose(found=("tensorflow_model_server",), engine="standin").kind == "standin"


def test_the_image_is_the_one_kubernetes_runs():
    assert f"image: {launch.OFFICIAL_IMAGE}" in DEPLOYMENT.read_text()


def test_serve_reports_a_missing_image_with_exit_code_2(tmp_path):
    (tmp_path / "taxi").mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfxp",
            "serve",
            "--model-base-path",
            str(tmp_path / "taxi"),
            "--engine",
            "container",
            "--image",
            "localhost/no-such-image:0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "no docker or podman here has the image localhost/no-such-image:0" in done.stderr
