#!/usr/bin/env bash
# The whole test suite, as CI runs it. Needs only a Rust toolchain (cargo).
# Formatting and lints first, then every test; a changed insta snapshot fails the run
# (INSTA_UPDATE=no) instead of being written.
set -euo pipefail
cd "$(dirname "$0")/.."
export INSTA_UPDATE=no
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
