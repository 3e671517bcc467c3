"""The command every compiled step runs: TFX's Kubeflow V2 entrypoint under the KFP launcher's contract.

TFX's `kubeflow_v2_run_executor` was written for Vertex AI, where artifact URIs are gs:// paths
that TensorFlow reads natively and every artifact arrives with its type. The open-source KFP
2.x backend differs in three ways, read from its source (kubeflow/pipelines 2.5.0):

1. Remote URIs. The driver gives every output a URI below the pipeline root, which must be
   gs://, s3:// or minio:// (objectstore/config.go `ParseBucketPathToConfig`); nothing in TF reads
   minio:// or s3://. The launcher (component/launcher_v2.go) downloads each input artifact to
   `LocalPathForURI(uri)` (/gcs/..., /s3/..., /minio/...) before the command and uploads each
   output's local path after it. So under the launcher every artifact is read and written
   through those local paths, and the output metadata names the remote URIs again (the
   launcher's `mergeRuntimeArtifacts` copies a non-empty URI from it into ML Metadata).
2. The executor-logs output. With PUBLISH_LOGS (the default) the driver's `provisionOutputs`
   adds an `executor-logs` output of `schemaTitle: system.Artifact`, which the launcher itself
   writes. TFX would parse it and fail ("Could not import system.Artifact"): KFP's own outputs
   are left out of what TFX sees.
3. Untyped inputs. The driver resolves upstream artifacts from ML Metadata with
   `OutputArtifact.Schema: ""` (metadata/client.go `GetOutputArtifactsByExecutionId`), so TFX
   gets `instanceSchema: ""` and fails (tensorflow/tfx#7768). The type is restored from the
   step's own inputs spec, which TFX's compiler passes as --json_serialized_inputs_spec_args.

The launcher is recognised by the KFP_POD_NAME variable that KFP's Argo compiler sets on every
executor container (compiler/argocompiler/common.go `commonEnvs`). Elsewhere (Vertex AI,
kfp.local) URIs are left as they are; 2 and 3 apply everywhere.

4. Beam on a remote cluster (beam.flink_on_kubernetes: --tfxp_beam_exchange_dir=DIR among the
   Beam arguments). The launcher's local paths exist in this pod only, and the Flink workers
   that read and write the artifacts run in other pods. So the artifacts go through DIR, on the
   PVC that this pod and the TaskManager pods mount at the same path: the inputs are copied
   from the launcher's paths into DIR + local path before TFX runs, TFX reads and writes there,
   the outputs are copied back to the launcher's paths for its upload, and the step's copies
   in DIR are removed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
from typing import Any, Mapping

import yaml

COMMAND = ["python", "-m", "pipeline.kfp_executor"]
# The last step's executor, whose report says whether the run pushed nothing (_notify_refused).
RUN_PAGE_EXECUTOR = "components.run_page.executor.Executor"

# launcher_v2.go LocalPathForURI (oci:// is for model cars, which no TFX step reads).
LOCAL_MOUNTS = (("gs://", "/gcs/"), ("minio://", "/minio/"), ("s3://", "/s3/"))
# Inputs that the compiled pipeline gives a step for KFP's cache key only (kubeflow_runner's
# data fingerprint): TFX's executors never see them.
KFP_ONLY_PREFIX = "kfp_"
# Schemes TensorFlow's file systems cannot open (no S3 or MinIO plug-in in the image).
NOT_NATIVE = ("minio://", "s3://")


class ContractError(RuntimeError):
    """The executor input cannot be run as given; the message says why."""


def under_kfp_launcher(environ: Mapping[str, str] = os.environ) -> bool:
    return bool(environ.get("KFP_POD_NAME"))


def local_path_for_uri(uri: str) -> str | None:
    """The launcher's local path for a remote URI, or None for a URI it does not map."""
    for scheme, mount in LOCAL_MOUNTS:
        if uri.startswith(scheme):
            return mount + uri[len(scheme) :]
    return None


