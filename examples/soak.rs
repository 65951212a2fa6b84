//! Soak run: millions of set / copy / run / reset cycles, with the resident memory sampled at
//! the start, after a warm-up and at the end. Exits non-zero if memory grew by more than
//! 1 MiB after the warm-up, or if any read saw the wrong value.
//!
//! Run in release: `cargo run --release --example soak -- [CYCLES]` (default 10,000,000).

use std::process::ExitCode;
use std::time::Instant;

use contextvars::{Context, ContextVar, copy_context};

/// How many variables the cycles rotate through: enough to nest the trie two levels deep.
const VARS: usize = 64;
/// Growth after the warm-up that counts as a leak.
const MAX_GROWTH_KIB: u64 = 1024;

static NAMES: [ContextVar<String>; VARS] = [const { ContextVar::new("name") }; VARS];
static COUNTER: ContextVar<u64> = ContextVar::new("counter");
static IN_COPY: ContextVar<Vec<u64>> = ContextVar::new("in_copy");

/// Resident memory of this process in KiB, from `/proc/self/status`.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One cycle; returns `false` if a read saw the wrong value.
fn cycle(i: u64) -> bool {
    let var = &NAMES[i as usize % VARS];
    let was_set = var.is_set();
    let name_token = var.set(format!("request-{i}"));
    let counter_token = COUNTER.set(i);
    let mut copy = copy_context();
    let inside = copy.run(|| {
        IN_COPY.set(vec![i; 4]);
        COUNTER.set(i + 1);
        COUNTER.get() == Some(i + 1)
            && var.with(|name| name.is_some_and(|name| name.ends_with(&i.to_string())))
    });
    let derived = copy.with_value(&COUNTER, i + 2).without(var);
    let ok = inside
        && copy.get(&IN_COPY).is_some_and(|v| v.len() == 4)
        && derived.get(&COUNTER) == Some(&(i + 2))
        && !derived.contains(var)
        && !IN_COPY.is_set()
        && COUNTER.get() == Some(i);
    COUNTER.reset(counter_token).is_ok() && var.reset(name_token).is_ok() && ok && var.is_set() == was_set
}

fn main() -> ExitCode {
    let cycles: u64 = match std::env::args().nth(1).map(|arg| arg.replace('_', "").parse()) {
        None => 10_000_000,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("usage: soak [CYCLES]");
            return ExitCode::from(2);
        }
    };
    let warm_up = (cycles / 10).max(1);
    let Some(start_rss) = rss_kib() else {
        eprintln!("soak: cannot read VmRSS from /proc/self/status");
        return ExitCode::from(2);
    };

    let started = Instant::now();
    let mut failures = 0u64;
    let mut warm_rss = start_rss;
    // Some values stay set across the whole run, so the context is never empty.
    let mut base = Context::new();
    base.run(|| {
        for (n, var) in NAMES.iter().enumerate().step_by(3) {
            var.set(format!("base-{n}"));
        }
        for i in 0..cycles {
            if !cycle(i) {
                failures += 1;
            }
            if i + 1 == warm_up {
                warm_rss = rss_kib().unwrap_or(0);
            }
        }
    });
    let elapsed = started.elapsed();
    drop(base);
    let end_rss = rss_kib().unwrap_or(u64::MAX);

    let growth = end_rss.saturating_sub(warm_rss);
    let per_cycle = elapsed.as_nanos() / u128::from(cycles.max(1));
    println!("soak: {cycles} cycles in {:.2} s ({per_cycle} ns per cycle)", elapsed.as_secs_f64());
    println!(
        "soak: VmRSS start {start_rss} KiB, after warm-up ({warm_up} cycles) {warm_rss} KiB, end {end_rss} KiB"
    );
    println!("soak: growth after warm-up {growth} KiB (limit {MAX_GROWTH_KIB} KiB), wrong reads {failures}");
    if failures > 0 || growth > MAX_GROWTH_KIB {
        println!("soak: FAILED");
        return ExitCode::FAILURE;
    }
    println!("soak: ok");
    ExitCode::SUCCESS
}
