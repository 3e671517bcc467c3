"""serving/metrics.py: the stand-in's Prometheus page has TF Serving's series, labels and format
(tensorflow_serving/util/prometheus_exporter.cc, servables/tensorflow/util.cc); a real
Prometheus reads it in tests/serving/test_prometheus.py."""

from __future__ import annotations

import re

import numpy as np
import pytest
import requests

from serving.metrics import PATH, MonitoringConfigError, ServingMetrics, read_monitoring_config
from tests.serving.tiny_model import build_model, example

MODEL = "tiny"


@pytest.fixture(scope="module")
def base_path(tmp_path_factory):
    base = tmp_path_factory.mktemp("models") / MODEL
    build_model(str(base / "1"))
    return base


@pytest.fixture
def standin(base_path):
    from serving.standin.server import StandInServer

    with StandInServer(MODEL, str(base_path), rest_port=0, grpc_port=0, poll_seconds=60, metrics_path=PATH) as server:
        yield server


def samples(page: str) -> dict[tuple[str, tuple], float]:
    """Every sample line of a page: {(name, sorted labels): value}. (prometheus_client's parser
    reads counters as OpenMetrics ones, renaming them NAME_total, so it is not used here.)"""
    found = {}
    for line in page.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)", line)
        assert match, line
        labels = re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', match[2])
        found[(match[1], tuple(sorted(labels)))] = float(match[3])
    return found


def test_requests_are_counted_under_tf_servings_names(standin, base_path):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    url = f"http://127.0.0.1:{standin.rest_port}/v1/models/{MODEL}"
    for _ in range(3):
        assert requests.post(f"{url}:predict", json={"instances": [1.0, 2.0]}, timeout=30).ok
    assert requests.post(f"{url}:predict", json={"instances": ["text"]}, timeout=30).status_code == 400
    assert requests.post(f"{url}/versions/7:predict", json={"instances": [1.0]}, timeout=30).status_code == 404
    assert requests.get(url, timeout=30).ok  # a status GET (what Kubernetes' probes send) counts too
    body = {"examples": [{"x": 1.0}]}
    assert requests.post(f"{url}:classify", json={"signature_name": "classify", **body}, timeout=30).ok
    with grpc.insecure_channel(f"127.0.0.1:{standin.grpc_port}") as channel:
        import tensorflow as tf

        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)

    page = requests.get(f"http://127.0.0.1:{standin.rest_port}{PATH}", timeout=30).text
    got = samples(page)
    count = ":tensorflow:serving:request_count"
    assert got[(count, (("model_name", MODEL), ("status", "OK")))] == 3 + 1 + 1 + 1
    assert got[(count, (("model_name", MODEL), ("status", "INVALID_ARGUMENT")))] == 1
    assert got[(count, (("model_name", MODEL), ("status", "NOT_FOUND")))] == 1
    latency = ":tensorflow:serving:request_latency"
    rest_predict = (("API", "predict"), ("entrypoint", "REST"), ("model_name", MODEL))
    assert got[(f"{latency}_count", rest_predict)] == 3  # successful requests only
    assert got[(f"{latency}_count", (("API", "Predict"), ("entrypoint", "GRPC"), ("model_name", MODEL)))] == 1
    assert got[(f"{latency}_count", (("API", ""), ("entrypoint", "REST"), ("model_name", MODEL)))] == 1
    assert got[(f"{latency}_bucket", tuple(sorted(rest_predict + (("le", "+Inf"),))))] == 3
    runtime = (("API", "Predict"), ("model_name", MODEL), ("runtime", "TF1"))
    assert got[(":tensorflow:serving:runtime_latency_count", runtime)] == 3 + 1
    loads = ":tensorflow:cc:saved_model:load_attempt_count"
    assert got[(loads, (("model_path", str(base_path / "1")), ("status", "success")))] == 1

    # The exporter's own format: TYPE lines only, no _total on counters, TF's bucket limits.
    assert "# HELP" not in page and "_total{" not in page.replace("request_example_count_total", "")
    assert f"# TYPE {count} counter" in page and f"# TYPE {latency} histogram" in page
    limits = [
        line.split('le="')[1].split('"')[0]
        for line in page.splitlines()
        if line.startswith(f'{latency}_bucket{{model_name="{MODEL}",API="predict"')
    ]
    assert limits[:4] == ["10", "18", "32.4", "58.32"] and limits[-1] == "+Inf" and len(limits) == 34


def test_without_a_monitoring_config_there_is_no_metrics_page(base_path):
    from serving.standin.server import StandInServer

    with StandInServer(MODEL, str(base_path), rest_port=0, grpc_port=0, poll_seconds=60) as server:
        assert requests.get(f"http://127.0.0.1:{server.rest_port}{PATH}", timeout=30).status_code == 404


def test_a_value_on_a_bucket_limit_falls_in_the_next_bucket():
    metrics = ServingMetrics()
    metrics.runtime("m", "Predict", 10.0)  # [10, 18): std::upper_bound, not Prometheus' le
    metrics.runtime("m", "Predict", 9.99)
    got = samples(metrics.page())
    labels = (("API", "Predict"), ("model_name", "m"), ("runtime", "TF1"))
    name = ":tensorflow:serving:runtime_latency_bucket"
    assert got[(name, tuple(sorted(labels + (("le", "10"),))))] == 1
    assert got[(name, tuple(sorted(labels + (("le", "18"),))))] == 2


def test_monitoring_config_files_are_read_as_tf_serving_reads_them(tmp_path):
    config = tmp_path / "monitoring.config"
    config.write_text('prometheus_config { enable: true, path: "/metrics" }')
    assert read_monitoring_config(str(config)) == "/metrics"
    config.write_text("prometheus_config { enable: true }")
    assert read_monitoring_config(str(config)) == PATH
    config.write_text("prometheus_config { enable: false }")
    assert read_monitoring_config(str(config)) is None
    config.write_text("prometheus_config { enabled: true }")
    unknown = r'monitoring.config: 1:21 : .*"tensorflow.serving.PrometheusConfig" has no field named "enabled"'
    with pytest.raises(MonitoringConfigError, match=unknown):
        read_monitoring_config(str(config))
    with pytest.raises(MonitoringConfigError, match="No such file"):
        read_monitoring_config(str(tmp_path / "missing.config"))


def test_the_kubernetes_monitoring_config_enables_the_default_path():
    import pathlib

    repo = pathlib.Path(__file__).resolve().parents[2]
    assert read_monitoring_config(str(repo / "kubernetes/serving/base/monitoring.config")) == PATH


def test_example_counts_of_multi_inference(standin):
    from tensorflow_serving.apis import inference_pb2

    request = inference_pb2.MultiInferenceRequest()
    task = request.tasks.add()
    task.model_spec.name = MODEL
    task.model_spec.signature_name = "regress"
    task.method_name = "tensorflow/serving/regress"
    request.input.example_list.examples.extend([example(x=1.0), example(x=2.0)])
    standin.repository.multi_inference(request)
    got = samples(standin.repository.metrics.page())
    assert got[(":tensorflow:serving:request_example_count_total", (("model", MODEL),))] == 2
