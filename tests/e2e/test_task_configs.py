"""End to end: the bundled multiclass and regression configs, and the binary one with a timestamp
feature and crosses, each run by the tfxp command on a slice of the taxi sample, push a model
that TF Serving's loading path answers on the task's signature, with the task's TFMA metrics."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

SAMPLE_ROWS = 3000
CONFIGS = {
    "multiclass": ("taxi_multiclass.yaml", "taxi-payment-type", "taxi_payment_type"),
    "regression": ("taxi_regression.yaml", "taxi-fare", "taxi_fare"),
    "timestamp": ("taxi_timestamp.yaml", "taxi-timestamp", "taxi_timestamp"),
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, taxi_config) -> pathlib.Path:
    work = tmp_path_factory.mktemp("tasks-data")
    source = pathlib.Path(taxi_config.data.path, "data.csv").read_text().splitlines(keepends=True)
    (work / "data.csv").write_text("".join(source[: SAMPLE_ROWS + 1]))
    return work


def _tfxp_run(config_file: str, data_dir: pathlib.Path, work: pathlib.Path, *settings: str):
    """`tfxp run` of a bundled config on the sample slice, short training; settings are --set's."""
    args = [sys.executable, "-m", "tfxp", "run", "--config", f"package://pipeline/configs/{config_file}"]
    for setting in (
        f"data.path={data_dir}",
        f"output_dir={work / 'out'}",
        "trainer.train_steps=300",
        "trainer.eval_steps=20",
        "tuner.max_trials=1",
        "tuner.train_steps=30",
        "tuner.eval_steps=10",
        *settings,
    ):
        args += ["--set", setting]
    return subprocess.run(args, capture_output=True, text=True, timeout=1200, cwd=work)


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def task_run(request, data_dir, tmp_path_factory):
    task = request.param
    config_file, pipeline_name, model_name = CONFIGS[task]
    work = tmp_path_factory.mktemp(f"e2e-{task}")
    result = _tfxp_run(config_file, data_dir, work)
    assert result.returncode == 0, result.stderr[-3000:]
    from ops.runs import runs as recorded_runs

    run = recorded_runs(str(work / f"out/metadata/{pipeline_name}/metadata.sqlite"), pipeline_name, limit=1)[0]
    return task, result, run, work / "out/serving" / model_name


def test_the_run_pushes_a_blessed_model(task_run):
    _, result, run, serving = task_run
    assert run.blessed is True and run.pushed_to
    assert pathlib.Path(run.pushed_to).parent == serving
    assert "[14/15] Pusher done" in result.stdout and f"pushed model: {run.pushed_to}" in result.stdout
    assert "serving check: passed" in result.stdout


def test_the_tasks_tfma_metrics_exist(task_run):
    task, result, run, _ = task_run
    if task == "multiclass":
        assert {"accuracy", "macro_f1_score", "macro_auc", "example_count"} <= set(run.metrics)
        for name in ("precision", "recall", "f1_score", "auc"):
            assert f"{name}/classId:0" in run.metrics and f"{name}/classId:3" in run.metrics
        assert run.metrics["accuracy"] >= 0.8  # the config's min_accuracy blessed it
        assert "test-split metrics: accuracy=" in result.stdout and "    class 0 (Cash): precision=" in result.stdout
    elif task == "timestamp":
        assert run.metrics["auc"] >= 0.52  # the first-run gate blessed it: AUC 0.5 + first_run_margin
        assert "test-split metrics: auc=" in result.stdout
        assert "first-run gate: auc >= 0.52 (class priors 0.5 + margin 0.02" in result.stdout
    else:
        assert {
            "mean_absolute_error",
            "mean_squared_error",
            "root_mean_squared_error",
            "mean_absolute_percentage_error",
            "calibration",
        } <= set(run.metrics)
        assert run.metrics["mean_absolute_error"] <= 4.0  # in dollars: the config's max_mae
        assert abs(run.metrics["root_mean_squared_error"] ** 2 - run.metrics["mean_squared_error"]) < 1e-3 * (
            run.metrics["mean_squared_error"] + 1
        )
        assert 0.5 < run.metrics["calibration"] < 1.5
        assert "test-split metrics: mean_absolute_error=" in result.stdout


