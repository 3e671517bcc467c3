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


# kubernetes/flink: the Flink cluster that beam.flink_on_kubernetes sends the compiled Beam steps to.
FLINK = KUBERNETES / "flink"
PROJECT = KUBERNETES.parent


def _flink_docs() -> dict[str, dict]:
    docs = {}
    for name in ("flinkdeployment.yaml", "jobserver.yaml"):
        for doc in yaml.safe_load_all((FLINK / name).read_text()):
            docs[doc["kind"]] = doc
    return docs


def _shell_value(path: pathlib.Path, name: str) -> str:
    return re.search(rf"^{name}=(\S+)$", path.read_text(), re.M)[1]


def _task_manager(docs) -> dict[str, dict]:
    pod = docs["FlinkDeployment"]["spec"]["taskManager"]["podTemplate"]["spec"]
    return {c["name"]: c for c in [*pod["containers"], *pod["initContainers"]]}, pod


def _jobserver_args(docs) -> dict[str, str]:
    [container] = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    return dict(a.removeprefix("--").split("=", 1) for a in container["args"] if a.startswith("--"))


def test_the_worker_pool_runs_the_pipelines_image_at_the_runtimes_beam():
    """The sidecar is the image the compiled steps run (one `kustomize edit set image
    tfx-kfp-pipeline=...` sets it with the monitoring CronJob's), and Beam's boot program comes
    from Beam's SDK image at the runtime's apache-beam and the image's Python."""
    containers, _ = _task_manager(_flink_docs())
    pipeline_image = KubeflowConfig().image.rsplit("/", 1)[-1].split(":")[0]
    cronjob = yaml.safe_load((KUBERNETES / "monitoring/cronjob.yaml").read_text())
    [monitor] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert containers["beam-worker-pool"]["image"].split(":")[0] == pipeline_image
    assert containers["beam-worker-pool"]["image"] == monitor["image"]
    beam = re.search(r"^apache-beam==(\S+)$", (PROJECT / "requirements/constraints.txt").read_text(), re.M)[1]
    python = re.search(r"^ARG BASE_IMAGE=python:(\d+\.\d+)-", (PROJECT / "Dockerfile").read_text(), re.M)[1]
    assert containers["beam-boot"]["image"] == f"apache/beam_python{python}_sdk:{beam}"
    # boot --worker_pool starts the pool with --container_executable=/opt/apache/beam/boot
    # (sdks/python/container/boot.go), so that is where the copy must be.
    assert containers["beam-worker-pool"]["command"] == ["/opt/apache/beam/boot"]
    assert containers["beam-worker-pool"]["args"] == ["--worker_pool"]
    [copy] = [m for m in containers["beam-boot"]["volumeMounts"] if m["name"] == "beam-boot"]
    [mount] = [m for m in containers["beam-worker-pool"]["volumeMounts"] if m["name"] == "beam-boot"]
    assert containers["beam-boot"]["command"] == ["cp", "/opt/apache/beam/boot", f"{copy['mountPath']}/boot"]
    assert mount["mountPath"] == "/opt/apache/beam"


def test_the_job_server_and_flink_are_the_local_clusters_versions():
    docs = _flink_docs()
    cluster = PROJECT / "scripts/flink/cluster.sh"
    flink, beam = _shell_value(cluster, "FLINK_VERSION"), _shell_value(cluster, "BEAM_JOB_SERVER_VERSION")
    spec = docs["FlinkDeployment"]["spec"]
    assert spec["image"] == f"flink:{flink}-java17"
    assert spec["flinkVersion"] == "v" + "_".join(flink.split(".")[:2])
    [init] = docs["Deployment"]["spec"]["template"]["spec"]["initContainers"]
    assert f"-Dbeam.version={beam}" in init["args"]
    assert (FLINK / "jobserver-pom.xml").read_text() == (PROJECT / "scripts/flink/jobserver-pom.xml").read_text()
    pom = (FLINK / "jobserver-pom.xml").read_text()
    assert f"<artifactId>beam-runners-flink-{'.'.join(flink.split('.')[:2])}</artifactId>" in pom


