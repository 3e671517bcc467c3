"""The serving check on the project's own export and on the export it replaced.

The regression this guards against: Keras 3 models saved with `tf.saved_model.save` run under
`tf.saved_model.load` but not in TF Serving, whose loader restores the checkpoint into a TF1
session. Both the check and TensorFlow's own `saved_model_cli run` (the same loader) must
refuse the old export and answer the new one on every signature.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from components.serving_check import check
from components.serving_warmup import warmup
from contracts.saved_model import ASSETS_EXTRA, WARMUP_FILE
from tests.serving.saved_model_cli import cli_inputs, saved_model_cli

SIGNATURES = ("classify", "serve_raw", "serving_default", "transform_features")


def _export(transform_dir, path, *flags):
    subprocess.run(
        [sys.executable, "-m", "tests.serving.export_tiny_model", str(transform_dir), str(path), "--warmup", *flags],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return path


@pytest.fixture(scope="module")
def exported(transform_dir, tmp_path_factory):
    return _export(transform_dir, tmp_path_factory.mktemp("export") / "model")


@pytest.fixture(scope="module")
def legacy(transform_dir, tmp_path_factory):
    return _export(transform_dir, tmp_path_factory.mktemp("legacy") / "model", "--legacy")


def test_the_projects_export_passes_on_every_signature(exported):
    result = check.check(str(exported))
    assert result.signatures == SIGNATURES
    # two batch sizes for each examples signature, one record for the others
    assert result.records == 6


def test_the_old_export_is_refused_naming_the_signature_and_the_variable(legacy):
    with pytest.raises(check.ServingCheckFailed) as refused:
        check.check(str(legacy))
    message = str(refused.value)
    assert "\n" not in message
    assert "warm-up record 0" in message and 'signature "classify"' in message
    assert "Could not find variable" in message


@pytest.mark.parametrize("signature", SIGNATURES)
def test_tensorflows_own_loader_answers_every_signature_of_the_export(exported, signature):
    result = saved_model_cli(exported, signature, cli_inputs(exported, signature))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Result for output key" in result.stdout


def test_tensorflows_own_loader_fails_the_old_export(legacy):
    result = saved_model_cli(legacy, "serving_default", cli_inputs(legacy, "serving_default"))
    assert result.returncode != 0
    assert "Could not find variable" in result.stderr


def test_a_model_without_warm_up_records_is_refused(exported, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(exported, bare)
    (bare / ASSETS_EXTRA / WARMUP_FILE).unlink()
    with pytest.raises(check.ServingCheckFailed, match="no signature would run"):
        check.check(str(bare))


def test_a_signature_no_warm_up_record_runs_is_refused(exported, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(exported, partial)
    kept = [log for log in warmup.read_warmup(str(partial)) if warmup.logged_signature(log) != "serve_raw"]
    warmup.write_warmup(str(partial), kept)
    with pytest.raises(check.ServingCheckFailed, match="serve_raw have no warm-up record"):
        check.check(str(partial))


def test_the_command_line_check_exits_1_on_a_refused_model(exported, legacy):
    out = subprocess.run(
        [sys.executable, "-m", "components.serving_check.check", str(exported), str(legacy)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"OK {exported}") and lines[1].startswith(f"REFUSED {legacy}")


def test_the_check_under_the_serving_images_tensorflow_passes_the_export_and_refuses_the_old_one(exported, legacy):
    from tests.serving.side_env import side_env

    serving_tf = side_env("--print-version").stdout.strip()
    out = side_env("python", "-m", "components.serving_check.check", str(exported), str(legacy))
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"OK {exported} (TensorFlow {serving_tf})"), out.stdout + out.stderr[-2000:]
    assert lines[1].startswith(f"REFUSED {legacy} (TensorFlow {serving_tf})")
