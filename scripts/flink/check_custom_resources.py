"""Validates custom resources in rendered manifests against their CRDs' own OpenAPI schemas.

kubernetes-validate knows the built-in kinds only: for any other kind it prints a warning,
"Couldn't find schema for kind ...", and passes (kubernetes_validate/utils.py
`validate_resource`: SchemaNotFoundError is a warning, exit code 0). So
scripts/check-manifests.sh hands the rendered kubernetes/flink and the operator's CRD
(scripts/flink/operator-crd.sh) to this script, which

- validates every resource of the CRD's kind against the `openAPIV3Schema` of its served
  version, with unknown fields rejected as `kubectl apply --validate=strict` rejects them (an
  object schema with `properties` gets `additionalProperties: false` unless it is marked
  `x-kubernetes-preserve-unknown-fields`),
- validates each FlinkDeployment pod template as a v1 Pod with kubernetes-validate's strict
  schemas (the CRD types the templates loosely), and
- writes the pod templates as Pods to --pods-out (with the rendered NetworkPolicies), which
  check-manifests.sh scans with checkov (checkov does not look inside a custom resource).

Runs in the tools' environment (jsonschema and kubernetes-validate).
Usage: check_custom_resources.py CRD.yml RENDERED.yaml --pods-out PODS.yaml
"""

from __future__ import annotations

import argparse
import copy
import sys
from typing import Any

import jsonschema
import yaml
from kubernetes_validate import utils as kv

POD_TEMPLATES = (("podTemplate",), ("jobManager", "podTemplate"), ("taskManager", "podTemplate"))


def strict(schema: Any) -> Any:
    """The schema with unknown properties rejected, as strict field validation does."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema:
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


def schemas(crd: dict) -> tuple[str, str, dict[str, dict]]:
    spec = crd["spec"]
    versions = {}
    for version in spec["versions"]:
        if version.get("served"):
            schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
            # Every object's own fields, which the API server checks before the CRD's schema.
            schema.setdefault("properties", {}).update(
                {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}
            )
            versions[version["name"]] = strict(schema)
    return spec["group"], spec["names"]["kind"], versions


def with_operator_fields(pod: dict, spec: dict, keys: tuple[str, ...]) -> dict:
    """The pod template with what the operator adds to Flink's container (flink-main-container):
    the FlinkDeployment's image and pull policy, and for a JobManager or TaskManager template its
    `resource` as requests and limits (the operator's default limit factors are 1; Flink's
    memory "m" is mebibytes); and the label `app: <name>` that Flink puts on the cluster's pods."""
    resource = spec.get(keys[0], {}).get("resource") if len(keys) > 1 else None
    for container in pod.get("spec", {}).get("containers", []):
        if container.get("name") != "flink-main-container":
            continue
        container.setdefault("image", spec.get("image"))
        container.setdefault("imagePullPolicy", spec.get("imagePullPolicy", "IfNotPresent"))
        if resource:
            amounts = {"cpu": str(resource["cpu"]), "memory": str(resource["memory"]).replace("m", "Mi")}
            container.setdefault("resources", {"requests": amounts, "limits": dict(amounts)})
    return pod


def check(crd: dict, resources: list[dict]) -> tuple[list[str], list[dict], int]:
    """The errors, the pod templates as Pods, and how many custom resources were checked."""
    group, kind, versions = schemas(crd)
    errors: list[str] = []
    pods: list[dict] = []
    checked = 0
    for resource in resources:
        if resource.get("kind") != kind:
            continue
        api_group, _, version = resource.get("apiVersion", "").rpartition("/")
        name = resource.get("metadata", {}).get("name", "?")
        if api_group != group or version not in versions:
            errors.append(f"{kind} {name}: apiVersion {resource.get('apiVersion')} is not served by the CRD")
            continue
        checked += 1
        validator = jsonschema.Draft7Validator(versions[version])
        for error in sorted(validator.iter_errors(resource), key=lambda e: list(e.absolute_path)):
            path = ".".join(str(p) for p in error.absolute_path)
            errors.append(f"{kind} {name}: {path}: {error.message}")
        for keys in POD_TEMPLATES:
            template: Any = resource.get("spec", {})
            for key in keys:
                template = template.get(key) if isinstance(template, dict) else None
            if not template:
                continue
            pod = with_operator_fields(copy.deepcopy(template), resource["spec"], keys)
            pod.setdefault("apiVersion", "v1")
            pod.setdefault("kind", "Pod")
            pod.setdefault("metadata", {})
            pod["metadata"].setdefault("labels", {})["app"] = name
            pod["metadata"]["name"] = f"{name}-{'-'.join(keys[:-1]) or 'common'}-template".lower()
            pod["metadata"].setdefault("annotations", {}).update(resource["metadata"].get("annotations", {}))
            try:
                kv.validate(pod, kv.latest_version(), strict=True)
            except kv.ValidationError as error:
                path = ".".join(str(p) for p in error.path)
                errors.append(f"{kind} {name}: {'.'.join(keys)} as a Pod: {path}: {error.message}")
            pods.append(pod)
    return errors, pods, checked


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="check_custom_resources.py")
    parser.add_argument("crd")
    parser.add_argument("rendered")
    parser.add_argument("--pods-out", required=True)
    args = parser.parse_args(argv)
    with open(args.crd) as f:
        crd = yaml.safe_load(f)
    with open(args.rendered) as f:
        resources = [doc for doc in yaml.safe_load_all(f) if doc]
    errors, pods, checked = check(crd, resources)
    # With the NetworkPolicies, so that checkov's graph check sees which select the pods.
    pods += [r for r in resources if r.get("kind") == "NetworkPolicy"]
    with open(args.pods_out, "w") as f:
        yaml.safe_dump_all(pods, f, sort_keys=False)
    for error in errors:
        print(f"[manifests] error: {error}", file=sys.stderr)
    if not checked and not errors:
        print(f"[manifests] error: no {crd['spec']['names']['kind']} in {args.rendered}", file=sys.stderr)
        return 1
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
