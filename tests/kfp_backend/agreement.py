"""What the Python harness (harness.py) and KFP's own binaries made of the same run, side by side.

The harness is our reading of KFP's driver and launcher; test_kfp_go_pipeline.py runs the same
compiled pipeline on the same data through both and holds them to each other here. For every
task, each side gives one record:

- `inputs`: the executor input's parameter values and input artifacts, each artifact named by
  the task and output that produced it, with its type and metadata (what the driver resolved);
- `outputs`: the output artifacts the driver provisioned (type, metadata, the URI's place under
  the run's root) and the output parameters' files;
- `recorded`: each output artifact as ML Metadata holds it after the launcher (its type's name
  and custom properties), and the output parameters' values;
- `uploaded`: the object keys below each output artifact's URI.

Numbers are compared as numbers: ML Metadata and protobuf's Struct keep doubles, and Go's
protojson writes 1.0 as `1`. The binaries are KFP 2.0.5's and the harness reads 2.5.0; `known`
takes out the differences between those two releases, each named with its source, before
`differences` lists every place where the two records still disagree.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.kfp_backend.harness import bucket_config, key_from_uri

RUN_ROOT = "<run root>"
# What differs from one run to the next by design: the Pusher names the version it writes by the
# time of the push (TFX's Pusher: `int(time.time())`), in these properties of its artifact.
PUSH_TIME = ("pushed_version", "pushed_destination")
# And TensorBoard's event files (the Trainer's model_run), named by the time, host and process
# that wrote them: events.out.tfevents.<time>.<host>.<pid>.<n>.v2.
EVENTS = re.compile(r"(^|/)events\.out\.tfevents\.[^/]+$")


def _numbers(value: Any) -> Any:
    """ints as floats, all the way down (bool stays bool)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def _title(schema: str) -> str:
    """The artifact type's name in ML Metadata: the instance schema's title (metadata/client.go
    SchemaToArtifactType)."""
    for line in schema.splitlines():
        if line.startswith("title:"):
            return line.split(":", 1)[1].strip()
    return schema


