//! One operation of the ratio harness in a loop, for counting its instructions under
//! `valgrind --tool=callgrind`: the counts do not move with the machine's load, so they show
//! what a change costs where the timings of `benches/ratios.rs` cannot.
//!
//! Build profile: `ratios` (`codegen-units = 1`), with `--features tokio`, as the ratio
//! harness. `scripts/insns.sh` builds it, runs every mode under callgrind and prints the
//! instructions per operation, the empty loop (`none`) subtracted:
//!
//! ```sh
//! scripts/insns.sh                 # every mode
//! scripts/insns.sh get scope       # some
//! ```
//!
//! By hand: `target/ratios/deps/insns-* MODE` runs [`OPS`] operations of `MODE` (a tenth as
//! many requests) and prints a checksum; without a mode it lists the modes.

use std::hint::black_box;
use std::pin::pin;
use std::task::{Context as TaskContext, Waker};

use contextvars::FutureExt as _;

mod workload;

use workload::{
    Countdown, TASK_VALUE, VALUE, contextvars_scope, contextvars_spawned, filled, run_request, tokio_scope,
};

/// Operations per run (requests: a tenth).
const OPS: u64 = 1_000_000;
/// The same, as the count of `Pending` polls of a `Countdown`.
const POLL_OPS: u32 = 1_000_000;

/// Keeps `value` from being optimised away, then drops it.
fn sink<T>(value: T) {
    drop(black_box(value));
}

/// Polls `fut` until it is ready.
fn poll_to_end(fut: impl Future) {
    let mut fut = pin!(fut);
    let mut cx = TaskContext::from_waker(Waker::noop());
    while fut.as_mut().poll(&mut cx).is_pending() {}
}

const MODES: &str = "none get scope set_reset poll poll-bare request tokio-get tokio-scope";

fn main() {
    // `cargo bench` passes `--bench`; a mode is the first other argument.
    let Some(mode) = std::env::args().skip(1).find(|arg| !arg.starts_with("--")) else {
        println!("modes: {MODES}");
        return;
    };
    let mut sum = 0u64;
    let mut add = |value: u64| sum = sum.wrapping_add(black_box(value));
    match mode.as_str() {
        "none" => (0..OPS).for_each(&mut add),
        "get" => filled().run(|| {
            (0..OPS).for_each(|_| add(VALUE.get().unwrap_or(0)));
        }),
        "scope" => filled().run(|| {
            (0..OPS).for_each(|i| add(contextvars_scope(black_box(i))));
        }),
        "set_reset" => filled().run(|| {
            (0..OPS).for_each(|i| sink(VALUE.reset(VALUE.set(black_box(i)))));
        }),
        "poll" => poll_to_end(Countdown::pending(POLL_OPS).in_context(filled())),
        "poll-bare" => poll_to_end(Countdown::pending(POLL_OPS)),
        "request" => filled().run(|| {
            (0..OPS / 10).for_each(|_| {
                add(run_request(contextvars_spawned()));
            });
        }),
        "tokio-get" => TASK_VALUE.sync_scope(1, || {
            (0..OPS).for_each(|_| add(TASK_VALUE.with(|v| *v)));
        }),
        "tokio-scope" => (0..OPS).for_each(|i| add(tokio_scope(black_box(i)))),
        other => {
            eprintln!("unknown mode {other:?}; modes: {MODES}");
            std::process::exit(2);
        }
    }
    println!("{sum}");
}
