"""The compiled pipeline, run as the KFP 2.5 backend runs it (tests/kfp_backend/harness.py), every task in our image.

A span pipeline on the default Kubeflow settings (artifacts in the object store of
minio://mlpipeline/v2/artifacts, data, serving directory and accepted statistics on the PVC):
1. span 1: every task runs, with remote output URIs, the executor-logs output and untyped
   inputs, as the restricted pod its compiled security context makes (read-only root file
   system, writable only its emptyDirs and the PVC), and a model is pushed to the PVC's serving
   directory; the run page's artifacts are uploaded and recorded with KFP's system.* types;
2. span 2 lands in the same data_root: DataFingerprint changes, so ExampleGen is not served
   from the cache, resolves span 2 itself, and the new model is judged against the served one;
3. the same data with a stricter eval_config: ExampleGen to Trainer come from the cache, the
   Evaluator refuses and nothing is pushed.

Needs the podman API and the image: `make test` (or `make test-slow`) provides both.
"""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest
import yaml

from components.serving_baseline.executor import NOTHING_SERVED
from tests.conftest import NEEDS_PODMAN_AND_IMAGE
from tests.kfp_backend.common import SPAN_PIPELINE, add_span, config, served_versions
from tests.kfp_backend.harness import Backend, podman_runner

pytestmark = [pytest.mark.slow, NEEDS_PODMAN_AND_IMAGE]

# Under the checkout: the same path on the host (podman) and in the runtime environment.
WORK = pathlib.Path(__file__).resolve().parents[2] / "build" / "kfp-backend-test"
PVC = WORK / "pvc" / "tfx-pipeline"  # mounted at /mnt/pipeline in every task
ROWS_PER_SPAN = 2000
ROOT = "minio://mlpipeline/v2/artifacts"


def _config(*overrides):
    return config(f"data.path={PVC / 'data'}", *SPAN_PIPELINE, *overrides)


def _versions() -> list[str]:
    return served_versions(PVC)


@pytest.fixture(scope="module")
def backend():
    import docker

    from pipeline import kubeflow_runner
    from pipeline.sample_drops import write_drops

    shutil.rmtree(WORK, ignore_errors=True)
    drops = write_drops(str(WORK / "drops"), ROWS_PER_SPAN)  # 1 and 2: random shares of the sample, alike
    add_span(PVC, 1, drops[0])
    kubeflow_runner.compile_pipeline(_config(), str(WORK / "pipeline.yaml"), allow_local_image=True)
    client = docker.from_env(timeout=1800)
    state = {
        "backend": Backend(WORK / "backend", podman_runner(client), pvcs=WORK / "pvc"),
        "drops": drops,
        "pipeline": str(WORK / "pipeline.yaml"),
    }
    yield state
    client.close()  # WORK stays for a look after a failure; the next setup removes it


@pytest.fixture(scope="module")
def first_run(backend):
    return backend["backend"].run(backend["pipeline"])


@pytest.fixture(scope="module")
def second_run(backend, first_run):
    add_span(PVC, 2, backend["drops"][1])
    return backend["backend"].run(backend["pipeline"])


@pytest.fixture(scope="module")
def third_run(backend, second_run):
    from pipeline import kubeflow_runner

    strict = kubeflow_runner.parameter_defaults(_config("evaluator.min_auc=0.9999"))["eval_config"]
    return backend["backend"].run(backend["pipeline"], {"eval_config": strict})


def test_first_run_trains_and_pushes_through_the_backends_contract(backend, first_run):
    assert not any(result.cached for result in first_run.values())
    statistics = first_run["StatisticsGen"].executor_input
    [examples_in] = statistics["inputs"]["artifacts"]["examples"]["artifacts"]
    assert examples_in["type"] == {"instanceSchema": ""}  # as ML Metadata hands it on
    assert set(statistics["outputs"]["artifacts"]) == {"statistics", "executor-logs"}
    # Under the run's root, <root>/<pipeline>/<run id> (metadata/client.go GetPipeline)
    with open(backend["pipeline"]) as f:
        run_root = f"{ROOT}/{next(yaml.safe_load_all(f))['pipelineInfo']['name']}/{backend['backend'].run_name}"
    assert statistics["outputs"]["artifacts"]["statistics"]["artifacts"][0]["uri"].startswith(
        run_root + "/StatisticsGen/"
    )
    # artifacts live in the object store under their remote URIs, not as local paths
    examples = first_run["ExampleGen"].outputs["examples"]
    assert examples["uri"].startswith(run_root + "/ExampleGen/")
    files = backend["backend"].object_files(examples["uri"], ROOT)
    assert any(f.startswith("Split-train/") for f in files) and any(f.startswith("Split-test/") for f in files)
    assert examples["custom_properties"]["span"] == 1.0  # ExampleGen resolved {SPAN} itself
    assert (
        first_run["ServingBaseline"].outputs["baseline_model"]["custom_properties"]["baseline_source"] == NOTHING_SERVED
    )
    assert first_run["Evaluator"].outputs["blessing"]["custom_properties"]["blessed"] == 1.0
    assert first_run["Pusher"].outputs["pushed_model"]["custom_properties"]["pushed"] == 1.0
    assert _versions() and (PVC / "serving" / "taxi" / _versions()[0] / "saved_model.pb").is_file()
    logs = backend["backend"].object_files(first_run["Trainer"].outputs["executor-logs"]["uri"], ROOT)
    assert logs == [""]  # the launcher's log file, uploaded as one object


