"""What the KFP backend tests share: the span pipeline's config, its spans on the PVC, the served versions.

test_kfp_backend_pipeline.py (the Python harness) and test_kfp_go_pipeline.py (KFP 2.0.5's
binaries) run the same three runs of a span pipeline on a PVC directory; test_kfp_go_driver.py
and test_kfp_go_pipeline.py compile for KFP 2.0.5's driver.
"""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest

# The test modules that run KFP's Go binaries (kfp-binaries.sh builds them; the Makefile sets the path).
NEEDS_KFP_GO = pytest.mark.skipif(
    not os.environ.get("TFXP_KFP_GO"),
    reason="needs KFP's Go binaries: `make test` or `make test-kfp-backend` builds them and sets TFXP_KFP_GO",
)

# A short training, one tuner trial and a loose AUC threshold: minutes on two cores, and the
# first two runs bless their models.
SPAN_PIPELINE = (
    "data.span_pattern=span-{SPAN}/*.csv",
    "trainer.train_steps=300",
    "trainer.eval_steps=20",
    "tuner.max_trials=1",
    "tuner.train_steps=30",
    "tuner.eval_steps=10",
    "evaluator.max_auc_decrease=0.1",
)

# KFP 2.0.5's driver refuses imagePullPolicy (test_kfp_go_compiler.py), the pod security context
# and emptyDir mounts (kubeflow.pod_security): docs/kubeflow.md.
KFP_205 = ("kubeflow.image_pull_policy=null", "kubeflow.pod_security=false")


def config(*overrides: str):
    """The config of our image (TFXP_IMAGE) with `overrides`."""
    from pipeline.config import load_config

    return load_config(None, [f"kubeflow.image={os.environ['TFXP_IMAGE']}", *overrides])


def add_span(pvc: pathlib.Path, number: int, drop: str) -> None:
    """A new span directory under the PVC's data directory, holding one drop of the sample."""
    directory = pathlib.Path(pvc) / "data" / f"span-{number}"
    directory.mkdir(parents=True)
    shutil.copyfile(drop, directory / "data.csv")


def served_versions(pvc: pathlib.Path) -> list[str]:
    """The model versions the Pushers wrote to the PVC's serving directory, oldest first."""
    serving = pathlib.Path(pvc) / "serving" / "taxi"
    return sorted((p.name for p in serving.iterdir() if p.name.isdigit()), key=int) if serving.exists() else []


def kube_request(port: int, ca, method: str, path: str, body: dict | None, token: str, timeout: float = 30):
    """(status, raw body) of one Kubernetes API request over TLS with a bearer token, whatever the
    answer: kube_apiserver.py and the stand-in's test (test_kube_api.py) both call the API so."""
    import json
    import ssl
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"https://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=str(ca)), timeout=timeout) as a:
            return a.status, a.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()
