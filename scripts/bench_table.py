"""Prints criterion's median estimates as markdown tables, one per benchmark group.

Usage:
    python3 scripts/bench_table.py [target/criterion] [--since EPOCH] [--save FILE]
                                   [--baseline FILE] [--round FILE ...] [--quiet]

For the groups of `benches/context.rs` each table has, per row: criterion's median, the
ratio to the group's named peer (measured in the same run), and where the core's issue sets
a target, the target, the measured ratio and PASS or FAIL. A summary of every target follows.
Other groups (`hamt_*`, `trace`...) get a plain table as before.

--since EPOCH   ignore estimates written before this time (stale results of earlier runs)
--save FILE     write the medians read (JSON) so a later run can compare with them
--baseline FILE the medians of an earlier run (written by --save), for the targets stated
                relative to the engine before the rewrite. Those compare ratios to a peer of
                the same run (ours / peer now against ours / peer then), so a busier or
                quieter machine does not move them; the raw ratio is shown beside.
--round FILE    (repeatable) the medians of one round of the context bench, written by
                --save --quiet after each round; the tables then show the median over the
                rounds, and each ratio is the median of the ratios within each round.
--quiet         only --save, print nothing
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
from dataclasses import dataclass, field

# Must match `POLLS` in benches/context.rs: each `poll` benchmark polls its future this often.
POLLS = 100


@dataclass
class Target:
    """`value(row) / value(ref) <= limit`; with `baseline`, ref is the same row in the
    baseline run and both sides are first divided by `normalize` of their own run."""

    text: str
    ref: str
    limit: float
    baseline: bool = False
    normalize: str | None = None


@dataclass
class Row:
    id: str
    label: str
    targets: list[Target] = field(default_factory=list)


@dataclass
class Group:
    name: str
    title: str
    peer: str
    peer_label: str
    rows: list[Row]
    unit: str = ""
    note: str = ""


TOKIO_GET = "get/tokio/task_local"
TOKIO_SCOPE = "scope/tokio/sync_scope"
OTEL_ATTACH = "set_reset/otel/attach+drop"
OTEL_COPY = "copy_context/otel/current"
TOKIO_REQUEST = "request/tokio/3-scopes"
OVER = "poll-overhead/"  # derived: (wrapped - bare) / POLLS, per poll

GROUPS = [
    Group(
        "get",
        "get: read a `u64`",
        TOKIO_GET,
        "tokio task_local",
        [
            Row("get/contextvars/4", "contextvars, 4 vars set",
                [Target("≤ 3x tokio task_local", TOKIO_GET, 3.0)]),
            Row("get/contextvars/10000", "contextvars, 10,000 vars set",
                [Target("≤ 2x get at 4 vars (stretch: flat)", "get/contextvars/4", 2.0)]),
            Row("get/contextvars/unset-var", "contextvars, var never set (default)"),
            Row(TOKIO_GET, "tokio `TASK.with(|v| *v)` in `sync_scope`"),
            Row("get/otel/current().get()", "opentelemetry `Context::current().get()`"),
            Row("get/otel/map_current", "opentelemetry `Context::map_current`"),
            Row("get/thread_local", "`thread_local!` `Cell::get`"),
        ],
    ),
    Group(
        "scope",
        "scope: set, run a closure that reads, restore (behind a call never inlined)",
        TOKIO_SCOPE,
        "tokio sync_scope",
        [
            Row("scope/contextvars/scope", "contextvars `VAR.scope(v, || VAR.get())`, 4 vars",
                [Target("≤ 3x tokio sync_scope", TOKIO_SCOPE, 3.0)]),
            Row(TOKIO_SCOPE, "tokio `sync_scope(v, || TASK.with(..))`"),
            Row("scope/otel/attach+get+drop", "opentelemetry attach, `map_current`, drop"),
            Row("scope/thread_local/replace+get+set", "`thread_local!` replace, get, set"),
        ],
    ),
    Group(
        "set_reset",
        "set + reset",
        OTEL_ATTACH,
        "otel attach+drop",
        [
            Row("set_reset/contextvars/4", "contextvars, 4 vars, value owned by the context",
                [Target("≤ 0.1x otel attach+drop", OTEL_ATTACH, 0.1)]),
            Row("set_reset/contextvars/10000", "contextvars, 10,000 vars"),
            Row("set_reset/contextvars/4-inherited", "contextvars, 4 vars, value set in an earlier `run`"),
            Row("set_reset/contextvars/4-unset", "contextvars, 4 vars, var not set before"),
            Row("set_reset/contextvars/4-after-snapshot",
                "contextvars, right after a `copy_context` (snapshot dropped after)",
                [Target("≤ 0.5x before (both / otel attach+drop)", "set_reset/contextvars/4-after-snapshot",
                        0.5, baseline=True, normalize=OTEL_ATTACH)]),
            Row(OTEL_ATTACH, "opentelemetry `current_with_value(x).attach()` + drop"),
            Row("set_reset/thread_local/replace+set", "`thread_local!` replace + set"),
        ],
    ),
    Group(
        "poll",
        f"poll: a future `Pending` {POLLS - 1} times then `Ready`, polled by hand ({POLLS} polls)",
        "poll/tokio/scope-1",
        "tokio one var",
        [
            Row("poll/bare", "bare future"),
            Row("poll/contextvars/WithContext/4", "contextvars `WithContext`, 4 vars"),
            Row("poll/contextvars/WithContext/10000", "contextvars `WithContext`, 10,000 vars"),
            Row("poll/tokio/scope-1", "tokio `TASK.scope(v, fut)`, one var"),
            Row("poll/tokio/scope-3-nested", "tokio, three nested `scope`s"),
            Row("poll/otel/WithContext", "opentelemetry's `FutureExt::with_context`"),
            Row(OVER + "contextvars/WithContext/4", "overhead per poll: contextvars, 4 vars",
                [Target("≤ 0.35x tokio one var", OVER + "tokio/scope-1", 0.35),
                 Target("≤ 0.15x tokio three nested", OVER + "tokio/scope-3-nested", 0.15)]),
            Row(OVER + "contextvars/WithContext/10000", "overhead per poll: contextvars, 10,000 vars"),
            Row(OVER + "tokio/scope-1", "overhead per poll: tokio one var"),
            Row(OVER + "tokio/scope-3-nested", "overhead per poll: tokio three nested"),
            Row(OVER + "otel/WithContext", "overhead per poll: opentelemetry"),
        ],
        note=f"Overhead per poll = (wrapped - bare) / {POLLS}; its ratio column divides by tokio's "
        "overhead with one var.",
    ),
    Group(
        "copy_context",
        "copy_context: snapshot + drop",
        OTEL_COPY,
        "otel current()",
        [
            *[Row(f"copy_context/contextvars/{n}", f"contextvars, {n:,} var{'s' if n > 1 else ''}",
                  [Target("≤ 1.2x otel current()", OTEL_COPY, 1.2)]) for n in (1, 4, 64, 1000)],
            Row("copy_context/contextvars/10000", "contextvars, 10,000 vars",
                [Target("≤ 1.2x otel current()", OTEL_COPY, 1.2),
                 Target("flat: ≤ 1.2x at 1 var", "copy_context/contextvars/1", 1.2)]),
            Row(OTEL_COPY, "opentelemetry `Context::current()` + drop"),
        ],
    ),
    Group(
        "request",
        "request: snapshot at spawn, 3 sets, 20 gets, 11 polls, the resets",
        TOKIO_REQUEST,
        "tokio 3 scopes",
        [
            Row("request/contextvars", "contextvars `copy_context` + `with_context`, set/get/reset",
                [Target("≤ 1.5x tokio (stretch: on par)", TOKIO_REQUEST, 1.5)]),
            Row(TOKIO_REQUEST, "tokio, one `scope` per var (3 nested)"),
            Row("request/otel", "opentelemetry `current()` + 3 `with_value` + `with_context`"),
        ],
    ),
    Group(
        "checks",
        "checks: what the safe-by-default checks cost (same build, with and without)",
        "checks/get/unmarked",
        "get, unmarked thread",
        [
            Row("checks/set+reset/entered/checked", "set + reset in an entered context, checked",
                [Target("within 5% of unchecked", "checks/set+reset/entered/unchecked", 1.05)]),
            Row("checks/set+reset/entered/unchecked", "the same without the worker check"),
            Row("checks/set+reset/own/checked", "set + reset in the thread's own context, checked",
                [Target("within 5% of unchecked", "checks/set+reset/own/unchecked", 1.05)]),
            Row("checks/set+reset/own/unchecked", "the same without the worker check"),
            Row("checks/get/worker", "get on a thread marked as a worker",
                [Target("unchanged (within 5%)", "checks/get/unmarked", 1.05)]),
            Row("checks/get/unmarked", "get on an unmarked thread"),
        ],
    ),
]


def fmt(ns: float) -> str:
    if ns < 0:
        return "-" + fmt(-ns)
    if ns < 1:
        return f"{ns * 1000:.0f} ps"
    if ns < 1000:
        return f"{ns:.2f} ns" if ns < 100 else f"{ns:.1f} ns"
    return f"{ns / 1000:.2f} µs"


def read_medians(root: pathlib.Path, since: float | None) -> dict[str, float]:
    """Criterion's median (ns) per full benchmark id, from `*/new/estimates.json`; the
    group's directory and id are kept in GROUP_OF for the tables of other targets."""
    medians = {}
    for estimates in root.rglob("new/estimates.json"):
        if since is not None and estimates.stat().st_mtime < since:
            continue
        bench_dir = estimates.parent.parent
        group_dir = bench_dir.relative_to(root).parts[0]
        meta = estimates.parent / "benchmark.json"
        if meta.exists():
            info = json.loads(meta.read_text())
            full_id, group_id = info["full_id"], info["group_id"]
        else:
            full_id, group_id = bench_dir.relative_to(root).as_posix(), group_dir
        medians[full_id] = json.loads(estimates.read_text())["median"]["point_estimate"]
        GROUP_OF[full_id] = (group_dir, full_id.removeprefix(group_id + "/"))
    return medians


