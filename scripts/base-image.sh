#!/usr/bin/env bash
# Import a Debian 13 base image from the runtime root that scripts/runtime.sh builds, for
# machines that reach no container registry (the Dockerfile's BASE_IMAGE elsewhere is the
# public python:3.13-slim-trixie). The root's virtual environment is left out: the
# Dockerfile installs the stack itself, from the same pinned files.
#
# Usage: scripts/base-image.sh [IMAGE_NAME]   (default: localhost/tfxp-trixie-base)
set -euo pipefail
project=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
name=${1:-localhost/tfxp-trixie-base}
engine=${CONTAINER_ENGINE:-podman}
[ "$engine" != podman ] || "$project/scripts/podman-service.sh" install
if "$engine" image exists "$name" 2>/dev/null; then
  echo "[base-image] $name exists"
  exit 0
fi
# Builds the root first if it is missing.
root=$(TFXP_ENV_MODE=chroot "$project/scripts/runtime.sh" --print-root)
echo "[base-image] importing $root (without /opt/venv) as $name"
tar -C "$root" --exclude=./opt/venv --exclude=./proc/* --exclude=./dev/* --exclude=./.complete \
    --exclude=./.project -c . | "$engine" import - "$name" >/dev/null
echo "[base-image] $name ready"
