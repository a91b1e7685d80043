#!/usr/bin/env bash
# Compares builds of flink-sim the way BENCHMARKS.md's later rounds did: alternating sequential
# runs (A, B, A, B, ...), one at a time, so that the machine's drift through the hour falls on
# both alike.
#
#   bash ci/bench-alternate.sh N ROUNDS BIN_A BIN_B [BIN_C ...]
#
# Runs `BIN bench --deployments N --duration 1h --seed 1` ROUNDS times per binary and prints
# one line per run: the binary, wall seconds, peak RSS in MiB and the reconcile count (which
# must be the same for every build that does the same work). A BIN may be a script that sets
# environment variables and execs a binary.
set -euo pipefail
[[ $# -ge 4 ]] || { sed -n 2,11p "$0"; exit 2; }
n=$1 rounds=$2
shift 2
for _ in $(seq "$rounds"); do
  for bin in "$@"; do
    "$bin" bench --deployments "$n" --duration 1h --seed 1 2>/dev/null | tail -1 |
      python3 -c "import json, sys; d = json.load(sys.stdin); print(sys.argv[1], d['wall_seconds'], d['peak_rss_bytes'] >> 20, d['reconciles'])" "$bin"
  done
done
