"""The serving check on the project's own export and on the export it replaced.

The regression this guards against: Keras 3 models saved with `tf.saved_model.save` run under
`tf.saved_model.load` but not in TF Serving, whose loader restores the checkpoint into a TF1
session. Both the check and TensorFlow's own `saved_model_cli run` (the same loader) must
refuse the old export and answer the new one on every signature.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from components.serving_check import check
from components.serving_warmup import warmup

SIGNATURES = ("classify", "serve_raw", "serving_default", "transform_features")


def _export(transform_dir, path, *flags):
    subprocess.run([sys.executable, "-m", "tests.serving.export_tiny_model", str(transform_dir), str(path),
                    "--warmup", *flags], check=True, capture_output=True, timeout=600)
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


def _saved_model_cli(model_dir, signature: str, inputs: str):
    return subprocess.run(["saved_model_cli", "run", "--dir", str(model_dir), "--tag_set", "serve",
                           "--signature_def", signature, *inputs.split(" ", 1)],
                          capture_output=True, text=True, timeout=300)


def _cli_inputs(model_dir, signature: str) -> str:
    """saved_model_cli arguments for one row of the tiny sample (labels left out)."""
    row = {"fare": [6.5], "trip_miles": [1.2], "company": ["Taxi Affiliation Services"],
           "payment_type": ["Cash"], "trip_start_hour": [3]}
    if signature == "serve_raw":
        defs = warmup.signature_defs(str(model_dir))[signature]
        values = {name: (["x"] if spec.dtype == 7 else [0]) for name, spec in defs.inputs.items()}
        values.update({k: v for k, v in row.items() if k in values})
        return "--input_exprs " + ";".join(f"{k}={json.dumps(v)}" for k, v in values.items())
    alias = "inputs" if signature == "classify" else "examples"
    return f"--input_examples {alias}={json.dumps([row])}"


@pytest.mark.parametrize("signature", SIGNATURES)
def test_tensorflows_own_loader_answers_every_signature_of_the_export(exported, signature):
    result = _saved_model_cli(exported, signature, _cli_inputs(exported, signature))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Result for output key" in result.stdout


def test_tensorflows_own_loader_fails_the_old_export(legacy):
    result = _saved_model_cli(legacy, "serving_default", _cli_inputs(legacy, "serving_default"))
    assert result.returncode != 0
    assert "Could not find variable" in result.stderr


def test_a_model_without_warm_up_records_is_refused(exported, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(exported, bare)
    (bare / warmup.WARMUP_DIR / warmup.WARMUP_FILE).unlink()
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
    out = subprocess.run([sys.executable, "-m", "components.serving_check.check", str(exported), str(legacy)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"OK {exported}") and lines[1].startswith(f"REFUSED {legacy}")
