#!/usr/bin/env bash
# Regenerates the figures in BENCHMARKS.md: runs the criterion benchmarks, then prints
# markdown tables of the medians (with ratios to the peers measured in the same run, and the
# core's targets with PASS/FAIL), with the machine, the compiler and the commit.
#
#   scripts/bench.sh                 # the core (`benches/context.rs`), about 3 minutes
#   scripts/bench.sh ratios          # the core's targets (`benches/ratios.rs`, profile
#                                    # `ratios`, feature `tokio`), its own tables, 2 minutes
#   scripts/bench.sh context hamt    # several bench targets (hamt alone: about 8 minutes)
#
# The core runs with short criterion settings (BENCH_ARGS overrides them), BENCH_ROUNDS times
# (default 1): on a busy machine the load drifts during a run, and the median over rounds of
# the ratios within each round is steadier than one run. The other targets run once with
# criterion's defaults. The medians are saved to target/bench-medians.json; the targets
# stated against the engine before the rewrite are checked with the medians committed in
# scripts/bench_baseline_core_v1.json (BENCH_BASELINE overrides the file).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/machine.sh
source scripts/machine.sh
targets=("${@:-context}")
context_args=${BENCH_ARGS:---warm-up-time 1 --measurement-time 3}
baseline=${BENCH_BASELINE:-scripts/bench_baseline_core_v1.json}
rounds=${BENCH_ROUNDS:-1}
start=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
round_files=()
rm -rf target/bench-rounds
mkdir -p target/bench-rounds
for target in ${targets[*]}; do
    if [ "$target" = context ]; then
        for round in $(seq "$rounds"); do
            round_start=$(date +%s)
            # shellcheck disable=SC2086 # the settings are several words on purpose
            cargo bench --features internals --bench context -- --noplot $context_args
            file=target/bench-rounds/$round.json
            python3 scripts/bench_table.py target/criterion --since "$round_start" --save "$file" --quiet
            round_files+=(--round "$file")
        done
    elif [ "$target" = ratios ]; then
        # Prints its own tables (RATIO_ROUNDS rounds, default 5); criterion is not involved.
        cargo bench --profile ratios --features tokio --bench ratios
    else
        cargo bench --bench "$target" -- --noplot
    fi
done
echo
print_machine
echo "args:    ${targets[*]}; context: $context_args, $rounds round(s)"
echo
python3 scripts/bench_table.py target/criterion --since "$start" \
    --save target/bench-medians.json --baseline "$baseline" "${round_files[@]}"
