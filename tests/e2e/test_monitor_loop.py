"""End to end: the feedback loop, for each task's bundled config (binary, multiclass,
regression). Serve (the stand-in behind the production request-log proxy,
serving/logging_proxy.py), send traffic (logged with request ids and versions), post ground truth
that makes the served model look worse than its test metrics, `tfxp monitor` flags it,
`--retrain` trains on the labelled traffic as the next span and the pipeline's gates decide
(binary only: the span loop is the same for every task), and `tfxp report` writes the page
that make test renders in Chromium on the host (tests/ops/monitoring/report_in_chromium.sh
reads build/reports/monitor-loop.html, the binary one).
"""

from __future__ import annotations

import csv
import json
import pathlib
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[2]
ROWS = 2400  # of the taxi sample: three in four train span 1, every fourth is traffic
# The bundled config of each task: (file, pipeline name, model name).
TASKS = {
    "binary": ("taxi.yaml", "taxi-big-tipper", "taxi"),
    "multiclass": ("taxi_multiclass.yaml", "taxi-payment-type", "taxi_payment_type"),
    "regression": ("taxi_regression.yaml", "taxi-fare", "taxi_fare"),
}
SMALL = [
    "trainer.train_steps=300",
    "trainer.eval_steps=20",
    "tuner.max_trials=1",
    "tuner.train_steps=30",
    "tuner.eval_steps=10",
]


def tfxp(work: pathlib.Path, command: str, *args: str, overrides: tuple[str, ...] = ()):
    config = f"package://pipeline/configs/{TASKS[work.task][0]}"
    sets = [
        f"data.path={work / 'data'}",
        "data.span_pattern=span-{SPAN}/*.csv",
        f"output_dir={work / 'out'}",
        f"monitor.requests={work / 'requests'}",
        *SMALL,
        *overrides,
    ]
    return subprocess.run(
        [sys.executable, "-m", "tfxp", command, *args, "--config", config, *[a for s in sets for a in ("--set", s)]],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=work,
    )


class Work(pathlib.PosixPath):
    """The test's directory, knowing its task (which config its tfxp commands read)."""

    task: str


@pytest.fixture(scope="module", params=sorted(TASKS))
def loop(request, tmp_path_factory, taxi_config):
    """Span 1 trained and pushed; the stand-in serving it behind the logging proxy; traffic sent."""
    import time

    from models.model_inputs import label_columns
    from pipeline.config import load_config
    from serving.client import RestClient
    from serving.logging_proxy import LoggingProxy
    from serving.standin.server import StandInServer

    work = Work(tmp_path_factory.mktemp(f"loop-{request.param}"))
    work.task = request.param
    _, _, model = TASKS[work.task]
    labels = label_columns(load_config(f"package://pipeline/configs/{TASKS[work.task][0]}"))
    started = time.monotonic()
    lines = pathlib.Path(taxi_config.data.path, "data.csv").read_text().splitlines(keepends=True)
    header, body = lines[0], lines[1 : ROWS + 1]
    (work / "data/span-1").mkdir(parents=True)
    (work / "data/span-1/data.csv").write_text(header + "".join(r for i, r in enumerate(body) if i % 4))
    traffic = list(csv.DictReader([header] + [r for i, r in enumerate(body) if i % 4 == 0]))
    first = tfxp(work, "run")
    assert first.returncode == 0, first.stderr[-3000:]
    server = StandInServer(
        model,
        str(work / f"out/serving/{model}"),
        rest_port=0,
        grpc_port=0,
        poll_seconds=0.5,
        metrics_path="/monitoring/prometheus/metrics",
    ).start()
    proxy = LoggingProxy(f"http://127.0.0.1:{server.rest_port}", str(work / "requests"), 1.0, port=0).start()
    served = server.repository.refresh()
    client = RestClient(f"http://127.0.0.1:{proxy.port}", model)
    for start in range(0, len(traffic), 50):
        client.predict([{k: v for k, v in row.items() if k not in labels} for row in traffic[start : start + 50]])
    assert proxy.logged == len(traffic) // 50 and not proxy.failed
    yield work, traffic, server, served, proxy
    proxy.stop()
    server.stop()
    print(f"\nmonitor loop, {work.task}: {time.monotonic() - started:.0f} s")


CLASSES = ("Cash", "Credit Card", "No Charge", "Unknown")  # taxi_multiclass.yaml's label.classes


def bad_label(task: str, row: dict, i: int) -> tuple[str, str]:
    """(label column, a wrong label) of a traffic row: binary the other class; multiclass the
    next class, as its name or (every other row) its index; regression another row's fare."""
    if task == "binary":
        fare, tips = float(row["fare"] or 0), float(row["tips"] or 0)
        return "tips", str(0.0 if tips > 0.2 * fare else fare)
    if task == "multiclass":
        true = CLASSES.index(row["payment_type"]) if row["payment_type"] in CLASSES else 0
        wrong = (true + 1) % len(CLASSES)
        return "payment_type", CLASSES[wrong] if i % 2 else str(wrong)
    return "fare", str(3 * float(row["fare"] or 0) + 20.0)


