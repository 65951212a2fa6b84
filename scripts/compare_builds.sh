#!/usr/bin/env bash
# Compares two builds of the ratio harness (`benches/ratios.rs`, profile `ratios`) row by row:
# the cost of a feature on the same code, or of a change between two commits. The two
# binaries run one round each in turn, ROUNDS times (default 8), so that the load of a busy
# machine falls on both alike; each row's figure is the median over its rounds, and each
# target's the median of its per-round ratios.
#
#   scripts/compare_builds.sh features "" tokio          # the `tokio` feature's cost
#   scripts/compare_builds.sh revs 5c746d2 HEAD tokio    # two commits, both with `tokio`
#
# RATIO_ONLY (row name prefixes, comma-separated) picks rows, as in the harness.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/machine.sh
source scripts/machine.sh
mode=${1:?features or revs}
rounds=${ROUNDS:-8}
load_before=$(cut -d" " -f1-3 /proc/loadavg)
out=target/compare-builds
rm -rf "$out"
mkdir -p "$out"

# Builds the harness in directory $1 with features $2; prints the binary's path.
build() {
    local dir=$1 features=$2
    (cd "$dir" && cargo bench --no-run --profile ratios --features "$features" --bench ratios \
        --message-format=json 2>/dev/null) |
        python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "ratios" and m.get("executable"):
        print(m["executable"])'
}

case "$mode" in
    features)
        a_label="features [${2}]"; b_label="features [${3}]"
        cp "$(build . "$2")" "$out/a"
        cp "$(build . "$3")" "$out/b"
        ;;
    revs)
        features=${4:-}
        a_label="$(git rev-parse --short "$2") [$features]"; b_label="$(git rev-parse --short "$3") [$features]"
        for side in a b; do
            rev=$([ $side = a ] && echo "$2" || echo "$3")
            dir=$out/tree-$side
            git worktree add --detach "$dir" "$rev" >/dev/null 2>&1
            exe=$(CARGO_TARGET_DIR=$PWD/target/compare-$side build "$dir" "$features")
            cp "$exe" "$out/$side"
            git worktree remove --force "$dir"
        done
        ;;
    *) echo "usage: $0 features A B | revs REV_A REV_B [features]" >&2; exit 2 ;;
esac

for round in $(seq "$rounds"); do
    for side in a b; do
        RATIO_ROUNDS=1 "$out/$side" --bench >"$out/$side.$round.md" 2>/dev/null
    done
    echo "round $round/$rounds done" >&2
done

echo
print_machine
echo "a: $a_label; b: $b_label; $rounds alternating rounds"
echo
python3 - "$out" "$rounds" <<'EOF'
import re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
# Each round's file, read once: the rows' times, and the targets' ratios (the harness's own,
# ours over the peer's of that round).
rows, targets = {}, {}
for side in "ab":
    for r in range(1, rounds + 1):
        for line in open(f"{out}/{side}.{r}.md"):
            if m := re.match(r"\| (\S+) \| ([0-9.]+) \(", line):
                rows.setdefault(m.group(1), {"a": [], "b": []})[side].append(float(m.group(2)))
            elif m := re.match(r"\| (.+?) \| ([0-9.]+)x \(.*\| (≤ [0-9.]+x) \|", line):
                targets.setdefault((m.group(1), m.group(3)), {"a": [], "b": []})[side].append(float(m.group(2)))
print("| row | a, ns (min–max) | b, ns (min–max) | b − a, ns | b / a |")
print("|---|---:|---:|---:|---:|")
for name, v in rows.items():
    if not v["a"] or not v["b"]:
        continue
    a, b = statistics.median(v["a"]), statistics.median(v["b"])
    print(f"| {name} | {a:.2} ({min(v['a']):.2}–{max(v['a']):.2}) | {b:.2} ({min(v['b']):.2}–{max(v['b']):.2}) | {b - a:+.2f} | {b / a:.3f} |")

# The targets: the median over the rounds of each build's per-round ratios.
print()
print("| target | limit | a: median ratio (min–max) | b: median ratio (min–max) |")
print("|---|---|---:|---:|")
for (name, limit), v in targets.items():
    if not v["a"] or not v["b"]:
        continue
    cell = lambda xs: f"{statistics.median(xs):.3f}x ({min(xs):.3f}–{max(xs):.3f})"
    print(f"| {name} | {limit} | {cell(v['a'])} | {cell(v['b'])} |")
EOF