# Full benchmark id -> (the group's directory, the id within the group).
GROUP_OF: dict[str, tuple[str, str]] = {}


def derive(values: dict[str, float]) -> None:
    """Adds the per-poll overheads of the `poll` group."""
    bare = values.get("poll/bare")
    if bare is None:
        return
    for key in list(values):
        if key.startswith("poll/") and key != "poll/bare":
            values[OVER + key.removeprefix("poll/")] = (values[key] - bare) / POLLS


def ratio_per_round(rounds: list[dict[str, float]], num: str, den: str) -> list[float]:
    return [r[num] / r[den] for r in rounds if num in r and den in r and r[den] > 0]


def show_ratios(ratios: list[float]) -> str:
    """The median ratio, and the range over the rounds when there were several."""
    text = fmt_ratio(statistics.median(ratios))
    if len(ratios) > 1:
        text += f" ({fmt_ratio(min(ratios)).removesuffix('x')}–{fmt_ratio(max(ratios))})"
    return text


def check(row: Row, target: Target, rounds: list[dict[str, float]], before: dict[str, float] | None):
    """Returns (measured text, verdict) for one target: the median over the rounds of the
    ratio measured within each round."""
    if target.baseline:
        if before is None:
            return "no baseline", "n/a"
        old, norm_old = before.get(target.ref), before.get(target.normalize)
        if old is None or norm_old is None:
            return "not in the baseline", "n/a"
        then = old / norm_old
        ratios = [q / then for q in ratio_per_round(rounds, row.id, target.normalize)]
        if not ratios:
            return "not measured", "n/a"
        raw = statistics.median(r[row.id] for r in rounds if row.id in r) / old
        text = f"{show_ratios(ratios)}; raw {fmt_ratio(raw)}"
        return text, verdict(statistics.median(ratios), target.limit)
    ratios = ratio_per_round(rounds, row.id, target.ref)
    if not ratios:
        return "not measured", "n/a"
    return show_ratios(ratios), verdict(statistics.median(ratios), target.limit)


