//! The core's targets as ratios to its peers, measured side by side in one process.
//!
//! Build profile: `ratios` (Cargo.toml: the bench profile with `codegen-units = 1`, as
//! performance-minded users build; tokio's task-locals inline fully there), with
//! `--features tokio`. `scripts/bench.sh ratios` runs it:
//!
//! ```sh
//! cargo bench --profile ratios --features tokio --bench ratios
//! ```
//!
//! Every row runs in every round, in the same order, in this one process; a sample times
//! [`OPS`] operations per iteration, for about [`SAMPLE`], and a row's figure in a round is
//! the median of [`SAMPLES`] samples. A target's ratio is taken within each round (ours over
//! the peer's figure of the same round), and the verdict reads the median over the rounds
//! (`RATIO_ROUNDS`, default 5). The load of a busy machine drifts over seconds; ratios of one
//! round share it.
//!
//! `RATIO_ONLY=get,scope` runs only the rows whose names start with one of the prefixes.

#![allow(
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::cast_possible_truncation,
    reason = "timings and counts far below 2^52"
)]

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context as TaskContext, Waker};
use std::time::{Duration, Instant};

use contextvars::FutureExt as _;

mod workload;

use workload::{
    Countdown, POLLS, REQUEST_SUM, TASK_DEADLINE, TASK_REQUEST_ID, TASK_USER_ID, TASK_VALUE, VALUE,
    contextvars_scope, contextvars_spawned, filled, otel_spawned, run_request, tokio_scope, tokio_spawned,
};

/// Operations per timed iteration: enough that the loop and the clock are noise.
const OPS: u64 = 16;
/// The length a sample aims at.
const SAMPLE: Duration = Duration::from_millis(2);
/// Samples per row and round.
const SAMPLES: usize = 21;

thread_local! {
    static PLAIN: Cell<u64> = const { Cell::new(0) };
}

#[derive(Clone, Copy)]
struct OtelValue(u64);

fn otel_current(value: u64) -> opentelemetry::ContextGuard {
    opentelemetry::Context::current_with_value(OtelValue(value)).attach()
}

/// Keeps `value` from being optimized away.
#[inline]
fn sink<T>(value: T) {
    drop(black_box(value));
}

/// Runs `op` `iters * OPS` times and returns how long that took.
#[inline]
fn time(iters: u64, mut op: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        for _ in 0..OPS {
            op();
        }
    }
    start.elapsed()
}

#[inline(never)]
fn thread_local_scope(value: u64) -> u64 {
    let old = PLAIN.replace(value);
    let read = PLAIN.get();
    PLAIN.set(old);
    read
}

/// Builds `iters * OPS / POLLS` futures (at least one), then times polling each to its end;
/// returns the time per poll times `OPS`, so that the row reads as ns per poll.
///
/// The futures are polled as executors poll tasks: type-erased, through
/// `Pin<Box<dyn Future>>`, one call per poll. Polled as a concrete type, the compiler would
/// fuse the loop's polls of one future into one body, which no executor does.
fn time_polls<F: Future<Output = u32> + 'static>(iters: u64, mut make: impl FnMut() -> F) -> Duration {
    let count = (iters * OPS).div_ceil(u64::from(POLLS)).max(1);
    let mut futures: Vec<Pin<Box<dyn Future<Output = u32>>>> =
        (0..count).map(|_| Box::pin(make()) as _).collect();
    let mut cx = TaskContext::from_waker(Waker::noop());
    let start = Instant::now();
    for fut in &mut futures {
        while fut.as_mut().poll(&mut cx).is_pending() {}
    }
    let elapsed = start.elapsed();
    drop(futures);
    // Scaled to `iters * OPS` polls, what the caller divides by.
    elapsed.mul_f64((iters * OPS) as f64 / (count * u64::from(POLLS)) as f64)
}

/// The spawn (a snapshot of a context of 4 variables), then the request in it.
fn contextvars_spawn_request() -> u64 {
    run_request(contextvars_spawned())
}

fn tokio_spawn_request() -> u64 {
    run_request(tokio_spawned())
}

fn otel_spawn_request() -> u64 {
    run_request(otel_spawned())
}