def test_tf_servings_loading_path_answers_the_tasks_signature(task_run, tiny_rows):
    from tensorflow_serving.apis import classification_pb2, regression_pb2

    from components.serving_check import loader, tf_serving_requests
    from tests.conftest import to_example

    task, _, run, _ = task_run
    label = {"multiclass": "payment_type", "regression": "fare", "timestamp": "tips"}[task]
    examples = [to_example(r, drop=(label,)) for r in tiny_rows[:6]]
    with loader.SessionModel(run.pushed_to) as model:
        if task == "timestamp":
            request = classification_pb2.ClassificationRequest()
            request.model_spec.signature_name = "classify"
            request.input.example_list.examples.extend(examples)
            answer = tf_serving_requests.classify(model, request, method_name_check=True)
            assert len(answer.result.classifications) == 6
            for classification in answer.result.classifications:
                assert [c.label for c in classification.classes] == ["0", "1"]
                assert abs(sum(c.score for c in classification.classes) - 1.0) < 1e-5
        elif task == "multiclass":
            request = classification_pb2.ClassificationRequest()
            request.model_spec.signature_name = "classify"
            request.input.example_list.examples.extend(examples)
            answer = tf_serving_requests.classify(model, request, method_name_check=True)
            for classification in answer.result.classifications:
                assert [c.label for c in classification.classes] == ["Cash", "Credit Card", "No Charge", "Unknown"]
                assert abs(sum(c.score for c in classification.classes) - 1.0) < 1e-5
        else:
            request = regression_pb2.RegressionRequest()
            request.model_spec.signature_name = "regress"
            request.input.example_list.examples.extend(examples)
            answer = tf_serving_requests.regress(model, request, method_name_check=True)
            values = [r.value for r in answer.result.regressions]
            assert len(values) == 6 and all(0 < v < 200 for v in values)  # dollars


def test_tensorflows_saved_model_cli_runs_the_tasks_signature(task_run):
    from tests.serving.saved_model_cli import cli_inputs, saved_model_cli

    task, _, run, _ = task_run
    signature = "regress" if task == "regression" else "classify"
    result = saved_model_cli(run.pushed_to, signature, cli_inputs(run.pushed_to, signature))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Result for output key {'outputs' if task == 'regression' else 'scores'}" in result.stdout


# The bundled configs with their hand-set thresholds removed, as the README's "Your own data"
# writes a config: no value threshold, so the first-run gate from the data decides.
WITHOUT_THRESHOLDS = {
    "multiclass": ("evaluator.min_accuracy=null", "evaluator.max_accuracy_decrease=null"),
    "regression": ("evaluator.max_mae=null", "evaluator.max_mae_increase=null"),
}
GATE_LINES = {
    "multiclass": "first-run gate: accuracy >= ",
    "regression": "first-run gate: mean_absolute_error <= ",
}


@pytest.fixture(scope="module", params=sorted(WITHOUT_THRESHOLDS))
def first_run(request, data_dir, tmp_path_factory):
    task = request.param
    config_file, pipeline_name, _ = CONFIGS[task]
    work = tmp_path_factory.mktemp(f"e2e-first-{task}")
    result = _tfxp_run(config_file, data_dir, work, *WITHOUT_THRESHOLDS[task])
    return task, result, work, config_file, pipeline_name


def test_a_first_run_without_thresholds_pushes_past_its_gate_from_the_data(first_run):
    task, result, _, _, _ = first_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "blessed: yes" in result.stdout and "pushed model: none" not in result.stdout
    assert GATE_LINES[task] in result.stdout and "evaluator.first_run_margin" in result.stdout
    if task == "regression":
        assert "first-run gate: root_mean_squared_error <= " in result.stdout


def test_a_refused_run_exits_3_and_names_the_metric_and_its_key(first_run, data_dir):
    task, _, work, config_file, _ = first_run
    if task != "multiclass":
        pytest.skip("one refused run is enough: the multiclass one, with an impossible min_accuracy")
    # A second run on the first one's outputs, with the first one's model served as the baseline.
    result = _tfxp_run(config_file, data_dir, work, *WITHOUT_THRESHOLDS[task], "evaluator.min_accuracy=0.999")
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    assert "blessed: no" in result.stdout and "pushed model: none" in result.stdout
    assert "is below the threshold 0.999: evaluator.min_accuracy" in result.stdout
    assert "class 0 (Cash): " in result.stdout  # the candidate's classes, although it was refused
