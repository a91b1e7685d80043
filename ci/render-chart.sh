#!/usr/bin/env bash
# Renders and lints the Helm chart in deploy/helm/flink-operator with Helm's own engine
# (Helm 4's Go SDK, from the helm-python-sdk package on PyPI, installed into a cache once;
# no helm binary or cluster is needed).
#
#   ci/render-chart.sh                 regenerate the chart's CRDs (flink-operator crd) and
#                                      deploy/manifests/flink-operator.yaml (default values)
#   ci/render-chart.sh template [VALUES.yaml|JSON]...
#                                      print the manifests for these values, as `helm template`
#   ci/render-chart.sh lint [VALUES.yaml|JSON]...
#                                      `helm lint --strict`; exit 1 on any finding
#
# A VALUES argument is a file, or a JSON object given inline ('{"replicas": 1}'); later ones
# override earlier ones. Settings (environment): HELM_CACHE (install cache, default
# ~/.cache/flink-operator), RELEASE (flink-operator), NAMESPACE (flink-operator).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.2.2
WHEEL_SHA256=28cc13abaf134c3a7e37f070c939be8d9cdc9825c3c8b8b2d35161073bcd4578
CACHE=${HELM_CACHE:-$HOME/.cache/flink-operator}
INSTALL=$CACHE/helm-python-sdk-$VERSION
CHART=deploy/helm/flink-operator
RELEASE=${RELEASE:-flink-operator}
NAMESPACE=${NAMESPACE:-flink-operator}

log() { echo "render-chart: $*" >&2; }

install() {
  [ -f "$INSTALL/helm_python/__init__.py" ] && return
  # Tests render in parallel: one of them installs, the others wait for it.
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.helm-python-sdk.lock"
  flock 9
  [ -f "$INSTALL/helm_python/__init__.py" ] && return
  log "installing helm-python-sdk $VERSION (Helm's Go SDK as a library) from PyPI into $INSTALL"
  rm -rf "$INSTALL.partial"
  # Pinned to the x86_64 Linux wheel checked here (what the project's machines are).
  printf 'helm-python-sdk==%s --hash=sha256:%s\n' "$VERSION" "$WHEEL_SHA256" > "$CACHE/helm-python-sdk.req"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --require-hashes \
    --only-binary :all: --target "$INSTALL.partial" -r "$CACHE/helm-python-sdk.req"
  # The wheel carries the library three times (its soname links, flattened); one is loaded.
  rm -f "$INSTALL.partial"/helm_python/lib/libhelm_c.so "$INSTALL.partial"/helm_python/lib/libhelm_c.so.0
  rm -rf "$INSTALL" && mv "$INSTALL.partial" "$INSTALL"
}

helm_py() {
  install
  PYTHONPATH=$INSTALL python3 - "$@" <<'PY'
import json, re, sys
import helm_python as helm

command, chart_dir, release, namespace, *value_args = sys.argv[1:]

def merge(base, over):
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base

values = {}
for arg in value_args:
    if arg.lstrip().startswith("{"):
        merge(values, json.loads(arg))
    else:
        with open(arg) as f:
            merge(values, helm.values_from_yaml(f.read()))

if command == "lint":
    report = helm.lint(chart_dir, values, strict=True, namespace=namespace)
    for m in report.get("messages") or []:
        print(f"{['UNKNOWN', 'INFO', 'WARNING', 'ERROR'][m['severity']]}: {m['path']}: {m['error']}")
    for e in report.get("errors") or []:
        print(f"ERROR: {e}")
    bad = [m for m in report.get("messages") or [] if m["severity"] >= 2] or report.get("errors")
    print(f"linted {report.get('total_charts_linted')} chart(s): {'failed' if bad else 'ok'}")
    sys.exit(1 if bad else 0)

# helm template: every rendered document, ordered as Helm installs them (kind, then name).
ORDER = ["Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
         "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap",
         "StorageClass", "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition",
         "ClusterRole", "ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role",
         "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod",
         "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler",
         "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
         "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
try:
    with helm.Chart.load(chart_dir) as chart:
        rendered = chart.render(values, name=release, namespace=namespace, is_install=True)
except helm.HelmError as e:
    print(f"render-chart: {e}", file=sys.stderr)
    sys.exit(1)
docs = []
for path, text in rendered.items():
    if not path.endswith((".yaml", ".yml")):
        continue
    for doc in re.split(r"^---[ \t]*$", text, flags=re.M):
        body = doc.strip("\n")
        if not re.search(r"^[^#\s]", body, flags=re.M):
            continue  # only comments or blank
        kind = re.search(r"^kind:\s*(\S+)", body, flags=re.M)
        name = re.search(r"^metadata:\n(?:[ ].*\n)*?  name:\s*(\S+)", body + "\n", flags=re.M)
        kind = kind.group(1) if kind else ""
        rank = ORDER.index(kind) if kind in ORDER else len(ORDER)
        docs.append((rank, kind, name.group(1) if name else "", path, body))
docs.sort(key=lambda d: d[:3])
out = []
for _, _, _, path, body in docs:
    out.append(f"---\n# Source: {path}\n{body}\n")
sys.stdout.write("".join(out))
PY
}

case "${1:-generate}" in
  generate)
    # The committed manifests are always for the release flink-operator in flink-operator.
    RELEASE=flink-operator NAMESPACE=flink-operator
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    log "CRDs: cargo run -q --bin flink-operator -- crd"
    cargo run -q --bin flink-operator -- crd > "$tmp/crds.yaml"
    log "deploy/manifests/flink-operator.yaml (default values, release $RELEASE in $NAMESPACE)"
    {
      echo "# Generated by ci/render-chart.sh from deploy/helm/flink-operator with its default values"
      echo "# (release $RELEASE in namespace $NAMESPACE); do not edit. The CRDs are not included:"
      echo "#   kubectl apply --server-side -f deploy/helm/flink-operator/crds/"
      echo "#   kubectl create namespace $NAMESPACE"
      echo "#   kubectl apply -f deploy/manifests/flink-operator.yaml"
      helm_py template "$CHART" "$RELEASE" "$NAMESPACE"
    } > "$tmp/manifests.yaml"
    mv "$tmp/crds.yaml" "$CHART/crds/flink-operator-crds.yaml"
    mv "$tmp/manifests.yaml" deploy/manifests/flink-operator.yaml
    ;;
  template | lint)
    command=$1
    shift
    helm_py "$command" "$CHART" "$RELEASE" "$NAMESPACE" "$@"
    ;;
  *)
    sed -n '2,16p' "$0" >&2
    exit 2
    ;;
esac