def test_ports_and_paths_line_up_with_the_compiled_steps():
    from pipeline.config import FlinkOnKubernetes

    docs = _flink_docs()
    service = {p["name"]: p["port"] for p in docs["Service"]["spec"]["ports"]}
    args = _jobserver_args(docs)
    setting = FlinkOnKubernetes(job_endpoint=f"{docs['Service']['metadata']['name']}.ml:{service['job']}")
    assert int(args["job-port"]) == service["job"] and int(args["artifact-port"]) == service["artifact"]
    assert setting.artifact_port == service["artifact"]
    # The operator's REST Service for a FlinkDeployment is <name>-rest on 8081.
    assert args["flink-master"] == f"{docs['FlinkDeployment']['metadata']['name']}-rest:8081"
    containers, pod = _task_manager(docs)
    host, port = setting.worker_pool.rsplit(":", 1)
    assert host == "localhost"
    assert [p["containerPort"] for p in containers["beam-worker-pool"]["ports"]] == [int(port)]
    kubeflow = KubeflowConfig()
    [claim] = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claim["persistentVolumeClaim"]["claimName"] == kubeflow.pvc
    for name in ("beam-worker-pool", "flink-main-container"):
        mounts = {m["name"]: m["mountPath"] for m in containers[name]["volumeMounts"]}
        assert mounts[claim["name"]] == kubeflow.mount_path, name
    assert setting.exchange_dir.startswith(kubeflow.mount_path + "/")
    assert args["artifacts-dir"].startswith(kubeflow.mount_path + "/")
    policies = list(yaml.safe_load_all((FLINK / "networkpolicy.yaml").read_text()))
    allowed = {p["port"] for rule in policies[0]["spec"]["ingress"] for p in rule["ports"]}
    assert allowed == {service["job"], service["artifact"]}


def test_the_worker_pool_is_non_root_and_read_only():
    containers, pod = _task_manager(_flink_docs())
    assert pod["securityContext"]["runAsNonRoot"] is True
    for name in ("beam-worker-pool", "beam-boot"):
        security = containers[name]["securityContext"]
        assert security["runAsUser"] == 10001 and security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
        assert containers[name]["resources"]["limits"], name


def _manifest_tools() -> tuple[pathlib.Path, pathlib.Path]:
    cache = pathlib.Path.home() / ".cache/tfx-kfp-pipeline"
    pythons = sorted(cache.glob("k8s-tools-*/bin/python"))
    crds = sorted(cache.glob("flink-operator-crd-*/flinkdeployments.flink.apache.org-v1.yml"))
    if not pythons or not crds:
        pytest.skip("the manifest tools and the operator's CRD are not cached: `make manifests` fetches them")
    return pythons[-1], crds[-1]


def test_the_operators_schema_rejects_a_misspelt_field(tmp_path):
    """The FlinkDeployment check of scripts/check-manifests.sh fails on a field the operator's
    CRD does not have, in the resource and in a pod template, and passes the real one."""
    import subprocess

    python, crd = _manifest_tools()
    docs = list(yaml.safe_load_all((FLINK / "flinkdeployment.yaml").read_text()))
    script = PROJECT / "scripts/flink/check_custom_resources.py"

    def check(resource) -> subprocess.CompletedProcess:
        rendered = tmp_path / "rendered.yaml"
        rendered.write_text(yaml.safe_dump(resource))
        command = [str(python), str(script), str(crd), str(rendered), "--pods-out", str(tmp_path / "pods.yaml")]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    assert check(docs[0]).returncode == 0
    bad = yaml.safe_load(yaml.safe_dump(docs[0]))
    bad["spec"]["taskManager"]["replica"] = 2
    bad["spec"]["taskManager"]["podTemplate"]["spec"]["containers"][1]["imagePullPolicyy"] = "Always"
    result = check(bad)
    assert result.returncode == 1
    assert "'replica' was unexpected" in result.stderr
    assert "imagePullPolicyy" in result.stderr
