"""The KFP-backend tiers' real Kubernetes API (kube_apiserver.py): kube-apiserver and etcd, as KFP's accounts see it.

What the stand-in (kube_api.py) could not check: a real token's authentication (a wrong one is a
401), RBAC (each account gets what KFP 2.0.5 calls and nothing more: a 403), and the CRDs'
schemas (a Workflow without a spec, or whose spec is not an object, is refused with a 422;
an unknown field, with a 400, where the client asks for strict validation). Needs the binaries of
`scripts/kfp-binaries.sh --kube`; `make test-kfp-backend` builds them and sets TFXP_KFP_GO.
"""

from __future__ import annotations

import base64
import os
import pathlib

import pytest

from tests.kfp_backend import kube_apiserver

KFP_GO = pathlib.Path(os.environ.get("TFXP_KFP_GO", "/nonexistent"))
WHY = kube_apiserver.missing(KFP_GO) if os.environ.get("TFXP_KFP_GO") else "TFXP_KFP_GO is not set"
pytestmark = pytest.mark.skipif(bool(WHY), reason=f"needs kube-apiserver and etcd: {WHY}")

NS = "kubeflow"
SECRET = f"/api/v1/namespaces/{NS}/secrets/mlpipeline-minio-artifact"
WORKFLOWS = f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/workflows"
WORKFLOW = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Workflow",
    "metadata": {"generateName": "taxi-big-tipper-", "labels": {"pipeline/runid": "r1"}},
    "spec": {
        "entrypoint": "main",
        "templates": [{"name": "main", "container": {"image": "busybox", "command": ["true"]}}],
    },
}


@pytest.fixture(scope="module")
def kube(tmp_path_factory):
    server = kube_apiserver.KubeApiServer(
        tmp_path_factory.mktemp("kube"), KFP_GO, NS, {"accesskey": "ak", "secretkey": "sk"}
    ).start()
    yield server
    server.stop()


def test_the_launchers_account_reads_the_secret_with_its_token_and_a_wrong_token_is_a_401(kube):
    runner = kube.tokens["pipeline-runner"]
    code, secret = kube.request("GET", SECRET, token=runner)
    assert code == 200, secret
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        "accesskey": "ak",
        "secretkey": "sk",
    }
    code, refused = kube.request("GET", SECRET, token="not-" + runner)
    assert code == 401 and refused["reason"] == "Unauthorized"
    assert kube.version == "v1.37.2"


def test_each_account_gets_what_kfp_calls_and_no_more(kube):
    runner, api = kube.tokens["pipeline-runner"], kube.tokens["ml-pipeline"]
    # the pods' account: the one Secret, not another; no Workflow create
    assert kube.request("POST", f"/api/v1/namespaces/{NS}/secrets", {"metadata": {"name": "x"}}, token=api)[0] == 403
    assert kube.request("GET", f"/api/v1/namespaces/{NS}/secrets/other", token=runner)[0] == 403
    assert kube.request("POST", WORKFLOWS, WORKFLOW, token=runner)[0] == 403
    # the driver's ConfigMap, as KFP's install makes it
    code, launcher = kube.request("GET", f"/api/v1/namespaces/{NS}/configmaps/kfp-launcher", token=runner)
    assert code == 200 and launcher["data"] == {"defaultPipelineRoot": ""}
    # the API server's account cannot read the Secret
    assert kube.request("GET", SECRET, token=api)[0] == 403
    refused = [c for c in kube.unexpected if c.endswith(": 403")]
    assert f"{SECRET}: 403" in refused and f"POST {WORKFLOWS}: 403" in refused


def test_a_workflow_created_by_the_api_servers_account_is_kept_and_read_back(kube):
    code, created = kube.request("POST", WORKFLOWS, WORKFLOW, token=kube.tokens["ml-pipeline"])
    assert code == 201, created
    name = created["metadata"]["name"]
    assert name.startswith("taxi-big-tipper-") and len(name) == len("taxi-big-tipper-") + 5
    assert created["metadata"]["uid"] and created["metadata"]["namespace"] == NS
    [kept] = [w for w in kube.workflows if w["metadata"]["name"] == name]
    assert kept["spec"] == WORKFLOW["spec"] and kept["metadata"]["labels"] == {"pipeline/runid": "r1"}
    assert f"POST {WORKFLOWS}" in kube.calls


def test_a_workflow_the_crds_schema_does_not_allow_is_refused(kube):
    """Argo's minimal CRD, as KFP's install applies it: metadata and spec required, spec an object."""
    api = kube.tokens["ml-pipeline"]
    before = len(kube.workflows)
    code, refused = kube.request("POST", WORKFLOWS, {**WORKFLOW, "spec": ["main"]}, token=api)
    assert code == 422 and refused["reason"] == "Invalid", refused
    assert 'spec: Invalid value: "array": spec in body must be of type object' in refused["message"]
    code, refused = kube.request("POST", WORKFLOWS, {k: v for k, v in WORKFLOW.items() if k != "spec"}, token=api)
    assert code == 422 and "spec: Required value" in refused["message"], refused
    # an unknown field is refused where the client asks for strict validation (kubectl's default)
    code, refused = kube.request("POST", f"{WORKFLOWS}?fieldValidation=Strict", {**WORKFLOW, "sepc": {}}, token=api)
    assert code == 400 and 'unknown field "sepc"' in refused["message"], refused
    assert len(kube.workflows) == before


def test_a_scheduled_workflow_is_kept_apart_from_the_workflows(kube):
    path = f"/apis/kubeflow.org/v1beta1/namespaces/{NS}/scheduledworkflows"
    body = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "ScheduledWorkflow",
        "metadata": {"generateName": "taxi-"},
        "spec": {"enabled": True, "trigger": {"cronSchedule": {"cron": "0 0 3 * * *"}}},
        "status": {},
    }
    code, created = kube.request("POST", path, body, token=kube.tokens["ml-pipeline"])
    assert code == 201, created
    assert [s["metadata"]["name"] for s in kube.scheduled_workflows] == [created["metadata"]["name"]]
    assert all(w["kind"] == "Workflow" for w in kube.workflows)
