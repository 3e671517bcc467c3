"""A portable runner's job server that does not answer: one line and exit 2, before any component."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.preflight import check_job_endpoint
from tests.conftest import TINY_CSV


def _config(*extra: str, runner: str = "FlinkRunner"):
    return load_config(None, [f"beam.runner={runner}", "beam.extra_args=" + json.dumps(list(extra))])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]  # nobody listens once the socket is closed


def test_a_listening_job_server_passes():
    with socket.socket() as server:
        server.bind(("localhost", 0))
        server.listen()
        check_job_endpoint(_config(f"--job_endpoint=localhost:{server.getsockname()[1]}"))


def test_nothing_listening_is_one_line():
    port = _closed_port()
    with pytest.raises(ConfigError) as err:
        check_job_endpoint(_config(f"--job_endpoint=localhost:{port}", "--environment_type=PROCESS"))
    assert str(err.value).startswith(f"beam.extra_args: nothing answers at --job_endpoint=localhost:{port} (")
    assert "make flink-cluster" in str(err.value) and "make spark-cluster" in str(err.value)


def test_an_endpoint_without_a_port_is_named():
    with pytest.raises(ConfigError, match="--job_endpoint=localhost is not HOST:PORT"):
        check_job_endpoint(_config("--job_endpoint=localhost"))


@pytest.mark.parametrize(
    "extra, runner",
    [
        (["--job_endpoint=localhost:1"], "DirectRunner"),
        (["--job_endpoint=embed"], "PortableRunner"),
        ([], "FlinkRunner"),
    ],
)
def test_nothing_to_check(extra, runner):
    check_job_endpoint(_config(*extra, runner=runner))


def test_tfxp_run_exits_2_before_writing(tmp_path):
    port = _closed_port()
    extra = json.dumps([f"--job_endpoint=localhost:{port}"])
    result = subprocess.run(
        [sys.executable, "-m", "tfxp", "run"]
        + ["--set", f"data.path={TINY_CSV}", "--set", f"output_dir={tmp_path / 'out'}"]
        + ["--set", "beam.runner=FlinkRunner", "--set", f"beam.extra_args={extra}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: beam.extra_args: nothing answers at --job_endpoint=localhost:{port} (")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()
