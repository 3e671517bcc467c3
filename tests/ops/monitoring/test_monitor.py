"""tfxp monitor's parts that need no pipeline run: its EvalConfig, TFDV distances, the next span."""

from __future__ import annotations

import csv

import pytest
import yaml

from components.drift_check.request_log import RequestLogger
from ops.monitoring import feedback, monitor
from pipeline.config import DEFAULT_CONFIG, ConfigError, load_config, parse_config, resolve_path, window_seconds
from pipeline.eval_config import eval_config
from tests.conftest import to_example


def test_live_metrics_are_the_evaluators_without_its_thresholds():
    config = load_config(None, ["evaluator.slices=[trip_start_hour]"])
    live, evaluator = monitor.live_eval_config(config), eval_config(config)
    assert [m.class_name for m in live.metrics_specs[0].metrics] == [
        m.class_name for m in evaluator.metrics_specs[0].metrics
    ]
    assert live.model_specs == evaluator.model_specs and live.slicing_specs == evaluator.slicing_specs
    assert any(m.per_slice_thresholds for m in evaluator.metrics_specs[0].metrics)
    assert not any(m.per_slice_thresholds or m.HasField("threshold") for m in live.metrics_specs[0].metrics)


@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("24h", 86400), ("7d", 604800), ("90s", 90)])
def test_windows(text, seconds):
    assert window_seconds(text) == seconds


@pytest.mark.parametrize(
    "override, message",
    [
        ("monitor.window=soon", "monitor.window: 'soon' is not a window"),
        ("monitor.max_auc_drop=2", "monitor.max_auc_drop: must lie between 0 and 1, got 2.0"),
        ("monitor.min_labeled=3", "monitor: unknown option 'min_labeled' (did you mean 'min_labelled'?)"),
        ("monitor.min_labelled=0", "monitor.min_labelled: must be at least 1, got 0"),
    ],
)
def test_bad_monitor_options(override, message):
    import re

    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [override])


def test_distances_are_tfdvs_measurements_crossed_or_not(serialized_examples):
    import tensorflow_data_validation as tfdv

    from components.drift_check import drift

    current = drift.statistics_of_examples(serialized_examples[:40])
    previous = drift.statistics_of_examples(serialized_examples[40:])
    schema = drift.with_comparators(tfdv.infer_schema(current), ["fare", "company"], 0.1, 0.2)
    found = drift.compare(current, previous, schema)
    distances = {d.feature: d for d in monitor.distances(found, "drift")}
    assert set(distances) == {"fare", "company"}
    assert distances["company"].measure == "L_INFTY" and distances["company"].threshold == 0.1
    crossed = {name for name, d in distances.items() if d.crossed}
    assert crossed == set(found.anomaly_info)  # TFDV's own findings are the crossed ones


def test_labelled_traffic_becomes_a_span_csv_with_a_drop(tmp_path, tiny_rows):
    logger = RequestLogger(str(tmp_path / "requests"))
    examples = [to_example(row, drop=("tips",)).SerializeToString() for row in tiny_rows[:5]]
    logger.log("taxi", "serving_default", examples)
    logger.close()
    config = load_config(None, [f"output_dir={tmp_path / 'out'}", f"monitor.requests={tmp_path / 'requests'}"])
    truth = tmp_path / "truth.csv"
    truth.write_text("request_id,tips\n" + "".join(f"{feedback.derived_id(e)},{i}.5\n" for i, e in enumerate(examples)))
    feedback.join(config, str(truth))
    drop = tmp_path / "drop.csv"
    with open(drop, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(tiny_rows[0]))
        writer.writeheader()
        writer.writerows(tiny_rows[10:13])
    out = tmp_path / "span.csv"
    assert monitor.traffic_span(config, feedback.joined_rows(config), str(drop), str(out)) == 8
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["tips"]) for r in rows[:5]] == [0.5, 1.5, 2.5, 3.5, 4.5]
    assert rows[0]["company"] == tiny_rows[0]["company"] and float(rows[0]["fare"]) == float(tiny_rows[0]["fare"])
    assert rows[5]["tips"] == tiny_rows[10]["tips"] and "trip_start_timestamp" in rows[5]


def test_a_span_csv_keeps_the_datas_header_names(tmp_path, tiny_rows):
    # The data names 'fare' 'fare (€)' (feature key fare____) and 'tips' 'tips!' (key tips_).
    renamed = {"fare": "fare (€)", "tips": "tips!"}
    rows = [{renamed.get(k, k): v for k, v in row.items()} for row in tiny_rows]
    data, drop = tmp_path / "data.csv", tmp_path / "drop.csv"
    for path, part in ((data, rows), (drop, rows[10:13])):
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(part)
    raw = yaml.safe_load(open(resolve_path(DEFAULT_CONFIG)))
    raw["features"]["fare (€)"] = raw["features"].pop("fare")  # the config names them by header
    raw["label"].update({"column": "tips!", "greater_than_fraction_of": "fare (€)"})
    config = parse_config({**raw, "data": {"path": str(data)}, "output_dir": str(tmp_path / "out")})
    assert config.label.column == "tips_" and "fare____" in config.features
    out = tmp_path / "span.csv"
    assert monitor.traffic_span(config, [], str(drop), str(out)) == 3
    with open(out, newline="", encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    assert {"fare (€)", "tips!"} <= set(written[0]) and not {"fare____", "tips_"} & set(written[0])
    assert [r["tips!"] for r in written] == [r["tips!"] for r in rows[10:13]]


class _FakeServing:
    """Answers TF Serving's model status (REST) and its Prometheus page, in TF Serving's forms:
    `/tensorflow/serving/request_count{model_name, status}` (servables/tensorflow/util.cc) as the
    exporter names it (':' for '/')."""

    STATUS = {
        "model_version_status": [
            {"version": "7", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    METRICS = (
        "# TYPE :tensorflow:serving:request_count counter\n"
        ':tensorflow:serving:request_count{model_name="taxi",status="OK"} 95\n'
        ':tensorflow:serving:request_count{model_name="taxi",status="INVALID_ARGUMENT"} 5\n'
        ':tensorflow:serving:request_count{model_name="other",status="INTERNAL"} 50\n'
    )

    def __init__(self, metrics: bool):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/v1/models/taxi":
                    body, kind = json.dumps(outer.STATUS).encode(), "application/json"
                elif self.path == "/monitoring/prometheus/metrics" and metrics:
                    body, kind = outer.METRICS.encode(), "text/plain"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("metrics", [True, False])
def test_serving_health_reads_the_status_and_the_error_ratio(metrics):
    fake = _FakeServing(metrics)
    try:
        health = monitor.serving_health(fake.url, "taxi", 7)
        assert health["state"] == "AVAILABLE"
        assert monitor.serving_health(fake.url, "taxi", 8)["state"] == "NOT_LOADED"
    finally:
        fake.close()
    if metrics:
        assert (health["requests"], health["errors"], health["error_ratio"]) == (100, 5, 0.05)
    else:
        assert health["metrics"] == "not exported" and "error_ratio" not in health
    assert monitor.serving_health(fake.url, "taxi", 7, timeout=1)["state"].startswith("UNREACHABLE")
