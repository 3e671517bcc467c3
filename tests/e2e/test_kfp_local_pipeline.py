"""The compiled pipeline, run as compiled: kfp.local's container runner, every step in our image.

The lighter of two proofs: tests/kfp_backend runs the same YAML as the KFP 2.5 backend does.

One run of the compiled YAML on a slice of the taxi sample: it trains, is blessed (nothing is
served yet: the candidate is evaluated alone, by its value thresholds) and pushes, and the pushed
model answers on TF Serving's loading path. The refused second run and the cache are proven on
the backend's contract in tests/kfp_backend.

Needs the podman API and the image: `make test` (or `make test-slow`) provides both.
"""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest

from components.serving_baseline.executor import NOTHING_SERVED
from tests.conftest import NEEDS_PODMAN_AND_IMAGE
from tests.e2e.test_local_pipeline import SAMPLE_ROWS

pytestmark = [pytest.mark.slow, NEEDS_PODMAN_AND_IMAGE]

# The checkout is mounted at the same path on the host and in the runtime environment, so a
# folder in it is one that the containers can mount too (kfp.local mounts only the root).
WORK = pathlib.Path(__file__).resolve().parents[2] / "build" / "kfp-local-test"


def _config(*overrides):
    from pipeline.config import load_config

    root = WORK / "root"
    return load_config(
        None,
        [
            f"kubeflow.image={os.environ['TFXP_IMAGE']}",
            f"kubeflow.state_root={root / 'state'}",
            f"kubeflow.data_root={root / 'data'}",
            f"kubeflow.serving_root={root / 'serving'}",
            "kubeflow.pvc=",
            "trainer.train_steps=300",
            "trainer.eval_steps=20",
            "tuner.max_trials=1",
            "tuner.train_steps=30",
            "tuner.eval_steps=10",
            *overrides,
        ],
    )


def _outputs_of(run_root: pathlib.Path, task: str) -> dict:
    """The executor output of a task in a kfp.local run."""
    from tests.kfp_local_runner import executor_outputs, task_folder

    outputs = executor_outputs(str(run_root))
    assert task_folder(task) in outputs, (task, sorted(outputs))
    return outputs[task_folder(task)]


def _custom_property(output: dict, key: str, name: str):
    [artifact] = output["artifacts"][key]["artifacts"]
    return artifact["metadata"].get(name)


def _versions(root: pathlib.Path) -> list[pathlib.Path]:
    serving = root / "serving" / "taxi"
    return sorted(p for p in serving.iterdir() if p.is_dir()) if serving.exists() else []


@pytest.fixture(scope="module")
def compiled(taxi_config):
    from pipeline import kubeflow_runner

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "root" / "data").mkdir(parents=True)
    rows = pathlib.Path(taxi_config.data.path, "data.csv").read_text().splitlines(keepends=True)
    (WORK / "root" / "data" / "data.csv").write_text("".join(rows[: SAMPLE_ROWS + 1]))
    path = WORK / "pipeline.yaml"
    kubeflow_runner.compile_pipeline(_config(), str(path), allow_local_image=True)
    yield path
    shutil.rmtree(WORK, ignore_errors=True)


@pytest.fixture(scope="module")
def first_run(compiled):
    return _run(compiled)


def _run(compiled, arguments=None) -> pathlib.Path:
    """Runs the compiled pipeline; returns the new run's folder (kfp.local names it after the pipeline)."""
    from tests import kfp_local_runner as kfp_local

    runs = lambda: set((WORK / "root").glob("taxi-big-tipper-*"))  # noqa: E731
    before = runs()
    kfp_local.run(str(compiled), str(WORK / "root"), arguments)
    [run_root] = runs() - before
    return run_root


def test_every_step_ran_and_the_model_was_blessed_and_pushed(first_run):
    from tests.kfp_local_runner import executor_outputs

    # every TFX task wrote its executor output (DataFingerprint has only an output parameter)
    assert len(executor_outputs(str(first_run))) >= 14
    blessing = _outputs_of(first_run, "Evaluator")
    assert _custom_property(blessing, "blessing", "blessed") == 1
    baseline = _outputs_of(first_run, "ServingBaseline")
    assert _custom_property(baseline, "baseline_model", "baseline_source") == NOTHING_SERVED
    assert len(_versions(WORK / "root")) == 1


def test_the_pushed_model_loads_and_predicts(first_run, tiny_rows):
    from components.serving_check.loader import SessionModel
    from tests.conftest import to_example

    [version] = _versions(WORK / "root")
    examples = [to_example(r, drop=("tips",)).SerializeToString() for r in tiny_rows[:3]]
    with SessionModel(str(version)) as model:  # TF Serving's loading path
        assert model.run("serving_default", {"examples": examples})["probabilities"].shape == (3,)
