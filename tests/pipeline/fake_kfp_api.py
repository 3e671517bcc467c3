"""A tiny KFP v2beta1 REST API that checks the bodies the kfp SDK sends, as the API server does.

Request bodies are checked against the v2beta1 definitions of kubeflow/pipelines 2.5.0
(`data/kfp_v2beta1_definitions.json`, taken from backend/api/v2beta1/swagger/{run,experiment,
recurring_run}.swagger.json) and against the server's own checks:
- backend/src/apiserver/server/run_server.go `createRun` and job_server.go `createJob`: an
  empty display name is refused; the experiment must exist (resource manager
  `GetValidExperimentNamespacePair`).
- api_converter.go `toModelJob`: max concurrency 1..10; the cron must parse with robfig/cron
  v1.2.0 `cron.Parse` (parser.go `defaultParser`: seconds first, day of week optional, 5 or 6
  fields, or an `@` descriptor); a periodic interval of at least 1 second.
- The pipeline version referenced must exist (resource manager `CreateRun` fetches it).
The gateway (grpc-gateway v1.16 with its default marshaler) silently drops unknown fields;
this fake refuses them instead, so a misspelt field fails here rather than being lost there.
"""

from __future__ import annotations

import json
import pathlib
import re
import urllib.parse
from typing import Any

_DEFINITIONS = json.loads((pathlib.Path(__file__).parent / "data" / "kfp_v2beta1_definitions.json").read_text())[
    "definitions"
]
_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
# robfig/cron v1.2.0 parser.go: seconds, minutes, hours, day of month, month, day of week
_CRON_BOUNDS = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]
_CRON_NAMES = {
    4: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    5: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}


class Invalid(ValueError):
    """The body would be refused by the API server (HTTP 400)."""


def check_message(definition: str, value: Any, where: str) -> None:
    """Raises Invalid unless `value` is a JSON form of the named v2beta1 message."""
    spec = _DEFINITIONS[definition]
    _check(spec, value, where)


def _check(spec: dict, value: Any, where: str) -> None:
    if "$ref" in spec:
        spec = _DEFINITIONS[spec["$ref"].rsplit("/", 1)[1]]
    kind = spec.get("type")
    if "enum" in spec:
        if value not in spec["enum"]:
            raise Invalid(f"{where}: {value!r} is not one of {spec['enum']}")
    elif kind == "object" and "properties" in spec:
        if not isinstance(value, dict):
            raise Invalid(f"{where}: expected an object, got {value!r}")
        for key, item in value.items():
            if key not in spec["properties"]:
                raise Invalid(f"{where}: unknown field {key!r}")
            _check(spec["properties"][key], item, f"{where}.{key}")
    elif kind == "object":
        if "additionalProperties" in spec and not isinstance(value, dict):
            raise Invalid(f"{where}: expected a map, got {value!r}")
    elif kind == "array":
        if not isinstance(value, list):
            raise Invalid(f"{where}: expected a list, got {value!r}")
        for i, item in enumerate(value):
            _check(spec["items"], item, f"{where}[{i}]")
    elif kind == "string" and spec.get("format") == "int64":
        number = isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit())
        if isinstance(value, bool) or not number:
            raise Invalid(f"{where}: expected an integer, got {value!r}")
    elif kind == "string":
        if not isinstance(value, str):
            raise Invalid(f"{where}: expected a string, got {value!r}")
    elif kind == "boolean" and not isinstance(value, bool):
        raise Invalid(f"{where}: expected true or false, got {value!r}")


def check_cron(spec: str) -> None:
    """robfig/cron v1.2.0 `cron.Parse`, as KFP 2.5's API server calls it."""
    if spec.startswith("@"):
        if spec in _DESCRIPTORS or re.fullmatch(r"@every \S+", spec):
            return
        raise Invalid(f"unrecognized descriptor: {spec}")
    fields = spec.split()
    if not 5 <= len(fields) <= 6:
        raise Invalid(f"Expected 5 to 6 fields, found {len(fields)}: {spec}")
    for place, field in enumerate(fields):
        low, high = _CRON_BOUNDS[place]
        for part in field.split(","):
            _check_cron_range(part, low, high, _CRON_NAMES.get(place, []), spec)


def _check_cron_range(part: str, low: int, high: int, names: list[str], spec: str) -> None:
    expr, _, step = part.partition("/")
    if step and not step.isdigit():
        raise Invalid(f"Failed to parse int from {step}: {spec}")
    if expr in ("*", "?"):
        return
    for bound in expr.split("-"):
        number = names.index(bound.lower()) + (1 if low == 1 else 0) if bound.lower() in names else None
        if number is None:
            if not bound.isdigit():
                raise Invalid(f"Failed to parse int from {bound}: {spec}")
            number = int(bound)
        if not low <= number <= high:
            raise Invalid(f"({number}) out of range [{low}, {high}]: {spec}")