/// One benchmark: `run(iters)` does `iters * OPS` operations and says how long they took.
struct Row {
    name: &'static str,
    run: Box<dyn FnMut(u64) -> Duration>,
}

fn row(name: &'static str, run: impl FnMut(u64) -> Duration + 'static) -> Row {
    Row { name, run: Box::new(run) }
}

fn rows() -> Vec<Row> {
    assert_eq!(filled().run(contextvars_spawn_request), REQUEST_SUM);
    assert_eq!(tokio_spawn_request(), REQUEST_SUM);
    vec![
        row("get/contextvars", |iters| filled().run(|| time(iters, || sink(VALUE.get().unwrap_or(0))))),
        row("get/tokio", |iters| TASK_VALUE.sync_scope(1, || time(iters, || sink(TASK_VALUE.with(|v| *v))))),
        row("get/otel", |iters| {
            let _guard = otel_current(1);
            time(iters, || {
                sink(opentelemetry::Context::map_current(|cx| cx.get::<OtelValue>().map_or(0, |v| v.0)));
            })
        }),
        row("get/thread_local", |iters| {
            PLAIN.set(1);
            time(iters, || sink(PLAIN.get()))
        }),
        row("scope/contextvars", |iters| {
            filled().run(|| time(iters, || sink(contextvars_scope(black_box(2)))))
        }),
        row("scope/tokio", |iters| time(iters, || sink(tokio_scope(black_box(2))))),
        row("scope/thread_local", |iters| time(iters, || sink(thread_local_scope(black_box(2))))),
        row("set_reset/contextvars", |iters| {
            filled().run(|| time(iters, || sink(VALUE.reset(VALUE.set(black_box(2))))))
        }),
        row("set_reset/otel", |iters| {
            let _guard = otel_current(1);
            time(iters, || drop(otel_current(black_box(2))))
        }),
        row("poll/bare", |iters| time_polls(iters, Countdown::new)),
        row("poll/contextvars", |iters| {
            let ctx = filled();
            time_polls(iters, || Countdown::new().in_context(ctx.clone()))
        }),
        row("poll/tokio-1", |iters| time_polls(iters, || TASK_VALUE.scope(1, Countdown::new()))),
        row("poll/tokio-3", |iters| {
            time_polls(iters, || {
                TASK_REQUEST_ID.scope(1, TASK_USER_ID.scope(2, TASK_DEADLINE.scope(3, Countdown::new())))
            })
        }),
        row("request/contextvars", |iters| {
            filled().run(|| time(iters, || sink(contextvars_spawn_request())))
        }),
        row("request/tokio", |iters| time(iters, || sink(tokio_spawn_request()))),
        row("request/otel", |iters| {
            let _guard = otel_current(1);
            time(iters, || sink(otel_spawn_request()))
        }),
    ]
}

/// A target: `ours / peer` (both ns per operation of one round) at most `limit`. A row named
/// with a `-` prefix is a poll row: its overhead over `poll/bare` is compared.
struct Target {
    what: &'static str,
    ours: &'static str,
    peer: &'static str,
    limit: f64,
}

const TARGETS: &[Target] = &[
    Target { what: "get vs tokio `with`", ours: "get/contextvars", peer: "get/tokio", limit: 2.5 },
    Target {
        what: "scope vs tokio `sync_scope`",
        ours: "scope/contextvars",
        peer: "scope/tokio",
        limit: 4.0,
    },
    Target {
        what: "set+reset vs opentelemetry attach+drop",
        ours: "set_reset/contextvars",
        peer: "set_reset/otel",
        limit: 0.1,
    },
    Target {
        what: "poll overhead vs tokio, one variable",
        ours: "-poll/contextvars",
        peer: "-poll/tokio-1",
        limit: 0.35,
    },
    Target {
        what: "poll overhead vs tokio, three nested",
        ours: "-poll/contextvars",
        peer: "-poll/tokio-3",
        limit: 0.15,
    },
    Target {
        what: "request-shaped vs tokio",
        ours: "request/contextvars",
        peer: "request/tokio",
        limit: 1.5,
    },
];

