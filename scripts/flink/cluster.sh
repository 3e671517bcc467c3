#!/usr/bin/env bash
# A local Flink cluster for the pipeline's Beam components: a JobManager, two TaskManagers and
# Beam's Flink job server, each a process of its own, on fixed loopback ports.
#
# Flink comes from PyPI: the `apache-flink` wheel holds bin/ and conf/, the
# `apache-flink-libraries` sdist holds lib/ (flink-dist), opt/ and plugins/. Their files are
# unpacked into a Flink home, never installed: the wheel pins apache-beam<2.49, which must stay
# out of the runtime. Maven Central serves no Beam job-server jar (docs/beam.md), so the job
# server is FlinkJobServerDriver run from the classpath of the runner library
# org.apache.beam:beam-runners-flink-1.19 (jobserver-pom.xml). Both are cached under
# ~/.cache/tfx-kfp-pipeline/flink-<key>/ (key: the versions and the pom); a second start reuses them.
#
# The TaskManagers start the Python SDK harnesses themselves (Beam's PROCESS environment) with
# scripts/flink/sdk-harness.sh, in the project's runtime, so the harnesses have the TFX stack and
# this checkout's code (docs/beam.md says why not a shared EXTERNAL worker pool). It runs Beam's
# own boot program (sdks/python/container/boot.go, the entry point of Beam's Python SDK image),
# built with Go from the module proxy at the runtime's apache-beam version and cached under
# ~/.cache/tfx-kfp-pipeline/beam-boot-<version>/.
#
# Usage: scripts/flink/cluster.sh fetch|start|stop|status|home|boot|supervise
#   fetch   download and assemble what the cluster needs (start does it too)
#   start   start the cluster (or say it is already up); logs in <cache>/run/log
#   stop    stop every process start started
#   status  the Flink REST overview and the processes' pids
#   home    the cached Flink home; boot: the path of Beam's boot program (built if missing)
#   supervise    (started by start) keep $TASKMANAGERS TaskManagers alive, as a Kubernetes
#                Deployment keeps its replicas: a lost one is started again (the fault test kills one)
# Ports: Flink REST 8081, JobManager RPC 6123, blob 6124, TaskManager RPC 6130-6139,
# job server 8099 (artifacts 8098, expansion 8097).
set -euo pipefail

project=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$project/scripts/flink
FLINK_VERSION=1.19.3
BEAM_JOB_SERVER_VERSION=2.62.0
REST_PORT=8081
JOB_PORT=8099
ARTIFACT_PORT=8098
EXPANSION_PORT=8097
TASKMANAGERS=2

cache_root=${TFXP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tfx-kfp-pipeline}
# The boot program belongs to the SDK, so its version is the runtime's apache-beam, not the job server's.
BEAM_SDK_VERSION=$(sed -n 's/^apache-beam==//p' "$project/requirements/constraints.txt")
boot_dir=$cache_root/beam-boot-$BEAM_SDK_VERSION
key=$( (echo "flink=$FLINK_VERSION beam=$BEAM_JOB_SERVER_VERSION"; cat "$here/jobserver-pom.xml") | sha256sum | cut -c1-12)
home=$cache_root/flink-$key
run=$home/run

say() { printf '[flink] %s\n' "$*" >&2; }
die() { printf '[flink] error: %s\n' "$*" >&2; exit 2; }

need_tools() {
  command -v java >/dev/null || die "java is missing: install a Java 17 JDK (Debian: apt-get install openjdk-17-jdk-headless)"
  local v
  v=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  [ "${v%%.*}" -ge 17 ] 2>/dev/null ||
    die "java is version '$v'; Flink $FLINK_VERSION with Beam's job server here needs Java 17 or newer"
  command -v go >/dev/null || die "go is missing: install Go 1.23 or newer (https://go.dev/dl); it builds Beam's boot program"
  command -v mvn >/dev/null || die "mvn is missing: install Maven 3 (Debian: apt-get install maven); it fetches Beam's job server"
  python3 -m pip --version >/dev/null 2>&1 || die "python3 with pip is missing: it downloads Flink from PyPI"
}

