"""The Kubernetes API stand-in (kube_api.py): the Secret's GET, creates of (Scheduled)Workflows, nothing else."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.kfp_backend.common import kube_request
from tests.kfp_backend.kube_api import KubeApi

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl for the server's certificate")

TOKEN = "t0ken"
WORKFLOWS = "/apis/argoproj.io/v1alpha1/namespaces/kubeflow/workflows"


@pytest.fixture
def kube(tmp_path):
    api = KubeApi(tmp_path, TOKEN, {("kubeflow", "s"): {"accesskey": "ak"}}).start()
    yield api
    api.stop()


def _call(kube, method, path, body=None, token=TOKEN):
    status, payload = kube_request(kube.port, kube.ca, method, path, body, token, timeout=10)
    return status, json.loads(payload)


def test_a_workflow_created_gets_a_name_from_its_generate_name_and_a_uid_and_is_kept(kube):
    body = {"kind": "Workflow", "metadata": {"generateName": "taxi-big-tipper-"}, "spec": {"entrypoint": "x"}}
    code, created = _call(kube, "POST", WORKFLOWS, body)
    assert code == 201
    assert created["metadata"]["name"].startswith("taxi-big-tipper-")
    assert len(created["metadata"]["name"]) == len("taxi-big-tipper-") + 5
    assert created["metadata"]["namespace"] == "kubeflow" and created["metadata"]["uid"]
    assert kube.workflows == [created] and created["spec"] == {"entrypoint": "x"}
    assert kube.calls == [f"POST {WORKFLOWS}"] and kube.unexpected == []


def test_a_scheduled_workflow_created_is_kept_apart_from_the_workflows(kube):
    path = "/apis/kubeflow.org/v1beta1/namespaces/kubeflow/scheduledworkflows"
    code, created = _call(kube, "POST", path, {"metadata": {"generateName": "taxi-"}, "spec": {"enabled": True}})
    assert code == 201 and created["metadata"]["name"].startswith("taxi-") and created["metadata"]["uid"]
    assert kube.scheduled_workflows == [created] and kube.workflows == []
    assert _call(kube, "POST", "/apis/kubeflow.org/v1beta1/namespaces/kubeflow/viewers", {})[0] == 404


def test_a_create_elsewhere_or_without_the_token_is_refused_and_recorded(kube):
    assert _call(kube, "POST", "/api/v1/namespaces/kubeflow/pods", {})[0] == 404
    assert _call(kube, "POST", WORKFLOWS, {}, token="wrong")[0] == 404
    assert kube.workflows == []
    assert kube.unexpected == ["POST /api/v1/namespaces/kubeflow/pods", f"POST {WORKFLOWS}"]


def test_the_secret_is_served_with_the_token(kube):
    code, secret = _call(kube, "GET", "/api/v1/namespaces/kubeflow/secrets/s")
    assert code == 200 and secret["data"] == {"accesskey": "YWs="}
    assert _call(kube, "GET", "/api/v1/namespaces/kubeflow/secrets/s", token="wrong")[0] == 404