def fmt_ratio(ratio: float) -> str:
    if ratio < 0.1:
        return f"{ratio:.3f}x"
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x"


def cell(text: str) -> str:
    """A markdown table cell: a `|` would end the cell even inside a code span."""
    return text.replace("|", "\\|")


def verdict(ratio: float, limit: float) -> str:
    return "PASS" if ratio <= limit else "**FAIL**"


def print_group(group: Group, rounds: list[dict[str, float]], before: dict[str, float] | None,
                summary: list) -> None:
    now = median_of(rounds)
    if not any(r.id in now for r in group.rows):
        return
    print(f"\n#### {group.title}\n")
    if group.note:
        print(group.note + "\n")
    print(f"| benchmark | median | vs {group.peer_label} | target | measured | verdict |")
    print("|---|---:|---:|---|---:|---|")
    for row in group.rows:
        value = now.get(row.id)
        if value is None:
            print(f"| {cell(row.label)} | not measured | | | | |")
            continue
        peer = group.peer
        if row.id.startswith(OVER):
            peer = OVER + group.peer.removeprefix("poll/")
        peer_ratios = ratio_per_round(rounds, row.id, peer)
        ratio = fmt_ratio(statistics.median(peer_ratios)) if peer_ratios else ""
        targets = row.targets or [None]
        for i, target in enumerate(targets):
            first = i == 0
            cells = [row.label if first else "", fmt(value) if first else "", ratio if first else ""]
            if target is None:
                cells += ["", "", ""]
            else:
                measured, result = check(row, target, rounds, before)
                cells += [target.text, measured, result]
                summary.append((f"{group.name}: {row.label}", target.text, measured, result))
            print("| " + " | ".join(cell(c) for c in cells) + " |")


