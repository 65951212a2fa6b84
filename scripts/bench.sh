#!/usr/bin/env bash
# Regenerates the figures in BENCHMARKS.md: runs the criterion benchmarks, then prints
# markdown tables of the medians (with ratios) to paste there, with the machine, the
# compiler and the commit they were measured on.
#
#   scripts/bench.sh                 # everything (about 10 minutes on 2 cores)
#   scripts/bench.sh context         # one bench target
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("${@:-context hamt}")
for target in ${targets[*]}; do
    cargo bench --bench "$target" -- --noplot
done
echo
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "rustc:   $(rustc --version)"
echo "commit:  $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')"
echo
python3 scripts/bench_table.py target/criterion
