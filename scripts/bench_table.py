"""Prints criterion's median estimates as markdown tables, one per benchmark group.

Usage: python3 scripts/bench_table.py target/criterion

Each row is one benchmark; the ratio column divides its median by the first row of the
same group that is not ours, so "0.25x" reads "a quarter of the peer's time".
"""

import json
import pathlib
import sys


def median_ns(bench_dir: pathlib.Path) -> float | None:
    estimates = bench_dir / "new" / "estimates.json"
    if not estimates.exists():
        return None
    return json.loads(estimates.read_text())["median"]["point_estimate"]


def fmt(ns: float) -> str:
    if ns < 1:
        return f"{ns * 1000:.0f} ps"
    if ns < 1000:
        return f"{ns:.2f} ns"
    return f"{ns / 1000:.2f} µs"


def main(root: str) -> None:
    for group in sorted(p for p in pathlib.Path(root).iterdir() if p.is_dir() and p.name != "report"):
        rows = []
        for bench in sorted(group.rglob("new")):
            bench_dir = bench.parent
            name = bench_dir.relative_to(group).as_posix()
            value = median_ns(bench_dir)
            if value is not None:
                rows.append((name, value))
        if not rows:
            continue
        print(f"\n#### {group.name}\n")
        print("| benchmark | median | vs first peer |")
        print("|---|---:|---:|")
        peer = next((v for n, v in rows if not n.startswith("contextvars") and n != "bare"), None)
        for name, value in rows:
            ratio = f"{value / peer:.2f}x" if peer else ""
            print(f"| {name} | {fmt(value)} | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