def median_of(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Per benchmark, the median over the rounds of criterion's medians."""
    ids = sorted({k for r in rounds for k in r})
    return {k: statistics.median(r[k] for r in rounds if k in r) for k in ids}


def print_pivot(name: str, rows: list[tuple[str, float]]) -> None:
    """One row per operation, one column per map, and ours over the best peer."""
    table: dict[str, dict[str, float]] = {}
    for bench, value in rows:
        op, _, imp = bench.partition("/")
        table.setdefault(op, {})[imp] = value
    print(f"\n#### {name.replace('_', ' ')} entries\n")
    print("| operation | contextvars | rpds | imbl | ours / best peer |")
    print("|---|---:|---:|---:|---:|")
    for op, values in table.items():
        ours = values.get("contextvars")
        peers = [values[k] for k in ("rpds", "imbl") if k in values]
        ratio = f"{ours / min(peers):.2f}x" if ours and peers else ""
        cells = " | ".join(fmt(values[k]) if k in values else "" for k in ("contextvars", "rpds", "imbl"))
        print(f"| {op} | {cells} | {ratio} |")


def print_other(medians: dict[str, float]) -> None:
    """The groups of the other bench targets, as before: hamt as a pivot, the rest plain."""
    known = {g.name for g in GROUPS}
    by_group: dict[str, list[tuple[str, float]]] = {}
    for full_id, value in sorted(medians.items()):
        group, name = GROUP_OF[full_id]
        if group not in known:
            by_group.setdefault(group, []).append((name, value))
    for group, rows in sorted(by_group.items()):
        if group.startswith("hamt_"):
            print_pivot(group, rows)
            continue
        print(f"\n#### {group}\n")
        print("| benchmark | median | vs first peer |")
        print("|---|---:|---:|")
        peer = next((v for n, v in rows if not n.startswith("contextvars") and n != "bare"), None)
        for name, value in rows:
            ratio = f"{value / peer:.2f}x" if peer else ""
            print(f"| {name} | {fmt(value)} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="target/criterion")
    parser.add_argument("--since", type=float)
    parser.add_argument("--save")
    parser.add_argument("--baseline")
    parser.add_argument("--round", action="append", default=[])
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    root = pathlib.Path(args.root)
    if not root.is_dir():
        sys.exit(f"no criterion results in {root}")
    medians = read_medians(root, args.since)
    rounds = [json.loads(pathlib.Path(f).read_text()) for f in args.round] or [medians]
    if args.save:
        saved = median_of(rounds) if args.round else medians
        pathlib.Path(args.save).write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")
    if args.quiet:
        return
    before = None
    if args.baseline and os.path.exists(args.baseline):
        before = json.loads(pathlib.Path(args.baseline).read_text())
        derive(before)
    for r in rounds:
        derive(r)

    if len(rounds) > 1:
        print(f"\n{len(rounds)} rounds: medians over the rounds; ratios are the median of the "
              "ratios within each round, (lowest–highest) beside.")
    summary: list = []
    for group in GROUPS:
        print_group(group, rounds, before, summary)
    if summary:
        print("\n#### Targets of the core\n")
        print("| operation | target | measured | verdict |")
        print("|---|---|---:|---|")
        for row in summary:
            print("| " + " | ".join(cell(c) for c in row) + " |")
    print_other(medians)


if __name__ == "__main__":
    main()
