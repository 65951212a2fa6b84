#!/usr/bin/env bash
# Checks the clippy recipe, examples/clippy.toml, against the newest releases of tokio and
# rayon, so that a renamed or moved method cannot leave a recipe line that matches nothing:
#
# 1. every method the recipe lists is called once by the fixture crate, tests/clippy-recipe,
#    on a line ending with `// flagged: <path>`, and every such line names a listed path;
# 2. clippy, with the recipe as the fixture's clippy.toml, flags each of those calls with a
#    `disallowed_methods` warning naming its path (counted per path and line), and says
#    nothing else: the replacements the reasons name pass, and their `#[expect]`s are met.
#
#   scripts/clippy_recipe.sh            # resolves the newest tokio and rayon first
#   scripts/clippy_recipe.sh --locked   # the versions of tests/clippy-recipe/Cargo.lock
#
# Needs jq. The fixture builds in target/clippy-recipe (check only: tokio, rayon, the crate).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v jq >/dev/null 2>&1; then
    echo "clippy_recipe: jq is not installed" >&2
    exit 2
fi

recipe=examples/clippy.toml
fixture=tests/clippy-recipe
source=$fixture/src/lib.rs
manifest=$fixture/Cargo.toml
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_CLIPPY_RECIPE:-$PWD/target/clippy-recipe}"
# The fixture's warnings are what is checked: none of them may become an error.
export RUSTFLAGS=""
# The recipe, as the fixture's clippy.toml.
export CLIPPY_CONF_DIR="$PWD/examples"

fail() {
    echo "clippy_recipe: $*" >&2
    exit 1
}

# `<path>` per line: the recipe's entries.
listed=$(sed -nE 's/^[[:space:]]*\{ path = "([^"]+)".*/\1/p' "$recipe" | sort)
# `<path> <line>` per line: the fixture's calls (statements ending `; // flagged: <path>`).
expected=$(grep -nE ';[[:space:]]*// flagged: ' "$source" | sed -E 's|^([0-9]+):.*// flagged: ([^[:space:]]+)[[:space:]]*$|\2 \1|' | sort)
[[ -n "$listed" ]] || fail "no entry found in $recipe"

called=$(cut -d' ' -f1 <<<"$expected" | sort)
if [[ "$listed" != "$called" ]]; then
    uncalled=$(comm -23 <(echo "$listed") <(echo "$called"))
    unlisted=$(comm -13 <(echo "$listed") <(echo "$called"))
    [[ -z "$uncalled" ]] || { echo "listed in $recipe, not called once in $source:"; echo "$uncalled" | sed 's/^/    /'; } >&2
    [[ -z "$unlisted" ]] || { echo "called in $source, not listed once in $recipe:"; echo "$unlisted" | sed 's/^/    /'; } >&2
    fail "the recipe and the fixture differ"
fi

if [[ "${1:-}" != "--locked" ]]; then
    cargo update --quiet --manifest-path "$manifest"
fi
cargo fmt --manifest-path "$manifest" -- --check
# Clippy replays its cached diagnostics only while nothing changed; a changed recipe must be
# read again.
touch "$source"
messages=$(cargo clippy --quiet --manifest-path "$manifest" --message-format=json)

# `<path> <line>` per `disallowed_methods` warning, from its message and primary span.
flagged=$(jq -r '
    select(.reason == "compiler-message") | .message
    | select(.code.code? == "clippy::disallowed_methods")
    | (.message | capture("disallowed method `(?<path>[^`]+)`").path) + " "
      + (.spans[] | select(.is_primary) | .line_start | tostring)' <<<"$messages" | sort)
# Anything else the compiler or clippy said about the fixture, or about the recipe itself
# (a path that no longer resolves is reported against clippy.toml).
others=$(jq -r '
    select(.reason == "compiler-message") | .message
    | select(.code.code? != "clippy::disallowed_methods")
    | .rendered' <<<"$messages")

missing=$(comm -23 <(echo "$expected") <(echo "$flagged"))
extra=$(comm -13 <(echo "$expected") <(echo "$flagged"))
if [[ -n "$missing" || -n "$extra" || -n "$others" ]]; then
    [[ -z "$missing" ]] || { echo "not flagged (path, line of $source):"; echo "$missing" | sed 's/^/    /'; } >&2
    [[ -z "$extra" ]] || { echo "flagged but not expected:"; echo "$extra" | sed 's/^/    /'; } >&2
    [[ -z "$others" ]] || { echo "other diagnostics:"; echo "$others"; } >&2
    fail "the recipe does not flag exactly the calls it lists"
fi

version() {
    cargo pkgid --quiet --manifest-path "$manifest" "$1" | sed 's/.*[@#]//'
}
echo "all $(wc -l <<<"$listed") methods of $recipe flagged, replacements clean" \
    "(tokio $(version tokio), rayon $(version rayon), $(cargo clippy --version))"
