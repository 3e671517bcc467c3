"""Each bundled config's compiled pipeline against its golden file (tests/pipeline/golden/NAME.yaml).

Any change to what `tfxp compile` writes shows up here as a diff to review, the way the kfp SDK
tests its compiler. Versions and content hashes are normalised so that only real changes count.
After an intended change: `TFXP_UPDATE_GOLDEN=1 scripts/runtime.sh python -m pytest
tests/pipeline/test_compiled_golden.py`, then review and commit the new golden files.
"""

from __future__ import annotations

import difflib
import os
import pathlib
import re

import pytest

GOLDEN_DIR = pathlib.Path(__file__).parent / "golden"
CONFIGS = sorted((pathlib.Path(__file__).resolve().parents[2] / "pipeline" / "configs").glob("*.yaml"))
IMAGE = "registry.example.com/ml/tfx-kfp-pipeline:1.0.0"
# Variants of a bundled config that change the compiled structure: golden name -> (config, overrides).
VARIANTS = {
    # KFP's exit handler (pipeline/kfp_exit_handler.py): the DAG in a sub-DAG, the notifying exit task.
    "taxi_exit_handler.yaml": (
        "taxi.yaml",
        ["kubeflow.secrets.TFXP_NOTIFY_URL=tfxp-webhook/url", "kubeflow.exit_handler=true"],
    ),
}

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


def test_every_bundled_config_and_variant_has_a_golden_file():
    assert sorted(p.name for p in GOLDEN_DIR.glob("*.yaml")) == sorted([c.name for c in CONFIGS] + list(VARIANTS))


CASES = [(c.name, c, []) for c in CONFIGS] + [
    (name, CONFIGS[0].parent / config, overrides) for name, (config, overrides) in VARIANTS.items()
]


@pytest.mark.parametrize("golden_name,config,overrides", CASES, ids=[c[0].removesuffix(".yaml") for c in CASES])
def test_the_compiled_pipeline_matches_the_golden_file(golden_name, config, overrides, tmp_path):
    from pipeline import kubeflow_runner
    from pipeline.config import load_config

    path = tmp_path / "pipeline.yaml"
    kubeflow_runner.compile_pipeline(load_config(str(config), [f"kubeflow.image={IMAGE}", *overrides]), str(path))
    compiled = normalise(path.read_text())
    golden_file = GOLDEN_DIR / golden_name
    if os.environ.get("TFXP_UPDATE_GOLDEN"):
        golden_file.write_text(compiled)
    golden = golden_file.read_text()
    diff = list(difflib.unified_diff(golden.splitlines(), compiled.splitlines(), "golden", "compiled", lineterm=""))
    assert not diff, (
        f"the compiled pipeline of {golden_name} differs from tests/pipeline/golden/{golden_name}; if intended, "
        "update it with TFXP_UPDATE_GOLDEN=1 (see this module's docstring):\n" + "\n".join(diff[:80])
    )
