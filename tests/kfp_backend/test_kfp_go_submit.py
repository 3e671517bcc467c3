"""`tfxp submit` against KFP 2.0.5's own API server (on MariaDB): what the KFP SDK sends, as it records it.

tests/pipeline/test_submit.py checks the SDK's requests against a stand-in; here the same
command goes to the real API server's HTTP endpoint (tests/kfp_backend/argo_runner.py
`ApiServer`): it uploads the compiled pipeline (kept in the object store, SeaweedFS, and in
MariaDB), finds or creates the experiment, creates a run with the config's parameters and the
pipeline root (the API server compiles it into an Argo Workflow and creates that in the
Kubernetes API, tests/kfp_backend/kube_api.py) and a recurring run (a ScheduledWorkflow); a
second submit adds a version of the same pipeline. Each is read back through the API (GET).
No pipeline step runs: about half a minute, most of it the API server's start.

Needs the podman API, the image, KFP's Go binaries and MariaDB: `make test` provides them.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil

import pytest

from tests.conftest import NEEDS_PODMAN_AND_IMAGE
from tests.kfp_backend import common
from tests.kfp_backend.argo_runner import api_server_missing

pytestmark = [
    pytest.mark.slow,
    NEEDS_PODMAN_AND_IMAGE,
    common.NEEDS_KFP_GO,
    pytest.mark.skipif(bool(api_server_missing()), reason=f"KFP's API server needs MariaDB: {api_server_missing()}"),
]

# Under the checkout: the same path on the host (podman) and in the runtime environment.
WORK = pathlib.Path(__file__).resolve().parents[2] / "build" / "kfp-go-submit-test"
SCHEDULE = "0 0 3 * * *"  # KFP's cron: seconds first
DATA_ROOT = "/mnt/pipeline/data/new"


@pytest.fixture(scope="module")
def api():
    from pipeline import kubeflow_runner
    from tests.kfp_backend import common
    from tests.kfp_backend.argo_runner import kfp_backend

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    kubeflow_runner.compile_pipeline(
        common.config(*common.KFP_205), str(WORK / "pipeline.yaml"), allow_local_image=True
    )
    kfp_go = pathlib.Path(os.environ["TFXP_KFP_GO"])
    with kfp_backend(WORK / "services", kfp_go, os.environ["TFXP_IMAGE"], timeout=300) as backend:
        yield backend.api


def _submit(api, *extra: str) -> dict[str, str]:
    """`tfxp submit` of the compiled package; the ids it printed, by kind."""
    import contextlib
    import io

    from tests.kfp_backend import common
    from tfxp.main import main

    sets = [a for s in common.KFP_205 for a in ("--set", s)]
    out, err = io.StringIO(), io.StringIO()  # a module fixture has no capsys
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(
            ["submit", "--package", str(WORK / "pipeline.yaml"), "--endpoint", api.endpoint, "--experiment", "nightly"]
            + ["--set", f"kubeflow.image={os.environ['TFXP_IMAGE']}", *sets, "--set", "trainer.train_steps=123"]
            + ["--param", f"data_root={DATA_ROOT}", *extra]
        )
    assert code == 0, err.getvalue()
    # "pipeline P version V; experiment E; run R; recurring run S"
    return dict(re.findall(r"(recurring run|pipeline|version|experiment|run) ([^;\s]+)", out.getvalue()))


@pytest.fixture(scope="module")
def submitted(api):
    """Two submits: the first with a schedule (a run and a recurring run), the second a new version."""
    return [_submit(api, "--schedule", SCHEDULE), _submit(api)]


def test_submit_uploads_the_pipeline_and_its_spec_is_the_compiled_one(api, submitted):
    import yaml

    first, second = submitted
    pipeline = api.get(f"/apis/v2beta1/pipelines/{first['pipeline']}")
    assert pipeline["display_name"] == "taxi-big-tipper"
    assert second["pipeline"] == first["pipeline"]  # the second submit: a version of the same pipeline
    versions = api.get(f"/apis/v2beta1/pipelines/{first['pipeline']}/versions")["pipeline_versions"]
    assert {v["pipeline_version_id"] for v in versions} == {first["version"], second["version"]}
    version = api.get(f"/apis/v2beta1/pipelines/{first['pipeline']}/versions/{second['version']}")
    compiled, platform = yaml.safe_load_all((WORK / "pipeline.yaml").read_text())
    # the package's two documents, kept as KFP keeps a spec with a platform spec (in its own
    # normal form: the tasks and components are the package's)
    kept = version["pipeline_spec"]
    assert kept["platform_spec"] == platform
    assert kept["pipeline_spec"]["pipelineInfo"] == compiled["pipelineInfo"]
    assert set(kept["pipeline_spec"]["root"]["dag"]["tasks"]) == set(compiled["root"]["dag"]["tasks"])
    assert set(kept["pipeline_spec"]["components"]) == set(compiled["components"])
    # the uploaded file is in the object store under the API server's PipelinePath
    assert api.services.objects("pipelines/"), "no pipeline file in the bucket"


def test_the_run_has_the_configs_parameters_the_pipeline_root_and_its_workflow(api, submitted):
    first, second = submitted
    experiment = api.get(f"/apis/v2beta1/experiments/{first['experiment']}")
    assert experiment["display_name"] == "nightly" and second["experiment"] == first["experiment"]
    run = api.get(f"/apis/v2beta1/runs/{first['run']}")
    assert run["experiment_id"] == first["experiment"]
    reference = {"pipeline_id": first["pipeline"], "pipeline_version_id": first["version"]}
    assert run["pipeline_version_reference"] == reference
    assert run["runtime_config"]["pipeline_root"] == "minio://mlpipeline/v2/artifacts"
    parameters = run["runtime_config"]["parameters"]
    assert parameters["data_root"] == DATA_ROOT
    assert json.loads(parameters["train_args"])["numSteps"] == 123
    # CreateRun made the Workflow and created it in Kubernetes, one per run
    workflows = {w["metadata"]["labels"]["pipeline/runid"]: w for w in api.services.kube.workflows}
    assert set(workflows) == {first["run"], second["run"]}
    # the root driver's runtime config carries the run's parameters and root
    workflow = json.dumps(workflows[first["run"]]["spec"])
    assert DATA_ROOT in workflow and "minio://mlpipeline/v2/artifacts" in workflow


def test_the_recurring_run_has_the_schedule_and_the_same_parameters(api, submitted):
    first, second = submitted
    assert "recurring run" not in second
    recurring = api.get(f"/apis/v2beta1/recurringruns/{first['recurring run']}")
    assert recurring["trigger"]["cron_schedule"]["cron"] == SCHEDULE
    assert recurring["mode"] == "ENABLE"
    assert recurring["experiment_id"] == first["experiment"]
    assert recurring["runtime_config"]["parameters"]["data_root"] == DATA_ROOT
    assert recurring["runtime_config"]["pipeline_root"] == "minio://mlpipeline/v2/artifacts"
    [scheduled] = api.services.kube.scheduled_workflows  # the ScheduledWorkflow it created
    assert scheduled["spec"]["trigger"]["cronSchedule"]["cron"] == SCHEDULE
    assert api.services.kube.unexpected == []
