"""Which checks a local run puts before the Pusher: InfraValidator only where a real TF
Serving can be started through the Docker API, the in-process serving check always."""

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.local_runner import local_serving_platform
from serving.launch import OFFICIAL_IMAGE


def _platform(mode, *, engines=("podman",), images=(), environ=None):
    config = load_config(None, [f"serving_check.infra_validator={mode}"])
    return local_serving_platform(
        config,
        which=lambda name: f"/usr/bin/{name}" if name in engines else None,
        image_present=lambda engine, image: (engine, image) in images,
        environ={} if environ is None else environ,
    )


def test_auto_uses_the_in_process_check_alone_where_no_engine_holds_the_image():
    assert _platform("auto", environ={"DOCKER_HOST": "unix:///run/podman.sock"}) is None


def test_auto_starts_the_image_through_the_docker_api_socket_when_an_engine_holds_it():
    spec = _platform(
        "auto", images={("/usr/bin/podman", OFFICIAL_IMAGE)}, environ={"DOCKER_HOST": "unix:///run/podman.sock"}
    )
    assert spec.WhichOneof("serving_platform") == "local_docker"
    assert spec.local_docker.client_base_url == "unix:///run/podman.sock"
    assert f"{spec.tensorflow_serving.image_name}:{spec.tensorflow_serving.tags[0]}" == OFFICIAL_IMAGE


def test_never_skips_it_even_where_it_could_run():
    assert (
        _platform(
            "never", images={("/usr/bin/podman", OFFICIAL_IMAGE)}, environ={"DOCKER_HOST": "unix:///run/podman.sock"}
        )
        is None
    )


def test_always_without_a_server_to_start_is_one_clear_error():
    with pytest.raises(ConfigError, match="no docker or podman here holds tensorflow/serving"):
        _platform("always")


def test_an_unknown_mode_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match="'sometimes' is not one of: auto, always, never"):
        load_config(None, ["serving_check.infra_validator=sometimes"])
