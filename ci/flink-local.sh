#!/usr/bin/env bash
# Starts (or stops) a real Apache Flink 2.3 standalone session cluster on loopback for the
# real_flink tests: installed from PyPI into a cache, one JobManager and one TaskManager
# started by hand (no daemon scripts), stopped by the PIDs recorded here.
#
#   ci/flink-local.sh start    install if needed, build the test job, start, wait until ready
#   ci/flink-local.sh stop     stop both JVMs
#   ci/flink-local.sh env      print the variables the tests read
#   ci/flink-local.sh stop-taskmanager | start-taskmanager   (the TaskManager-loss test)
#
# Settings (environment): FLINK_CACHE (install cache, default ~/.cache/flink-operator),
# FLINK_WORK (config, logs, state; default target/flink-local), FLINK_REST_PORT (18081).
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
VERSION=2.3.0
CACHE=${FLINK_CACHE:-$HOME/.cache/flink-operator}
WORK=${FLINK_WORK:-$PWD/target/flink-local}
REST_PORT=${FLINK_REST_PORT:-18081}
RPC_PORT=${FLINK_RPC_PORT:-16123}
INSTALL=$CACHE/flink-$VERSION
FLINK_HOME=$INSTALL/pyflink
URL=http://127.0.0.1:$REST_PORT

# Java 17 needs these for Flink's reflection (checked: without them jar runs fail).
OPENS=()
for p in java.util java.lang java.lang.reflect java.io java.net java.nio sun.nio.ch java.text \
         java.time java.util.concurrent java.util.concurrent.atomic java.util.concurrent.locks java.math; do
  OPENS+=("--add-opens=java.base/$p=ALL-UNNAMED")
done

log() { echo "flink-local: $*" >&2; }

install() {
  # Java (the JVMs and javac for the test job) and curl come from Debian's packages if missing.
  if ! command -v javac >/dev/null || ! command -v curl >/dev/null; then
    log "installing a JDK and curl"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless curl >/dev/null
  fi
  if [ -f "$FLINK_HOME/lib/flink-dist-$VERSION.jar" ] || ls "$FLINK_HOME"/lib/flink-dist*.jar >/dev/null 2>&1; then
    return
  fi
  log "installing Apache Flink $VERSION from PyPI into $INSTALL"
  mkdir -p "$CACHE"
  python3 -m pip install --quiet --no-deps --target "$INSTALL.partial" \
    "apache-flink-libraries==$VERSION" "apache-flink==$VERSION"
  rm -rf "$INSTALL" && mv "$INSTALL.partial" "$INSTALL"
}

build_job() {
  local src=tests/fixtures/flink-job/StateJob.java out=$WORK/job
  if [ -f "$WORK/state-job.jar" ] && [ "$WORK/state-job.jar" -nt "$src" ]; then return; fi
  log "building the test job"
  rm -rf "$out" && mkdir -p "$out"
  javac -nowarn -cp "$FLINK_HOME/lib/*" -d "$out" "$src"
  jar cfe "$WORK/state-job.jar" StateJob -C "$out" .
}

write_config() {
  mkdir -p "$WORK/conf" "$WORK/log" "$WORK/tmp" "$WORK/checkpoints" "$WORK/savepoints" "$WORK/upload"
  cat > "$WORK/conf/config.yaml" <<YAML
jobmanager.rpc.address: 127.0.0.1
jobmanager.rpc.port: $RPC_PORT
jobmanager.bind-host: 127.0.0.1
jobmanager.memory.process.size: 1024m
taskmanager.bind-host: 127.0.0.1
taskmanager.host: 127.0.0.1
taskmanager.numberOfTaskSlots: 2
taskmanager.memory.process.size: 1280m
rest.address: 127.0.0.1
rest.bind-address: 127.0.0.1
rest.port: $REST_PORT
blob.server.port: 0
taskmanager.rpc.port: 0
taskmanager.data.port: 0
state.checkpoints.dir: file://$WORK/checkpoints
state.savepoints.dir: file://$WORK/savepoints
execution.checkpointing.interval: 2s
restart-strategy.type: fixed-delay
restart-strategy.fixed-delay.attempts: 100
restart-strategy.fixed-delay.delay: 1s
heartbeat.timeout: 10000
web.upload.dir: $WORK/upload
io.tmp.dirs: $WORK/tmp
YAML
  cp "$FLINK_HOME/conf/log4j.properties" "$WORK/conf/" 2>/dev/null || true
}

wait_for() { # what, seconds, command...
  local what=$1 seconds=$2; shift 2
  for _ in $(seq 1 "$seconds"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  log "$what did not come up in ${seconds}s; logs in $WORK/log"
  tail -n 30 "$WORK"/log/*.log >&2 || true
  return 1
}

taskmanager_registered() {
  curl -sf "$URL/overview" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["taskmanagers"] >= 1 else 1)'
}

start_taskmanager() {
  local cp="$FLINK_HOME/lib/*"
  # The TaskManager only starts with its memory fully specified: ask Flink to compute it.
  local params jvm dynamic
  params=$(java -cp "$FLINK_HOME/bin/bash-java-utils.jar:$cp" org.apache.flink.runtime.util.bash.BashJavaUtils \
    GET_TM_RESOURCE_PARAMS --configDir "$WORK/conf" 2>/dev/null | grep '^BASH_JAVA_UTILS_EXEC_RESULT:' | sed 's/^BASH_JAVA_UTILS_EXEC_RESULT://')
  jvm=$(echo "$params" | sed -n 1p)
  dynamic=$(echo "$params" | sed -n 2p)
  log "starting the TaskManager"
  # shellcheck disable=SC2086
  java $jvm "${OPENS[@]}" -Dlog.file="$WORK/log/taskmanager.log" \
    -Dlog4j.configurationFile="file:$WORK/conf/log4j.properties" -cp "$cp" \
    org.apache.flink.runtime.taskexecutor.TaskManagerRunner --configDir "$WORK/conf" $dynamic \
    > "$WORK/log/taskmanager.out" 2>&1 &
  echo $! > "$WORK/taskmanager.pid"
  wait_for "the TaskManager" 90 taskmanager_registered
}

start() {
  install
  stop_quietly
  write_config
  build_job
  local cp="$FLINK_HOME/lib/*"
  log "starting the JobManager on $URL"
  java -Xmx600m "${OPENS[@]}" -Dlog.file="$WORK/log/jobmanager.log" \
    -Dlog4j.configurationFile="file:$WORK/conf/log4j.properties" -cp "$cp" \
    org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint --configDir "$WORK/conf" \
    > "$WORK/log/jobmanager.out" 2>&1 &
  echo $! > "$WORK/jobmanager.pid"
  wait_for "the JobManager" 90 curl -sf "$URL/overview"
  start_taskmanager
  log "ready: $URL"
}


stop_quietly() {
  stop_pid "$WORK/taskmanager.pid"
  stop_pid "$WORK/jobmanager.pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop_quietly; log "stopped" ;;
  stop-taskmanager) stop_pid "$WORK/taskmanager.pid" ;;
  start-taskmanager) start_taskmanager ;;
  env)
    echo "FLINK_REST_URL=$URL"
    echo "FLINK_TEST_JAR=$WORK/state-job.jar"
    echo "FLINK_WORK=$WORK"
    ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
