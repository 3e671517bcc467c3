"""TF Serving's Prometheus metrics for the stand-in: the same series, labels and page.

TF Serving keeps, in tensorflow_serving/servables/tensorflow/util.cc:
- /tensorflow/serving/request_count {model_name, status}: every REST request under /v1/
  (model_servers/http_server.cc: status and metadata GETs too, so Kubernetes' probes count) and
  every gRPC Predict, Classify and Regress (model_servers/prediction_service_impl.cc); status
  is the error code's name (OK, INVALID_ARGUMENT, NOT_FOUND, ...);
- /tensorflow/serving/request_latency {model_name, API, entrypoint}: microseconds, successful
  requests only; over REST, API is the path's method (predict, classify, regress; empty for
  GETs) and entrypoint REST; over gRPC, API is Predict, Classify or Regress and entrypoint GRPC;
- /tensorflow/serving/runtime_latency {model_name, API, runtime}: microseconds of the session
  run of a successful Predict, Classify or Regress (runtime TF1; predict_util.cc,
  classifier.cc, regressor.cc). The stand-in times its whole call into the signature;
- /tensorflow/serving/request_example_counts and request_example_count_total {model}: the
  examples of each MultiInference request (multi_inference.cc);
and TensorFlow's SavedModel loader (tensorflow/cc/saved_model/loader.cc) keeps
/tensorflow/cc/saved_model/load_attempt_count {model_path, status}: success or fail per load.

tensorflow_serving/util/prometheus_exporter.cc writes the page: each character of a name
outside [a-zA-Z0-9_] becomes ':' (':tensorflow:serving:request_count'), one '# TYPE' line per
metric (sorted by name) and no '# HELP', counters with no '_total' suffix, histograms as
cumulative NAME_bucket{...,le="..."} lines (limits with 6 significant digits, the last "+Inf"),
NAME_sum and NAME_count. Latency buckets are TF's Buckets::Exponential(10, 1.8, 33) plus
DBL_MAX (xla/tsl/lib/monitoring/sampler.cc); a value goes to the first bucket whose limit is
above it (std::upper_bound in TF's Histogram::Add).

prometheus_client's Counter and Histogram cannot write that page (their counters are exposed as
NAME_total and their bucket limits are printed their own way), so the page is written here;
the tests read it with a real Prometheus (tests/serving/test_prometheus.py).
"""

from __future__ import annotations

import bisect
import re
import sys
import threading

PATH = "/monitoring/prometheus/metrics"  # PrometheusExporter::kPrometheusPath


def exponential(scale: float, growth: float, count: int) -> list[float]:
    """Buckets::Exponential: `count` limits, each `growth` times the one before, then DBL_MAX."""
    limits, bound = [], scale
    for _ in range(count):
        limits.append(bound)
        bound *= growth
    return limits + [sys.float_info.max]


_LATENCY = exponential(10, 1.8, 33)
_EXAMPLES = exponential(1, 2, 15)


class _Metric:
    def __init__(self, name: str, kind: str, labels: tuple[str, ...], limits: list[float] | None = None):
        self.name, self.kind, self.labels, self.limits = name, kind, labels, limits
        self.cells: dict[tuple[str, ...], list] = {}

    def increment(self, values: tuple[str, ...], by: int = 1) -> None:
        cell = self.cells.setdefault(values, [0])
        cell[0] += by

    def add(self, values: tuple[str, ...], value: float) -> None:
        cell = self.cells.setdefault(values, [[0] * len(self.limits), 0.0])
        cell[0][bisect.bisect_right(self.limits, value)] += 1
        cell[1] += value


def prometheus_name(name: str) -> str:
    """GetPrometheusMetricName."""
    name = re.sub(r"[^a-zA-Z0-9_]", ":", name)
    return "_" + name if name[:1].isdigit() else name


def _label_name(name: str) -> str:
    """SanatizeLabelName."""
    name = re.sub(r"[^a-zA-Z0-9]", "_", name)
    return "_" + name if name[:1].isdigit() else name


