#!/usr/bin/env bash
# A local Spark standalone cluster for the pipeline's Beam components: a master, one worker and
# Beam's Spark job server, each a process of its own, on fixed loopback ports.
#
# Spark comes from PyPI: the `pyspark` sdist holds a whole Spark (deps/bin, deps/sbin, deps/jars).
# Its files are unpacked into a Spark home, never installed, so nothing of it enters the runtime.
# Maven Central serves no Beam job-server jar (docs/beam.md), so the job server is
# SparkJobServerDriver run from the classpath of the runner library
# org.apache.beam:beam-runners-spark-3 (jobserver-pom.xml) plus pyspark's own jars (the runner's
# Spark dependencies are `provided`; the driver's Spark must be the cluster's). Both are cached
# under ~/.cache/tfx-kfp-pipeline/spark-<key>/ (key: the versions and the pom); a second start
# reuses them.
#
# The job server is the Spark driver; the worker's executor starts the Python SDK harnesses
# (Beam's PROCESS environment) with scripts/flink/sdk-harness.sh, the same harness the Flink
# cluster uses (Beam's boot program in the project's runtime; docs/beam.md).
#
# Usage: scripts/spark/cluster.sh fetch|start|stop|status|home
#   fetch   download and assemble what the cluster needs (start does it too)
#   start   start the cluster (or say it is already up); logs in <cache>/run/log
#   stop    stop every process start started
#   status  the master's JSON overview (workers, applications) and the processes' pids
#   home    the cached Spark home
# Ports: master 7077 (web UI 8180), worker 7078 (web UI 8181), driver 7079, block managers
# 7080 and up, the application's UI 4140, job server 8199 (artifacts 8198, expansion 8197).
set -euo pipefail

project=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$project/scripts/spark
SPARK_VERSION=3.5.7
BEAM_JOB_SERVER_VERSION=2.62.0
MASTER_PORT=7077
MASTER_UI_PORT=8180
WORKER_PORT=7078
WORKER_UI_PORT=8181
DRIVER_PORT=7079
BLOCK_MANAGER_PORT=7080
APP_UI_PORT=4140
JOB_PORT=8199
ARTIFACT_PORT=8198
EXPANSION_PORT=8197
WORKER_CORES=2
WORKER_MEMORY=3g
EXECUTOR_MEMORY=2g

cache_root=${TFXP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tfx-kfp-pipeline}
key=$( (echo "spark=$SPARK_VERSION beam=$BEAM_JOB_SERVER_VERSION"; cat "$here/jobserver-pom.xml") | sha256sum | cut -c1-12)
home=$cache_root/spark-$key
run=$home/run
events=$project/build/spark-events  # the applications' event logs
# What Spark's launcher gives its own JVMs on Java 17 (org.apache.spark.launcher.JavaModuleOptions
# in pyspark's spark-launcher jar): the job server is started by `java`, not by Spark's launcher.
# The executors get them from SparkContext itself.
JAVA_MODULE_OPTIONS="-XX:+IgnoreUnrecognizedVMOptions --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.lang.invoke=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent=ALL-UNNAMED --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/sun.nio.cs=ALL-UNNAMED --add-opens=java.base/sun.security.action=ALL-UNNAMED
  --add-opens=java.base/sun.util.calendar=ALL-UNNAMED --add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED
  -Djdk.reflect.useDirectMethodHandle=false"

say() { printf '[spark] %s\n' "$*" >&2; }
die() { printf '[spark] error: %s\n' "$*" >&2; exit 2; }

need_tools() {
  command -v java >/dev/null || die "java is missing: install a Java 17 JDK (Debian: apt-get install openjdk-17-jdk-headless)"
  local v
  v=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  [ "${v%%.*}" -ge 17 ] 2>/dev/null ||
    die "java is version '$v'; Spark $SPARK_VERSION with Beam's job server here needs Java 17 or newer"
  command -v mvn >/dev/null || die "mvn is missing: install Maven 3 (Debian: apt-get install maven); it fetches Beam's job server"
  python3 -m pip --version >/dev/null 2>&1 || die "python3 with pip is missing: it downloads Spark from PyPI"
}

