#!/usr/bin/env bash
# Render every kustomization under kubernetes/ and check the manifests offline: against the
# Kubernetes schemas with unknown fields rejected (kubernetes-validate --strict) and with a
# security scanner (checkov). Accepted checkov findings are annotated on their resources and
# listed in kubernetes/README.md. The Dockerfile goes through checkov too (its accepted
# findings are skip comments in it). The tools live in a host virtual environment in the cache.
set -euo pipefail
project=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${TFXP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tfx-kfp-pipeline}
reqs=$project/requirements/k8s-tools.txt
tools=$cache/k8s-tools-$(grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$reqs" | sha256sum | cut -c1-12)
out=$project/build/manifests

command -v kubectl >/dev/null || { echo "[manifests] error: kubectl (with its built-in kustomize) is needed to render kubernetes/" >&2; exit 1; }
if [ ! -e "$tools/.complete" ]; then
  echo "[manifests] installing kubernetes-validate and checkov in $tools (once)" >&2
  rm -rf "$tools"
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet -r "$reqs" >"$tools.log" 2>&1 \
    || { echo "[manifests] error: installing the tools failed; see $tools.log" >&2; exit 1; }
  touch "$tools/.complete"
fi

mkdir -p "$out"
status=0
for kustomization in pipeline serving/overlays/local serving/overlays/production serving/overlays/kserve monitoring flink; do
  rendered=$out/$(echo "$kustomization" | tr / -).yaml
  kubectl kustomize "$project/kubernetes/$kustomization" > "$rendered"
  ok=1
  if ! "$tools/bin/kubernetes-validate" --strict --quiet "$rendered"; then
    echo "[manifests] $kustomization: schema validation failed" >&2; ok=0
  fi
  if ! "$tools/bin/checkov" --quiet --compact --framework kubernetes -f "$rendered" >"$rendered.checkov" 2>&1; then
    cat "$rendered.checkov" >&2
    echo "[manifests] $kustomization: checkov found problems" >&2; ok=0
  fi
  # kubernetes-validate passes a kind it has no schema for with a warning: the FlinkDeployment is
  # checked against the operator's own CRD, its pod templates as Pods (schema and checkov).
  if [ "$kustomization" = flink ]; then
    crd=$("$project/scripts/flink/operator-crd.sh") || exit 2
    if ! "$tools/bin/python" "$project/scripts/flink/check_custom_resources.py" "$crd" "$rendered" --pods-out "$rendered.pods.yaml" \
      || ! "$tools/bin/checkov" --quiet --compact --framework kubernetes -f "$rendered.pods.yaml" >"$rendered.pods.checkov" 2>&1; then
      cat "$rendered.pods.checkov" 2>/dev/null >&2
      echo "[manifests] $kustomization: the FlinkDeployment failed its CRD or pod-template checks" >&2; ok=0
    fi
  fi
  if [ $ok = 1 ]; then
    echo "[manifests] $kustomization: $(grep -c '^kind:' "$rendered") resources, schema-valid and checkov-clean" >&2
  else
    status=1
  fi
done
if "$tools/bin/checkov" --quiet --compact --framework dockerfile -f "$project/Dockerfile" >"$out/Dockerfile.checkov" 2>&1; then
  echo "[manifests] Dockerfile: checkov-clean" >&2
else
  cat "$out/Dockerfile.checkov" >&2
  echo "[manifests] Dockerfile: checkov found problems" >&2
  status=1
fi
exit $status
