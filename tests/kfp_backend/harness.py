"""Runs a compiled pipeline the way the KFP 2.5 backend's driver and launcher run it, every task in our image.

kfp.local is friendlier than the backend (local paths, complete artifact types). This harness
reproduces what a task receives and what happens to its outputs on a default KFP 2.5 install,
following kubeflow/pipelines at tag 2.5.0:

- backend/src/v2/driver/driver.go `RootDAG`: the pipeline root is the run's
  (runtimeConfig.gcsOutputDirectory), else the kfp-launcher ConfigMap's defaultPipelineRoot,
  else minio://mlpipeline/v2/artifacts (backend/src/v2/config/env.go); objectstore/config.go
  `ParseBucketPathToConfig` accepts gs://, s3:// and minio:// only.
- driver.go `Container` -> `resolveInputs`: run parameters (with the root's defaults), constants and
  upstream output parameters; upstream artifacts as ML Metadata returns them
  (metadata/client.go `GetOutputArtifactsByExecutionId`, converter.go `toRuntimeArtifact`):
  name = the artifact's id, `instanceSchema: ""`, metadata = its custom properties with every
  number a double, plus the `display_name` and `store_session_info` that `RecordArtifact` adds.
- metadata/client.go `GetPipeline`: the run's root is `<root>/<pipeline name>/<run id>`
  (`GenerateOutputURI`, the root's query string kept), recorded in the run's context.
- driver.go `provisionOutputs`: output URIs `<run's root>/<task>/<uuid>/<output>` (the query
  string dropped), the executor-logs
  output (system.Artifact) when logs are published (PUBLISH_LOGS, on by default), the output
  metadata file /tmp/kfp_outputs/output_metadata.json, output parameters /tmp/kfp/outputs/<name>.
- driver.go `getFingerPrint` and cacheutils/cache.go `GenerateCacheKey`: the cache key of a task
  with caching on is its input artifacts' ids, input parameter values, output specs without URIs,
  output parameter types, command, arguments and image; a hit reuses the earlier execution's
  outputs (`reuseCachedOutputs`) and the task does not run.
- component/launcher_v2.go `executeV2`: `addDefaultParams`, `getPlaceholders` (`{{$}}`, input
  parameters, output parameter files), `downloadArtifacts` (every object below the input's key,
  by prefix, to `LocalPathForURI`; objectstore/object_store.go `DownloadBlob`),
  `prepareOutputFolders` (parents only), the command with its output copied into the
  executor-logs file, `getExecutorOutputFile` (strict protojson), `collectOutputParameters`,
  `uploadOutputArtifacts` with `mergeRuntimeArtifacts` (the URI, if not empty, and the metadata of
  the executor output's artifact) and `UploadBlob` (files only: an object store keeps no empty
  directory; a missing local path is skipped with a warning, a URI outside the bucket fails).
- compiler/argocompiler: the /gcs, /s3 and /minio scratch directories are empty per pod
  (container.go), KFP_POD_NAME and KFP_POD_UID are set (common.go), the PVC of the kfp-kubernetes
  platform spec is mounted at its path.
- A platform spec with a security context (kubeflow.pod_security) runs as the restricted pod it
  makes with the cluster's Argo defaults (docs/kubeflow.md, "Pod security"): its uid, the root
  file system read-only, writable only the emptyDirs it mounts (/tmp, HOME, /gcs, /minio, /s3)
  and the PVC, no capabilities, no privilege escalation (`podman run --read-only ...`).

The object store is a local directory (`<store>/<bucket>/<key>`); ML Metadata and the cache are a
JSON file, so they persist from run to run. Not reproduced: conditions and loops (the compiled
pipeline has none; a spec with them is refused), retries, importer nodes.

The exit handler (kubeflow.exit_handler) follows KFP 2.14, the first backend that takes its
input: sub-DAGs run in the enclosing order, a task with triggerPolicy ALL_UPSTREAM_TASKS_COMPLETED
runs after a failure, and a taskFinalStatus input is resolved as driver/resolve.go does.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import pathlib
import posixpath
import shutil
import uuid
from typing import Any, Callable

import yaml

DEFAULT_PIPELINE_ROOT = "minio://mlpipeline/v2/artifacts"  # backend/src/v2/config/env.go
SCHEMES = ("gs://", "s3://", "minio://")
OUTPUT_METADATA_FILE = "/tmp/kfp_outputs/output_metadata.json"  # launcher_v2.go OutputMetadataFilepath
LOCAL_MOUNTS = {"gs://": "/gcs/", "minio://": "/minio/", "s3://": "/s3/"}  # launcher_v2.go LocalPathForURI


class TaskFailed(RuntimeError):
    def __init__(self, task: str, reason: str, logs: str = ""):
        tail = "\n".join(logs.strip().splitlines()[-40:])
        tail = f"\n--- the task's last log lines:\n{tail}" if tail else ""
        super().__init__(f"task {task} failed: {reason}{tail}")
        self.task, self.reason, self.logs = task, reason, logs


@dataclasses.dataclass
class TaskResult:
    name: str
    cached: bool
    execution_id: int
    outputs: dict[str, dict[str, Any]]  # output name -> the recorded ML Metadata artifact
    parameters: dict[str, Any]  # output parameters
    executor_input: dict[str, Any] | None  # what the task was given (None when cached)
    logs: str = ""


def bucket_config(pipeline_root: str) -> tuple[str, str, str]:
    """(scheme, bucket, prefix) of a pipeline root, as objectstore/config.go parses it."""
    for scheme in SCHEMES:
        if pipeline_root.startswith(scheme):
            rest = pipeline_root[len(scheme) :].split("?", 1)[0]
            bucket, _, prefix = rest.partition("/")
            if not bucket:
                break
            prefix = prefix.strip("/")
            return scheme, bucket, (prefix + "/") if prefix else ""
    raise ValueError(f"parse bucket config failed: unrecognized pipeline root format: {pipeline_root!r}")


def output_uri(root: str, paths: list[str], keep_query: bool) -> str:
    """metadata/client.go GenerateOutputURI: the paths joined below the root, its query string kept or dropped."""
    base, _, query = root.partition("?")
    suffix = "?" + query if keep_query and query else ""
    return f"{base.rstrip('/')}/{posixpath.join(*paths)}{suffix}"


def local_path_for_uri(uri: str) -> str:
    for scheme, mount in LOCAL_MOUNTS.items():
        if uri.startswith(scheme):
            return mount + uri[len(scheme) :]
    raise ValueError(f"failed to generate local path for URI {uri}: unsupported storage scheme")


def key_from_uri(uri: str, pipeline_root: str) -> str:
    scheme, bucket, prefix = bucket_config(pipeline_root)
    prefixed = scheme + os.path.join(bucket, prefix)
    if not uri.startswith(prefixed):
        raise ValueError(f"URI {uri!r} does not have expected bucket prefix {prefixed!r}")
    key = uri[len(prefixed) :].lstrip("/")
    if not key:
        raise ValueError(f"URI {uri!r} has empty key given prefixed bucket {prefixed!r}")
    return prefix + key


def cache_key(
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    output_parameter_types: dict[str, str],
    command_args: list[str],
    image: str,
) -> str:
    """cacheutils.GenerateFingerPrint(GenerateCacheKey(...)): sha256 of the key's JSON."""
    key = {
        "inputArtifactNames": {
            name: {"artifactNames": [a.get("name", "") for a in lst.get("artifacts", [])]}
            for name, lst in inputs.get("artifacts", {}).items()
        },
        "inputParameterValues": inputs.get("parameterValues", {}),
        "outputArtifactsSpec": {
            name: {k: v for k, v in lst["artifacts"][0].items() if k != "uri"}
            for name, lst in outputs.get("artifacts", {}).items()
            if lst.get("artifacts")
        },
        "outputParametersSpec": {name: output_parameter_types[name] for name in outputs.get("parameters", {})},
        "containerSpec": {"image": image, "cmdArgs": command_args},
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _text_to_value(text: str, parameter_type: str) -> Any:
    """metadata.TextToPbValue."""
    if parameter_type == "STRING":
        return text
    if parameter_type in ("NUMBER_INTEGER", "NUMBER_DOUBLE"):
        return float(text)
    if parameter_type == "BOOLEAN":
        return text.strip() == "true"
    return json.loads(text)


def _mlmd_value(value: Any) -> Any:
    """converter.go StructValueToMLMDValue, then toRuntimeArtifact on the way back: numbers and
    booleans come back as doubles, lists and structs wrapped in {"list": ...} / {"struct": ...}.
    ML Metadata's own store (the C++ store of the ml-metadata wheel, which its server runs) keeps
    a double property to six decimal places: 0.9513216813520151 comes back as 0.951322 and
    1.2e-07 as 0.0 (measured with ml-metadata 1.21 on SQLite; test_agreement.py holds the store
    to it). Structs and lists are kept whole."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(f"{float(value):.6f}")
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return {"list": value}
    if isinstance(value, dict):
        return {"struct": value}
    raise ValueError(f"unknown/unsupported value type {type(value).__name__}")


def _artifact_schema(artifact_type: dict[str, Any]) -> str:
    """launcher_v2.go getArtifactSchema: the instance schema, else "title: " and the schema title;
    ML Metadata's type is that schema's title (metadata/client.go SchemaToArtifactType)."""
    if artifact_type.get("instanceSchema"):
        return artifact_type["instanceSchema"]
    return "title: " + artifact_type.get("schemaTitle", "")


def _placeholder_text(value: Any) -> str:
    """getPlaceholders: strings as they are, numbers as strconv.FormatFloat(v, 'f', -1, 64), the rest JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return json.dumps(value)


class Backend:
    """A KFP 2.5 backend for one pipeline: object store, ML Metadata and cache under `work`."""

    def __init__(
        self,
        work: pathlib.Path,
        run_container: Callable[..., tuple[int, str]],
        launcher_config_root: str | None = None,
        publish_logs: bool = True,
        pvcs: pathlib.Path | None = None,
    ):
        self.work = pathlib.Path(work)
        self.pvcs = pathlib.Path(pvcs) if pvcs else self.work / "pvc"  # <pvcs>/<claim name>
        self.store = self.work / "object-store"
        self.run_container = run_container
        self.launcher_config_root = launcher_config_root
        self.publish_logs = publish_logs
        self._state_file = self.work / "mlmd.json"
        self.work.mkdir(parents=True, exist_ok=True)
        self.store.mkdir(exist_ok=True)
        self.state = (
            json.loads(self._state_file.read_text())
            if self._state_file.exists()
            else {"artifacts": {}, "executions": {}, "cache": {}, "next_id": 1, "runs": 0}
        )

    def _save(self) -> None:
        self._state_file.write_text(json.dumps(self.state, indent=1, sort_keys=True))

    def _new_id(self) -> int:
        self.state["next_id"] += 1
        return self.state["next_id"] - 1

    # ----------------------------------------------------------------- object store
    def _object_path(self, scheme: str, bucket: str, key: str) -> pathlib.Path:
        return self.store / scheme.rstrip(":/") / bucket / key

    def _download(self, uri: str, pipeline_root: str, scratch: pathlib.Path) -> None:
        """DownloadBlob: every object whose key starts with the artifact's key, to its local path."""
        scheme, bucket, _ = bucket_config(pipeline_root)
        key = key_from_uri(uri, pipeline_root)
        local_dir = scratch / local_path_for_uri(uri).lstrip("/")
        bucket_dir = self._object_path(scheme, bucket, "")
        # Every key with the prefix lies below the prefix's parent "directory": list only that.
        for path in sorted((bucket_dir / os.path.dirname(key)).rglob("*")):
            object_key = path.relative_to(bucket_dir).as_posix()
            if path.is_file() and object_key.startswith(key):
                target = pathlib.Path(os.path.normpath(local_dir / os.path.relpath(object_key, key)))
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)

    def _upload(self, uri: str, pipeline_root: str, scratch: pathlib.Path) -> list[str]:
        """UploadBlob: the files below the local path (no directories); warnings as a list."""
        try:
            local = scratch / local_path_for_uri(uri).lstrip("/")
        except ValueError:
            return [f"Output Artifact does not have a recognized storage URI {uri!r}. Skipping uploading"]
        key = key_from_uri(uri, pipeline_root)  # raises for a URI outside the bucket
        scheme, bucket, _ = bucket_config(pipeline_root)
        if not local.exists():
            return [f"Local filepath {str(local)!r} does not exist"]
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        for path in files:
            relative = "" if path == local else "/" + path.relative_to(local).as_posix()
            target = self._object_path(scheme, bucket, key + relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        return []

    def read_object(self, uri: str, pipeline_root: str) -> bytes:
        """The object at an artifact's URI (for tests: what KFP's UI reads for HTML and Markdown)."""
        scheme, bucket, _ = bucket_config(pipeline_root)
        return self._object_path(scheme, bucket, key_from_uri(uri, pipeline_root)).read_bytes()

    def object_files(self, uri: str, pipeline_root: str) -> list[str]:
        """The object keys below an artifact's URI (for tests)."""
        scheme, bucket, _ = bucket_config(pipeline_root)
        key = key_from_uri(uri, pipeline_root)
        base = self._object_path(scheme, bucket, key)
        if base.is_file():
            return [""]
        return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()) if base.exists() else []

    # ----------------------------------------------------------------- ML Metadata
    def _record_artifact(self, name: str, runtime_artifact: dict[str, Any], pipeline_root: str) -> dict[str, Any]:
        custom = {k: _mlmd_value(v) for k, v in (runtime_artifact.get("metadata") or {}).items()}
        custom.setdefault("display_name", name)
        scheme, bucket, prefix = bucket_config(pipeline_root)
        custom.setdefault("store_session_info", json.dumps({"Provider": scheme.rstrip(":/"), "Params": {}}))
        artifact_id = self._new_id()
        artifact = {
            "id": artifact_id,
            "uri": runtime_artifact.get("uri", ""),
            "custom_properties": custom,
            "schema": _artifact_schema(runtime_artifact.get("type") or {}),
        }
        self.state["artifacts"][str(artifact_id)] = artifact
        return artifact

    @staticmethod
    def _as_input(artifact: dict[str, Any]) -> dict[str, Any]:
        """OutputArtifact.ToRuntimeArtifact with Schema "" (GetOutputArtifactsByExecutionId)."""
        return {
            "name": str(artifact["id"]),
            "uri": artifact["uri"],
            "metadata": dict(artifact["custom_properties"]),
            "type": {"instanceSchema": ""},
        }

    # ----------------------------------------------------------------- a run
    def run(
        self, pipeline_yaml: str, parameters: dict[str, Any] | None = None, pipeline_root: str | None = None
    ) -> dict[str, TaskResult]:
        """Runs every task of the compiled pipeline; raises TaskFailed for the first that fails."""
        with open(pipeline_yaml) as f:
            documents = list(yaml.safe_load_all(f))
        spec = documents[0]
        platform = documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"] if len(documents) > 1 else {}
        root = pipeline_root or self.launcher_config_root or DEFAULT_PIPELINE_ROOT
        bucket_config(root)  # RootDAG refuses a root it cannot parse
        self.state["runs"] += 1
        run_id = str(uuid.uuid4())  # the API server's run id
        self.run_name, self.states = run_id, {}  # this run's task and DAG states, by task name
        self.run_root = output_uri(root, [spec["pipelineInfo"]["name"], run_id], keep_query=True)
        run_parameters = {
            name: definition["defaultValue"]
            for name, definition in spec["root"].get("inputDefinitions", {}).get("parameters", {}).items()
            if "defaultValue" in definition
        }
        run_parameters.update(parameters or {})
        results: dict[str, TaskResult] = {}
        failure = self._run_dag(spec, platform, spec["root"], run_parameters, results, root, run_id)
        if failure is not None:
            raise failure
        return results

    def _run_dag(self, spec, platform, component, parameters, results, root, run_id) -> TaskFailed | None:
        """Runs a DAG's tasks in order, sub-DAGs (the exit handler's body) within it; returns the
        first failure. After a failure no new task starts (Argo's DAG failFast) except one whose
        triggerPolicy is ALL_UPSTREAM_TASKS_COMPLETED: argocompiler/dag.go makes its driver depend
        on `X.Succeeded || X.Skipped || X.Failed || X.Errored` (depends_exit_handler)."""
        tasks = component["dag"]["tasks"]
        failure: TaskFailed | None = None
        for task_name in _topological(tasks):
            task = tasks[task_name]
            policy = task.get("triggerPolicy", {})
            if policy.get("condition") or {"iteratorPolicy", "parameterIterator", "artifactIterator"} & set(task):
                raise NotImplementedError(f"{task_name}: conditions and loops are not reproduced")
            if failure is not None and policy.get("strategy") != "ALL_UPSTREAM_TASKS_COMPLETED":
                continue
            inner = spec["components"][task["componentRef"]["name"]]
            if "dag" in inner:
                # driver.go DAG: the sub-DAG's inputs are its task's inputs, resolved in this DAG.
                sub_parameters = self._inputs(task, parameters, results).get("parameterValues", {})
                sub_failure = self._run_dag(spec, platform, inner, sub_parameters, results, root, run_id)
                self.states[task_name] = "FAILED" if sub_failure else "COMPLETE"
                failure = failure or sub_failure
                continue
            try:
                results[task_name] = self._run_task(spec, platform, task_name, task, parameters, results, root, run_id)
                self.states[task_name] = "CACHED" if results[task_name].cached else "COMPLETE"
            except TaskFailed as err:
                self.states[task_name] = "FAILED"
                failure = failure or err
            self._save()
        return failure

    def _inputs(
        self, task: dict[str, Any], run_parameters: dict[str, Any], results: dict[str, TaskResult]
    ) -> dict[str, Any]:
        parameters, artifacts = {}, {}
        for name, source in task.get("inputs", {}).get("parameters", {}).items():
            if "componentInputParameter" in source:
                parameters[name] = run_parameters[source["componentInputParameter"]]
            elif "runtimeValue" in source:
                parameters[name] = source["runtimeValue"]["constant"]
            elif "taskOutputParameter" in source:
                producer = source["taskOutputParameter"]
                parameters[name] = results[producer["producerTask"]].parameters[producer["outputParameterKey"]]
            elif "taskFinalStatus" in source:
                # KFP 2.14+ driver/resolve.go (2.5's compiler refuses the input): the ML Metadata
                # state of the task's first dependentTask, its name, the run's; `error` left empty.
                producer = task["dependentTasks"][0]
                parameters[name] = {
                    "state": self.states[producer],
                    "pipelineTaskName": producer,
                    "pipelineJobResourceName": self.run_name,
                    "error": {},
                }
            else:
                raise NotImplementedError(f"input parameter source {source}")
        for name, source in task.get("inputs", {}).get("artifacts", {}).items():
            producer = source["taskOutputArtifact"]
            artifact = results[producer["producerTask"]].outputs[producer["outputArtifactKey"]]
            artifacts[name] = {"artifacts": [self._as_input(artifact)]}
        inputs: dict[str, Any] = {}
        if parameters:
            inputs["parameterValues"] = parameters
        if artifacts:
            inputs["artifacts"] = artifacts
        return inputs

    def _provision_outputs(self, component: dict[str, Any], task_name: str) -> dict[str, Any]:
        artifacts = dict(component.get("outputDefinitions", {}).get("artifacts", {}))
        if self.publish_logs:
            artifacts["executor-logs"] = {"artifactType": {"schemaTitle": "system.Artifact"}}
        salt = str(uuid.uuid4())
        outputs: dict[str, Any] = {"outputFile": OUTPUT_METADATA_FILE}
        if artifacts:
            outputs["artifacts"] = {
                name: {
                    "artifacts": [
                        {
                            k: v
                            for k, v in {
                                "uri": output_uri(self.run_root, [task_name, salt, name], keep_query=False),
                                "type": definition.get("artifactType"),
                                "metadata": definition.get("metadata"),
                            }.items()
                            if v
                        }
                    ]
                }
                for name, definition in artifacts.items()
            }
        parameters = component.get("outputDefinitions", {}).get("parameters", {})
        if parameters:
            outputs["parameters"] = {name: {"outputFile": f"/tmp/kfp/outputs/{name}"} for name in parameters}
        return outputs

    def _run_task(self, spec, platform, task_name, task, run_parameters, results, root, run_id) -> TaskResult:
        component = spec["components"][task["componentRef"]["name"]]
        label = component["executorLabel"]
        container = spec["deploymentSpec"]["executors"][label]["container"]
        executor_input = {
            "inputs": self._inputs(task, run_parameters, results),
            "outputs": self._provision_outputs(component, task_name),
        }
        output_parameter_types = {
            name: d["parameterType"] for name, d in component.get("outputDefinitions", {}).get("parameters", {}).items()
        }
        command_args = [*container.get("command", []), *container.get("args", [])]
        fingerprint = None
        if task.get("cachingOptions", {}).get("enableCache"):
            fingerprint = cache_key(
                executor_input["inputs"],
                executor_input["outputs"],
                output_parameter_types,
                command_args,
                container["image"],
            )
            cached = self.state["cache"].get(fingerprint)
            if cached is not None:
                execution = self.state["executions"][str(cached)]
                return TaskResult(
                    task_name,
                    True,
                    cached,
                    {k: self.state["artifacts"][str(a)] for k, a in execution["outputs"].items()},
                    execution["parameters"],
                    None,
                )

        with_defaults = copy.deepcopy(executor_input)  # launcher_v2.go addDefaultParams
        for name, definition in component.get("inputDefinitions", {}).get("parameters", {}).items():
            values = with_defaults["inputs"].setdefault("parameterValues", {})
            if name not in values and "defaultValue" in definition:
                values[name] = definition["defaultValue"]
        placeholders = {"{{$}}": json.dumps(with_defaults)}
        for name, value in with_defaults["inputs"].get("parameterValues", {}).items():
            placeholders[f"{{{{$.inputs.parameters['{name}']}}}}"] = _placeholder_text(value)
        for name, parameter in with_defaults["outputs"].get("parameters", {}).items():
            placeholders[f"{{{{$.outputs.parameters['{name}'].output_file}}}}"] = parameter["outputFile"]

        def fill(text: str) -> str:
            for placeholder, value in placeholders.items():
                text = text.replace(placeholder, value)
            return text

        scratch = self.work / "pods" / f"{run_id}-{task_name}"
        pod = platform.get(label, {})
        # The pod's writable directories: KFP's scratch directories, the launcher's output files,
        # and the emptyDirs the compiled platform spec mounts (kubeflow.pod_security). With a
        # compiled security context the root file system is read-only, as the cluster's Argo
        # defaults make it (docs/kubeflow.md, "Pod security"): those emptyDirs are all it writes.
        restricted = "securityContext" in pod
        writable = ["/gcs", "/s3", "/minio"]
        writable += [m["mountPath"] for m in pod.get("emptyDirMounts", []) if m["mountPath"] not in writable]
        if "/tmp" not in writable:
            writable += ["/tmp/kfp_outputs", "/tmp/kfp/outputs"]
        for path in writable + ["/tmp/kfp_outputs", "/tmp/kfp/outputs"]:
            (scratch / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
        for artifact_list in executor_input["inputs"].get("artifacts", {}).values():
            self._download(artifact_list["artifacts"][0]["uri"], root, scratch)
        for artifact_list in executor_input["outputs"].get("artifacts", {}).values():
            (scratch / local_path_for_uri(artifact_list["artifacts"][0]["uri"]).lstrip("/")).parent.mkdir(
                parents=True, exist_ok=True
            )
        mounts = {str(scratch / path.lstrip("/")): path for path in writable}
        for pvc in pod.get("pvcMount", []):
            mounts[str(self.pvcs / pvc["constant"])] = pvc["mountPath"]
            (self.pvcs / pvc["constant"]).mkdir(parents=True, exist_ok=True)
        command = [fill(part) for part in command_args]
        code, logs = self.run_container(
            image=container["image"],
            command=command,
            mounts=mounts,
            env={"KFP_POD_NAME": f"{run_id}-{task_name}".lower(), "KFP_POD_UID": str(uuid.uuid4())},
            security=pod.get("securityContext") if restricted else None,
        )
        logs_artifact = executor_input["outputs"].get("artifacts", {}).get("executor-logs")
        if logs_artifact:
            logs_path = scratch / local_path_for_uri(logs_artifact["artifacts"][0]["uri"]).lstrip("/")
            logs_path.parent.mkdir(parents=True, exist_ok=True)
            logs_path.write_text(logs)
        if code != 0:
            raise TaskFailed(task_name, f"exit code {code}", logs)
        executor_output = self._executor_output(scratch / OUTPUT_METADATA_FILE.lstrip("/"), task_name, logs)
        parameters = dict(executor_output.get("parameterValues", {}))
        for name, parameter in executor_input["outputs"].get("parameters", {}).items():
            if name in parameters:
                continue
            path = scratch / parameter["outputFile"].lstrip("/")
            if not path.exists():
                raise TaskFailed(
                    task_name,
                    f"failed to read output parameter name={name!r} path={parameter['outputFile']!r}: no such file",
                    logs,
                )
            parameters[name] = _text_to_value(path.read_text(), output_parameter_types[name])
        outputs, warnings = {}, []
        for name, artifact_list in executor_input["outputs"].get("artifacts", {}).items():
            artifact = copy.deepcopy(artifact_list["artifacts"][0])
            produced = executor_output.get("artifacts", {}).get(name, {}).get("artifacts", [])
            if produced:  # mergeRuntimeArtifacts
                if produced[0].get("uri"):
                    artifact["uri"] = produced[0]["uri"]
                if produced[0].get("metadata"):
                    artifact.setdefault("metadata", {}).update(produced[0]["metadata"])
            try:
                warnings += self._upload(artifact["uri"], root, scratch)
            except ValueError as err:
                raise TaskFailed(task_name, f"failed to upload output artifact {name!r}: {err}", logs) from None
            try:
                outputs[name] = self._record_artifact(name, artifact, root)
            except ValueError as err:
                raise TaskFailed(
                    task_name, f"unable to produce MLMD artifact for output {name!r}: {err}", logs
                ) from None
        execution_id = self._new_id()
        self.state["executions"][str(execution_id)] = {
            "task": task_name,
            "run": run_id,
            "outputs": {k: a["id"] for k, a in outputs.items()},
            "parameters": parameters,
            "warnings": warnings,
        }
        if fingerprint is not None:
            self.state["cache"][fingerprint] = execution_id
        shutil.rmtree(scratch)  # the pod's emptyDirs go with it
        return TaskResult(task_name, False, execution_id, outputs, parameters, executor_input, logs)

    @staticmethod
    def _executor_output(path: pathlib.Path, task_name: str, logs: str) -> dict[str, Any]:
        """getExecutorOutputFile: no file is an empty output; an unknown field is an error (protojson)."""
        if not path.exists():
            return {}
        from google.protobuf import json_format
        from kfp.pipeline_spec import pipeline_spec_pb2

        text = path.read_text()
        try:
            json_format.Parse(text, pipeline_spec_pb2.ExecutorOutput())
        except json_format.ParseError as err:
            raise TaskFailed(task_name, f"failed to unmarshall ExecutorOutput in file {path}: {err}", logs) from None
        return json.loads(text)


def _topological(tasks: dict[str, Any]) -> list[str]:
    """Tasks in an order where each comes after those it depends on (dependentTasks and inputs)."""

    def upstream(task: dict[str, Any]) -> set[str]:
        found = set(task.get("dependentTasks", []))
        for kind in ("parameters", "artifacts"):
            for source in task.get("inputs", {}).get(kind, {}).values():
                for key in ("taskOutputParameter", "taskOutputArtifact"):
                    if key in source:
                        found.add(source[key]["producerTask"])
        return found

    order: list[str] = []
    pending = {name: upstream(task) for name, task in tasks.items()}
    while pending:
        ready = sorted(name for name, deps in pending.items() if deps <= set(order))
        if not ready:
            raise ValueError(f"tasks depend on each other in a cycle: {sorted(pending)}")
        order += ready
        for name in ready:
            del pending[name]
    return order


def podman_runner(client, keep_logs: Callable[[str, str], None] | None = None) -> Callable[..., tuple[int, str]]:
    """run_container for Backend: the task's container through the Docker API (podman's service)."""

    def run(
        image: str, command: list[str], mounts: dict[str, str], env: dict[str, str], security: dict | None = None
    ) -> tuple[int, str]:
        from tests.subprocesses import writable_as_fs_group

        writable_as_fs_group(mounts)  # the image runs as uid 10001
        # A compiled security context: its user, and what the cluster adds (docs/kubeflow.md,
        # "Pod security"): a read-only root file system, no capabilities, no privilege escalation.
        restricted = (
            {
                "user": f"{security['runAsUser']}:{security['runAsGroup']}",
                "read_only": True,
                "cap_drop": ["ALL"],
                "security_opt": ["no-new-privileges"],
            }
            if security
            else {}
        )
        container = client.containers.run(
            image=image,
            entrypoint=command[:1],
            command=command[1:],
            detach=True,
            environment=env,
            volumes={host: {"bind": path, "mode": "rw"} for host, path in mounts.items()},
            network_mode="none",
            **restricted,
        )
        try:
            code = int(container.wait()["StatusCode"])
            logs = container.logs(stdout=True, stderr=True).decode(errors="replace")
        finally:
            container.remove(force=True)
        if keep_logs is not None:
            keep_logs(command[2] if len(command) > 2 else command[0], logs)
        return code, logs

    return run
