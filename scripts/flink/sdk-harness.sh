#!/usr/bin/env bash
# The command a Flink TaskManager runs to start a Python SDK harness (Beam's PROCESS
# environment: --environment_config={"command":"<this file>"}). It runs Beam's own boot program
# (the entry point of Beam's Python SDK image, built by `scripts/flink/cluster.sh boot`) in the
# project's runtime, so the harness has the TFX stack and this checkout's code:
# RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1 makes the boot use the runtime's Python instead of a
# fresh virtual environment per worker, and each harness gets a scratch directory of its own for
# the staged files. The harness runs as a process group of its own, and a TERM from the
# TaskManager (which knows only this script's pid) reaches all of it: runtime.sh, its chroot, the
# boot program and its Python processes.
set -uo pipefail
project=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
boot=$("$project/scripts/flink/cluster.sh" boot) || exit 2
scratch=$(mktemp -d "${TMPDIR:-/tmp}/beam-harness.XXXXXX")
set -m
# The runner's own --semi_persist_dir, if it passes one, comes later in "$@" and wins.
"$project/scripts/runtime.sh" env RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1 \
  "$boot" --semi_persist_dir="$scratch" "$@" &
child=$!
trap 'kill -TERM -- "-$child" 2>/dev/null' TERM INT
wait "$child"
status=$?
[ $status -gt 128 ] && wait "$child"
rm -rf "$scratch"
exit $status
