//! Lost values found before production: a clippy recipe that flags every call starting work
//! without the caller's context, and a test that fails when a log line written inside a
//! request lost the request's correlation ID. Documentation only: this module has no items.
//!
//! A value set for a request is lost wherever work starts in an empty context: a task
//! started with `tokio::spawn`, a job given to `spawn_blocking`, a thread, a rayon job.
//! Nothing fails there: the variable reads its default (or `None`), and log lines say
//! `no-trace`. Two checks find these places first: clippy, as the code is written, and a
//! test over real requests, for what clippy cannot see.
//!
//! # The clippy recipe
//!
//! Clippy's `disallowed_methods` lint, given one line for each spawning function of tokio,
//! std and rayon, flags every call to them, with the line's reason: what to call instead.
//! Copy the recipe into the `clippy.toml` next to your `Cargo.toml` (it is the file
//! `examples/clippy.toml` of this crate's repository and package):
//!
//! ```toml
#![doc = include_str!("../examples/clippy.toml")]
//! ```
//!
//! `cargo clippy` then says, at each call:
//!
//! ```text
//! warning: use of a disallowed method `tokio::spawn`
//!   --> src/orders.rs:42:5
//!    |
//! 42 |     tokio::spawn(notify(order));
//!    |     ^^^^^^^^^^^^
//!    |
//!    = note: use `contextvars::tokio::spawn`: the task starts in the caller's context
//! ```
//!
//! The recipe can be copied whole: clippy passes over the lines of crates your project does
//! not depend on, silently. A line naming a method that a crate you depend on no longer has
//! draws a warning of its own (`does not refer to a reachable function`). This crate's CI
//! checks the recipe against the newest tokio and rayon: a fixture crate calls each listed
//! method once, and the check fails unless clippy flags every one of those calls and none
//! of the replacements the reasons name. To fail your build instead of warning, deny the
//! lint: `#![deny(clippy::disallowed_methods)]` in the crate root, or
//! `cargo clippy -- -D clippy::disallowed-methods` in CI.
//!
//! ## Replacements that call the flagged method
//!
//! Where this crate has no function of its own (a `JoinSet`, a runtime `Handle`, a
//! `LocalSet`, a thread `Builder`, a rayon `ThreadPool`, and rayon's `spawn_fifo`,
//! `join_context`, `scope_fifo` and `in_place_scope`), the replacement wraps the work and
//! calls the same method, which clippy cannot tell from the mistake. Put such a call under
//! `#[expect(clippy::disallowed_methods)]`, in a helper of your own when it recurs: should
//! the line ever leave the recipe, the expectation fails in turn
//! (`unfulfilled_lint_expectations`).
//!
//! ```
//! use contextvars::{Context, ContextVar};
//!
//! /// `std::thread::Builder::spawn`, the thread starting in the caller's context.
//! #[expect(clippy::disallowed_methods, reason = "the thread starts in the caller's context")]
//! fn spawn_named<T: Send + 'static>(
//!     name: &str,
//!     f: impl FnOnce() -> T + Send + 'static,
//! ) -> std::io::Result<std::thread::JoinHandle<T>> {
//!     std::thread::Builder::new().name(name.to_owned()).spawn(Context::current().wrap(f))
//! }
//!
//! static TENANT: ContextVar<&str> = ContextVar::new("tenant");
//!
//! TENANT.set("acme");
//! assert_eq!(spawn_named("mailer", || TENANT.get())?.join().unwrap(), Some("acme"));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The same for a future, with [`FutureExt::in_current_context`](crate::FutureExt::in_current_context):
//! `set.spawn(future.in_current_context())`.
//!
//! ## Not covered
//!
//! - **Parallel iterators.** `par_iter()` and the others run their closures on rayon's
//!   workers through no function a recipe can name. Call `.in_current_context()`
//!   (`contextvars::rayon`) right after the source:
//!   `items.par_iter().in_current_context().map(f)`.
//! - **Other spawning methods**, which the recipe leaves out; add a line of the same form if
//!   your code calls them: `std::thread::Builder::spawn_scoped`,
//!   `tokio::task::JoinSet::{spawn_on, spawn_local_on, spawn_blocking_on}`,
//!   `rayon::{broadcast, spawn_broadcast, in_place_scope_fifo}`,
//!   `rayon::ThreadPool::{spawn_fifo, scope_fifo, in_place_scope, in_place_scope_fifo,
//!   broadcast, spawn_broadcast}`, and the spawns of tokio's unstable `tokio::task::Builder`.
//! - **Other executors** (smol, async-executor, the `futures` thread pool): spawn
//!   `future.in_current_context()`, or spawn through a [`ContextSpawner`](crate::ContextSpawner).
//! - **Your dependencies.** Clippy lints your own crates only: a library that calls
//!   `tokio::spawn` inside is not flagged. Built with `--cfg tokio_unstable`,
//!   `contextvars::tokio::task_contexts` starts every tokio task in the context of its
//!   spawn, whoever spawns it.
//!
//! # A test that no line inside a request says `no-trace`
//!
//! What clippy cannot see shows at run time, as a log line written inside a request without
//! the request's correlation ID: formatters print `no-trace` in its place. Test for it as
//! for anything else: run requests the way production does (through your router and its
//! middleware, with the work they hand to tasks, threads and pools), capture every line with
//! the correlation ID current when it was written, and check that no line of a request lacks
//! one and that no request's lines carry two. With the `test-util` feature:
//!
//! - `contextvars::trace::log::LogCapture`, a logger for the `log` facade;
//! - `contextvars::trace::tracing::TracingCapture`, a layer for `tracing-subscriber` (with
//!   the `tracing` feature as well).
//!
//! Each has `check(&lines, request_of)`: `request_of` says which request a line belongs to
//! (from its message or a field; the test knows, since it names its requests), and the check
//! returns how many lines it checked, or the first line that failed. Their `init` installs
//! one capture for the whole process, which sees lines from every thread; the tests of one
//! binary share it, so each test keeps the lines of its own requests.
//!
//! With `log`, requests on threads:
//!
//! ```
//! # #[cfg(feature = "test-util")] {
//! use contextvars::trace::TraceContext;
//! use contextvars::trace::log::{CapturedRecord, LogCapture};
//!
//! // The code under test: a request that hands work to a thread.
//! fn handle(order: u32) {
//!     log::info!("order={order} received");
//!     // With `std::thread::spawn`, this line would say `no-trace` and the check would fail.
//!     contextvars::thread::spawn(move || log::info!("order={order} priced")).join().unwrap();
//!     log::info!("order={order} answered");
//! }
//!
//! // The test.
//! let capture = LogCapture::init();
//! let requests: Vec<_> = (0..8)
//!     .map(|order| {
//!         // What the server's middleware does for each request.
//!         contextvars::thread::spawn(move || TraceContext::new_root().sync_scope(|| handle(order)))
//!     })
//!     .collect();
//! for request in requests {
//!     request.join().unwrap();
//! }
//! let order_of = |r: &CapturedRecord| r.message.strip_prefix("order=")?.split(' ').next().map(str::to_owned);
//! assert_eq!(LogCapture::check(&capture.records(), order_of), Ok(8 * 3));
//! # }
//! ```
//!
//! With `tracing`, requests on a tokio runtime:
//!
//! ```
//! # #[cfg(all(feature = "test-util", feature = "tracing", feature = "tokio"))] {
//! use contextvars::trace::TraceContext;
//! use contextvars::trace::tracing::{CapturedEvent, TracingCapture};
//!
//! // The code under test: a request that hands work to a blocking thread.
//! async fn handle(order: u32) {
//!     tracing::info!(order, "received");
//!     // With `tokio::task::spawn_blocking`, this line would say `no-trace`.
//!     contextvars::tokio::spawn_blocking(move || tracing::info!(order, "priced")).await.unwrap();
//!     tracing::info!(order, "answered");
//! }
//!
//! // The test.
//! let capture = TracingCapture::init();
//! tokio::runtime::Runtime::new().unwrap().block_on(async {
//!     let requests: Vec<_> = (0..8)
//!         // What the server's middleware does for each request.
//!         .map(|order| contextvars::tokio::spawn(TraceContext::new_root().scope(handle(order))))
//!         .collect();
//!     for request in requests {
//!         request.await.unwrap();
//!     }
//! });
//! let order_of = |e: &CapturedEvent| e.field("order").map(str::to_owned);
//! assert_eq!(TracingCapture::check(&capture.events(), order_of), Ok(8 * 3));
//! # }
//! ```
//!
//! A failed check names the line:
//! `event emitted inside a request has no correlation id: "priced order=3"`.