fetch() {
  need_tools
  if [ -f "$home/.complete" ]; then
    say "reusing $home"
    return
  fi
  say "assembling Flink $FLINK_VERSION and Beam $BEAM_JOB_SERVER_VERSION's job server in $home"
  local tmp=$home.tmp.$$
  rm -rf "$tmp"
  mkdir -p "$tmp/pypi" "$tmp/flink" "$cache_root"
  trap 'rm -rf "$tmp"' EXIT
  # Only the wheel's scripts are used, so any Python's wheel will do; the libraries are an sdist.
  nice -n 10 python3 -m pip download -q --no-deps -d "$tmp/pypi" --only-binary=:all: \
    --python-version 3.11 --platform manylinux2014_x86_64 "apache-flink==$FLINK_VERSION"
  nice -n 10 python3 -m pip download -q --no-deps -d "$tmp/pypi" --no-binary=:all: \
    "apache-flink-libraries==$FLINK_VERSION"
  local lib=apache-flink-libraries-$FLINK_VERSION
  tar -xzf "$tmp/pypi/$lib.tar.gz" -C "$tmp/flink" --strip-components=2 \
    "$lib/deps/lib" "$lib/deps/opt" "$lib/deps/plugins" "$lib/deps/bin"
  python3 -m zipfile -e "$tmp"/pypi/apache_flink-"$FLINK_VERSION"-*.whl "$tmp/wheel"
  cp -r "$tmp/wheel/pyflink/bin/." "$tmp/flink/bin/"
  cp -r "$tmp/wheel/pyflink/conf" "$tmp/flink/conf"
  chmod +x "$tmp"/flink/bin/*.sh "$tmp/flink/bin/flink"
  [ -f "$tmp/flink/lib/flink-dist-$FLINK_VERSION.jar" ] || die "the PyPI sdist $lib has no lib/flink-dist-$FLINK_VERSION.jar"
  rm -rf "$tmp/wheel" "$tmp/pypi"
  nice -n 10 mvn -q -B -f "$here/jobserver-pom.xml" -Dmaven.repo.local="$tmp/m2" \
    -Dbeam.version="$BEAM_JOB_SERVER_VERSION" dependency:build-classpath \
    -Dmdep.outputFile="$tmp/jobserver.classpath" >"$tmp/mvn.log" 2>&1 ||
    die "Maven could not resolve org.apache.beam:beam-runners-flink-1.19:$BEAM_JOB_SERVER_VERSION: $(grep -m1 ERROR "$tmp/mvn.log")"
  # The classpath names jars under $tmp/m2; point it at where they end up.
  sed -i "s#$tmp/#$home/#g" "$tmp/jobserver.classpath"
  rm -rf "$home"
  mv "$tmp" "$home"
  trap - EXIT
  touch "$home/.complete"
  say "cached in $home ($(du -sh "$home" | cut -f1))"
}

boot() {  # Beam's boot program for the Python SDK at the runtime's version, built once
  [ -n "$BEAM_SDK_VERSION" ] || die "requirements/constraints.txt pins no apache-beam version"
  if [ ! -x "$boot_dir/boot" ]; then
    command -v go >/dev/null || die "go is missing: install Go 1.23 or newer (https://go.dev/dl); it builds Beam's boot program"
    say "building Beam $BEAM_SDK_VERSION's boot program (github.com/apache/beam/sdks/v2/python/container) in $boot_dir"
    local tmp=$boot_dir.tmp.$$
    rm -rf "$tmp"
    mkdir -p "$tmp"
    GOBIN=$tmp GOFLAGS=-mod=mod nice -n 10 go install "github.com/apache/beam/sdks/v2/python/container@v$BEAM_SDK_VERSION" \
      >"$tmp/go.log" 2>&1 || die "go install of Beam $BEAM_SDK_VERSION's boot program failed: $(grep -m1 -v '^go: downloading' "$tmp/go.log")"
    mv "$tmp/container" "$tmp/boot"
    rm -rf "$boot_dir"
    mv "$tmp" "$boot_dir"
  fi
  echo "$boot_dir/boot"
}

rest() { curl -sf --max-time 3 "http://localhost:$REST_PORT$1"; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # wait_for SECONDS WHAT COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    [ $SECONDS -lt $deadline ] || die "$what did not come up; see the logs in $run/log"
    sleep 1
  done
}

taskmanagers_up() {
  local n
  n=$(rest /overview | python3 -c 'import json,sys; print(json.load(sys.stdin)["taskmanagers"])' 2>/dev/null) || return 1
  [ "$n" -ge "$TASKMANAGERS" ]
}

flink_env() {
  export FLINK_CONF_DIR=$run/conf FLINK_LOG_DIR=$run/log FLINK_PID_DIR=$run/pid
}

start_detached() {  # start_detached NAME COMMAND...: its own process group, pid in $run/pid/NAME.pid
  local name=$1
  shift
  setsid nohup nice -n 10 "$@" >"$run/log/$name.log" 2>&1 </dev/null &
  echo $! >"$run/pid/$name.pid"
}

start() {
  fetch
  boot >/dev/null
  if rest /overview >/dev/null; then
    [ -f "$run/pid/jobserver.pid" ] || die "port $REST_PORT already serves a Flink that this script did not start; stop it first"
    say "already running: $(rest /overview)"
    return
  fi
  local port
  for port in 6123 6124 $JOB_PORT $ARTIFACT_PORT $EXPANSION_PORT ; do
    listening "$port" && die "port $port is in use by another process; the cluster needs it (scripts/flink/cluster.sh header lists its ports)"
  done
  rm -rf "$run"
  mkdir -p "$run/conf" "$run/log" "$run/pid" "$run/artifacts"
  cp "$home/flink/conf/"log4j*.properties "$run/conf/"
  cp "$here/config.yaml" "$run/conf/config.yaml"
  flink_env
  local t0=$SECONDS i
  nice -n 10 "$home/flink/bin/jobmanager.sh" start >/dev/null
  for ((i = 0; i < TASKMANAGERS; i++)); do
    nice -n 10 "$home/flink/bin/taskmanager.sh" start >/dev/null
  done
  start_detached jobserver java -Xmx512m -cp "$(cat "$home/jobserver.classpath")" \
    org.apache.beam.runners.flink.FlinkJobServerDriver --job-host=localhost --job-port=$JOB_PORT \
    --artifact-port=$ARTIFACT_PORT --expansion-port=$EXPANSION_PORT \
    --flink-master=localhost:$REST_PORT --artifacts-dir="$run/artifacts"
  wait_for 120 "the JobManager with $TASKMANAGERS TaskManagers (http://localhost:$REST_PORT)" taskmanagers_up
  wait_for 60 "Beam's job server (localhost:$JOB_PORT)" listening $JOB_PORT
  start_detached supervisor "$project/scripts/flink/cluster.sh" supervise
  say "up in $((SECONDS - t0)) s: Flink $FLINK_VERSION at http://localhost:$REST_PORT ($TASKMANAGERS TaskManagers)," \
    "job server localhost:$JOB_PORT (Beam $BEAM_JOB_SERVER_VERSION); logs in $run/log"
}

live_taskmanagers() {
  local n=0 pid
  for pid in $(cat "$run"/pid/flink-*-taskexecutor.pid 2>/dev/null); do
    kill -0 "$pid" 2>/dev/null && n=$((n + 1))
  done
  echo $n
}

supervise() {  # runs detached from start until stop ends it
  flink_env
  while sleep 2; do
    if [ "$(live_taskmanagers)" -lt "$TASKMANAGERS" ]; then
      echo "$(date -u +%FT%TZ) a TaskManager is gone: starting another"
      nice -n 10 "$home/flink/bin/taskmanager.sh" start >/dev/null
    fi
  done
}

stop_group() {  # stop_group NAME: the process group start_detached made
  local f=$run/pid/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

stop() {
  [ -d "$run/pid" ] || { say "not running"; return; }
  flink_env
  stop_group supervisor  # first, or it would start the TaskManagers stop is stopping
  stop_group jobserver
  "$home/flink/bin/taskmanager.sh" stop-all >/dev/null 2>&1 || true
  "$home/flink/bin/jobmanager.sh" stop-all >/dev/null 2>&1 || true
  local f
  for f in "$run"/pid/*.pid; do  # Flink's daemons: wait for them to go
    [ -f "$f" ] || continue
    for pid in $(cat "$f"); do
      for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -KILL "$pid" 2>/dev/null || true
    done
    rm -f "$f"
  done
  say "stopped"
}

status() {
  rest /overview || { say "Flink is not answering on port $REST_PORT"; exit 1; }
  echo
  local f
  for f in "$run"/pid/*.pid; do
    if [ -f "$f" ]; then echo "$(basename "$f" .pid): $(tr '\n' ' ' <"$f")"; fi
  done
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  home) echo "$home" ;;
  boot) boot ;;
  supervise) supervise ;;
  *) die "usage: scripts/flink/cluster.sh fetch|start|stop|status|home|boot|supervise" ;;
esac
