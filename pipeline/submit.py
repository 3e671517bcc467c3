"""Submits the compiled pipeline to a Kubeflow Pipelines 2.x endpoint with the `kfp` SDK.

Uploads the package (a new pipeline, or a new version of the pipeline of the same name),
finds or creates the experiment, starts a run with parameters and the pipeline root,
optionally creates a recurring run (with the same), and optionally waits for the final state.
KFP 2.x takes the pipeline root from the run only (the compiled spec's defaultPipelineRoot is
not read by its API server; without one the driver falls back to the kfp-launcher ConfigMap,
then to minio://mlpipeline/v2/artifacts: backend/src/v2/driver/driver.go `RootDAG`). Errors of the API become one-line
`SubmitError`s that say what to check.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import Any, Callable

IN_CLUSTER_TOKEN = "/var/run/secrets/kubeflow/pipelines/token"


class SubmitError(RuntimeError):
    """The KFP API could not be reached or refused; the message says what to check."""


@dataclasses.dataclass
class SubmitResult:
    pipeline_id: str
    version_id: str | None
    experiment_id: str
    run_id: str
    recurring_run_id: str | None = None
    state: str | None = None


def make_client(endpoint: str | None, namespace: str | None, token: str | None):
    """A kfp.Client for the endpoint: a bearer token if given, else the in-cluster service
    account token that KFP mounts into pods, else no credentials."""
    import kfp

    if not endpoint:
        raise SubmitError(
            "no Kubeflow Pipelines endpoint: set kubeflow.endpoint in the config, "
            "KFP_ENDPOINT, or --endpoint (e.g. http://localhost:8080 after "
            "`kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`)"
        )
    in_cluster = not token and os.path.exists(IN_CLUSTER_TOKEN)
    probe(endpoint, token or (open(IN_CLUSTER_TOKEN).read().strip() if in_cluster else None))
    credentials = None
    if not token and os.path.exists(IN_CLUSTER_TOKEN):
        credentials = kfp.client.ServiceAccountTokenVolumeCredentials(path=IN_CLUSTER_TOKEN)
    return kfp.Client(host=endpoint, namespace=namespace or None, existing_token=token or None, credentials=credentials)


def _refused(endpoint: str, status: int, reason: str) -> SubmitError:
    return SubmitError(
        f"Kubeflow Pipelines at {endpoint} refused the request ({status} {reason}): set KFP_TOKEN to "
        "a valid bearer token for this endpoint, or, in a cluster, run with a service account that "
        "may use the pipelines API (see kubernetes/pipeline/rbac.yaml)"
    )


def _unreachable(endpoint: str, reason: Any) -> SubmitError:
    return SubmitError(
        f"cannot reach Kubeflow Pipelines at {endpoint} ({reason}); check "
        "kubeflow.endpoint / KFP_ENDPOINT and that the API is reachable"
    )


def probe(endpoint: str, token: str | None, timeout: float = 10.0) -> None:
    """One healthz request first: kfp.Client itself retries an unreachable or refusing API
    for about 20 seconds and then reports only a timeout."""
    import requests

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = requests.get(f"{endpoint.rstrip('/')}/apis/v2beta1/healthz", headers=headers, timeout=timeout)
    except requests.RequestException as err:
        raise _unreachable(endpoint, err.__class__.__name__) from None
    if response.status_code in (401, 403):
        raise _refused(endpoint, response.status_code, response.reason)
    if response.status_code >= 400:
        raise SubmitError(
            f"{endpoint} does not answer like Kubeflow Pipelines "
            f"(GET /apis/v2beta1/healthz: {response.status_code} {response.reason})"
        )


def _explain(err: Exception, endpoint: str) -> SubmitError:
    import kfp_server_api
    import urllib3

    if isinstance(err, kfp_server_api.ApiException):
        status = err.status
        if status in (401, 403):
            return _refused(endpoint, status, err.reason)
        body = (err.body or "").strip().replace("\n", " ")[:300]
        return SubmitError(f"Kubeflow Pipelines at {endpoint} answered {status} {err.reason}: {body}")
    if isinstance(err, (urllib3.exceptions.HTTPError, OSError)):
        return _unreachable(endpoint, getattr(err, "reason", None) or err)
    return SubmitError(f"submitting to {endpoint} failed: {err}")


def _upload(client, package: str, name: str, version_name: str) -> tuple[str, str | None]:
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        pipeline = client.upload_pipeline(package, pipeline_name=name)
        versions = client.list_pipeline_versions(pipeline.pipeline_id, page_size=1, sort_by="created_at desc")
        version = (versions.pipeline_versions or [None])[0]
        return pipeline.pipeline_id, getattr(version, "pipeline_version_id", None)
    version = client.upload_pipeline_version(package, pipeline_version_name=version_name, pipeline_id=pipeline_id)
    return pipeline_id, version.pipeline_version_id


def other_pipeline(package: str) -> tuple[str, set[str]] | None:
    """(name, declared run parameters) of a compiled package that is not the training
    pipeline (`tfxp compile --monitor`); None for the training pipeline's own package, which
    declares every one of kubeflow_runner.PARAMETERS, one that declares none, or one that
    cannot be read here (KFP then says what is wrong)."""
    import yaml

    from pipeline.kubeflow_runner import PARAMETERS

    try:
        with open(package) as f:
            spec = next(yaml.safe_load_all(f))
        declared = set(spec["root"].get("inputDefinitions", {}).get("parameters", {}))
        name = str(spec["pipelineInfo"]["name"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, StopIteration):
        return None
    return None if not declared or set(PARAMETERS) <= declared else (name, declared)


_CRON_FIELDS = ("seconds", "minutes", "hours", "day-of-month", "month")
_CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@every ")


def check_schedule(schedule: str) -> None:
    """Refuses a cron KFP would misread or refuse, before anything is uploaded.

    KFP 2.5's API server parses it with robfig/cron v1 `cron.Parse` (api_converter.go
    `toModelJob`), whose first field is seconds and whose day of week is optional: a standard
    five-field cron is accepted and read shifted by one field, so "0 3 * * *" runs every hour.
    """
    fields = schedule.split()
    if schedule.startswith(_CRON_DESCRIPTORS):
        return
    if len(fields) == 5:
        read = " ".join(f"{name}={value}" for name, value in zip(_CRON_FIELDS, fields))
        raise SubmitError(
            f"--schedule '{schedule}' has 5 fields; KFP's cron starts with seconds and would read it as {read}; "
            f"write '0 {schedule}' (6 fields: {' '.join(_CRON_FIELDS)} day-of-week) or a descriptor such as @daily"
        )
    if len(fields) != 6:
        raise SubmitError(
            f"--schedule '{schedule}' is not a cron KFP can parse: give 6 fields (seconds minutes "
            "hours day-of-month month day-of-week), e.g. '0 0 3 * * *' for 03:00 daily, or @daily"
        )


def run_parameters(config, package: str, given: list[str]) -> tuple[str, dict[str, str]]:
    """(pipeline name, run parameters) for a run of `package`: the config's defaults, only those
    the package declares when it is another pipeline (`tfxp compile --monitor`), then the given
    NAME=VALUE texts (`--param`). A name the package does not take is a ConfigError."""
    from pipeline.config import ConfigError
    from pipeline.kubeflow_runner import PARAMETERS, parameter_defaults

    parameters = parameter_defaults(config)
    names, pipeline_name = PARAMETERS, config.pipeline_name
    other = other_pipeline(package)
    if other is not None:
        pipeline_name, declared = other
        parameters, names = {k: v for k, v in parameters.items() if k in declared}, tuple(sorted(declared))
    for text in given:
        name, sep, value = text.partition("=")
        if not sep or name not in names:
            raise ConfigError(f"--param {text}: expected NAME=VALUE with NAME one of {', '.join(names)}")
        parameters[name] = value
    return pipeline_name, parameters


def submit(
    package: str,
    *,
    pipeline_name: str,
    endpoint: str | None,
    namespace: str | None = None,
    token: str | None = None,
    experiment: str = "tfx-pipelines",
    experiment_id: str | None = None,
    parameters: dict[str, Any] | None = None,
    pipeline_root: str | None = None,
    schedule: str | None = None,
    wait: bool = False,
    timeout: int = 3600,
    client_factory: Callable[..., Any] = make_client,
) -> SubmitResult:
    """Uploads `package`, starts a run (and a recurring run with a cron `schedule`)."""
    if not os.path.isfile(package):
        raise SubmitError(f"pipeline package {package} does not exist; run `tfxp compile` first")
    if schedule:
        check_schedule(schedule)
    client = client_factory(endpoint, namespace, token)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        pipeline_id, version_id = _upload(client, package, pipeline_name, f"{pipeline_name}-{stamp}")
        if experiment_id is None:
            experiment_id = client.create_experiment(experiment, namespace=namespace or None).experiment_id
        run = client.run_pipeline(
            experiment_id=experiment_id,
            job_name=f"{pipeline_name}-{stamp}",
            pipeline_id=pipeline_id,
            version_id=version_id,
            params=parameters or {},
            pipeline_root=pipeline_root,
        )
        result = SubmitResult(pipeline_id, version_id, experiment_id, run.run_id)
        if schedule:
            recurring = client.create_recurring_run(
                experiment_id=experiment_id,
                job_name=f"{pipeline_name}-recurring",
                cron_expression=schedule,
                pipeline_id=pipeline_id,
                version_id=version_id,
                params=parameters or {},
                pipeline_root=pipeline_root,
            )
            result.recurring_run_id = recurring.recurring_run_id
        if wait:
            result.state = str(client.wait_for_run_completion(run.run_id, timeout=timeout).state)
        return result
    except SubmitError:
        raise
    except TimeoutError:
        raise SubmitError(f"run {run.run_id} did not finish within {timeout} s; it goes on in the cluster") from None
    except Exception as err:  # noqa: BLE001 - every API failure becomes one clear line
        if experiment_id and "experiment" in str(getattr(err, "body", "")).lower() and getattr(err, "status", 0) == 404:
            raise SubmitError(
                f"experiment {experiment_id} does not exist at {endpoint}"
                f"{f' in namespace {namespace}' if namespace else ''}; "
                "pass --experiment NAME to find or create one by name"
            ) from None
        raise _explain(err, endpoint or "") from None
