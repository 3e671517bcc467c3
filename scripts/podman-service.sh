#!/usr/bin/env bash
# Start or stop podman's Docker-compatible API on a socket inside the checkout, so that
# kfp.local's DockerRunner (running inside the runtime environment, where the checkout is
# mounted at the same path) reaches it. Installs podman and runc where they are missing.
#
# Usage: scripts/podman-service.sh install|start|stop|socket
#        scripts/podman-service.sh run COMMAND [ARG...]   (start, run with DOCKER_HOST set, stop)
set -euo pipefail
project=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$project/build/podman
socket=$dir/podman.sock
export CONTAINERS_CONF=${CONTAINERS_CONF:-$project/containers/containers.conf}

install_podman() {
  if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
    echo "[podman] installing podman and runc" >&2
    apt-get update -qq && apt-get install -y -qq podman runc >/dev/null
  fi
}

case "${1:-}" in
  socket)
    echo "unix://$socket" ;;
  install)
    install_podman ;;
  start)
    install_podman
    mkdir -p "$dir"
    if [ -S "$socket" ] && [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      exit 0
    fi
    rm -f "$socket"
    nohup podman system service --time=0 "unix://$socket" >"$dir/service.log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 50); do [ -S "$socket" ] && exit 0; sleep 0.2; done
    echo "[podman] the API socket did not appear; see $dir/service.log" >&2
    exit 1 ;;
  run)
    shift
    "$0" start
    rc=0
    DOCKER_HOST="unix://$socket" "$@" || rc=$?
    "$0" stop
    exit $rc ;;
  stop)
    if [ -f "$dir/pid" ]; then
      kill "$(cat "$dir/pid")" 2>/dev/null || true
      rm -f "$dir/pid" "$socket"
    fi ;;
  *)
    echo "usage: scripts/podman-service.sh install|start|stop|socket|run COMMAND..." >&2
    exit 2 ;;
esac
