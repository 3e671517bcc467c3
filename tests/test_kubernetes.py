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
    assert volume["persistentVolumeClaim"] == {"claimName": kf.pvc}
    serving, proxy = pod["containers"]
    [mount] = [m for m in serving["volumeMounts"] if m["name"] == volume["name"]]
    assert mount == {"name": volume["name"], "mountPath": kf.mount_path, "readOnly": True}
    [mount] = [m for m in proxy["volumeMounts"] if m["name"] == volume["name"]]
    assert mount == {"name": volume["name"], "mountPath": kf.mount_path}  # the request log is written there


def _flags(args) -> dict[str, str]:
    return dict(a.removeprefix("--").split("=", 1) for a in args if a.startswith("--") and "=" in a)


def test_rest_calls_pass_the_request_log_and_metrics_are_scraped_from_tf_serving(deployment, taxi_config):
    from serving.metrics import read_monitoring_config

    kf = KubeflowConfig()
    pod = deployment["spec"]["template"]
    serving, proxy = pod["spec"]["containers"]
    tfs, logger = _flags(serving["args"]), _flags(proxy["args"])
    assert logger["upstream"] == f"http://127.0.0.1:{tfs['rest_api_port']}"
    assert logger["log-dir"] == f"{kf.mount_path}/requests/{taxi_config.model_name}"
    service = yaml.safe_load((KUBERNETES / "serving/base/service.yaml").read_text())
    [http] = [p for p in service["spec"]["ports"] if p["name"] == "http"]
    [target] = [p for p in proxy["ports"] if p["name"] == http["targetPort"]]
    assert target["containerPort"] == int(logger["port"]) == http["port"]
    # TF Serving reads monitoring.config from the ConfigMap; Prometheus scrapes its REST port.
    [config] = [m for m in serving["volumeMounts"] if m["name"] == "config"]
    assert tfs["monitoring_config_file"] == f"{config['mountPath']}/monitoring.config"
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == tfs["rest_api_port"]
    path = read_monitoring_config(str(KUBERNETES / "serving/base/monitoring.config"))
    assert annotations["prometheus.io/path"] == path and annotations["prometheus.io/scrape"] == "true"


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


def test_tf_serving_reads_the_pushers_model_config_on_the_volume(deployment, taxi_config):
    from contracts.model_config import CONFIG_FILE

    kf = KubeflowConfig()
    pod = deployment["spec"]["template"]["spec"]
    tfs = _flags(pod["containers"][0]["args"])
    on_volume = f"{kf.serving_dir(taxi_config.model_name)}/{CONFIG_FILE}"
    assert tfs["model_config_file"] == on_volume
    assert int(tfs["model_config_file_poll_wait_seconds"]) > 0
    assert tfs["allow_version_labels_for_unavailable_models"] == "true"
    # Before the first push, the init container puts the ConfigMap's first config there.
    [init] = pod["initContainers"]
    script = init["command"][-1]
    assert f'target = "{on_volume}"' in script and '"/etc/tf-serving/models.config"' in script
    assert {m["mountPath"] for m in init["volumeMounts"]} == {kf.mount_path, "/etc/tf-serving"}


def test_the_kserve_overlay_serves_the_pushers_destination_with_a_canary(deployment, taxi_config):
    kf = KubeflowConfig()
    service = yaml.safe_load((KUBERNETES / "serving/overlays/kserve/inferenceservice.yaml").read_text())
    assert service["apiVersion"] == "serving.kserve.io/v1beta1" and service["kind"] == "InferenceService"
    predictor = service["spec"]["predictor"]
    assert 0 < predictor["canaryTrafficPercent"] < 100
    tensorflow = predictor["tensorflow"]
    below_mount = kf.serving_dir(taxi_config.model_name).removeprefix(kf.mount_path.rstrip("/") + "/")
    assert tensorflow["storageUri"] == f"pvc://{kf.pvc}/{below_mount}"
    # The same TF Serving release as the Deployment; each revision keeps the version it loaded.
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":" + tensorflow["runtimeVersion"])
    assert "--file_system_poll_wait_seconds=0" in tensorflow["args"]
