"""Which TF Serving `tfxp serve` starts, and the command line that starts it.

In order: the real `tensorflow_model_server` on PATH; the official TF Serving image, already
present in a local container engine (docker or podman; never pulled behind the user's back);
else the stand-in. `engine` forces one of them.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Callable

# The image the Kubernetes manifests run (kubernetes/serving/base/deployment.yaml).
OFFICIAL_IMAGE = "tensorflow/serving:2.21.0"
ENGINES = ("auto", "binary", "container", "standin")
CONTAINER_ENGINES = ("docker", "podman")
CONTAINER_MONITORING_FILE = "/etc/tf-serving/monitoring.config"


class LaunchError(RuntimeError):
    """The server asked for cannot be started here."""


@dataclass(frozen=True)
class Launch:
    kind: str  # "binary", "container" or "standin"
    description: str
    argv: tuple[str, ...] = ()


def image_present(engine: str, image: str) -> bool:
    """Whether container engine `engine` (a path) already holds `image` (never pulls)."""
    try:
        return subprocess.run([engine, "image", "inspect", image], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def choose(
    model_name: str,
    base_path: str,
    *,
    host: str,
    rest_port: int,
    grpc_port: int,
    poll_seconds: float,
    engine: str = "auto",
    image: str = OFFICIAL_IMAGE,
    monitoring_config_file: str | None = None,
    model_config_file: str | None = None,
    config_poll_seconds: float = 0.0,
    which: Callable[[str], str | None] = shutil.which,
    image_present: Callable[[str, str], bool] = image_present,
) -> Launch:
    """The server to start for `model_name` at `base_path` (a TF Serving model base path)."""
    if engine not in ENGINES:
        raise LaunchError(f"--engine {engine}: expected one of {', '.join(ENGINES)}")
    poll = f"--file_system_poll_wait_seconds={max(1, int(poll_seconds))}"
    monitoring = (f"--monitoring_config_file={monitoring_config_file}",) if monitoring_config_file else ()
    # A model config (contracts/model_config.py) replaces --model_name/--model_base_path; its
    # labels may be new on a version still loading (the first push labels it stable and canary).
    config_flags = (
        (
            f"--model_config_file={model_config_file}",
            f"--model_config_file_poll_wait_seconds={int(config_poll_seconds)}",
            "--allow_version_labels_for_unavailable_models=true",
        )
        if model_config_file
        else ()
    )
    if engine in ("auto", "binary"):
        binary = which("tensorflow_model_server")
        if binary:
            return Launch(
                "binary",
                f"TensorFlow Serving ({binary})",
                (
                    binary,
                    f"--port={grpc_port}",
                    f"--rest_api_port={rest_port}",
                    *(config_flags or (f"--model_name={model_name}", f"--model_base_path={base_path}")),
                    poll,
                    *monitoring,
                ),
            )
        if engine == "binary":
            raise LaunchError(
                "tensorflow_model_server is not on PATH (it is in neither PyPI nor Debian); "
                "use --engine container with the official image, or --engine standin"
            )
    if engine in ("auto", "container"):
        if engine == "container" and (rest_port == 0 or grpc_port == 0):
            raise LaunchError("--engine container needs fixed ports (0 picks a free one only for the stand-in)")
        for name in CONTAINER_ENGINES:
            path = which(name)
            if path and rest_port and grpc_port and image_present(path, image):
                mount = ("-v", f"{monitoring_config_file}:{CONTAINER_MONITORING_FILE}:ro") if monitoring else ()
                flag = (f"--monitoring_config_file={CONTAINER_MONITORING_FILE}",) if monitoring else ()
                return Launch(
                    "container",
                    f"TensorFlow Serving ({image} in {name})",
                    (
                        path,
                        "run",
                        "--rm",
                        "--init",
                        "-p",
                        f"{host}:{rest_port}:8501",
                        "-p",
                        f"{host}:{grpc_port}:8500",
                        "-v",
                        # With a model config, its base_path (this path) must be the same inside.
                        f"{base_path}:{base_path if config_flags else f'/models/{model_name}'}:ro",
                        *mount,
                        "-e",
                        f"MODEL_NAME={model_name}",
                        image,
                        poll,
                        *config_flags,
                        *flag,
                    ),
                )
        if engine == "container":
            raise LaunchError(
                f"no docker or podman here has the image {image}; pull it first "
                f"(`docker pull {image}`), or use --engine standin"
            )
    return Launch("standin", "the TF Serving stand-in (not tensorflow_model_server)")
