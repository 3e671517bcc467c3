"""A bounded loopback load on the stand-in and on the logging proxy in front of it, and bodies
no server must fall over on, through the proxy too.

The load: 50 clients start together and each sends 8 predictions (on a kept connection, and
again on a new connection per call); every call must be answered 200, with no connection
reset, within a bounded time. Before serving/standin/http_body.py's listen backlog, 20 such
clients got resets (socketserver listened with a backlog of 5). Latency figures are
benchmarks/README.md's (`python -m benchmarks serving-load`), not asserted here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests

from benchmarks import serving_load
from serving.logging_proxy import LoggingProxy
from serving.standin.server import StandInServer
from tests.serving.tiny_model import build_model, predict_log

MODEL = "tiny"
CLIENTS = 50
PER_CLIENT = 8
SMALL_LIMIT = 64 * 1024
PREDICT = f"/v1/models/{MODEL}:predict"


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    base = tmp_path_factory.mktemp("models") / MODEL
    build_model(str(base / "1"), warmup=[predict_log(x=np.array([1.0], np.float32))])
    with StandInServer(MODEL, str(base), rest_port=0, grpc_port=0, poll_seconds=0.5) as server:
        assert server.repository.refresh() == 1
        yield server


@pytest.fixture(scope="module")
def proxy(standin, tmp_path_factory):
    with LoggingProxy(
        f"http://127.0.0.1:{standin.rest_port}", str(tmp_path_factory.mktemp("requests")), 1.0, port=0
    ) as running:
        yield running


def _port(which, standin, proxy) -> int:
    return standin.rest_port if which == "standin" else proxy.port


@pytest.mark.parametrize("keep_alive", [True, False], ids=["kept-connections", "connection-per-call"])
@pytest.mark.parametrize("which", ["standin", "proxy"])
def test_fifty_concurrent_clients_get_every_answer(standin, proxy, which, keep_alive):
    body = json.dumps({"instances": [1.0, 2.0]}).encode()
    result = serving_load.run(
        "127.0.0.1",
        _port(which, standin, proxy),
        PREDICT,
        body,
        CLIENTS,
        PER_CLIENT,
        timeout=30,
        keep_alive=keep_alive,
        deadline_seconds=90,
    )
    assert dict(result.failures) == {}
    assert result.ok == result.sent == CLIENTS * PER_CLIENT
    if which == "proxy":
        assert proxy.failed == 0


def test_the_proxy_passes_a_deep_body_s_400_through(standin, proxy):
    body = '{"instances": ' + "[" * 100_000 + "1.0" + "]" * 100_000 + "}"
    direct = requests.post(f"http://127.0.0.1:{standin.rest_port}{PREDICT}", data=body, timeout=30)
    through = requests.post(f"http://127.0.0.1:{proxy.port}{PREDICT}", data=body, timeout=30)
    assert direct.status_code == through.status_code == 400
    assert through.json() == direct.json()
    assert through.json()["error"].startswith("JSON Parse error: ")


def test_a_gzip_body_passes_the_proxy_as_it_came(proxy):
    import gzip

    answer = requests.post(
        f"http://127.0.0.1:{proxy.port}{PREDICT}",
        data=gzip.compress(b'{"instances": [3.0]}'),
        headers={"Content-Encoding": "gzip"},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.json() == {"predictions": [6.5]}
    assert proxy.failed == 0  # the logged copy is read un-gzipped


@pytest.mark.parametrize("which", ["standin", "proxy"])
def test_a_body_over_the_limit_is_a_413_and_the_server_goes_on(standin, tmp_path, which):
    base = standin.repository.base_path
    with (
        StandInServer(MODEL, base, rest_port=0, grpc_port=0, max_body_bytes=SMALL_LIMIT) as small,
        LoggingProxy(
            f"http://127.0.0.1:{small.rest_port}", str(tmp_path / "requests"), 0.0, port=0, max_body_bytes=SMALL_LIMIT
        ) as small_proxy,
    ):
        url = f"http://127.0.0.1:{small.rest_port if which == 'standin' else small_proxy.port}{PREDICT}"
        big = json.dumps({"instances": [1.0] * (SMALL_LIMIT // 4)})
        answer = requests.post(url, data=big, timeout=30)
        assert answer.status_code == 413 and answer.text == "413 Request Entity Too Large\n"
        chunked = requests.post(
            url, data=iter([big[: len(big) // 2].encode(), big[len(big) // 2 :].encode()]), timeout=30
        )
        assert chunked.status_code == 413
        assert requests.post(url, json={"instances": [1.0]}, timeout=30).json() == {"predictions": [2.5]}
