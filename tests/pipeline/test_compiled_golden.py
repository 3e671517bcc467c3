"""The compiled pipeline against a golden file (tests/pipeline/golden/pipeline.yaml).

Any change to what `tfxp compile` writes shows up here as a diff to review, the way the kfp SDK
tests its compiler. Versions and content hashes are normalised so that only real changes count.
After an intended change: `TFXP_UPDATE_GOLDEN=1 scripts/runtime.sh python -m pytest
tests/pipeline/test_compiled_golden.py`, then review and commit the new golden file.
"""

from __future__ import annotations

import difflib
import os
import pathlib
import re

GOLDEN = pathlib.Path(__file__).parent / "golden" / "pipeline.yaml"
IMAGE = "registry.example.com/ml/tfx-kfp-pipeline:1.0.0"

_NORMALISE = [
    (re.compile(r'(\\*"code_version\\*": \\*")[0-9a-f]{16}'), r"\1<model code hash>"),
    (re.compile(r"sdkVersion: tfx-[0-9.]+"), "sdkVersion: tfx-<version>"),
    (re.compile(r"--update_compatibility_version=[0-9.]+"), "--update_compatibility_version=<beam version>"),
]


def normalise(text: str) -> str:
    for pattern, replacement in _NORMALISE:
        text = pattern.sub(replacement, text)
    return text


def test_normalise_hides_versions_and_hashes_only():
    text = (
        'sdkVersion: tfx-1.21.0\n{\\"code_version\\": \\"0123456789abcdef\\"} --update_compatibility_version=2.77.0 x'
    )
    assert normalise(text) == (
        'sdkVersion: tfx-<version>\n{\\"code_version\\": \\"<model code hash>\\"} '
        "--update_compatibility_version=<beam version> x"
    )


def test_the_compiled_pipeline_matches_the_golden_file(tmp_path):
    from pipeline import kubeflow_runner
    from pipeline.config import load_config

    path = tmp_path / "pipeline.yaml"
    kubeflow_runner.compile_pipeline(load_config(None, [f"kubeflow.image={IMAGE}"]), str(path))
    compiled = normalise(path.read_text())
    if os.environ.get("TFXP_UPDATE_GOLDEN"):
        GOLDEN.write_text(compiled)
    golden = GOLDEN.read_text()
    diff = list(difflib.unified_diff(golden.splitlines(), compiled.splitlines(), "golden", "compiled", lineterm=""))
    assert not diff, (
        "the compiled pipeline differs from tests/pipeline/golden/pipeline.yaml; if intended, "
        "update it with TFXP_UPDATE_GOLDEN=1 (see this module's docstring):\n" + "\n".join(diff[:80])
    )
