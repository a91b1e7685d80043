#!/usr/bin/env bash
# The README's "Try it with kubectl" commands, end to end, against `flink-sim serve` on a
# loopback port: CRDs, basic.yaml to STABLE, an upgrade by patch, deletion. kubectl gets a
# kubeconfig of its own in a temporary directory (never the user's cluster). With
# --external-operator the world has no operator inside: the real `flink-operator run` is
# started against it (its JobManagers under /flink/{namespace}/{name}/ on the same port).
# Every process is stopped by its PID when the script ends.
# Usage: bash ci/serve-smoke.sh [--external-operator] [PORT] (default 18001)
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh

EXTERNAL=""
if [ "${1:-}" = "--external-operator" ]; then
  EXTERNAL=1
  shift
fi
PORT=${1:-18001}
WORK=$(mktemp -d)
PIDFILE="$WORK/serve.pid"
OPFILE="$WORK/operator.pid"
trap 'stop_pid "$OPFILE"; stop_pid "$PIDFILE"; rm -rf "$WORK"' EXIT

cargo build -q -p flink-sim --bin flink-sim
cargo build -q --bin flink-operator
TARGET=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')

if [ -n "$EXTERNAL" ]; then
  "$TARGET/debug/flink-sim" serve --port "$PORT" --speed 5 --external-operator \
    --kubeconfig "$WORK/kubeconfig" >"$WORK/serve.log" 2>&1 &
else
  "$TARGET/debug/flink-sim" serve --port "$PORT" --speed 20 --kubeconfig "$WORK/kubeconfig" \
    >"$WORK/serve.log" 2>&1 &
fi
echo $! >"$PIDFILE"

export KUBECONFIG="$WORK/kubeconfig" HOME="$WORK"
for _ in $(seq 1 100); do [ -s "$KUBECONFIG" ] && kubectl get --raw /version >/dev/null 2>&1 && break; sleep 0.1; done

logs() {
  cat "$WORK/serve.log" >&2
  [ -f "$WORK/operator.log" ] && tail -50 "$WORK/operator.log" >&2
  return 0
}

# Waits (at most 60 s) until the jsonpath of basic-example prints the expected text.
await() {
  local path=$1 want=$2 got=""
  for _ in $(seq 1 600); do
    got=$(kubectl get flinkdeployment basic-example -o "jsonpath=$path" 2>/dev/null || true)
    [ "$got" = "$want" ] && return 0
    sleep 0.1
  done
  echo "waited for $path = $want, got '$got'" >&2
  logs
  return 1
}

"$TARGET/debug/flink-operator" crd | kubectl apply -f -
if [ -n "$EXTERNAL" ]; then
  # Short wall-clock intervals: the world runs 5 times faster than the operator's clock.
  cat >"$WORK/operator.yaml" <<'EOF'
kubernetes.operator.reconcile.interval: 2s
kubernetes.operator.observer.progress-check.interval: 1s
kubernetes.operator.observer.rest-ready.delay: 1s
EOF
  "$TARGET/debug/flink-operator" run --config "$WORK/operator.yaml" \
    --flink-url "http://127.0.0.1:$PORT/flink/{namespace}/{name}" \
    --metrics-address 127.0.0.1:0 --log-format text >"$WORK/operator.log" 2>&1 &
  echo $! >"$OPFILE"
fi
kubectl apply -f ../shared/examples/basic.yaml
await '{.status.lifecycleState}/{.status.observedGeneration}' 'STABLE/1'
kubectl get flinkdeployments
kubectl get flinkdeployment basic-example -o yaml | grep -q 'lifecycleState: STABLE'
kubectl patch flinkdeployment basic-example --type merge -p '{"spec":{"job":{"parallelism":4}}}'
await '{.status.lifecycleState}/{.status.observedGeneration}' 'STABLE/2'
kubectl get events
kubectl delete flinkdeployment basic-example --timeout=60s
if kubectl get flinkdeployment basic-example >/dev/null 2>&1; then
  echo "basic-example is still there after kubectl delete" >&2
  logs
  exit 1
fi
echo "serve smoke test${EXTERNAL:+ (external operator)}: ok"