def type_title(artifact_type: Mapping[str, Any] | None) -> str:
    """The type name of a PipelineSpec artifact type: the instance schema's title, else the schema title."""
    artifact_type = artifact_type or {}
    schema = artifact_type.get("instanceSchema")
    if schema:
        parsed = yaml.safe_load(schema)
        if isinstance(parsed, dict) and parsed.get("title"):
            return str(parsed["title"])
    return str(artifact_type.get("schemaTitle") or "")


def is_kfp_type(artifact_type: Mapping[str, Any] | None) -> bool:
    """KFP's own system.* types, which TFX never declares (it writes instance schemas)."""
    return type_title(artifact_type).startswith("system.") and not (artifact_type or {}).get("instanceSchema")


def _importable_type(artifact: dict[str, Any]) -> None:
    """TFX's entrypoint imports a custom type by its schema title as a class path; our types that
    KFP's UI shows (components/run_page/artifacts.py) are titled with KFP's names (system.HTML,
    ...), so their class path replaces the title in what TFX reads. The launcher records the
    output under the title of the step's own spec, which stays KFP's."""
    from components.run_page.artifacts import BY_TITLE

    schema = (artifact.get("type") or {}).get("instanceSchema")
    title = type_title(artifact.get("type"))
    if schema and title in BY_TITLE:
        parsed = yaml.safe_load(schema)
        parsed["title"] = BY_TITLE[title]
        artifact["type"] = {"instanceSchema": yaml.safe_dump(parsed, sort_keys=False)}