fetch() {
  need_tools
  if [ -f "$home/.complete" ]; then
    say "reusing $home"
    return
  fi
  say "assembling Spark $SPARK_VERSION and Beam $BEAM_JOB_SERVER_VERSION's job server in $home"
  local tmp=$home.tmp.$$
  rm -rf "$tmp"
  mkdir -p "$tmp/pypi" "$tmp/spark" "$cache_root"
  trap 'rm -rf "$tmp"' EXIT
  nice -n 10 python3 -m pip download -q --no-deps -d "$tmp/pypi" --no-binary=:all: "pyspark==$SPARK_VERSION"
  local sdist=pyspark-$SPARK_VERSION
  tar -xzf "$tmp/pypi/$sdist.tar.gz" -C "$tmp/spark" --strip-components=2 \
    "$sdist/deps/bin" "$sdist/deps/sbin" "$sdist/deps/jars"
  [ -f "$tmp/spark/jars/spark-core_2.12-$SPARK_VERSION.jar" ] || die "the PyPI sdist $sdist has no jars/spark-core_2.12-$SPARK_VERSION.jar"
  rm -rf "$tmp/pypi"
  nice -n 10 mvn -q -B -f "$here/jobserver-pom.xml" -Dmaven.repo.local="$tmp/m2" \
    -Dbeam.version="$BEAM_JOB_SERVER_VERSION" dependency:build-classpath -DincludeScope=runtime \
    -Dmdep.outputFile="$tmp/jobserver.classpath" >"$tmp/mvn.log" 2>&1 ||
    die "Maven could not resolve org.apache.beam:beam-runners-spark-3:$BEAM_JOB_SERVER_VERSION: $(grep -m1 ERROR "$tmp/mvn.log")"
  # The classpath names jars under $tmp/m2; point it at where they end up.
  sed -i "s#$tmp/#$home/#g" "$tmp/jobserver.classpath"
  rm -rf "$home"
  mv "$tmp" "$home"
  trap - EXIT
  touch "$home/.complete"
  say "cached in $home ($(du -sh "$home" | cut -f1))"
}

master_json() { curl -sf --max-time 3 "http://localhost:$MASTER_UI_PORT/json/"; }
master_up() { master_json >/dev/null; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # wait_for SECONDS WHAT COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    [ $SECONDS -lt $deadline ] || die "$what did not come up; see the logs in $run/log"
    sleep 1
  done
}

worker_up() {
  local n
  n=$(master_json | python3 -c 'import json,sys; print(json.load(sys.stdin)["aliveworkers"])' 2>/dev/null) || return 1
  [ "$n" -ge 1 ]
}

spark_env() {
  export SPARK_HOME=$home/spark SPARK_CONF_DIR=$run/conf SPARK_LOG_DIR=$run/log \
    SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_DIRS=$run/local SPARK_DAEMON_MEMORY=512m
  # Each Beam job is a Spark application, and the driver ships its whole classpath (about 420 MB)
  # into every application's work directory: the worker removes those of finished applications.
  export SPARK_WORKER_OPTS="-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.interval=60
    -Dspark.worker.cleanup.appDataTtl=60"
}

start_detached() {  # start_detached NAME COMMAND...: its own process group, pid in $run/pid/NAME.pid
  local name=$1
  shift
  setsid nohup nice -n 10 "$@" >"$run/log/$name.log" 2>&1 </dev/null &
  echo $! >"$run/pid/$name.pid"
}