def _label_value(value: str) -> str:
    """SanitizeLabelValue: backslash and double quote escaped, nothing else."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _six_digits(value: float) -> str:
    """absl::StrCat of a double."""
    return f"{value:.6g}"


class ServingMetrics:
    """The stand-in's metrics; safe to record from server threads."""

    def __init__(self):
        self._lock = threading.Lock()
        metrics = [
            _Metric("/tensorflow/serving/request_count", "counter", ("model_name", "status")),
            _Metric("/tensorflow/serving/request_latency", "histogram", ("model_name", "API", "entrypoint"), _LATENCY),
            _Metric("/tensorflow/serving/runtime_latency", "histogram", ("model_name", "API", "runtime"), _LATENCY),
            _Metric("/tensorflow/serving/request_example_counts", "histogram", ("model",), _EXAMPLES),
            _Metric("/tensorflow/serving/request_example_count_total", "counter", ("model",)),
            _Metric("/tensorflow/cc/saved_model/load_attempt_count", "counter", ("model_path", "status")),
        ]
        self._metrics = {m.name.rsplit("/", 1)[1]: m for m in metrics}

    def request(self, model_name: str, status: str, api: str, entrypoint: str, micros: float) -> None:
        """RecordModelRequestCount, and RecordRequestLatency when the request succeeded."""
        with self._lock:
            self._metrics["request_count"].increment((model_name, status))
            if status == "OK":
                self._metrics["request_latency"].add((model_name, api, entrypoint), micros)

    def runtime(self, model_name: str, api: str, micros: float) -> None:
        with self._lock:
            self._metrics["runtime_latency"].add((model_name, api, "TF1"), micros)

    def examples(self, model: str, count: int) -> None:
        with self._lock:
            self._metrics["request_example_counts"].add((model,), count)
            self._metrics["request_example_count_total"].increment((model,), count)

    def load_attempt(self, model_path: str, ok: bool) -> None:
        with self._lock:
            self._metrics["load_attempt_count"].increment((model_path, "success" if ok else "fail"))

    def series(self) -> set[str]:
        """The names of every series the page can hold."""
        names = set()
        for metric in self._metrics.values():
            name = prometheus_name(metric.name)
            names |= {name} if metric.kind == "counter" else {f"{name}_{s}" for s in ("bucket", "sum", "count")}
        return names

    def page(self) -> str:
        """PrometheusExporter::GeneratePage."""
        lines: list[str] = []
        with self._lock:
            for metric in sorted(self._metrics.values(), key=lambda m: m.name):
                name = prometheus_name(metric.name)
                lines.append(f"# TYPE {name} {metric.kind}")
                for values, cell in sorted(metric.cells.items()):
                    labels = [f'{_label_name(k)}="{_label_value(v)}"' for k, v in zip(metric.labels, values)]
                    joined = ",".join(labels)
                    if metric.kind == "counter":
                        lines.append(f"{name}{{{joined}}} {cell[0]}")
                        continue
                    prefix = f"{name}_bucket{{{joined}{',' if labels else ''}"
                    cumulative = 0
                    for i, count in enumerate(cell[0]):
                        cumulative += count
                        limit = _six_digits(metric.limits[i]) if i < len(cell[0]) - 1 else "+Inf"
                        lines.append(f'{prefix}le="{limit}"}} {cumulative}')
                    lines.append(f"{name}_sum{{{joined}}} {_six_digits(cell[1])}")
                    lines.append(f"{name}_count{{{joined}}} {cumulative}")
        return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the config file


def _monitoring_config_class():
    """tensorflow_serving/config/monitoring_config.proto's MonitoringConfig. The tensorflow-serving-api
    package ships no monitoring_config_pb2, so the message is built from the .proto's fields."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(
        name="tfxp/monitoring_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(
        name="enable",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    prometheus.field.add(
        name="path",
        number=2,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        type_name=".tensorflow.serving.PrometheusConfig",
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()  # its own pool: no clash with any other copy of the proto
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))


class MonitoringConfigError(ValueError):
    """A --monitoring_config_file TF Serving would not start with."""


def read_monitoring_config(path: str) -> str | None:
    """The metrics path a --monitoring_config_file enables, or None when it leaves them off.

    The file is a MonitoringConfig in protobuf text format, parsed as TF Serving parses it
    (ParseProtoTextFile in model_servers/server.cc): an unknown field or a syntax error stops it.
    """
    from google.protobuf import text_format

    try:
        with open(path) as f:
            text = f.read()
    except OSError as err:
        raise MonitoringConfigError(f"--monitoring_config_file {path}: {err.strerror}") from None
    config = _monitoring_config_class()()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as err:
        raise MonitoringConfigError(
            f"--monitoring_config_file {path}: {err} (a MonitoringConfig, e.g. "
            f'prometheus_config {{ enable: true, path: "{PATH}" }})'
        ) from None
    if not config.prometheus_config.enable:
        return None
    return config.prometheus_config.path or PATH
