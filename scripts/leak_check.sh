#!/usr/bin/env bash
# Runs the core's tests under valgrind's memcheck and fails on any leaked block (definitely or
# indirectly lost) and on any memory error. Memory still reachable at exit (thread-local
# storage of the test harness, for example) is not a leak.
#
#   scripts/leak_check.sh            # the library's unit tests and the core test files
#   scripts/leak_check.sh stress     # extra test files, by name
#
# Needs valgrind (`apt-get install valgrind`). Property tests run fewer cases here
# (PROPTEST_CASES, default 32), since valgrind runs them about 30 times slower.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
    echo "leak_check: valgrind is not installed" >&2
    exit 2
fi
export PROPTEST_CASES="${PROPTEST_CASES:-32}"

# The core test files that exist in this checkout, plus any named on the command line.
tests=()
for name in hamt_model context_model destructors reentrancy cpython_context panic_safety auto_traits "$@"; do
    if [[ -f "tests/$name.rs" ]]; then
        tests+=(--test "$name")
    fi
done

# Build once (with `internals`, which the trie's model test needs) and collect the test
# executables cargo reports. A failed build fails the check with cargo's own message.
build_log=$(mktemp)
trap 'rm -f "$build_log" "$build_log.err"' EXIT
if ! cargo test --no-run --features internals --lib "${tests[@]}" --message-format=json \
    >"$build_log" 2>"$build_log.err"; then
    echo "leak_check: the test build failed:" >&2
    cat "$build_log.err" >&2
    exit 2
fi
mapfile -t binaries < <(
    python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("profile", {}).get("test") and msg.get("executable"):
        print(msg["executable"])
' <"$build_log"
)
if [[ ${#binaries[@]} -eq 0 ]]; then
    echo "leak_check: no test executables were built" >&2
    exit 2
fi

status=0
for binary in "${binaries[@]}"; do
    name=$(basename "$binary")
    log=$(mktemp)
    echo "leak_check: $name"
    if valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
        "$binary" --test-threads=2 >"$log" 2>&1; then
        grep -E '^test result' "$log" || true
    else
        echo "leak_check: $name FAILED under valgrind; its output:" >&2
        cat "$log" >&2
        status=1
    fi
    rm -f "$log"
done
if [[ $status -eq 0 ]]; then
    echo "leak_check: no leaks and no memory errors in ${#binaries[@]} test executables"
fi
exit $status
