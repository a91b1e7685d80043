#!/usr/bin/env bash
# Which code's memory reads grow faster than the run's size: runs two sizes of
# `flink-sim bench` under callgrind with a small simulated cache (by default 2 MiB, this
# machine's L2) and prints, per function, the data-read misses at each size and the large
# size's minus the small size's times the ratio of their reconciles ("excess": the misses a
# run whose reads scale with its size would not have). The count is exact and the same on
# every run, unlike the times, which drift on these machines by more than most changes move
# them. BENCHMARKS.md's seventeenth round was read from it.
#
#   bash ci/cache-model.sh [SMALL LARGE]     # default 1000 10000
#
# DURATION (default 10m: the large run takes about 17 minutes under callgrind), SEED
# (default 1), LL (the simulated last-level cache as size,associativity,line; default
# 2097152,16,64), D1 (the first level; default 49152,12,64, this machine's), TOP (rows,
# default 40) and OUT (default target/cache-model) are read from the environment. Needs
# valgrind and python3. The two runs go side by side (callgrind's counts do not depend on
# the machine's load); the profiling build (line tables, same optimisation) goes to
# target/profiling.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh

SMALL=${1:-1000}
LARGE=${2:-10000}
DURATION=${DURATION:-10m}
SEED=${SEED:-1}
LL=${LL:-2097152,16,64}
D1=${D1:-49152,12,64}
TOP=${TOP:-40}
OUT=${OUT:-$PWD/target/cache-model}
mkdir -p "$OUT"

command -v valgrind > /dev/null || { echo "valgrind is needed" >&2; exit 2; }
build_profiling_sim

for n in "$SMALL" "$LARGE"; do
  echo "callgrind (LL $LL): flink-sim bench --deployments $n --duration $DURATION --seed $SEED"
  # Only the timed part (the run loop), as wall_seconds measures it.
  valgrind --tool=callgrind --cache-sim=yes --D1="$D1" --LL="$LL" --toggle-collect='*run_until*' \
    --callgrind-out-file="$OUT/callgrind-$n.out" \
    "$SIM" bench --deployments "$n" --duration "$DURATION" --seed "$SEED" \
    2> "$OUT/valgrind-$n.txt" | tail -1 > "$OUT/bench-$n.json" &
done
wait

for n in "$SMALL" "$LARGE"; do
  for kind in self inclusive; do
    inclusive=no
    [[ $kind == inclusive ]] && inclusive=yes
    callgrind_annotate --inclusive=$inclusive --sort=DLmr --show=Ir,DLmr --threshold=100 \
      --auto=no "$OUT/callgrind-$n.out" 2> /dev/null | grep -v '=>' > "$OUT/$kind-$n.txt"
  done
done

python3 - "$OUT" "$SMALL" "$LARGE" "$TOP" <<'EOF'
import json, re, sys
out, small, large, top = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def reconciles(n):
    return json.load(open(f"{out}/bench-{n}.json"))["reconciles"]

def load(path):
    """Per function: (instructions, data-read misses)."""
    rows = {}
    for line in open(path):
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+([\d,]+|\.)\s+(?:\(\s*[\d.]+%\))?\s+(\S.*)$", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        name = re.sub(r" \[.*\]$", "", m.group(3)).strip()
        row = rows.setdefault(name, [0, 0])
        row[0] += int(m.group(1).replace(",", ""))
        row[1] += 0 if m.group(2) == "." else int(m.group(2).replace(",", ""))
    return rows

ratio = reconciles(large) / reconciles(small)
for kind in ("self", "inclusive"):
    s, l = load(f"{out}/{kind}-{small}.txt"), load(f"{out}/{kind}-{large}.txt")
    rows = sorted(((l.get(k, [0, 0])[1] - ratio * s.get(k, [0, 0])[1], k) for k in set(s) | set(l)),
                  reverse=True)
    if kind == "self":
        total_s = sum(v[1] for v in s.values())
        total_l = sum(v[1] for v in l.values())
        print(f"data-read misses: {total_s:,} at {small}, {total_l:,} at {large} "
              f"({total_l / total_s:.2f}x for {ratio:.2f}x the reconciles); "
              f"excess {total_l - ratio * total_s:,.0f}")
    print(f"\n{kind} misses: excess, at {small}, at {large}, function")
    for excess, name in rows[:top]:
        print(f"{excess:>12,.0f} {s.get(name, [0, 0])[1]:>11,} {l.get(name, [0, 0])[1]:>12,}  {name[:160]}")
EOF
