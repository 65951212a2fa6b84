#!/usr/bin/env bash
# Regenerates the figures in BENCHMARKS.md: runs the criterion benchmarks, then prints
# markdown tables of the medians (with ratios to the peers measured in the same run, and the
# core's targets with PASS/FAIL), with the machine, the compiler and the commit.
#
#   scripts/bench.sh                 # the core (`benches/context.rs`), about 3 minutes
#   scripts/bench.sh context hamt    # several bench targets (hamt alone: about 8 minutes)
#
# The core runs with short criterion settings (BENCH_ARGS overrides them); the other targets
# with criterion's defaults. The medians are saved to target/bench-medians.json; the targets
# stated against the engine before the rewrite are checked with the medians committed in
# scripts/bench_baseline_core_v1.json (BENCH_BASELINE overrides the file).
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("${@:-context}")
context_args=${BENCH_ARGS:---warm-up-time 1 --measurement-time 3}
baseline=${BENCH_BASELINE:-scripts/bench_baseline_core_v1.json}
start=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for target in ${targets[*]}; do
    if [ "$target" = context ]; then
        # shellcheck disable=SC2086 # the settings are several words on purpose
        cargo bench --bench context -- --noplot $context_args
    else
        cargo bench --bench "$target" -- --noplot
    fi
done
echo
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "rustc:   $(rustc --version)"
echo "commit:  $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)')"
echo "load:    $load_before at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (1, 5, 15 min)"
echo "args:    ${targets[*]}; context: $context_args"
echo
python3 scripts/bench_table.py target/criterion --since "$start" \
    --save target/bench-medians.json --baseline "$baseline"
