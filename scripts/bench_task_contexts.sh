#!/usr/bin/env bash
# Regenerates the "tokio task hooks" table of BENCHMARKS.md: runs `benches/task_contexts.rs`
# (built with `--cfg tokio_unstable`, in target/tokio-unstable) BENCH_ROUNDS times (default
# 3), then prints the per-poll and per-spawn overheads against the `plain` row of the same
# round, as medians over the rounds with each round in brackets, with the machine, the
# compiler and the commit.
#
#   scripts/bench_task_contexts.sh              # about 3 minutes per round
#   BENCH_ROUNDS=5 scripts/bench_task_contexts.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/machine.sh
source scripts/machine.sh
rounds=${BENCH_ROUNDS:-3}
args=${BENCH_ARGS:---warm-up-time 1 --measurement-time 3}
out=$(mktemp)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$rounds"); do
    # shellcheck disable=SC2086 # the settings are several words on purpose
    CARGO_TARGET_DIR=target/tokio-unstable RUSTFLAGS="${RUSTFLAGS:-} --cfg tokio_unstable" \
        cargo bench --features tokio --bench task_contexts -- --noplot $args | tee -a "$out"
    echo "END OF ROUND $round" >>"$out"
done
echo
print_machine
echo
python3 - "$out" <<'PY'
import re, statistics, sys

UNITS = {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}
# (group, what one unit is, units per iteration): see the table in benches/task_contexts.rs
GROUPS = [("task_poll", "per poll", 1000), ("task_poll_mt", "per poll", 6400), ("task_spawn", "per task", 100)]
rounds, current, name = [], {}, None
for line in open(sys.argv[1], encoding="utf-8"):
    if line.startswith("END OF ROUND"):
        rounds.append(current)
        current = {}
        continue
    m = re.match(r"^(task_\w+/\w+)", line)
    if m:
        name = m.group(1)
    m = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
    if m and name:
        current[name] = float(m.group(1)) * UNITS[m.group(2)] * 1000  # ns
        name = None

def show(values):
    return "[" + ", ".join(f"{v:.1f}" for v in values) + "]"

print("| group | plain | with_context: overhead | noop_hooks: overhead | task_contexts: overhead | task_contexts / with_context |")
print("|---|---|---|---|---|---|")
for group, unit, n in GROUPS:
    plain = statistics.median(r[f"{group}/plain"] for r in rounds) / n
    cells = []
    for row in ("with_context", "noop_hooks", "task_contexts"):
        over = [(r[f"{group}/{row}"] - r[f"{group}/plain"]) / n for r in rounds]
        cells.append(f"+{statistics.median(over):.1f} ns {show(over)}")
    ratios = [
        (r[f"{group}/task_contexts"] - r[f"{group}/plain"]) / max(r[f"{group}/with_context"] - r[f"{group}/plain"], 0.01 * n)
        for r in rounds
    ]
    print(f"| `{group}` ({unit}) | {plain:.1f} ns | " + " | ".join(cells) + f" | {statistics.median(ratios):.0f}x {show(ratios)} |")
PY
rm -f "$out"
