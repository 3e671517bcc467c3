"""End to end: trainer.model gbt on the bundled binary, multiclass and regression configs, and auto
on the binary one, each run by the tfxp command on a slice of the taxi sample: the run pushes the
trees (or auto's pick), ServingCheck passes, and the pushed model answers through TensorFlow's
own loader with stock ops only."""

from __future__ import annotations

import json
import pathlib

import pytest

from contracts.saved_model import ASSETS_EXTRA, GBT_MODEL_FILE, TRAINER_CHOICE, WEIGHTS_FILE
from tests.e2e.test_task_configs import _tfxp_run, data_dir  # noqa: F401 - data_dir is a fixture

pytestmark = pytest.mark.slow

RUNS = {
    # (config, pipeline name, trainer.model)
    "binary-gbt": ("taxi.yaml", "taxi-big-tipper", "gbt"),
    "multiclass-gbt": ("taxi_multiclass.yaml", "taxi-payment-type", "gbt"),
    "regression-gbt": ("taxi_regression.yaml", "taxi-fare", "gbt"),
    "binary-auto": ("taxi.yaml", "taxi-big-tipper", "auto"),
}


@pytest.fixture(scope="module", params=sorted(RUNS))
def gbt_run(request, data_dir, tmp_path_factory):  # noqa: F811 - the imported fixture
    config_file, pipeline_name, model = RUNS[request.param]
    work = tmp_path_factory.mktemp(f"e2e-{request.param}")
    result = _tfxp_run(config_file, data_dir, work, f"trainer.model={model}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    from ops.runs import runs as recorded_runs

    run = recorded_runs(str(work / f"out/metadata/{pipeline_name}/metadata.sqlite"), pipeline_name, limit=1)[0]
    return request.param, model, result, run


def test_the_run_pushes_a_model_that_passes_the_serving_check(gbt_run):
    _, model, result, run = gbt_run
    assert run.blessed is True and run.pushed_to
    assert "serving check: passed" in result.stdout
    # gbt has no Tuner (it tunes the DNN only): one component fewer. RunPage comes last.
    steps = 14 if model == "gbt" else 15
    assert f"[{steps - 1}/{steps}] Pusher done" in result.stdout and f"[{steps}/{steps}] RunPage done" in result.stdout
    assert ("Tuner" in result.stdout) is (model != "gbt")


def test_the_pushed_model_records_what_the_trainer_chose(gbt_run):
    name, model, _, run = gbt_run
    extra = pathlib.Path(run.pushed_to) / ASSETS_EXTRA
    choice = json.loads((extra / TRAINER_CHOICE).read_text())
    assert choice["configured"] == model
    if model == "gbt":
        assert choice["model"] == "gbt"
    else:
        assert set(choice["eval_scores"]) == {"dnn", "gbt"} and choice["objective"] == "val_auc"
        network_clearly_better = choice["network_lead_z"] is None or choice["network_lead_z"] > choice["needed_z"]
        assert choice["model"] == ("dnn" if network_clearly_better else "gbt")
    kept = GBT_MODEL_FILE if choice["model"] == "gbt" else WEIGHTS_FILE
    assert (extra / kept).exists()


def test_the_pushed_model_runs_with_stock_ops_through_tensorflows_loader(gbt_run):
    from components.serving_check import op_check
    from tests.serving.saved_model_cli import cli_inputs, saved_model_cli

    name, _, _, run = gbt_run
    assert op_check.unregistered(op_check.op_types(run.pushed_to)) == []
    signature = "regress" if name.startswith("regression") else "classify"
    result = saved_model_cli(run.pushed_to, signature, cli_inputs(run.pushed_to, signature))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Result for output key" in result.stdout