/// How many iterations make a sample of about [`SAMPLE`].
fn calibrate(run: &mut dyn FnMut(u64) -> Duration) -> u64 {
    let mut iters = 1;
    loop {
        let elapsed = run(iters);
        if elapsed >= SAMPLE / 4 || iters >= 1 << 30 {
            let scale = SAMPLE.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
            return ((iters as f64 * scale) as u64).max(1);
        }
        iters *= 4;
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 { values[mid] } else { f64::midpoint(values[mid - 1], values[mid]) }
}

/// Nanoseconds per operation of `row`, median of [`SAMPLES`] samples.
fn measure(row: &mut Row, iters: u64) -> f64 {
    let mut samples: Vec<f64> =
        (0..SAMPLES).map(|_| (row.run)(iters).as_secs_f64() * 1e9 / (iters * OPS) as f64).collect();
    median(&mut samples)
}

/// A row's figure in one round, or its per-poll overhead for a `-` name.
fn figure(round: &[(&'static str, f64)], name: &str) -> Option<f64> {
    let value = |name: &str| round.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    match name.strip_prefix('-') {
        Some(poll) => Some(value(poll)? - value("poll/bare")?),
        None => value(name),
    }
}

fn main() {
    // `cargo bench` starts the harness with `LD_LIBRARY_PATH` set, which it does not need.
    // With it, the same binary gave tokio's nested task-locals a layout where the rows
    // `poll/tokio-3` and `request/tokio` ran 2.3x slower (9.7 against 25.4 ns, 121 against
    // 223 ns; every other row unmoved; BENCHMARKS.md), which flatters the ratios to them. So
    // the harness runs itself again without it, as when started by hand.
    if std::env::var_os("LD_LIBRARY_PATH").is_some() {
        let status = std::env::current_exe().and_then(|exe| {
            std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .env_remove("LD_LIBRARY_PATH")
                .status()
        });
        match status {
            Ok(status) => std::process::exit(status.code().unwrap_or(1)),
            Err(error) => {
                eprintln!("ratios: could not run again without LD_LIBRARY_PATH ({error}); measuring as is");
            }
        }
    }
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let rounds: usize = std::env::var("RATIO_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    let only: Vec<String> = std::env::var("RATIO_ONLY")
        .map(|only| only.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let mut rows: Vec<Row> = rows()
        .into_iter()
        .filter(|row| only.is_empty() || only.iter().any(|prefix| row.name.starts_with(prefix.as_str())))
        .collect();
    let iters: Vec<u64> = rows.iter_mut().map(|row| calibrate(&mut row.run)).collect();
    let mut per_round: Vec<Vec<(&'static str, f64)>> = Vec::new();
    for round in 1..=rounds {
        let figures: Vec<_> =
            rows.iter_mut().zip(&iters).map(|(row, &n)| (row.name, measure(row, n))).collect();
        eprintln!("round {round}/{rounds} done");
        per_round.push(figures);
    }
    println!("| row | ns per operation, median of {rounds} rounds (min–max) |");
    println!("|---|---:|");
    for row in &rows {
        let mut values: Vec<f64> = per_round.iter().filter_map(|r| figure(r, row.name)).collect();
        let (low, high) =
            (values.iter().copied().fold(f64::MAX, f64::min), values.iter().copied().fold(0.0, f64::max));
        println!("| {} | {:.2} ({:.2}–{:.2}) |", row.name, median(&mut values), low, high);
    }
    println!();
    println!("| target | ratio, median of {rounds} rounds (min–max) | limit | verdict |");
    println!("|---|---:|---:|---|");
    for target in TARGETS {
        let mut ratios: Vec<f64> = per_round
            .iter()
            .filter_map(|round| Some(figure(round, target.ours)? / figure(round, target.peer)?))
            .collect();
        if ratios.is_empty() {
            continue;
        }
        let (low, high) =
            (ratios.iter().copied().fold(f64::MAX, f64::min), ratios.iter().copied().fold(0.0, f64::max));
        let ratio = median(&mut ratios);
        let verdict = if ratio <= target.limit { "PASS" } else { "FAIL" };
        println!("| {} | {ratio:.3}x ({low:.3}–{high:.3}) | ≤ {}x | {verdict} |", target.what, target.limit);
    }
}
