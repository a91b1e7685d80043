#!/usr/bin/env bash
# The whole test suite, as CI runs it. Needs a Rust toolchain; the tests that need real
# peers start them through the project's scripts (ci/flink-local.sh: Apache Flink from PyPI;
# ci/peers.sh: moto's S3 server from PyPI and Azurite from npm), installing what is missing.
# Formatting and lints first, then every test; a changed insta snapshot fails the run
# (INSTA_UPDATE=no) instead of being written.
set -euo pipefail
cd "$(dirname "$0")/.."
export INSTA_UPDATE=no
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