@pytest.fixture(scope="module")
def flagged(loop):
    """Ground truth with every label flipped, posted; then tfxp monitor."""
    work, traffic, _, _, proxy = loop
    exported = tfxp(work, "feedback", "--export-requests", str(work / "requests.csv"))
    assert exported.returncode == 0, exported.stderr[-2000:]
    with open(work / "requests.csv", newline="") as f:
        logged = list(csv.DictReader(f))
    assert len(logged) == len(traffic)
    assert all("/" in r["request_id"] for r in logged)  # the proxy's ids: <X-Request-Id>/<i>
    with open(work / "truth.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["request_id", bad_label(work.task, traffic[0], 0)[0]])
        for i, (request, row) in enumerate(zip(logged, traffic)):
            assert request["company"] == row["company"] and request["trip_start_hour"] == row["trip_start_hour"]
            writer.writerow([request["request_id"], bad_label(work.task, row, i)[1]])
        writer.writerow(["feedfacefeedface", bad_label(work.task, traffic[0], 0)[1]])  # two ids no request had
        writer.writerow(["0000000000000000", bad_label(work.task, traffic[1], 1)[1]])
    posted = tfxp(work, "feedback", str(work / "truth.csv"))
    monitored = tfxp(
        work, "monitor", "--window", "1h", overrides=(f"monitor.serving_url=http://127.0.0.1:{proxy.port}",)
    )
    print(f"\ntfxp monitor, {work.task}:\n{monitored.stdout}")  # shown with pytest -s
    return posted, monitored


def test_feedback_joins_the_traffic_and_reports_unmatched_ids(flagged, loop):
    posted, _ = flagged
    traffic = loop[1]
    assert posted.returncode == 0, posted.stderr[-2000:]
    assert f"joined {len(traffic)} of {len(traffic) + 2} feedback rows" in posted.stdout
    assert "2 rows match no logged request" in posted.stdout


def test_monitor_flags_the_worse_live_metrics(flagged, loop):
    from models.tasks import TASKS as TASK_TABLE

    _, monitored = flagged
    work, traffic, _, served, _ = loop
    assert monitored.returncode == 1 and "thresholds crossed" in monitored.stdout, (
        monitored.stdout + monitored.stderr[-3000:]
    )
    out = monitored.stdout
    assert (
        f"version {served}" in out
        and f"requests logged: {len(traffic)}; labelled (tfxp feedback): {len(traffic)}" in out
    )
    assert f"serving: version {served} AVAILABLE; 0 errors in " in out  # the stand-in's request_count
    result = json.loads(next((work / "out/monitor").glob("*/result.json")).read_text())
    assert result["task"] == work.task and result["metrics"]["example_count"] == len(traffic)
    # Every live metric of the task is worse than the version's test value by more than allowed.
    for metric in TASK_TABLE[work.task].live_metrics:
        live, test = result["metrics"][metric.metric], result["test_metrics"][metric.metric]
        assert metric.worse_by(live, test) > result["thresholds"][metric.metric]["drop"] > 0
        word = "below" if metric.higher_is_better else "above"
        assert f"live {metric.title} {live:.4g} is {abs(live - test):.4g} {word} the version's test" in out
    if work.task == "binary":
        assert result["metrics"]["auc"] < 0.5 < result["test_metrics"]["auc"]
        assert "live AUC" in out and "is below the threshold 0.52 (class priors 0.5 + margin 0.02" in out
    if work.task == "multiclass":  # the classes by name: in the findings and per class
        assert result["class_names"] == list(CLASSES)
        assert "is below the threshold 0.8 (evaluator.min_accuracy)" in out
        assert "lowest class F1: '" in out and "    class 1 ('Credit Card'): precision=" in out
    if work.task == "regression":
        assert "live MAE" in out and "is above the threshold 4 (evaluator.max_mae)" in out
    assert {d["kind"] for d in result["distances"]} == {"skew"}


def test_the_result_is_recorded_against_the_served_model(flagged, loop):
    from ml_metadata.proto import metadata_store_pb2

    from ops.monitoring.monitor import MONITOR_TYPE
    from pipeline.metadata import open_store

    work, _, _, served, _ = loop
    store = open_store(str(work / f"out/metadata/{TASKS[work.task][1]}/metadata.sqlite"))
    [execution] = store.get_executions_by_type(MONITOR_TYPE)
    assert execution.properties["version"].int_value == served and execution.properties["crossed"].int_value >= 2
    [event] = [e for e in store.get_events_by_execution_ids([execution.id]) if e.type == metadata_store_pb2.Event.INPUT]
    [pushed] = store.get_artifacts_by_id([event.artifact_id])
    assert pushed.type == "PushedModel"
    assert pushed.custom_properties["pushed_destination"].string_value.endswith(f"/{served}")


def test_a_window_without_traffic_has_its_own_exit_code(flagged, loop):
    work = loop[0]
    (work / "quiet").mkdir(exist_ok=True)
    quiet = tfxp(work, "monitor", overrides=(f"monitor.requests={work / 'quiet'}",))
    assert quiet.returncode == 3, quiet.stdout + quiet.stderr[-2000:]
    assert "no logged requests in the window" in quiet.stdout


@pytest.fixture(scope="module")
def retrained(flagged, loop):
    work = loop[0]
    if work.task != "binary":
        pytest.skip("--retrain adds a span and runs the pipeline as for any task: binary covers it, in less time")
    return tfxp(work, "monitor", "--window", "1h", "--retrain")


def test_retrain_trains_on_the_labelled_traffic_and_the_gates_decide(retrained, loop):
    from ops.runs import runs as recorded_runs

    work, traffic, server, served, _ = loop
    assert retrained.returncode in (0, 3), retrained.stdout[-3000:] + retrained.stderr[-3000:]
    assert f"{len(traffic)} rows ({len(traffic)} labelled requests) added as span 2" in retrained.stdout
    [span_file] = (work / "data/span-2").glob("*.csv")
    assert sum(1 for _ in csv.DictReader(span_file.open())) == len(traffic)
    run = recorded_runs(str(work / "out/metadata/taxi-big-tipper/metadata.sqlite"), "taxi-big-tipper", limit=1)[0]
    assert run.span == 2 and run.drift_baseline_span == 1
    assert run.baseline and run.baseline.endswith(f"/{served}")  # evaluated against the served model
    assert run.blessed is not None
    assert retrained.returncode == (0 if run.blessed else 3)  # the run's code: 3 when its model was refused
    versions = sorted(p.name for p in (work / f"out/serving/{TASKS[work.task][2]}").iterdir() if p.name.isdigit())
    if run.blessed:  # pushed through the Pusher, and the stand-in picks it up
        assert run.pushed_to and len(versions) == 2
        import time

        deadline = time.monotonic() + 30
        while server.repository.refresh() != int(versions[-1]) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert server.repository.refresh() == int(versions[-1])
        # The new version is the canary (pusher.rollout canary); the monitor watches `stable`, still
        # the old version, which answered the logged traffic and is flagged again.
        again = tfxp(work, "monitor", "--window", "1h")
        assert again.returncode == 1, again.stdout + again.stderr[-2000:]
        assert f"version {served}, window" in again.stdout and "thresholds crossed" in again.stdout
    else:  # refused: nothing pushed, the served version stays
        assert run.pushed_to is None and versions == [str(served)] and run.failures


def test_the_report_has_every_section(flagged, loop, request):
    from ops.monitoring.report import SECTIONS

    work = loop[0]
    if work.task == "binary":
        request.getfixturevalue("retrained")  # the report of the retrained run, beside its live results
    made = tfxp(work, "report")
    assert made.returncode == 0, made.stderr[-2000:]
    page = pathlib.Path(made.stdout.strip().removeprefix("wrote "))
    text = page.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in text
    assert '<svg class="live"' in text
    assert 'src="http' not in text and 'href="http' not in text  # nothing from the network
    assert "Blessed: every threshold passed." in text or "Refused:" in text
    # The candidate's metrics, with or without a baseline beside it (a first run has none).
    assert "<td>overall</td>" in text and "-1 slices" not in text
    if work.task == "binary":
        # After the retrain: the first version still stable, the retrained one the canary.
        assert "<th>labels</th>" in text and "<td>stable</td>" in text and "<td>canary</td>" in text
        for figure in ('<svg class="roc"', '<svg class="confusion"'):
            assert figure in text
        out = REPO / "build/reports"
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(page, out / "monitor-loop.html")  # rendered in Chromium on the host by make test
    if work.task == "multiclass":  # the newest window per class, by the model's class names
        assert "<h3>per class, newest measured window</h3>" in text and "<td>Credit Card</td>" in text
        assert "<th>live macro F1</th>" in text
        # The Evaluator's metrics follow the task table, per class by the candidate's class names.
        assert "<h3>per class, test split</h3>" in text and "<th>macro_f1_score</th>" in text
        assert "<th>binary_accuracy</th>" not in text  # the binary columns it showed before
    if work.task == "regression":
        assert "<th>live MAE</th><th>live RMSE</th>" in text and "<th>test MAE</th>" in text
        assert "<th>mean_absolute_error</th><th>root_mean_squared_error</th>" in text