class FakeKfp:
    """State and replies of a tiny KFP API; `fail` maps (method, path prefix) to an HTTP status."""

    def __init__(self):
        self.requests: list[tuple[str, str, Any, bytes]] = []
        self.pipelines: dict[str, dict] = {}
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.fail: dict[tuple[str, str], int] = {}
        self.fail_all: int | None = None

    def handle(self, method: str, url: str, headers, body: bytes) -> tuple[int, dict]:
        self.requests.append((method, urllib.parse.urlparse(url).path, headers, body))
        try:
            return self._route(method, url, body)
        except Invalid as err:
            return 400, {"error": str(err), "code": 3, "message": str(err)}
        except LookupError as err:
            return 404, {"error": str(err), "code": 5, "message": str(err)}

    def _route(self, method: str, url: str, body: bytes) -> tuple[int, dict]:
        parsed = urllib.parse.urlparse(url)
        path, query = parsed.path, urllib.parse.parse_qs(parsed.query)
        if self.fail_all:
            return self.fail_all, {"error": "denied", "code": 16, "message": "denied"}
        for (fail_method, prefix), status in self.fail.items():
            if method == fail_method and path.startswith(prefix):
                return status, {"error": "not found", "code": 5, "message": "Experiment not found"}
        api = "/apis/v2beta1"
        if path == f"{api}/healthz":
            return 200, {"multi_user": False}
        if path == f"{api}/pipelines" and method == "GET":
            wanted = json.loads(query["filter"][0])["predicates"][0]["stringValue"]
            found = [p for p in self.pipelines.values() if p["display_name"] == wanted]
            return 200, {"pipelines": found} if found else {}
        if path == f"{api}/pipelines/upload":
            pipeline = {
                "pipeline_id": f"p{len(self.pipelines) + 1}",
                "display_name": query["name"][0],
                "versions": [{"pipeline_version_id": "v1"}],
            }
            self.pipelines[pipeline["pipeline_id"]] = pipeline
            return 200, {k: v for k, v in pipeline.items() if k != "versions"}
        if path == f"{api}/pipelines/upload_version":
            pipeline = self.pipelines[query["pipelineid"][0]]
            version = {
                "pipeline_version_id": f"v{len(pipeline['versions']) + 1}",
                "pipeline_id": pipeline["pipeline_id"],
                "display_name": query["name"][0],
            }
            pipeline["versions"].append(version)
            return 200, version
        if path.startswith(f"{api}/pipelines/") and path.endswith("/versions"):
            pipeline = self.pipelines[path.split("/")[4]]
            return 200, {"pipeline_versions": pipeline["versions"][::-1]}
        if path == f"{api}/experiments" and method == "GET":
            wanted = json.loads(query["filter"][0])["predicates"][0]["stringValue"]
            found = [e for e in self.experiments.values() if e["display_name"] == wanted]
            return 200, {"experiments": found} if found else {}
        if path == f"{api}/experiments" and method == "POST":
            experiment = self._body("v2beta1Experiment", body)
            experiment["experiment_id"] = f"e{len(self.experiments) + 1}"
            self.experiments[experiment["experiment_id"]] = experiment
            return 200, experiment
        if path == f"{api}/runs" and method == "POST":
            run = self._body("v2beta1Run", body)
            self._check_run(run, "run")
            run.update(run_id=f"r{len(self.runs) + 1}", state="PENDING")
            self.runs[run["run_id"]] = run
            return 200, run
        if path.startswith(f"{api}/runs/"):
            run = self.runs[path.rsplit("/", 1)[1]]
            return 200, {**run, "state": "SUCCEEDED"}
        if path == f"{api}/recurringruns":
            recurring = self._body("v2beta1RecurringRun", body)
            self._check_recurring_run(recurring)
            return 200, {**recurring, "recurring_run_id": "rr1"}
        return 404, {"error": f"no route {method} {path}"}

    def _body(self, definition: str, body: bytes) -> dict:
        try:
            value = json.loads(body)
        except ValueError as err:
            raise Invalid(f"body is not JSON: {err}") from None
        check_message(definition, value, definition)
        return value

    def _check_run(self, run: dict, what: str) -> None:
        if not run.get("display_name"):
            raise Invalid(f"The {what} name is empty. Please specify a valid name")
        if run.get("experiment_id") and run["experiment_id"] not in self.experiments:
            raise LookupError(f"Failed to create a {what}: Experiment {run['experiment_id']} not found")
        reference = run.get("pipeline_version_reference") or {}
        if not reference and not run.get("pipeline_spec"):
            raise Invalid(f"Failed to create a {what}: neither a pipeline spec nor a pipeline version")
        if reference:
            pipeline = self.pipelines.get(reference.get("pipeline_id", ""))
            if pipeline is None:
                raise LookupError(f"Pipeline {reference.get('pipeline_id')!r} not found")
            versions = {v["pipeline_version_id"] for v in pipeline["versions"]}
            if reference.get("pipeline_version_id") and reference["pipeline_version_id"] not in versions:
                raise LookupError(f"Pipeline version {reference['pipeline_version_id']!r} not found")

    def _check_recurring_run(self, recurring: dict) -> None:
        self._check_run(recurring, "recurring run")
        if not 1 <= int(recurring.get("max_concurrency", 0)) <= 10:
            raise Invalid(
                "Max concurrency of a recurring run must be at least 1 and at most 10. "
                f"Received {recurring.get('max_concurrency', 0)}"
            )
        trigger = recurring.get("trigger") or {}
        if "cron" in trigger.get("cron_schedule", {}):
            try:
                check_cron(trigger["cron_schedule"]["cron"])
            except Invalid as err:
                raise Invalid(
                    f"Schedule cron is not a supported format(https://godoc.org/github.com/robfig/cron). Error: {err}"
                ) from None
        if "interval_second" in trigger.get("periodic_schedule", {}):
            if int(trigger["periodic_schedule"]["interval_second"]) < 1:
                raise Invalid("Found invalid period schedule interval")

    def calls(self, method: str, path_end: str):
        return [r for r in self.requests if r[0] == method and r[1].endswith(path_end)]
