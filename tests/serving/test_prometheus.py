"""A real Prometheus (Debian's) scrapes `tfxp serve` on loopback and reads back its counters.

`tfxp serve` runs the stand-in with kubernetes/serving/base/monitoring.config; Prometheus scrapes
it every second with the alert rules loaded, bounded traffic goes in, and the counts come back
through Prometheus' HTTP API (/api/v1/query) exactly.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
import yaml

from tests.serving.tiny_model import build_model

REPO = pathlib.Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus")
MODEL = "taxi"  # the config's model name, which `tfxp serve` serves
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="prometheus is not installed: scripts/prometheus.sh (Debian's prometheus package; make test runs it)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture
def served(tmp_path):
    """`tfxp serve` with Prometheus metrics on: (REST port, metrics path)."""
    base = tmp_path / "serving" / MODEL
    build_model(str(base / "1"))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tfxp",
            "serve",
            "--engine",
            "standin",
            "--model-base-path",
            str(base),
            "--rest-port",
            "0",
            "--grpc-port",
            "0",
            "--monitoring-config-file",
            str(REPO / "kubernetes/serving/base/monitoring.config"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [process.stdout.readline() for _ in range(3)]
        ports = re.search(r"REST: http://127.0.0.1:(\d+)", lines[1])
        metrics = re.search(r"Prometheus metrics: http://127.0.0.1:\d+(\S+)", lines[2])
        assert ports and metrics and "version 1" in lines[0], (lines, process.poll())
        yield int(ports[1]), metrics[1]
    finally:
        _stop(process)


@pytest.fixture
def prometheus(served, tmp_path):
    """Prometheus scraping the server every second, with the alert rules: its base URL."""
    rest_port, metrics_path = served
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(REPO / "kubernetes/serving/alerts.yaml")],
                "scrape_configs": [
                    {
                        "job_name": "tf-serving",
                        "metrics_path": metrics_path,
                        "static_configs": [{"targets": [f"127.0.0.1:{rest_port}"]}],
                    }
                ],
            }
        )
    )
    port = _free_port()
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "prometheus.log", "w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: requests.get(f"{url}/-/ready", timeout=2).ok, "Prometheus ready", process, tmp_path)
        yield url
    finally:
        _stop(process)


def _until(check, what: str, process=None, logs=None, seconds: float = 60):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"prometheus exited: {(logs / 'prometheus.log').read_text()[-2000:]}")
        try:
            last = check()
            if last:
                return last
        except requests.RequestException as err:
            last = err
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {seconds} s (last: {last})")


def _value(url: str, query: str) -> float | None:
    answer = requests.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()
    assert answer["status"] == "success", answer
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_reads_the_stand_ins_counters(served, prometheus):
    rest_port, _ = served
    api = f"http://127.0.0.1:{rest_port}/v1/models/{MODEL}"
    _until(lambda: _value(prometheus, 'up{job="tf-serving"}') == 1, "the target is up")
    errors = f':tensorflow:serving:request_count{{model_name="{MODEL}",status="INVALID_ARGUMENT"}}'
    bad = {"instances": ["no"]}
    assert requests.post(f"{api}:predict", json=bad, timeout=30).status_code == 400
    _until(lambda: _value(prometheus, errors) == 1, "the first error scraped")
    for _ in range(5):
        assert requests.post(f"{api}:predict", json={"instances": [1.0, 2.0]}, timeout=30).ok
    assert requests.post(f"{api}:predict", json=bad, timeout=30).status_code == 400

    ok = f':tensorflow:serving:request_count{{model_name="{MODEL}",status="OK"}}'
    _until(lambda: _value(prometheus, ok) == 5 and _value(prometheus, errors) == 2, "5 successes, 2 errors")
    assert _value(prometheus, ':tensorflow:serving:request_latency_count{API="predict",entrypoint="REST"}') == 5
    assert _value(prometheus, ':tensorflow:serving:runtime_latency_count{API="Predict",runtime="TF1"}') == 5
    p99 = _value(
        prometheus, 'histogram_quantile(0.99, sum by (le) (:tensorflow:serving:request_latency_bucket{API="predict"}))'
    )
    assert p99 is not None and 0 < p99 < 30e6  # microseconds
    assert _value(prometheus, ':tensorflow:cc:saved_model:load_attempt_count{status="success"}') == 1

    # The alert rules load and evaluate on these series without error ("unknown" until evaluated).
    def rules_healthy():
        groups = requests.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(r["health"] == "ok" for r in rules) else None

    assert len(_until(rules_healthy, "the rules evaluated")) == 8
    # The recording rule saw the second error (the first one only started the series).
    _until(
        lambda: (_value(prometheus, f'model_name:tfserving_errors:rate5m{{model_name="{MODEL}"}}') or 0) > 0,
        "the error rate recorded",
    )
