"""kubernetes/monitoring: the CronJob runs tfxp monitor on the volume where the pipeline writes."""

import pathlib

import yaml

from pipeline.config import KubeflowConfig, load_config

CRONJOB = pathlib.Path(__file__).resolve().parents[3] / "kubernetes/monitoring/cronjob.yaml"


def test_the_cronjob_monitors_what_the_pipeline_pushes(taxi_config):
    job = yaml.safe_load(CRONJOB.read_text())
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["command"] == ["tfxp", "monitor"]
    overrides = [a.removeprefix("--set=") for a in container["args"] if a.startswith("--set=")]
    config = load_config(None, overrides)  # the args are a valid configuration
    kf = KubeflowConfig()
    assert config.serving_dir == kf.serving_dir(taxi_config.model_name)
    serving = yaml.safe_load(CRONJOB.parent.parent.joinpath("serving/base/deployment.yaml").read_text())
    [sidecar] = [c for c in serving["spec"]["template"]["spec"]["containers"] if "log-proxy" in c.get("args", [])]
    [log_dir] = [a.removeprefix("--log-dir=") for a in sidecar["args"] if a.startswith("--log-dir=")]
    assert config.monitor.requests == log_dir  # it reads what the request-log sidecar writes
    [volume] = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"]["claimName"] == kf.pvc
    [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["mountPath"] == kf.mount_path and not mount.get("readOnly")  # it records results there
    assert job["spec"]["concurrencyPolicy"] == "Forbid"  # one monitor at a time on one store


def test_the_cronjob_runs_non_root_read_only():
    pod = yaml.safe_load(CRONJOB.read_text())["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    security = pod["containers"][0]["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["capabilities"]["drop"] == ["ALL"]
