#!/usr/bin/env bash
# The sample pipeline on a real Kubeflow Pipelines 2.5 backend: a kind cluster, KFP standalone,
# our image loaded into the node, the bundled taxi sample on the PVC, one run submitted with
# `tfxp submit --wait`, and the pushed model checked on the PVC.
#
# NOT RUN on the project's machines (no cluster and no registry can be reached from them); the
# same contract is exercised there by tests/kfp_backend. Needs: kind, kubectl, and podman or
# docker with our image built (`make image`), and network access to github.com and ghcr.io.
#
#   scripts/kfp-cluster-smoke.sh            # create, install, run, check (keeps the cluster)
#   scripts/kfp-cluster-smoke.sh --delete   # delete the cluster afterwards
set -euo pipefail

CLUSTER=${CLUSTER:-tfxp-kfp}
KFP_VERSION=${KFP_VERSION:-2.5.0}
IMAGE=${IMAGE:-localhost/tfx-kfp-pipeline:latest}
NAMESPACE=kubeflow
RUNTIME=${RUNTIME:-scripts/runtime.sh}
ENGINE=${ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}
DELETE=false
[[ "${1:-}" == "--delete" ]] && DELETE=true
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
for tool in kind kubectl "$ENGINE"; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed; install it and run again" >&2; exit 2; }
done
[[ "$ENGINE" == podman ]] && export KIND_EXPERIMENTAL_PROVIDER=podman

say "kind cluster $CLUSTER"
kind get clusters 2>/dev/null | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s
kubectl config use-context "kind-$CLUSTER"

say "Kubeflow Pipelines $KFP_VERSION standalone (manifests/kustomize, platform-agnostic)"
kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=$KFP_VERSION"
kubectl wait --for condition=established --timeout=60s crd/applications.app.k8s.io
kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=$KFP_VERSION"
kubectl wait pods -l application-crd-id=kubeflow-pipelines -n "$NAMESPACE" --for condition=Ready --timeout=1800s

say "our image into the node ($IMAGE)"
mkdir -p build
"$ENGINE" save "$IMAGE" -o build/kind-image.tar
kind load image-archive build/kind-image.tar --name "$CLUSTER"

say "the PVC (kind's local-path storage offers ReadWriteOnce only: one node, so that serves) and the data"
kubectl kustomize kubernetes/pipeline | sed 's/ReadWriteMany/ReadWriteOnce/' | kubectl apply -n "$NAMESPACE" -f -
kubectl delete pod -n "$NAMESPACE" tfxp-seed --ignore-not-found
kubectl run tfxp-seed -n "$NAMESPACE" --image "$IMAGE" --image-pull-policy Never --restart Never \
  --overrides '{"spec": {"volumes": [{"name": "p", "persistentVolumeClaim": {"claimName": "tfx-pipeline"}}],
    "containers": [{"name": "tfxp-seed", "image": "'"$IMAGE"'", "imagePullPolicy": "Never",
      "volumeMounts": [{"name": "p", "mountPath": "/mnt/pipeline"}],
      "command": ["python", "-c", "import importlib.resources, os, shutil; os.makedirs(\"/mnt/pipeline/data\", exist_ok=True); shutil.copy(importlib.resources.files(\"tfx\") / \"examples/chicago_taxi_pipeline/data/simple/data.csv\", \"/mnt/pipeline/data/data.csv\")"]}]}}'
kubectl wait pod/tfxp-seed -n "$NAMESPACE" --for jsonpath='{.status.phase}'=Succeeded --timeout 600s
kubectl delete pod -n "$NAMESPACE" tfxp-seed

say "submit and wait (the run's pipeline root: the install's MinIO, minio://mlpipeline/v2/artifacts)"
kubectl port-forward -n "$NAMESPACE" svc/ml-pipeline-ui 8080:80 >build/kfp-port-forward.log 2>&1 &
FORWARD=$!
trap 'kill $FORWARD 2>/dev/null || true' EXIT
sleep 5
$RUNTIME tfxp submit --endpoint http://localhost:8080 --allow-local-image \
  --set "kubeflow.image=$IMAGE" --set kubeflow.image_pull_policy=Never --wait --timeout 5400

say "the pushed model on the PVC"
kubectl run tfxp-check -n "$NAMESPACE" --image "$IMAGE" --image-pull-policy Never --restart Never --rm -i \
  --overrides '{"spec": {"volumes": [{"name": "p", "persistentVolumeClaim": {"claimName": "tfx-pipeline"}}],
    "containers": [{"name": "tfxp-check", "image": "'"$IMAGE"'", "imagePullPolicy": "Never", "stdin": true,
      "volumeMounts": [{"name": "p", "mountPath": "/mnt/pipeline"}],
      "command": ["sh", "-c", "python -m components.serving_check.check /mnt/pipeline/serving/taxi/[0-9]*"]}]}}'

$DELETE && kind delete cluster --name "$CLUSTER"
echo "smoke test passed"
