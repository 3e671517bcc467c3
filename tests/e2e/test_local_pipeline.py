"""End to end: the real pipeline on a slice of the taxi sample, run by the tfxp command.

One module-scoped first run; later tests run again on the same metadata store to check
caching, a refused model and a run stopped by anomalies.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from tests.conftest import ALL_IDS

pytestmark = pytest.mark.slow

SAMPLE_ROWS = 3000
ALL_NODES = set(ALL_IDS)
SIGNATURES = ("classify", "serve_raw", "serving_default", "transform_features")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, taxi_config) -> pathlib.Path:
    work = tmp_path_factory.mktemp("e2e")
    source = pathlib.Path(taxi_config.data.path, "data.csv").read_text().splitlines(keepends=True)
    (work / "data").mkdir()
    (work / "data" / "data.csv").write_text("".join(source[: SAMPLE_ROWS + 1]))
    return work


def tfxp(
    workdir: pathlib.Path, *overrides: str, command: str = "run", flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    args = [
        sys.executable,
        "-m",
        "tfxp",
        command,
        *flags,
        "--set",
        f"data.path={workdir / 'data'}",
        "--set",
        f"output_dir={workdir / 'out'}",
        "--set",
        "trainer.train_steps=300",
        "--set",
        "trainer.eval_steps=20",
        "--set",
        "tuner.max_trials=1",
        "--set",
        "tuner.train_steps=30",
        "--set",
        "tuner.eval_steps=10",
        *[a for o in overrides for a in ("--set", o)],
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=1200, cwd=workdir)


def recorded(out: pathlib.Path, limit: int = 1):
    """The runs recorded in the metadata store under `out`, newest first."""
    from ops.runs import runs as recorded_runs

    return recorded_runs(str(out / "metadata/taxi-big-tipper/metadata.sqlite"), "taxi-big-tipper", limit=limit)


def latest_run(workdir):
    return recorded(workdir / "out")[0]


def pushed_versions(workdir) -> list[pathlib.Path]:
    serving = workdir / "out/serving/taxi"
    return sorted(p for p in serving.iterdir() if p.is_dir()) if serving.exists() else []


@pytest.fixture(scope="module")
def first_run(workdir):
    result = tfxp(workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_first_run_executes_every_component(first_run, workdir):
    run = latest_run(workdir)
    states = {e.node_id: e.state for e in run.executions}
    assert set(states) == ALL_NODES
    assert set(states.values()) == {"COMPLETE"}
    assert "[14/15] Pusher done" in first_run.stdout and "[15/15] RunPage done" in first_run.stdout


def test_first_run_reports_test_metrics_and_the_push(first_run, workdir):
    run = latest_run(workdir)
    assert {"auc", "binary_accuracy", "precision", "recall", "f1_score"} <= set(run.metrics)
    assert 0.5 < run.metrics["auc"] <= 1.0
    assert run.blessed is True
    assert run.pushed_to and pathlib.Path(run.pushed_to).parent == workdir / "out/serving/taxi"
    assert "test-split metrics: auc=" in first_run.stdout
    # The first push is both labels (contracts/model_config.py plan_push), as the summary says.
    assert f"pushed model: {run.pushed_to} (labels now: stable, canary)" in first_run.stdout
    assert run.labels == ["stable", "canary"]
    assert run.baseline == "none (nothing served yet)"


def test_the_pushed_version_carries_its_model_card_with_the_runs_metrics(first_run, workdir):
    import json

    run = latest_run(workdir)
    [version] = pushed_versions(workdir)
    cards = version / "assets.extra"
    facts = json.loads((cards / "model_card.json").read_text())  # strict JSON
    assert facts["version"] == int(version.name) and facts["run_id"] == run.run_id
    # The very figures the run recorded in ML Metadata, not a second computation of them.
    overall = facts["metrics"]["overall"]
    assert {k: overall[k] for k in run.metrics if overall.get(k) is not None} == {
        k: v for k, v in run.metrics.items() if v == v
    }
    rows = facts["data"]["rows"]
    assert rows["test"] == int(run.metrics["example_count"]) and sum(rows.values()) == SAMPLE_ROWS
    assert facts["data"]["span"] == 0 and facts["blessed"] is True and facts["baseline"] is None
    assert [t["metric"] for t in facts["metrics"]["thresholds"]] == ["auc"]  # the first-run gate
    assert facts["hyperparameters_source"] == "the Tuner's best trial (KerasTuner)" and facts["hyperparameters"]
    assert facts["serving_checks"] == run.serving_checks
    assert {f["name"]: f["use"] for f in facts["features"]}["tips"] == "label (big_tipper)"
    markdown = (cards / "model_card.md").read_text()
    assert f"| auc | {run.metrics['auc']:.4g} | >= 0.52 (first-run gate" in markdown
    assert (cards / "model_card.html").read_text().startswith("<!doctype html>")
    shown = tfxp(workdir, command="model-card")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.strip() == str(cards / "model_card.md")
    wrong = subprocess.run(
        [sys.executable, "-m", "tfxp", "model-card", "1", "--set", f"output_dir={workdir / 'out'}"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=workdir,
    )
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines()[-1] == (
        f"error: version 1 is not served from {workdir / 'out/serving/taxi'}; served versions: {version.name}"
    )


def test_pushed_model_answers_serialized_examples(first_run, workdir, tiny_rows):
    from components.serving_check.loader import SessionModel
    from tests.conftest import to_example

    [version] = pushed_versions(workdir)
    assert (version / "saved_model.pb").is_file()
    examples = [to_example(r, drop=("tips",)).SerializeToString() for r in tiny_rows[:5]]
    with SessionModel(str(version)) as model:  # TF Serving's loading path
        probabilities = model.run("serving_default", {"examples": examples})["probabilities"]
    assert probabilities.shape == (5,)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_pushed_model_carries_warmup_requests_that_tf_servings_loader_answers(first_run, workdir):
    import tensorflow as tf

    from components.serving_check import loader, tf_serving_requests
    from components.serving_warmup import warmup

    [version] = pushed_versions(workdir)
    records = warmup.read_warmup(str(version))
    assert sorted({warmup.logged_signature(r) for r in records}) == list(SIGNATURES)
    for record in records:
        if record.WhichOneof("log_type") == "predict_log" and "examples" in record.predict_log.request.inputs:
            examples = tf.make_ndarray(record.predict_log.request.inputs["examples"])
            assert "tips" not in tf.train.Example.FromString(examples[0]).features.feature  # label left out
    with loader.SessionModel(str(version)) as model:
        assert tf_serving_requests.replay_warmup(model, str(version)) == len(records)
    assert "serving check: passed" in first_run.stdout


@pytest.mark.parametrize("signature", SIGNATURES)
def test_tensorflows_saved_model_cli_runs_every_signature_of_the_pushed_model(first_run, workdir, signature):
    from tests.serving.saved_model_cli import cli_inputs, saved_model_cli

    [version] = pushed_versions(workdir)
    result = saved_model_cli(version, signature, cli_inputs(version, signature))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Result for output key" in result.stdout


def test_a_model_tf_serving_cannot_run_is_refused_before_the_pusher(first_run, workdir):
    before = pushed_versions(workdir)
    result = tfxp(
        workdir, "trainer.run_fn=tests.serving.legacy_export.run_fn", "trainer.model=dnn", "tuner.enabled=false"
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert errors[0].startswith('error: ServingCheck failed: warm-up record 0 (signature "classify")')
    assert "Could not find variable" in errors[0]
    assert "no model was pushed by this run" in result.stderr
    assert pushed_versions(workdir) == before
    states = {e.node_id: e.state for e in latest_run(workdir).executions}
    assert states["ServingCheck"] == "FAILED" and "Pusher" not in states


def test_signatures_seen_by_tensorflows_own_tooling(first_run, workdir):
    [version] = pushed_versions(workdir)
    shown = subprocess.run(
        ["saved_model_cli", "show", "--dir", str(version), "--tag_set", "serve", "--signature_def", "serving_default"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "inputs['examples'] tensor_info:" in shown.stdout and "dtype: DT_STRING" in shown.stdout
    assert "outputs['probabilities'] tensor_info:" in shown.stdout
    listed = subprocess.run(
        ["saved_model_cli", "show", "--dir", str(version), "--tag_set", "serve"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for signature in ("serving_default", "serve_raw", "classify", "transform_features"):
        assert f'"{signature}"' in listed
    classify = subprocess.run(
        ["saved_model_cli", "show", "--dir", str(version), "--tag_set", "serve", "--signature_def", "classify"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Method name is: tensorflow/serving/classify" in classify


@pytest.mark.extended  # a Beam mode the default config does not use: make test-extended
def test_multi_processing_workers_kept_alive_serve_every_beam_component(first_run, workdir):
    from benchmarks.beam import record_counts

    out = workdir / "reuse"
    result = tfxp(
        workdir,
        f"output_dir={out}",
        "beam.direct_running_mode=multi_processing",
        "beam.direct_num_workers=2",
        "beam.reuse_workers=true",
        "tuner.enabled=false",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[13/14] Pusher done" in result.stdout and "blessed: yes" in result.stdout  # no Tuner
    log = "".join(path.read_text() for path in (out / "logs").glob("run-*.log"))
    # ExampleGen, StatisticsGen, Transform and Evaluator: four Beam pipelines, two processes
    pids = [int(pid) for pid in re.findall(r"Beam worker process (\d+) started", log)]
    assert len(pids) == 2, pids
    for pid in pids:  # they ended with the run
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    counts = record_counts(str(out))
    assert counts["StatisticsGen: examples in statistics"] == SAMPLE_ROWS
    assert 0 < counts["Transform: transformed examples"] < SAMPLE_ROWS  # train and eval splits


def test_a_fresh_run_on_the_same_data_trains_the_same_model(first_run, workdir):
    """A new output directory and metadata store: nothing cached, every component runs again."""
    out = workdir / "fresh"
    result = tfxp(workdir, f"output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    [fresh] = recorded(out)
    assert {e.state for e in fresh.executions} == {"COMPLETE"}
    first = recorded(workdir / "out", limit=100)[-1]  # the oldest: the first run
    assert fresh.metrics and fresh.metrics == first.metrics  # every metric, to the last bit
    tuned = [
        sorted((root / "pipelines/taxi-big-tipper/Tuner/best_hyperparameters").glob("*/best_hyperparameters.txt"))
        for root in (workdir / "out", out)
    ]
    assert tuned[0][0].read_text() == tuned[1][0].read_text()


def test_second_run_reuses_cached_executions(first_run, workdir):
    result = tfxp(workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    states = {e.node_id: e.state for e in latest_run(workdir).executions}
    for node in ("ExampleGen", "StatisticsGen", "SchemaGen", "Transform", "Tuner", "Trainer", "ServingWarmup"):
        assert states[node] == "CACHED", (node, states)
    # The served model (the first run's push) is looked up again, not taken from the cache.
    assert states["ServingBaseline"] == "COMPLETE"
    [served] = pushed_versions(workdir)  # the same model is not pushed again as a new version
    assert latest_run(workdir).baseline == str(served)
    assert f"pushed model: none (the same model is already served: {served})" in result.stdout
    # Nothing new since (the same data, code, config and served version): the baseline and the
    # evaluation come from the cache too (pipeline/local_runner.py served_state). --force: else
    # `tfxp run` would not start TFX at all (the next run below).
    third = tfxp(workdir, flags=("--force",))
    assert third.returncode == 0, third.stderr[-3000:]
    run = latest_run(workdir)
    states = {e.node_id: e.state for e in run.executions}
    assert states["ServingBaseline"] == "CACHED" and states["Evaluator"] == "CACHED", states
    assert run.baseline == str(served) and run.blessed is True
    assert f"pushed model: none (the same model is already served: {served})" in third.stdout
    # Without --force, that run is reused: its summary, no run recorded (pipeline/run_fingerprint.py).
    fourth = tfxp(workdir)
    assert fourth.returncode == 0, fourth.stderr[-3000:]
    head, rest = fourth.stdout.split("\n", 1)
    assert head.startswith(f"nothing changed since run {run.run_id} (finished "), fourth.stdout
    assert rest == "\n" + third.stdout[third.stdout.index("Pipeline finished") :]
    assert latest_run(workdir).run_id == run.run_id


def test_a_model_below_the_threshold_is_not_pushed(first_run, workdir):
    from tests.pipeline.test_notify import webhook

    before = pushed_versions(workdir)
    with webhook() as (server, url):  # the run tells a webhook why it pushed nothing
        result = tfxp(workdir, "evaluator.min_auc=0.9999", f"notify.url={url}")
    assert result.returncode == 3, result.stderr[-3000:]  # refused: EXIT_REFUSED
    run = latest_run(workdir)
    [refused] = server.received
    assert refused["event"] == "run_refused" and refused["details"]["reasons"] == run.failures
    assert refused["text"] == f"run {run.run_id} of taxi-big-tipper pushed nothing: {run.failures[0]}"
    assert run.blessed is False
    assert any(
        f.startswith("auc = ") and f.endswith("below the threshold 0.9999: evaluator.min_auc") for f in run.failures
    ), run.failures
    assert run.pushed_to is None
    assert pushed_versions(workdir) == before
    assert "blessed: no" in result.stdout and "pushed model: none" in result.stdout


def test_anomalies_stop_the_run_before_training(first_run, workdir):
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    inferred = next((workdir / "out/pipelines/taxi-big-tipper/SchemaGen/schema").glob("*/schema.pbtxt"))
    schema = text_format.Parse(inferred.read_text(), schema_pb2.Schema())
    domain = next(d for d in schema.string_domain if d.name == "payment_type")
    assert "Cash" in domain.value
    domain.value.remove("Cash")  # a curated schema that no longer allows cash payments
    curated = workdir / "schema.pbtxt"
    curated.write_text(text_format.MessageToString(schema))
    before = pushed_versions(workdir)

    result = tfxp(workdir, f"schema.path={curated}")
    assert result.returncode == 1
    assert "AnomaliesGate failed" in result.stderr
    assert "feature 'payment_type'" in result.stderr and "Cash" in result.stderr
    assert "Traceback" not in result.stderr
    states = {e.node_id: e.state for e in latest_run(workdir).executions}
    assert states["AnomaliesGate"] == "FAILED"
    assert "Trainer" not in states and "Pusher" not in states
    assert pushed_versions(workdir) == before
    shown = tfxp(workdir, command="runs")
    assert shown.returncode == 0 and "AnomaliesGate" in shown.stdout


@pytest.fixture(scope="module")
def curated_schema(first_run, workdir):
    """The schema of the first run, exported by `tfxp export-schema` as a user curates it."""
    path = workdir / "curated" / "schema.pbtxt"
    exported = tfxp(workdir, command="export-schema")
    assert exported.returncode == 0, exported.stderr[-2000:]
    produced = workdir / "schema" / "schema.pbtxt"  # the default output, relative to where it runs
    path.parent.mkdir()
    produced.rename(path)
    return path


def _bad_copy(workdir, name, change) -> pathlib.Path:
    import csv

    with open(workdir / "data" / "data.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for number, row in enumerate(rows):
        change(number, row)
    target = workdir / "bad" / name
    target.mkdir(parents=True)
    with open(target / "data.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return target


def _new_payment_type(number, row):
    if number % 5 == 0:
        row["payment_type"] = "Bitcoin"


def _fare_as_words(number, row):
    if number % 10 == 0:
        row["fare"] = "twelve dollars"


def _no_trip_seconds(number, row):
    row["trip_seconds"] = ""


@pytest.mark.parametrize(
    "name, change, expected",
    [
        ("new_category", _new_payment_type, ["feature 'payment_type'", "Bitcoin"]),
    ],
)
def test_bad_data_is_stopped_by_the_curated_schema(curated_schema, workdir, name, change, expected):
    before = pushed_versions(workdir)
    result = tfxp(workdir, f"data.path={_bad_copy(workdir, name, change)}", f"schema.path={curated_schema}")
    assert result.returncode == 1, result.stdout[-2000:]
    assert "AnomaliesGate failed: the data does not match the schema:" in result.stderr
    for text in expected:
        assert text in result.stderr
    assert "curate the schema" in result.stderr and "Traceback" not in result.stderr
    states = {e.node_id: e.state for e in latest_run(workdir).executions}
    assert states["AnomaliesGate"] == "FAILED" and "Transform" not in states
    assert pushed_versions(workdir) == before


@pytest.mark.parametrize(
    "name, change, expected",
    [
        ("numbers_as_strings", _fare_as_words, ["column 'fare': 'twelve dollars' is not a number"]),
        ("null_column", _no_trip_seconds, ["feature 'trip_seconds' has no value in any of the"]),
    ],
)
def test_bad_values_are_stopped_by_the_preflight_before_the_schema(curated_schema, workdir, name, change, expected):
    """What the curated schema also catches, the preflight stops first: one line, exit 2, no component."""
    before = pushed_versions(workdir)
    result = tfxp(workdir, f"data.path={_bad_copy(workdir, name, change)}", f"schema.path={curated_schema}")
    assert result.returncode == 2, result.stdout[-2000:]
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    for text in expected:
        assert text in line
    assert "Traceback" not in result.stderr and "AnomaliesGate" not in result.stderr
    assert pushed_versions(workdir) == before


def _truncate(path):
    text = path.read_text()
    path.write_text(text[: len(text) - 40])


def _semicolons(path):
    path.write_text(path.read_text().replace(",", ";"))


def _latin1(path):
    lines = path.read_text().splitlines(keepends=True)
    path.write_bytes(
        "".join(lines[:-50]).encode() + "".join(lines[-50:]).replace("Cash", "Esp\u00e8ces").encode("latin-1")
    )


def _drop_company(path):
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[c for c in rows[0] if c != "company"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize(
    "name, damage, expected",
    [
        ("truncated", _truncate, "fields, but the header has 18 (a truncated file"),
        ("semicolons", _semicolons, "separates its columns with semicolons, not commas"),
        ("latin1", _latin1, "is not UTF-8 text"),
        ("missing_column", _drop_company, "feature column(s) 'company' named in the"),
    ],
)
def test_broken_files_are_refused_before_any_component(first_run, workdir, name, damage, expected):
    before = pushed_versions(workdir)
    target = workdir / "broken" / name
    target.mkdir(parents=True)
    (target / "data.csv").write_bytes((workdir / "data" / "data.csv").read_bytes())
    damage(target / "data.csv")
    result = tfxp(workdir, f"data.path={target}")
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert pushed_versions(workdir) == before


def test_an_input_edited_in_place_is_read_again_not_taken_from_the_cache(first_run, workdir):
    # Last in this module: it changes the data the other tests share, then puts it back.
    data = workdir / "data" / "data.csv"
    original, stat = data.read_bytes(), data.stat()
    lines = original.split(b"\n")
    first, second = lines[1], lines[2]
    assert first != second
    lines[1], lines[2] = second, first  # two rows swapped: same size, same bytes, other content order
    try:
        data.write_bytes(b"\n".join(lines))
        os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same modification time too
        result = tfxp(workdir, "tuner.enabled=false")
        assert result.returncode == 0, result.stderr[-3000:]
        states = {e.node_id: e.state for e in latest_run(workdir).executions}
        assert states["ExampleGen"] == "COMPLETE", states  # TFX's size+mtime fingerprint would hit
    finally:
        data.write_bytes(original)
        os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
