#!/usr/bin/env bash
# Instructions per operation of the core (`benches/insns.rs`, profile `ratios`, feature
# `tokio`), counted by `valgrind --tool=callgrind`: deterministic, so a change's cost shows
# where the timings of the ratio harness are noise. The empty loop is subtracted (for
# `poll`, the bare future's own polls).
#
#   scripts/insns.sh                  # every mode
#   scripts/insns.sh get scope        # some
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/machine.sh
source scripts/machine.sh
load_before=$(cut -d" " -f1-3 /proc/loadavg)
command -v valgrind >/dev/null || { echo "insns.sh: valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
exe=$(cargo bench --no-run --profile ratios --features tokio --bench insns --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "insns" and m.get("executable"):
        print(m["executable"])')
[[ -n "$exe" ]] || { echo "insns.sh: the build failed; run: cargo bench --no-run --profile ratios --features tokio --bench insns" >&2; exit 1; }
modes=("$@")
[[ ${#modes[@]} -gt 0 ]] || read -r -a modes <<<"$("$exe" | sed 's/^modes: //')"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() {
    valgrind --tool=callgrind --callgrind-out-file="$out/$1.out" "$exe" "$1" >/dev/null 2>"$out/$1.err"
    sed -n 's/.*refs: *\([0-9,]*\).*/\1/p' "$out/$1.err" | tr -d ,
}
none=$(count none)
bare=""
print_machine
echo
echo "| mode | instructions per operation |"
echo "|---|---:|"
for mode in "${modes[@]}"; do
    # `poll` is measured over the bare future's polls (`poll-bare`): what the wrapper adds.
    [[ $mode == none || $mode == poll-bare ]] && continue
    ops=1000000 base=$none label=$mode
    [[ $mode == request ]] && ops=100000
    if [[ $mode == poll ]]; then
        [[ -n $bare ]] || bare=$(count poll-bare)
        base=$bare label="poll (over the bare future)"
    fi
    total=$(count "$mode")
    echo "| $label | $(( (total - base) / ops )) |"
done
