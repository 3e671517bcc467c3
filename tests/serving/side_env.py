"""The side environment with the TF Serving image's TensorFlow (scripts/serving-tf-env.sh), for the
tests that run a check under that TensorFlow."""

from __future__ import annotations

import pathlib
import socket
import subprocess

import pytest

PROJECT = pathlib.Path(__file__).resolve().parents[2]
SIDE_ENV = PROJECT / "scripts" / "serving-tf-env.sh"


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=10).close()
        return True
    except OSError:
        return False


def side_env(*command: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Runs a command in the side environment, skipping (with the reason) only without PyPI."""
    result = subprocess.run([str(SIDE_ENV), *command], capture_output=True, text=True, timeout=timeout)
    if result.returncode == 3 and "[serving-tf] error" in result.stderr and not _pypi_reachable():
        pytest.skip(f"the side environment cannot be built without PyPI: {result.stderr.strip()}")
    return result
