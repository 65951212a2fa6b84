//! What `contextvars::tokio::task_contexts` costs per poll and per spawn, against a runtime
//! without hooks and against wrapping the task with `WithContext`, on real tokio runtimes.
//!
//! Needs tokio's task hooks: build with `--cfg tokio_unstable` in a target directory of its
//! own (without it, this prints a note and measures nothing):
//!
//! ```text
//! CARGO_TARGET_DIR=target/tokio-unstable RUSTFLAGS="--cfg tokio_unstable" \
//!     cargo bench --features tokio --bench task_contexts -- --noplot
//! ```
//!
//! | group | one iteration |
//! |---|---|
//! | `task_poll` | `block_on` of a spawned task that wakes itself and returns `Pending` [`POLLS`]` - 1` times: [`POLLS`] polls |
//! | `task_poll_mt` | the same on a multi-thread runtime with 2 workers: [`CONCURRENT`] tasks at once, [`POLLS_MT`] polls each, awaited from `block_on` |
//! | `task_spawn` | spawn [`TASKS`] tasks that return at once, from a task, and await them |
//!
//! Rows: `plain` (a runtime without hooks), `with_context` (the same, the task wrapped with
//! `with_context`), `noop_hooks` (the four hooks installed, doing nothing: tokio's own cost of
//! calling hooks), `task_contexts` (the crate's hooks). Per-poll overhead is
//! (row - `plain`) / [`POLLS`]. The spawning task holds one value, so snapshots are not empty.

#[cfg(tokio_unstable)]
mod measured {
    use std::future::Future;
    use std::hint::black_box;
    use std::pin::Pin;
    use std::task::{Context as TaskContext, Poll};

    use contextvars::{Context, ContextVar, FutureExt};
    use criterion::Criterion;
    use tokio::runtime::{Builder, Runtime};

    /// Polls per task of the `task_poll` group.
    pub(crate) const POLLS: u32 = 1000;
    /// Tasks at once in the `task_poll_mt` group.
    pub(crate) const CONCURRENT: u32 = 64;
    /// Polls per task of the `task_poll_mt` group.
    pub(crate) const POLLS_MT: u32 = 100;
    /// Tasks per iteration of the `task_spawn` group.
    pub(crate) const TASKS: u32 = 100;

    static VALUE: ContextVar<u64> = ContextVar::new("value");

    /// `Pending` `left` times, waking itself each time, then `Ready`.
    struct SelfWaking {
        left: u32,
    }

    impl Future for SelfWaking {
        type Output = u32;

        fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<u32> {
            if black_box(self.left) == 0 {
                return Poll::Ready(VALUE.get().map_or(0, |v| v as u32));
            }
            self.left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    fn plain() -> Runtime {
        Builder::new_current_thread().build().unwrap()
    }

    fn noop_hooks() -> Runtime {
        with_noop_hooks(&mut Builder::new_current_thread())
    }

    fn with_noop_hooks(builder: &mut Builder) -> Runtime {
        builder
            .on_task_spawn(|meta| {
                black_box(meta.id());
            })
            .on_before_task_poll(|meta| {
                black_box(meta.id());
            })
            .on_after_task_poll(|meta| {
                black_box(meta.id());
            })
            .on_task_terminate(|meta| {
                black_box(meta.id());
            })
            .build()
            .unwrap()
    }

    fn task_contexts() -> Runtime {
        contextvars::tokio::task_contexts(&mut Builder::new_current_thread()).build().unwrap()
    }

    /// The runtimes every group compares: (name, runtime, whether the task is wrapped).
    fn rows() -> [(&'static str, Runtime, bool); 4] {
        [
            ("plain", plain(), false),
            ("with_context", plain(), true),
            ("noop_hooks", noop_hooks(), false),
            ("task_contexts", task_contexts(), false),
        ]
    }

    pub(crate) fn task_poll(c: &mut Criterion) {
        let mut group = c.benchmark_group("task_poll");
        let rows = rows();
        for (name, rt, wrap) in &rows {
            group.bench_function(*name, |b| {
                b.iter(|| {
                    rt.block_on(async {
                        let task = SelfWaking { left: POLLS - 1 };
                        let handle = if *wrap {
                            tokio::spawn(task.in_context(Context::new()))
                        } else {
                            tokio::spawn(task)
                        };
                        black_box(handle.await.unwrap())
                    })
                });
            });
        }
        group.finish();
    }

    pub(crate) fn task_poll_mt(c: &mut Criterion) {
        let mut group = c.benchmark_group("task_poll_mt");
        let multi = || {
            let mut builder = Builder::new_multi_thread();
            builder.worker_threads(2);
            builder
        };
        let rows: [(&str, Runtime, bool); 4] = [
            ("plain", multi().build().unwrap(), false),
            ("with_context", multi().build().unwrap(), true),
            ("noop_hooks", with_noop_hooks(&mut multi()), false),
            ("task_contexts", contextvars::tokio::task_contexts(&mut multi()).build().unwrap(), false),
        ];
        for (name, rt, wrap) in &rows {
            let wrap = *wrap;
            group.bench_function(*name, |b| {
                b.iter(|| {
                    rt.block_on(async move {
                        let mut handles = Vec::with_capacity(CONCURRENT as usize);
                        for _ in 0..CONCURRENT {
                            let task = SelfWaking { left: POLLS_MT - 1 };
                            handles.push(if wrap {
                                tokio::spawn(task.in_context(Context::new()))
                            } else {
                                tokio::spawn(task)
                            });
                        }
                        let mut sum = 0;
                        for handle in handles {
                            sum += handle.await.unwrap();
                        }
                        black_box(sum)
                    })
                });
            });
        }
        group.finish();
    }

    pub(crate) fn task_spawn(c: &mut Criterion) {
        let mut group = c.benchmark_group("task_spawn");
        let rows = rows();
        for (name, rt, wrap) in &rows {
            let wrap = *wrap;
            group.bench_function(*name, |b| {
                b.iter(|| {
                    rt.block_on(async move {
                        // The spawning task, in a context holding one value (as a request's).
                        let parent = async move {
                            VALUE.set(1);
                            let mut handles = Vec::with_capacity(TASKS as usize);
                            for _ in 0..TASKS {
                                let task = SelfWaking { left: 0 };
                                handles.push(if wrap {
                                    contextvars::tokio::spawn(task)
                                } else {
                                    tokio::spawn(task)
                                });
                            }
                            let mut sum = 0;
                            for handle in handles {
                                sum += handle.await.unwrap();
                            }
                            sum
                        };
                        tokio::spawn(parent.in_context(Context::new())).await.unwrap()
                    })
                });
            });
        }
        group.finish();
    }
}

#[cfg(tokio_unstable)]
criterion::criterion_group!(benches, measured::task_poll, measured::task_poll_mt, measured::task_spawn);
#[cfg(tokio_unstable)]
criterion::criterion_main!(benches);

#[cfg(not(tokio_unstable))]
fn main() {
    eprintln!("task_contexts: built without `--cfg tokio_unstable`, so there are no task hooks to measure");
}