def test_the_pushed_model_loads_and_predicts_on_tf_servings_path(first_run, tiny_rows):
    from components.serving_check.loader import SessionModel
    from tests.conftest import to_example

    version = PVC / "serving" / "taxi" / _versions()[0]
    examples = [to_example(r, drop=("tips",)).SerializeToString() for r in tiny_rows[:3]]
    with SessionModel(str(version)) as model:
        assert model.run("serving_default", {"examples": examples})["probabilities"].shape == (3,)


# Runs 2 and 3 (about 10 of make test's minutes) are `make test-extended`'s: `make test-kfp-real`
# runs the same three through KFP 2.0.5's own driver and launcher.
@pytest.mark.extended
def test_new_files_in_the_same_data_root_are_not_served_from_the_cache(first_run, second_run):
    assert (
        first_run["DataFingerprint"].parameters["fingerprint"]
        != second_run["DataFingerprint"].parameters["fingerprint"]
    )
    for task in ("ExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator"):
        assert not second_run[task].cached, task
    assert second_run["ExampleGen"].outputs["examples"]["custom_properties"]["span"] == 2.0
    first_version = _versions()[0]
    assert (
        second_run["ServingBaseline"].outputs["baseline_model"]["custom_properties"]["baseline_source"]
        == f"/mnt/pipeline/serving/taxi/{first_version}"
    )


@pytest.mark.extended
def test_a_stricter_eval_config_is_refused_and_unchanged_data_comes_from_the_cache(second_run, third_run):
    versions = _versions()
    for task in ("ExampleGen", "StatisticsGen", "SchemaGen", "Transform", "Trainer"):
        assert third_run[task].cached, task
        assert third_run[task].outputs == second_run[task].outputs, task
    assert not third_run["DataFingerprint"].cached and not third_run["ServingBaseline"].cached
    assert third_run["Evaluator"].outputs["blessing"]["custom_properties"]["blessed"] == 0.0
    assert third_run["Pusher"].outputs["pushed_model"]["custom_properties"]["pushed"] == 0.0
    assert _versions() == versions


def test_every_step_ran_as_a_restricted_pod_with_only_its_emptydirs_writable(backend, first_run):
    with open(backend["pipeline"]) as f:
        executors = list(yaml.safe_load_all(f))[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert {label: "securityContext" in spec for label, spec in executors.items()} == {
        label: True for label in executors
    }
    # What the runner does with such a context: the root file system is read-only.
    probe = WORK / "probe-tmp"
    code, logs = backend["backend"].run_container(
        image=os.environ["TFXP_IMAGE"],
        command=["sh", "-c", "touch /probe 2>/dev/null || echo root-read-only; touch /tmp/probe && id -u"],
        mounts={str(probe): "/tmp"},
        env={},
        security=executors["Trainer_executor"]["securityContext"],
    )
    assert (code, logs.split()) == (0, ["root-read-only", "10001"])


def test_the_run_page_is_uploaded_and_recorded_with_kfps_types(backend, first_run):
    page = first_run["RunPage"].outputs
    titles = {name: yaml.safe_load(artifact["schema"])["title"] for name, artifact in page.items()}
    assert titles == {
        "report": "system.HTML",
        "model_card": "system.Markdown",
        "metrics": "system.Metrics",
        "classification_metrics": "system.ClassificationMetrics",
        "executor-logs": "system.Artifact",
    }
    store = backend["backend"]
    # HTML and Markdown: one object at the artifact's URI, the file KFP's UI reads.
    for name in ("report", "model_card"):
        assert store.object_files(page[name]["uri"], ROOT) == [""], name
    version = _versions()[0]
    assert (
        store.read_object(page["model_card"]["uri"], ROOT).decode().startswith(f"# Model card: taxi, version {version}")
    )
    report = store.read_object(page["report"]["uri"], ROOT).decode()
    assert f"pushed as version {version}" in report and 'aria-label="ROC curve"' in report
    # Metrics: one custom property per test-split metric, numbers as ML Metadata holds them.
    metrics = page["metrics"]["custom_properties"]
    assert 0.0 <= metrics["auc"] <= 1.0 and metrics["example_count"] > 0
    # ClassificationMetrics: the ROC curve and the confusion matrix in kfp's shapes.
    classification = page["classification_metrics"]["custom_properties"]
    roc = classification["confidenceMetrics"]["list"]
    assert len(roc) > 10 and set(roc[0]) == {"confidenceThreshold", "falsePositiveRate", "recall"}
    matrix = classification["confusionMatrix"]["struct"]
    assert len(matrix["annotationSpecs"]) == 2 and [len(r["row"]) for r in matrix["rows"]] == [2, 2]
    assert sum(sum(r["row"]) for r in matrix["rows"]) == metrics["example_count"]


@pytest.mark.extended
def test_a_refused_runs_page_says_so_and_has_no_card(backend, third_run):
    store = backend["backend"]
    refused = third_run["RunPage"].outputs
    assert store.read_object(refused["model_card"]["uri"], ROOT).decode().startswith("# No model card\n")
    assert "refused by the Evaluator" in store.read_object(refused["report"]["uri"], ROOT).decode()
