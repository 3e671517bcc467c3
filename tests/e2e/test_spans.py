"""End to end: the continuous-training loop over three spans, run by `tfxp add-span`.

Span 1 trains and pushes; span 2 (similar data) is checked for drift against span 1, trains,
is evaluated against span 1's served model and pushed; span 3 (fares scaled up) is stopped
by the drift gate before Transform, and serving still points at span 2's model. Accepting the
drift for one run lets span 3 through and is recorded in ML Metadata.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

ROWS_PER_SPAN = 2500
SPAN_PATTERN = "span-{SPAN}/*.csv"


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    from pipeline.sample_drops import write_drops

    work = tmp_path_factory.mktemp("spans")
    drops = write_drops(str(work / "drops"), ROWS_PER_SPAN)
    (work / "data").mkdir()
    results = {number: tfxp(work, "add-span", drops[number - 1]) for number in (1, 2)}
    # Serving has been answering requests like the drifted drop: span 2 is skewed from them.
    _log_requests(work / "requests", drops[2])
    results["skew"] = tfxp(work, "run", overrides=(f"drift.serving_requests={work / 'requests'}",))
    results[3] = tfxp(work, "add-span", drops[2])
    return work, results


def _log_requests(directory: pathlib.Path, csv_path: str, rows: int = 400) -> None:
    import csv

    from components.drift_check.request_log import RequestLogger
    from tests.conftest import to_example

    with open(csv_path, newline="") as f:
        examples = [to_example(row, drop=("tips",)).SerializeToString() for row in list(csv.DictReader(f))[:rows]]
    logger = RequestLogger(str(directory))
    for start in range(0, len(examples), 50):
        logger.log("taxi", "serving_default", examples[start : start + 50])
    logger.close()


def tfxp(work: pathlib.Path, command: str, *args: str, overrides: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    options = [
        f"data.path={work / 'data'}",
        f"data.span_pattern={SPAN_PATTERN}",
        f"output_dir={work / 'out'}",
        "tuner.enabled=false",
        "trainer.train_steps=300",
        "trainer.eval_steps=20",
        # Spans of 2500 rows give test AUCs a few points apart by chance alone.
        "evaluator.max_auc_decrease=0.1",
        *overrides,
    ]
    return subprocess.run(
        [sys.executable, "-m", "tfxp", command, *args, *[a for o in options for a in ("--set", o)]],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=work,
    )


def served(work) -> list[pathlib.Path]:
    return sorted(p for p in (work / "out/serving/taxi").iterdir() if p.is_dir())


def runs(work, limit=4):
    from ops.runs import runs as recorded_runs

    return recorded_runs(str(work / "out/metadata/taxi-big-tipper/metadata.sqlite"), "taxi-big-tipper", limit=limit)


def span_runs(work):
    """The three add-span runs, oldest first (the skew run between spans 2 and 3 left out)."""
    every = list(reversed(runs(work, 10)))
    return every[0], every[1], every[3]


def test_each_drop_became_the_next_span(loop):
    work, results = loop
    for number in (1, 2, 3):
        added = work / "data" / f"span-{number}" / f"drop-{number}.csv"
        assert f"added span {number}: {added}" in results[number].stdout
    first, second, third = span_runs(work)
    assert (first.span, first.drift_baseline_span) == (1, None)
    assert (second.span, second.drift_baseline_span) == (2, 1)
    assert (third.span, third.drift_baseline_span) == (3, 2)


def test_span_1_trains_and_pushes(loop):
    work, results = loop
    assert results[1].returncode == 0, results[1].stderr[-3000:]
    first = span_runs(work)[0]
    assert first.blessed is True and first.pushed_to == str(served(work)[0])


def test_span_2_is_compared_with_span_1s_model_and_pushed(loop):
    work, results = loop
    assert results[2].returncode == 0, results[2].stderr[-3000:]
    second = span_runs(work)[1]
    states = {e.node_id: e.state for e in second.executions}
    assert states["Transform"] == "COMPLETE" and states["Trainer"] == "COMPLETE"  # new data, new model
    first_push, second_push = served(work)
    assert second.baseline == str(first_push)
    assert second.blessed is True and second.pushed_to == str(second_push)


def test_span_2_skewed_from_logged_requests_is_stopped(loop):
    work, results = loop
    result = results["skew"]
    assert result.returncode == 1, result.stdout[-2000:]
    assert "feature 'fare (serving)': Skew between training and serving:" in result.stderr
    assert "between training and serving" in result.stderr
    skew_run = runs(work, 10)[1]
    assert skew_run.span == 2 and skew_run.pushed_to is None
    assert "Transform" not in {e.node_id for e in skew_run.executions}


def test_span_3_drifted_and_is_stopped_before_training(loop):
    work, results = loop
    result = results[3]
    assert result.returncode == 1
    assert (
        "AnomaliesGate failed: the data drifted (from the last accepted span, or from what serving receives):"
    ) in result.stderr
    assert "feature 'fare': Drift from the previous span: The approximate Jensen-Shannon divergence" in result.stderr
    assert "--set drift.accept=true" in result.stderr
    assert "no model was pushed by this run" in result.stderr
    third = span_runs(work)[2]
    nodes = {e.node_id for e in third.executions}
    assert "Transform" not in nodes and "Trainer" not in nodes and "Pusher" not in nodes
    assert third.pushed_to is None
    assert len(served(work)) == 2  # nothing new: span 1's model stable, span 2's the canary


def test_accepting_the_drift_lets_span_3_through_and_is_recorded(loop):
    from components.drift_check import drift

    work, _ = loop
    accepted = tfxp(work, "run", overrides=("drift.accept=true",))
    assert accepted.returncode == 0, accepted.stderr[-3000:]
    latest = runs(work, 1)[0]
    assert latest.span == 3 and latest.drift_accepted is True
    assert "data span: 3 (compared with span 2); drift accepted (drift.accept)" in accepted.stdout
    assert drift.accepted_spans(str(work / "out/pipelines/taxi-big-tipper/AcceptedStatistics")) == [1, 2, 3]


def test_lineage_names_the_span_schema_and_hyperparameters_of_each_push(loop):
    work, _ = loop
    first, second = served(work)[:2]
    for version, span in ((first, 1), (second, 2)):
        shown = tfxp(work, "lineage", version.name)
        assert shown.returncode == 0, shown.stderr[-2000:]
        assert f"version {version.name}: {version}" in shown.stdout
        assert f"data span(s): {span}\n" in shown.stdout
        assert f"data: {work / 'data' / f'span-{span}' / '*.csv'}" in shown.stdout
        assert "/SchemaGen/schema/" in shown.stdout and "(inferred)" in shown.stdout
        assert '"train_steps": 300' in shown.stdout
        assert "test-split metrics: auc=" in shown.stdout


def test_promote_and_rollback_move_the_stable_label(loop):
    from contracts.model_config import read_config

    work, _ = loop
    serving = work / "out/serving/taxi"
    first, newest = served(work)[0], served(work)[-1]
    # Span 1's push is stable; each later push took the canary label (pusher.rollout: canary).
    labels = read_config(str(serving), "taxi").labels
    assert labels == {"stable": int(first.name), "canary": int(newest.name)}
    promoted = tfxp(work, "promote", "--skip-checks")
    assert promoted.returncode == 0, promoted.stderr[-2000:]
    assert f"version {newest.name} is stable (was {first.name}); live checks skipped (--skip-checks)" in promoted.stdout
    rolled = tfxp(work, "rollback")
    assert rolled.returncode == 0, rolled.stderr[-2000:]
    assert f"version {first.name} is stable again (was {newest.name})" in rolled.stdout
    assert read_config(str(serving), "taxi").labels == {"stable": int(first.name), "canary": int(first.name)}


def test_the_inferred_schema_exports_for_curation(loop):
    import tensorflow_data_validation as tfdv

    work, _ = loop
    exported = tfxp(work, "export-schema", "--output", str(work / "schema.pbtxt"))
    assert exported.returncode == 0, exported.stderr[-2000:]
    schema = tfdv.load_schema_text(str(work / "schema.pbtxt"))
    assert list(schema.default_environment) == ["TRAINING", "SERVING"]
    features = {f.name: f for f in schema.feature}
    assert list(features["tips"].not_in_environment) == ["SERVING"]
    assert not features["fare"].not_in_environment  # a feature too, not only the label's input
    assert f"--set schema.path={work / 'schema.pbtxt'}" in exported.stdout
