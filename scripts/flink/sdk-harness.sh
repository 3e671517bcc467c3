#!/usr/bin/env bash
# The command a Flink TaskManager runs to start a Python SDK harness (Beam's PROCESS
# environment: --environment_config={"command":"<this file>"}). It runs pipeline/beam_boot.py in
# the project's runtime, so the harness has the TFX stack and this checkout's code. The harness
# runs as a process group of its own, and a TERM from the TaskManager (which knows only this
# script's pid) reaches all of it: runtime.sh, its chroot and the Python process.
set -uo pipefail
project=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
set -m
"$project/scripts/runtime.sh" python -m pipeline.beam_boot "$@" &
child=$!
trap 'kill -TERM -- "-$child" 2>/dev/null' TERM INT
wait "$child"
status=$?
[ $status -gt 128 ] && wait "$child"
exit $status