def prepare(
    executor_input: Mapping[str, Any], inputs_spec: Mapping[str, Any] | None, launcher: bool
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The executor input TFX can run, the local path -> remote URI map, and the outputs left out."""
    prepared = copy.deepcopy(dict(executor_input))
    parameters = prepared.get("inputs", {}).get("parameterValues", {})
    for name in [name for name in parameters if name.startswith(KFP_ONLY_PREFIX)]:
        del parameters[name]
    spec_artifacts = (inputs_spec or {}).get("artifacts", {})
    local_to_remote: dict[str, str] = {}

    def localise(artifact: dict[str, Any], role: str, name: str) -> None:
        uri = artifact.get("uri", "")
        local = local_path_for_uri(uri) if launcher else None
        if local is not None:
            local_to_remote[local] = uri
            artifact["uri"] = local
        elif uri.startswith(NOT_NATIVE):
            raise ContractError(
                f"{role} artifact '{name}' is at {uri}, which TensorFlow cannot open, and this step does not run "
                "under the KFP launcher (no KFP_POD_NAME), which would give it a local copy"
            )

    for name, artifacts in prepared.get("inputs", {}).get("artifacts", {}).items():
        for artifact in artifacts.get("artifacts", []):
            if not type_title(artifact.get("type")) or is_kfp_type(artifact.get("type")):
                declared = spec_artifacts.get(name, {}).get("artifactType")
                if not declared:
                    raise ContractError(
                        f"input artifact '{name}' came without a type and the step's inputs spec "
                        "does not declare it; recompile the pipeline with `tfxp compile`"
                    )
                artifact["type"] = copy.deepcopy(declared)
            localise(artifact, "input", name)

    outputs = prepared.get("outputs", {}).get("artifacts", {})
    left_out = sorted(
        name
        for name, artifacts in outputs.items()
        if any(is_kfp_type(a.get("type")) for a in artifacts.get("artifacts", []))
    )
    for name in left_out:
        del outputs[name]
    for name, artifacts in outputs.items():
        for artifact in artifacts.get("artifacts", []):
            _importable_type(artifact)
            localise(artifact, "output", name)
            if launcher and artifact["uri"] in local_to_remote:
                os.makedirs(os.path.dirname(artifact["uri"]), exist_ok=True)
    return prepared, local_to_remote, left_out


def _to_remote(value: str, local_to_remote: Mapping[str, str]) -> str:
    # Longest local path first: one artifact's path can be a prefix of another's.
    for local in sorted(local_to_remote, key=len, reverse=True):
        if value == local or value.startswith(local + "/"):
            return local_to_remote[local] + value[len(local) :]
    return value


def restore(executor_output: Mapping[str, Any], local_to_remote: Mapping[str, str]) -> dict[str, Any]:
    """The executor output with remote URIs again, in artifact URIs and in string metadata."""
    restored = copy.deepcopy(dict(executor_output))
    for artifacts in restored.get("artifacts", {}).values():
        for artifact in artifacts.get("artifacts", []):
            if artifact.get("uri"):
                artifact["uri"] = _to_remote(artifact["uri"], local_to_remote)
            metadata = artifact.get("metadata") or {}
            for key, value in metadata.items():
                if isinstance(value, str):
                    metadata[key] = _to_remote(value, local_to_remote)
    return restored


def _copy(source: str, target: str) -> None:
    if os.path.isdir(source):
        shutil.copytree(source, target, dirs_exist_ok=True)
    elif os.path.exists(source):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)


class Exchange:
    """Moves a step's artifacts between the launcher's local paths and `root` on the shared PVC
    (4. in the module docstring): `stage` before TFX runs, `publish` after it."""

    def __init__(self, root: str):
        self.root = root.rstrip("/")
        self.inputs: dict[str, str] = {}  # launcher path -> exchange path
        self.outputs: dict[str, str] = {}

    def path(self, local: str) -> str:
        return self.root + local

    def stage(self, prepared: dict[str, Any], local_to_remote: dict[str, str]) -> dict[str, str]:
        """Points the prepared input's artifacts at the exchange directory, copies the inputs
        there, and returns the exchange path -> remote URI map."""
        remapped: dict[str, str] = {}
        for role, found in (("inputs", self.inputs), ("outputs", self.outputs)):
            for artifacts in prepared.get(role, {}).get("artifacts", {}).values():
                for artifact in artifacts.get("artifacts", []):
                    local = artifact.get("uri", "")
                    if local in local_to_remote:
                        found[local] = artifact["uri"] = self.path(local)
                        remapped[found[local]] = local_to_remote[local]
        for local, shared in self.inputs.items():
            _copy(local, shared)
        for shared in self.outputs.values():
            os.makedirs(os.path.dirname(shared), exist_ok=True)
        return remapped

    def publish(self) -> None:
        """Copies the outputs back to the launcher's paths, which it uploads."""
        for local, shared in self.outputs.items():
            _copy(shared, local)

    def clean(self) -> None:
        for shared in [*self.inputs.values(), *self.outputs.values()]:
            if os.path.isdir(shared):
                shutil.rmtree(shared, ignore_errors=True)
            elif os.path.exists(shared):
                os.remove(shared)


def _parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    from pipeline.config import EXCHANGE_DIR_ARG

    parser = argparse.ArgumentParser(prog="python -m pipeline.kfp_executor")
    parser.add_argument("--executor_class_path", required=True)
    parser.add_argument("--json_serialized_invocation_args", required=True)
    parser.add_argument("--json_serialized_inputs_spec_args", default=None)
    parser.add_argument(EXCHANGE_DIR_ARG, dest="exchange_dir", default=None)
    return parser.parse_known_args(argv)


def run(argv: list[str], environ: Mapping[str, str] = os.environ) -> None:
    """Runs TFX's entrypoint on the prepared executor input, then restores the output metadata."""
    args, beam_args = _parse_args(argv)
    executor_input = json.loads(args.json_serialized_invocation_args)
    inputs_spec = json.loads(args.json_serialized_inputs_spec_args) if args.json_serialized_inputs_spec_args else None
    prepared, local_to_remote, left_out = prepare(executor_input, inputs_spec, under_kfp_launcher(environ))
    exchange = Exchange(args.exchange_dir) if args.exchange_dir and local_to_remote else None
    if exchange is not None:
        local_to_remote = exchange.stage(prepared, local_to_remote)
        print(f"kfp_executor: artifacts exchanged with the Beam cluster through {exchange.root}", file=sys.stderr)
    if left_out:
        print(f"kfp_executor: outputs left to the KFP launcher: {', '.join(left_out)}", file=sys.stderr)
    if local_to_remote:
        print(
            f"kfp_executor: {len(local_to_remote)} artifacts read and written through the launcher's local paths",
            file=sys.stderr,
        )

    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    # `main` is the module's public entry (what its `app.run` calls); it takes parsed flags.
    tfx_args = argparse.Namespace(
        executor_class_path=args.executor_class_path,
        json_serialized_invocation_args=json.dumps(prepared),
        json_serialized_inputs_spec_args=args.json_serialized_inputs_spec_args,
    )
    try:
        kubeflow_v2_run_executor.main((tfx_args, beam_args))
        if exchange is not None:
            exchange.publish()
    except Exception as err:
        _notify_failure(args.executor_class_path, err, environ)
        raise
    finally:
        if exchange is not None:
            exchange.clean()

    output_file = prepared.get("outputs", {}).get("outputFile")
    if output_file and os.path.exists(output_file):
        with open(output_file) as f:
            executor_output = json.load(f)
        if args.executor_class_path == RUN_PAGE_EXECUTOR:
            _notify_refused(prepared, executor_output, environ)
        if local_to_remote:
            with open(output_file, "w") as f:
                json.dump(restore(executor_output, local_to_remote), f)


def _notify_failure(executor_class_path: str, err: Exception, environ: Mapping[str, str]) -> None:
    """Tells the webhook in the step's environment (pipeline/notify.py ENV_URL, e.g. from
    kubeflow.secrets) that this step failed; the step still fails with its own error."""
    from pipeline import notify

    parts = executor_class_path.split(".")
    # tfx.components.statistics_gen.executor.Executor: the component's package names the step.
    step = parts[-3] if len(parts) >= 3 and parts[-2] == "executor" else executor_class_path
    pod = environ.get("KFP_POD_NAME", "")
    notify.send(
        notify.from_environment(environ),
        notify.RUN_FAILED,
        f"a Kubeflow step ({step}) failed: {type(err).__name__}: {err}",
        {"executor": executor_class_path, "pod": pod, "error": str(err)},
        {},
        environ,
    )


def _notify_refused(
    prepared: Mapping[str, Any], executor_output: Mapping[str, Any], environ: Mapping[str, str]
) -> bool:
    """After the RunPage step (the last): a run that pushed nothing posts run_refused, as `tfxp
    run` does locally. Only compiled steps run this module, so a local run, which notifies from
    tfxp/local_runs.py, is never told twice. True when a webhook took it."""
    from components.run_page.executor import REFUSED_PROPERTY
    from pipeline import notify

    reports = executor_output.get("artifacts", {}).get("report", {}).get("artifacts", [])
    recorded = next(
        (a["metadata"][REFUSED_PROPERTY] for a in reports if REFUSED_PROPERTY in a.get("metadata", {})), None
    )
    if recorded is None:
        return False
    try:
        reasons = [str(reason) for reason in json.loads(recorded)] or ["the run page says why"]
    except (TypeError, ValueError):  # a notification never fails the step it follows
        reasons = [str(recorded)]
    title = prepared.get("inputs", {}).get("parameterValues", {}).get("title", "the pipeline")
    return notify.send(
        notify.from_environment(environ),
        notify.RUN_REFUSED,
        f"a Kubeflow run of {title} pushed nothing: {reasons[0]}",
        {"pod": environ.get("KFP_POD_NAME", ""), "reasons": reasons},
        {},
        environ,
    )


def _absl_flags(argv: list[str]) -> list[str]:
    """Marks absl's flags parsed (it defines none that a step takes) and leaves argv to `run`."""
    from absl import flags

    flags.FLAGS(argv[:1])
    return argv


def main() -> None:
    from absl import app

    # app.run sets up absl logging as TFX's executors expect (TFX's entrypoint runs the same way).
    app.run(lambda argv: run(argv[1:]), flags_parser=_absl_flags)


if __name__ == "__main__":
    try:
        main()
    except ContractError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