class _Namer:
    """Replaces a run's own names (artifact ids, URIs) with what they stand for."""

    def __init__(self, run_root: str):
        self.run_root = run_root.split("?", 1)[0].rstrip("/")
        self.by_id: dict[str, str] = {}

    def uri(self, uri: str) -> str:
        if uri.startswith(self.run_root + "/"):
            return RUN_ROOT + uri[len(self.run_root) :]
        return uri

    def artifact(self, artifact: dict[str, Any]) -> dict[str, Any]:
        """An executor input's runtime artifact, its id and URI replaced."""
        named = dict(artifact)
        if "name" in named:
            named["name"] = self.by_id.get(str(named["name"]), f"unknown artifact {named['name']}")
        if "uri" in named:
            named["uri"] = self.uri(named["uri"])
        if "metadata" in named:
            named["metadata"] = self.properties(named["metadata"])
        return named

    def properties(self, properties: dict[str, Any]) -> dict[str, Any]:
        """Custom properties: URIs under the run's root, and the ids of this run's artifacts that
        TFX records (the Evaluator's `current_model_id`), replaced."""
        named = {}
        for key, value in _numbers(properties).items():
            if key in PUSH_TIME and isinstance(value, str):
                value = re.sub(r"[0-9]+$", "<push time>", value)
            elif isinstance(value, str) and key.endswith("_id") and value in self.by_id:
                value = self.by_id[value]
            elif isinstance(value, str):
                value = self.uri(value)
            named[key] = value
        return named

    def executor_input(self, executor_input: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        inputs = executor_input.get("inputs", {})
        outputs = executor_input.get("outputs", {})
        return (
            {
                "parameterValues": _numbers(inputs.get("parameterValues", {})),
                "artifacts": {
                    name: [self.artifact(a) for a in lst.get("artifacts", [])]
                    for name, lst in inputs.get("artifacts", {}).items()
                },
            },
            {
                "artifacts": {
                    name: [self.artifact(a) for a in lst.get("artifacts", [])]
                    for name, lst in outputs.get("artifacts", {}).items()
                },
                "parameters": outputs.get("parameters", {}),
                "outputFile": outputs.get("outputFile"),
            },
        )


def of_harness(backend, results: dict[str, Any], pipeline_root: str) -> dict[str, dict[str, Any]]:
    """The harness's record of a run: `backend` a harness.Backend after `results = backend.run(...)`."""
    namer = _Namer(backend.run_root)
    for task, result in results.items():
        for name, artifact in result.outputs.items():
            namer.by_id[str(artifact["id"])] = f"{task}.{name}"
    record = {}
    for task, result in results.items():
        if result.executor_input is None:
            raise ValueError(f"{task} was served from the harness's cache: compare runs that ran every task")
        inputs, outputs = namer.executor_input(result.executor_input)
        record[task] = {
            "inputs": inputs,
            "outputs": outputs,
            "recorded": {
                "artifacts": {
                    name: {"type": _title(a["schema"]), "custom_properties": namer.properties(a["custom_properties"])}
                    for name, a in result.outputs.items()
                },
                "parameters": _numbers(result.parameters),
            },
            "uploaded": {
                name: _keys(backend.object_files(a["uri"], pipeline_root)) for name, a in result.outputs.items()
            },
        }
    return record


def _mlmd_value(value) -> Any:
    from google.protobuf import json_format

    kind = value.WhichOneof("value")
    if kind == "struct_value":
        return json_format.MessageToDict(value.struct_value)
    return getattr(value, kind) if kind else None


def of_kfp(store, run_id: str, executor_inputs: dict[str, dict], objects) -> dict[str, dict[str, Any]]:
    """KFP's record of a run, from its ML Metadata `store` (the run's context is named `run_id`),
    each task's executor input as its driver made it (`executor_inputs`, by task name), and
    `objects(key_prefix)`, the object store's keys under a prefix, less the prefix."""
    [context] = [c for c in store.get_contexts_by_type("system.PipelineRun") if c.name == run_id]
    namer = _Namer(context.custom_properties["pipeline_root"].string_value)
    container = store.get_execution_type("system.ContainerExecution").id
    executions = {
        e.custom_properties["task_name"].string_value: e
        for e in store.get_executions_by_context(context.id)
        if e.type_id == container
    }
    types = {t.id: t.name for t in store.get_artifact_types()}
    produced: dict[str, dict[str, Any]] = {}
    for task, execution in executions.items():
        events = [e for e in store.get_events_by_execution_ids([execution.id]) if e.type == e.OUTPUT]
        artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
        produced[task] = {event.path.steps[0].key: artifacts[event.artifact_id] for event in events}
        for name, artifact in produced[task].items():
            namer.by_id[str(artifact.id)] = f"{task}.{name}"
    root = context.custom_properties["pipeline_root"].string_value
    scheme, bucket, _ = bucket_config(root)
    record = {}
    for task, execution in executions.items():
        inputs, outputs = namer.executor_input(executor_inputs[task])
        parameters = execution.custom_properties.get("outputs")
        record[task] = {
            "inputs": inputs,
            "outputs": outputs,
            "recorded": {
                "artifacts": {
                    name: {
                        "type": types[a.type_id],
                        "custom_properties": namer.properties(
                            {k: _mlmd_value(v) for k, v in a.custom_properties.items()}
                        ),
                    }
                    for name, a in produced[task].items()
                },
                "parameters": _numbers(_mlmd_value(parameters) if parameters is not None else {}),
            },
            "uploaded": {name: _keys(_uploaded(objects, a.uri, root)) for name, a in produced[task].items()},
        }
    return record


def _keys(keys: list[str]) -> list[str]:
    """Object keys, TensorBoard's event files named by their directory alone."""
    return sorted(EVENTS.sub(r"\1events.out.tfevents.<time.host.pid>", key) for key in keys)


def _uploaded(objects, uri: str, root: str) -> list[str]:
    """The keys below an artifact's URI as harness.Backend.object_files lists them ("" for one object)."""
    key = key_from_uri(uri, root)
    below = objects(key + "/")
    if below:
        return sorted(below)
    return [""] if objects(key) == [""] else []


def executor_input_of(pod_spec_patch: str) -> dict[str, Any]:
    """The executor input a container driver put in its pod-spec patch (the launcher's
    --executor_input: driver.go initPodSpecPatch)."""
    [container] = json.loads(pod_spec_patch)["containers"]
    command = container["command"]
    return json.loads(command[command.index("--executor_input") + 1])


# KFP 2.0.5 against 2.5.0, each taken out of the harness's record (the 2.5 side):
KNOWN = (
    "2.5's driver publishes the launcher's log as one more output, `executor-logs` "
    "(driver.go provisionOutputs with PUBLISH_LOGS, on by default); 2.0.5 has no such output",
    "2.5 salts each task's output URIs with a UUID, <run root>/<task>/<uuid>/<output> "
    "(provisionOutputs' outputURISalt); 2.0.5 writes <run root>/<task>/<output> (driver.go "
    "generateOutputURI, line 1081)",
    "2.5's RecordArtifact adds `store_session_info` to every artifact's custom properties; 2.0.5's "
    "does not (metadata/client.go RecordArtifact, line 865, adds `display_name` alone)",
)


def known(record: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The harness's (2.5's) record less the differences KNOWN lists."""
    out = json.loads(json.dumps(record))
    for task in out.values():
        for section in (task["outputs"]["artifacts"], task["recorded"]["artifacts"], task["uploaded"]):
            section.pop("executor-logs", None)
        for side in (task["inputs"]["artifacts"], task["outputs"]["artifacts"]):
            for artifacts in side.values():
                for artifact in artifacts:
                    if "uri" in artifact:
                        artifact["uri"] = _unsalted(artifact["uri"])
                    if "metadata" in artifact:
                        artifact["metadata"] = _unsalted_properties(artifact["metadata"])
        for artifact in task["recorded"]["artifacts"].values():
            artifact["custom_properties"] = _unsalted_properties(artifact["custom_properties"])
    return out


def _unsalted_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """Custom properties less store_session_info, the URIs in them unsalted."""
    return {k: _unsalted(v) if isinstance(v, str) else v for k, v in properties.items() if k != "store_session_info"}


def _unsalted(uri: str) -> str:
    """<run root>/<task>/<uuid>/<output> as <run root>/<task>/<output>."""
    if not uri.startswith(RUN_ROOT + "/"):
        return uri
    parts = uri[len(RUN_ROOT) + 1 :].split("/")
    return "/".join([RUN_ROOT, parts[0], *parts[2:]]) if len(parts) >= 3 else uri


def differences(kfp: dict[str, Any], harness: dict[str, Any], path: str = "") -> list[str]:
    """Every place where the two records differ, as `path: kfp X, harness Y`."""
    if isinstance(kfp, dict) and isinstance(harness, dict):
        found = []
        for key in sorted(set(kfp) | set(harness)):
            where = f"{path}.{key}" if path else str(key)
            if key not in harness:
                found.append(f"{where}: only in KFP's record ({_short(kfp[key])})")
            elif key not in kfp:
                found.append(f"{where}: only in the harness's record ({_short(harness[key])})")
            else:
                found += differences(kfp[key], harness[key], where)
        return found
    if kfp != harness:
        return [f"{path}: KFP {_short(kfp)}, harness {_short(harness)}"]
    return []


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 300 else text[:297] + "..."