start() {
  fetch
  "$project/scripts/flink/cluster.sh" boot >/dev/null  # Beam's boot program, for the SDK harnesses
  if master_json >/dev/null; then
    [ -f "$run/pid/jobserver.pid" ] || die "port $MASTER_UI_PORT already serves a Spark master that this script did not start; stop it first"
    say "already running: $(master_json | tr -d '\n ' | cut -c1-200)"
    return
  fi
  local port
  for port in $MASTER_PORT $MASTER_UI_PORT $WORKER_PORT $WORKER_UI_PORT $DRIVER_PORT $APP_UI_PORT \
    $JOB_PORT $ARTIFACT_PORT $EXPANSION_PORT; do
    listening "$port" && die "port $port is in use by another process; the cluster needs it (scripts/spark/cluster.sh header lists its ports)"
  done
  rm -rf "$run" "$events"
  mkdir -p "$run/conf" "$run/log" "$run/pid" "$run/artifacts" "$run/local" "$run/work" "$events"
  spark_env
  local t0=$SECONDS
  start_detached master "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host localhost --port $MASTER_PORT --webui-port $MASTER_UI_PORT
  wait_for 60 "the Spark master (http://localhost:$MASTER_UI_PORT)" master_up
  start_detached worker "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
    --host localhost --port $WORKER_PORT --webui-port $WORKER_UI_PORT --cores $WORKER_CORES \
    --memory $WORKER_MEMORY --work-dir "$run/work" "spark://localhost:$MASTER_PORT"
  # The job server is the Spark driver: SparkConf reads these `spark.*` system properties. The
  # executors put Beam's classpath before Spark's own jars: Beam 2.62 needs a newer Guava than
  # Spark's (Guava 14), and the jars the driver ships come after Spark's on the executors
  # (NoSuchMethodError in Guava's Preconditions from Beam's GCS file system registrar otherwise).
  # Every Beam job is an application whose UI ends with it: its event log (per-task times, read
  # by `python -m benchmarks beam`) goes into the checkout, where the runtime can read it.
  # shellcheck disable=SC2086  # JAVA_MODULE_OPTIONS is a list of flags
  start_detached jobserver java -Xmx1g $JAVA_MODULE_OPTIONS \
    -Dspark.driver.host=localhost -Dspark.driver.bindAddress=127.0.0.1 -Dspark.driver.port=$DRIVER_PORT \
    -Dspark.blockManager.port=$BLOCK_MANAGER_PORT -Dspark.ui.port=$APP_UI_PORT \
    -Dspark.executor.memory=$EXECUTOR_MEMORY -Dspark.local.dir="$run/local" \
    -Dspark.eventLog.enabled=true -Dspark.eventLog.dir="file://$events" \
    -Dspark.executor.extraClassPath="$(cat "$home/jobserver.classpath")" \
    -cp "$(cat "$home/jobserver.classpath"):$SPARK_HOME/jars/*" \
    org.apache.beam.runners.spark.SparkJobServerDriver --job-host=localhost --job-port=$JOB_PORT \
    --artifact-port=$ARTIFACT_PORT --expansion-port=$EXPANSION_PORT \
    --spark-master-url="spark://localhost:$MASTER_PORT" --artifacts-dir="$run/artifacts"
  wait_for 60 "the Spark worker" worker_up
  wait_for 60 "Beam's job server (localhost:$JOB_PORT)" listening $JOB_PORT
  say "up in $((SECONDS - t0)) s: Spark $SPARK_VERSION master spark://localhost:$MASTER_PORT" \
    "(http://localhost:$MASTER_UI_PORT, 1 worker of $WORKER_CORES cores), job server localhost:$JOB_PORT" \
    "(Beam $BEAM_JOB_SERVER_VERSION); logs in $run/log"
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
  stop_group jobserver
  stop_group worker  # its executors, and their SDK harnesses, are its children
  stop_group master
  rm -rf "$run/work" "$run/local"  # the applications' copies of the jars, the executors' scratch
  say "stopped"
}

status() {
  master_json || { say "the Spark master is not answering on port $MASTER_UI_PORT"; exit 1; }
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
  *) die "usage: scripts/spark/cluster.sh fetch|start|stop|status|home" ;;
esac
