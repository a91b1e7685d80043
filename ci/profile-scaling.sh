#!/usr/bin/env bash
# Where the time of a large `flink-sim bench` run grows faster than its size: samples two
# sizes with `perf record` (the cpu-clock event, which works where hardware counters do not,
# as on this project's virtual machines) and prints, per function, the seconds at each size
# and the large size's seconds minus the small size's times the size ratio ("excess": what a
# perfectly linear run would not spend). BENCHMARKS.md's thirteenth round was read from this.
#
#   bash ci/profile-scaling.sh [SMALL LARGE]     # default 1000 10000
#
# DURATION (default 1h), SEED (default 1), FREQ_SMALL / FREQ_LARGE (samples per second,
# default 1000 / 100: the same number of samples from both runs), TOP (rows, default 40) and
# OUT (default target/profile) are read from the environment. Needs perf and python3. The
# profiling build (line tables, same optimisation) goes to target/profiling. Sampling with
# call stacks slows the runs, the small one more (it is sampled more often), so the seconds
# are for comparing functions, not for BENCHMARKS.md's figures.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh

SMALL=${1:-1000}
LARGE=${2:-10000}
DURATION=${DURATION:-1h}
SEED=${SEED:-1}
FREQ_SMALL=${FREQ_SMALL:-1000}
FREQ_LARGE=${FREQ_LARGE:-100}
TOP=${TOP:-40}
OUT=${OUT:-$PWD/target/profile}
mkdir -p "$OUT"

command -v perf > /dev/null || { echo "perf is needed (linux-tools)" >&2; exit 2; }
build_profiling_sim

for pair in "$SMALL:$FREQ_SMALL" "$LARGE:$FREQ_LARGE"; do
  n=${pair%%:*} freq=${pair##*:}
  echo "perf record: flink-sim bench --deployments $n --duration $DURATION --seed $SEED ($freq samples/s)"
  perf record -q -F "$freq" --call-graph dwarf,16384 -o "$OUT/perf-$n.data" \
    "$SIM" bench --deployments "$n" --duration "$DURATION" --seed "$SEED" 2> /dev/null |
    tail -1 > "$OUT/bench-$n.json"
  perf script -i "$OUT/perf-$n.data" --no-inline -F ip,sym 2> /dev/null > "$OUT/stacks-$n.txt"
done

python3 - "$OUT" "$SMALL" "$LARGE" "$TOP" <<'EOF'
import collections, json, sys
out, small, large, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def stacks(n):
    """Each sample's frames, innermost first."""
    frames = []
    with open(f"{out}/stacks-{n}.txt") as f:
        for line in f:
            line = line.strip()
            if not line:
                if frames:
                    yield frames
                frames = []
                continue
            parts = line.split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else "?")
    if frames:
        yield frames

def seconds(n):
    """Self and inclusive seconds per function: each sample's share of the run's wall time."""
    wall = json.loads(open(f"{out}/bench-{n}.json").read())["wall_seconds"]
    own, incl, total = collections.Counter(), collections.Counter(), 0
    for frames in stacks(n):
        total += 1
        own[frames[0]] += 1
        for name in set(frames):
            incl[name] += 1
    scale = wall / max(total, 1)
    return wall, {k: v * scale for k, v in own.items()}, {k: v * scale for k, v in incl.items()}

wall_s, own_s, incl_s = seconds(small)
wall_l, own_l, incl_l = seconds(large)
ratio = large / small
print(f"wall under perf: {wall_s:.2f} s at {small}, {wall_l:.2f} s at {large} "
      f"({wall_l / wall_s:.1f}x; linear would be {ratio:.0f}x)")
for title, a, b in (("self time", own_s, own_l), ("inclusive time", incl_s, incl_l)):
    print(f"\n{title}: excess = s({large}) - {ratio:g} x s({small}), largest first")
    print(f"{'excess':>8} {'s(' + str(small) + ')':>10} {'s(' + str(large) + ')':>10} {'growth':>7}  function")
    rows = sorted(((b.get(k, 0) - ratio * a.get(k, 0), k) for k in set(a) | set(b)), reverse=True)
    for excess, k in rows[:top]:
        sa, sb = a.get(k, 0), b.get(k, 0)
        growth = f"{sb / sa:.1f}x" if sa else "-"
        print(f"{excess:8.2f} {sa:10.3f} {sb:10.2f} {growth:>7}  {k[:110]}")
EOF
