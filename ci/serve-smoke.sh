#!/usr/bin/env bash
# The README's "Try it with kubectl" commands, end to end, against `flink-sim serve` on a
# loopback port: CRDs, basic.yaml to STABLE, an upgrade by patch, deletion. kubectl gets a
# kubeconfig of its own in a temporary directory (never the user's cluster). The server is
# stopped by its PID when the script ends. Usage: bash ci/serve-smoke.sh [PORT] (default 18001)
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh

PORT=${1:-18001}
WORK=$(mktemp -d)
PIDFILE="$WORK/serve.pid"
trap 'stop_pid "$PIDFILE"; rm -rf "$WORK"' EXIT

cargo build -q -p flink-sim --bin flink-sim
cargo build -q --bin flink-operator
TARGET=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')

"$TARGET/debug/flink-sim" serve --port "$PORT" --speed 20 --kubeconfig "$WORK/kubeconfig" \
  >"$WORK/serve.log" 2>&1 &
echo $! >"$PIDFILE"

export KUBECONFIG="$WORK/kubeconfig" HOME="$WORK"
for _ in $(seq 1 100); do [ -s "$KUBECONFIG" ] && kubectl get --raw /version >/dev/null 2>&1 && break; sleep 0.1; done

# Waits (at most 60 s) until the jsonpath of basic-example prints the expected text.
await() {
  local path=$1 want=$2 got=""
  for _ in $(seq 1 600); do
    got=$(kubectl get flinkdeployment basic-example -o "jsonpath=$path" 2>/dev/null || true)
    [ "$got" = "$want" ] && return 0
    sleep 0.1
  done
  echo "waited for $path = $want, got '$got'" >&2
  cat "$WORK/serve.log" >&2
  return 1
}

"$TARGET/debug/flink-operator" crd | kubectl apply -f -
kubectl apply -f ../shared/examples/basic.yaml
await '{.status.lifecycleState}/{.status.observedGeneration}' 'STABLE/1'
kubectl get flinkdeployments
kubectl get flinkdeployment basic-example -o yaml | grep -q 'lifecycleState: STABLE'
kubectl patch flinkdeployment basic-example --type merge -p '{"spec":{"job":{"parallelism":4}}}'
await '{.status.lifecycleState}/{.status.observedGeneration}' 'STABLE/2'
kubectl delete flinkdeployment basic-example --timeout=60s
if kubectl get flinkdeployment basic-example >/dev/null 2>&1; then
  echo "basic-example is still there after kubectl delete" >&2
  exit 1
fi
echo "serve smoke test: ok"
