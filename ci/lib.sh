# Shell helpers shared by the ci/ scripts (sourced, not run).

# Stops the process whose pid is in FILE: politely, then after 10 s for good.
stop_pid() {
  local file=$1
  [ -f "$file" ] || return 0
  local pid; pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# Builds flink-sim with line tables (same optimisation as release) into target/profiling, for
# the profiling scripts, and sets SIM to the binary.
build_profiling_sim() {
  CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR=$PWD/target/profiling \
    cargo build --release -q -p flink-sim --bin flink-sim
  SIM=$PWD/target/profiling/release/flink-sim
}
