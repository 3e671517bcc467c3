"""kubernetes/: the serving manifests read what the pipeline writes, where it writes it.

The rendered manifests are checked against the Kubernetes schemas and with checkov by
scripts/check-manifests.sh (part of `make test`); these tests tie them to the config.
"""

import pathlib
import re

import pytest
import yaml

from pipeline.config import KubeflowConfig

KUBERNETES = pathlib.Path(__file__).resolve().parents[1] / "kubernetes"


@pytest.fixture(scope="module")
def deployment():
    return yaml.safe_load((KUBERNETES / "serving/base/deployment.yaml").read_text())


def test_tf_serving_reads_the_pushers_destination(taxi_config):
    models_config = (KUBERNETES / "serving/base/models.config").read_text()
    base_path = re.search(r'base_path: "([^"]+)"', models_config)[1]
    assert base_path == KubeflowConfig().serving_dir(taxi_config.model_name)
    assert re.search(r'name: "([^"]+)"', models_config)[1] == taxi_config.model_name


def test_the_shared_volume_is_the_pipelines_pvc(deployment):
    kf = KubeflowConfig()
    pvc = yaml.safe_load((KUBERNETES / "storage/pvc.yaml").read_text())
    assert pvc["metadata"]["name"] == kf.pvc
    pod = deployment["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"] == {"claimName": kf.pvc, "readOnly": True}
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert mount == {"name": volume["name"], "mountPath": kf.mount_path, "readOnly": True}


def test_probes_poll_the_model_status_and_new_pushes_are_picked_up(deployment, taxi_config):
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == f"/v1/models/{taxi_config.model_name}"
    assert any(a.startswith("--file_system_poll_wait_seconds=") for a in container["args"])
    assert re.fullmatch(r"tensorflow/serving:\d+\.\d+\.\d+", container["image"])  # pinned, never latest


def test_non_root_read_only(deployment):
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]["securityContext"]
    assert container["readOnlyRootFilesystem"] is True and container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]


def test_every_accepted_checkov_finding_has_a_reason():
    for path in KUBERNETES.rglob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            annotations = ((document or {}).get("metadata") or {}).get("annotations") or {}
            for key, value in annotations.items():
                if key.startswith("checkov.io/skip"):
                    check, _, reason = value.partition("=")
                    assert re.fullmatch(r"CKV2?_K8S_\d+", check) and len(reason) > 20, (path, value)


# The JSON field names of KFP 2.5's launcher config (backend/src/v2/config/s3.go, gcs.go): a
# misspelt key there is silently ignored by the launcher, so the example is checked against them.
_S3_DEFAULT = {"endpoint", "credentials", "region", "disableSSL", "forcePathStyle"}
_S3_SECRET = {"secretName", "accessKeyKey", "secretKeyKey"}
_GCS_SECRET = {"secretName", "tokenKey"}


def test_the_kfp_launcher_example_uses_the_launchers_field_names():
    config_map = yaml.safe_load((KUBERNETES / "pipeline/kfp-launcher-example.yaml").read_text())
    assert config_map["metadata"]["name"] == "kfp-launcher"  # backend/src/v2/config/env.go configMapName
    assert config_map["data"]["defaultPipelineRoot"].startswith("s3://")
    providers = yaml.safe_load(config_map["data"]["providers"])
    assert set(providers) <= {"minio", "s3", "gs"}
    s3 = providers["s3"]["default"]
    assert set(s3) <= _S3_DEFAULT
    assert set(s3["credentials"]) == {"fromEnv", "secretRef"} and set(s3["credentials"]["secretRef"]) == _S3_SECRET
    assert set(providers["gs"]["default"]["credentials"]["secretRef"]) == _GCS_SECRET
