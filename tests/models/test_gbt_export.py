"""The exported gradient-boosted-trees SavedModel of each task, as TF Serving would run it.

Each task's trees are trained on the tiny sample and exported with warm-up records in a process
of their own (tests/serving/export_tiny_model.py --gbt). The export must pass the serving check
(the warm-up records run through the TF1 session loader TF Serving's mirrors), TensorFlow's own
`saved_model_cli run` on every signature, and the op check under the runtime's TensorFlow and
the serving image's; what it serves must be LightGBM's own prediction of the model it keeps in
assets.extra.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from components.serving_check import check, op_check
from contracts.saved_model import ASSETS_EXTRA, GBT_MODEL_FILE, TRAINER_CHOICE, WEIGHTS_FILE
from tests.conftest import MULTICLASS_CONFIG, REGRESSION_CONFIG
from tests.serving.saved_model_cli import cli_inputs, saved_model_cli

CONFIGS = {"binary": None, "multiclass": MULTICLASS_CONFIG, "regression": REGRESSION_CONFIG}


@pytest.fixture(scope="module")
def exports(transform_dir, task_transform_dirs, tmp_path_factory):
    """{task: (config, transform dir, exported model)}."""
    from pipeline.config import load_config

    out = {}
    for task, config_path in CONFIGS.items():
        if config_path is None:
            config, transform = load_config(None), transform_dir
        else:
            config, transform = task_transform_dirs[task]
        path = tmp_path_factory.mktemp(f"gbt-{task}") / "model"
        flags = ["--config", config_path] if config_path else []
        result = subprocess.run(
            [sys.executable, "-m", "tests.serving.export_tiny_model", str(transform), str(path), "--warmup", "--gbt"]
            + flags,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        out[task] = (config, transform, path)
    return out


@pytest.mark.parametrize("task", sorted(CONFIGS))
def test_the_export_passes_the_serving_check(exports, task):
    _, _, path = exports[task]
    result = check.check(str(path))
    method = "regress" if task == "regression" else "classify"
    assert result.signatures == tuple(sorted((method, "serve_raw", "serving_default", "transform_features")))


@pytest.mark.slow  # twelve saved_model_cli processes, each loading TensorFlow
@pytest.mark.parametrize("task", sorted(CONFIGS))
def test_tensorflows_own_loader_answers_every_signature(exports, task):
    _, _, path = exports[task]
    method = "regress" if task == "regression" else "classify"
    for signature in (method, "serve_raw", "serving_default", "transform_features"):
        result = saved_model_cli(path, signature, cli_inputs(path, signature))
        assert result.returncode == 0, f"{signature}: {result.stderr[-2000:]}"
        assert "Result for output key" in result.stdout


@pytest.mark.parametrize("task", sorted(CONFIGS))
def test_the_export_uses_only_registered_ops_and_keeps_lightgbms_model(exports, task):
    _, _, path = exports[task]
    ops = op_check.op_types(str(path))
    assert op_check.unregistered(ops) == []
    assert "GatherV2" in ops and "SelectV2" in ops  # the trees' walk
    extra = path / ASSETS_EXTRA
    assert (extra / GBT_MODEL_FILE).read_text().startswith("tree\n")
    assert not (extra / WEIGHTS_FILE).exists()
    assert json.loads((extra / TRAINER_CHOICE).read_text())["model"] == "gbt"


def test_the_op_check_under_the_serving_images_tensorflow_passes(exports):
    from tests.serving.side_env import side_env

    paths = [str(exports[task][2]) for task in sorted(CONFIGS)]
    serving_tf = side_env("--print-version").stdout.strip()
    result = side_env("python", "-m", "components.serving_check.op_check", *paths)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [f"OK {p}" for p in paths]
    assert all(line.endswith(f"TensorFlow {serving_tf}") for line in result.stdout.splitlines())


@pytest.mark.parametrize("task", sorted(CONFIGS))
def test_the_served_predictions_are_lightgbms(exports, task, tiny_rows):
    import lightgbm as lgb
    import tensorflow_transform as tft

    from models import model as model_lib
    from models import model_inputs
    from tests.conftest import to_example

    config, transform, path = exports[task]
    spec = model_inputs.from_custom_config(config.model_code_config())
    booster = lgb.Booster(model_file=str(path / ASSETS_EXTRA / GBT_MODEL_FILE))
    loaded = tf.saved_model.load(str(path))
    rows = tiny_rows
    examples = tf.constant(
        [to_example(r, drop=tuple(model_inputs.label_columns(config))).SerializeToString() for r in rows]
    )
    transformed = loaded.signatures["transform_features"](
        examples=tf.constant([to_example(r).SerializeToString() for r in rows])
    )
    x = np.stack([transformed[name].numpy().reshape(-1).astype(np.float64) for name in booster.feature_name()], 1)
    expected = booster.predict(x)
    served = loaded.signatures["serving_default"](examples=examples)
    if task == "regression":
        mean, std = model_lib.target_scale(spec, tft.TFTransformOutput(str(transform)))
        expected = mean + std * expected
        if spec.label.log_transform:
            expected = np.expm1(expected)
        actual = served["predictions"].numpy()
    else:
        actual = served["probabilities"].numpy()
    # float32 outputs (as the DNN's) of LightGBM's float64 predictions.
    np.testing.assert_allclose(actual.reshape(expected.shape), expected, rtol=1e-5, atol=1e-5)
    assert np.std(expected) > 0, "the trees answer the same for every row: the test would not see a wrong route"
