//! Values whose destructors read and set context variables, dropped from every path a value
//! can leave a context by: no panic, no double drop, no leak.
//!
//! Every value records its construction and its drop in the `Counts` of its test, so each
//! test ends by checking that everything made was dropped exactly once.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use contextvars::{Context, ContextVar, FutureExt, ResetError, WithContext};

mod support;
use support::{isolated, poll_once};

/// What each test's values did.
#[derive(Debug, Default)]
struct Counts {
    made: Mutex<usize>,
    /// Ids of the values dropped, in drop order.
    dropped: Mutex<Vec<usize>>,
    /// What `TRACKED.with` showed inside each destructor (`None` when unset or the thread's
    /// context was already gone).
    seen_in_drop: Mutex<Vec<Option<usize>>>,
}

impl Counts {
    fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn dropped(&self) -> Vec<usize> {
        self.dropped.lock().unwrap().clone()
    }

    /// Everything made was dropped, once.
    fn assert_balanced(&self) {
        let made = *self.made.lock().unwrap();
        let mut dropped = self.dropped();
        dropped.sort_unstable();
        let expected: Vec<usize> = (0..made).collect();
        assert_eq!(dropped, expected, "{made} values made; these were dropped");
    }
}

/// What a value's destructor does besides counting.
#[derive(Debug, Clone, Copy)]
enum OnDrop {
    /// Reads `TRACKED` and `SIDE`, sets `SIDE` and resets it.
    ReadAndSet,
    /// Like `ReadAndSet`, then sets `TRACKED` to a new value and keeps it set (drops the
    /// token): the destructor leaves a value behind in whatever context is current.
    Plant,
}

/// A counted value whose destructor uses context variables.
#[derive(Debug)]
struct Tracked {
    id: usize,
    counts: Arc<Counts>,
    on_drop: OnDrop,
}

impl Tracked {
    fn new(counts: &Arc<Counts>, on_drop: OnDrop) -> Self {
        let mut made = counts.made.lock().unwrap();
        let id = *made;
        *made += 1;
        Tracked { id, counts: Arc::clone(counts), on_drop }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // `with`, not `get`: `get` would clone a `Tracked`, whose drop would read again.
        let seen = TRACKED.with(|value| value.map(|value| value.id));
        self.counts.seen_in_drop.lock().unwrap().push(seen);
        let side = SIDE.get();
        assert!(side.is_some(), "SIDE has a default");
        let token = SIDE.set(side.unwrap_or(0) + 1);
        match SIDE.reset(token) {
            // During thread exit the `set` had no context to go to; nothing else refuses it.
            Ok(()) | Err(ResetError::DifferentContext) => {}
            Err(other) => panic!("reset in a destructor failed: {other}"),
        }
        if let OnDrop::Plant = self.on_drop {
            TRACKED.set(Tracked::new(&self.counts, OnDrop::ReadAndSet));
        }
        let mut dropped = self.counts.dropped.lock().unwrap();
        assert!(!dropped.contains(&self.id), "value {} dropped twice", self.id);
        dropped.push(self.id);
    }
}

static TRACKED: ContextVar<Tracked> = ContextVar::new("tracked");
static SIDE: ContextVar<u32> = ContextVar::with_default("side", 0);

#[test]
fn reset_drops_the_value_it_displaces() {
    let counts = Counts::new();
    isolated(|| {
        let first = TRACKED.set(Tracked::new(&counts, OnDrop::ReadAndSet)); // 0
        let second = TRACKED.set(Tracked::new(&counts, OnDrop::ReadAndSet)); // 1
        assert!(counts.dropped().is_empty());
        TRACKED.reset(second).unwrap(); // 1 is displaced, 0 comes back from the token
        assert_eq!(counts.dropped(), [1]);
        TRACKED.reset(first).unwrap();
        assert_eq!(counts.dropped(), [1, 0]);
    });
    counts.assert_balanced();
    // Value 1 was dropped while 0 was being restored: its destructor saw either value or
    // none, never a panic; value 0 was dropped once the variable was unset.
    assert_eq!(counts.seen_in_drop.lock().unwrap().last(), Some(&None));
}

#[test]
fn overwritten_values_live_as_long_as_their_token_or_snapshot_or_until_the_next_change() {
    let counts = Counts::new();
    isolated(|| {
        TRACKED.set(Tracked::new(&counts, OnDrop::ReadAndSet)); // 0, token dropped
        let token = TRACKED.set(Tracked::new(&counts, OnDrop::ReadAndSet)); // 1; token holds 0
        assert!(counts.dropped().is_empty(), "the token keeps the old value");
        drop(token);
        assert_eq!(counts.dropped(), [0]);

        let snapshot = Context::current(); // shares 1
        TRACKED.set(Tracked::new(&counts, OnDrop::ReadAndSet)); // 2; its token (holding 1) dropped
        assert_eq!(counts.dropped(), [0], "the snapshot still holds value 1");
        drop(snapshot);
        // The context itself no longer shows value 1, but kept it while the snapshot shared
        // it: it goes at the context's next change (or with the context).
        let token = TRACKED.set(Tracked::new(&counts, OnDrop::ReadAndSet)); // 3; token holds 2
        assert_eq!(counts.dropped(), [0, 1]);
        drop(token);
        assert_eq!(counts.dropped(), [0, 1, 2]);
    });
    counts.assert_balanced();
}

#[test]
fn values_replaced_after_a_snapshot_go_with_the_context() {
    let counts = Counts::new();
    let mut ctx = Context::new();
    ctx.run(|| TRACKED.set(Tracked::new(&counts, OnDrop::ReadAndSet))); // 0
    let snapshot = ctx.clone();
    ctx.run(|| TRACKED.set(Tracked::new(&counts, OnDrop::ReadAndSet))); // 1; its token (holding 0) dropped
    drop(snapshot);
    assert!(counts.dropped().is_empty(), "value 0 waits for the context's next change");
    drop(ctx);
    let mut dropped = counts.dropped();
    dropped.sort_unstable();
    assert_eq!(dropped, [0, 1]);
    counts.assert_balanced();
}

#[test]
fn dropping_a_context_drops_its_values() {
    let counts = Counts::new();
    let built = Context::new().with_value(&TRACKED, Tracked::new(&counts, OnDrop::Plant));
    let without = built.without(&TRACKED);
    let mut entered = Context::new();
    entered.run(|| TRACKED.set(Tracked::new(&counts, OnDrop::Plant)));
    drop(without);
    assert!(counts.dropped().is_empty());
    isolated(|| {
        // The destructors plant a new value in the current context: this one.
        drop(built);
        assert_eq!(counts.dropped(), [0]);
        // Value 1 plants value 3, which displaces value 2 (planted by value 0).
        drop(entered);
        assert_eq!(counts.dropped(), [0, 2, 1]);
        assert_eq!(TRACKED.with(|value| value.map(|value| value.id)), Some(3));
    });
    counts.assert_balanced();
}

#[test]
fn a_context_run_returns_and_its_temporary_context_is_dropped() {
    let counts = Counts::new();
    let seen = Context::new().run(|| {
        TRACKED.set(Tracked::new(&counts, OnDrop::ReadAndSet));
        TRACKED.with(|value| value.map(|value| value.id))
    });
    assert_eq!(seen, Some(0));
    counts.assert_balanced();
    // The temporary context was no longer current when it was dropped.
    assert_eq!(*counts.seen_in_drop.lock().unwrap(), [None]);
}

#[test]
fn a_panic_in_run_drops_nothing_twice() {
    let counts = Counts::new();
    let mut ctx = Context::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ctx.run(|| {
            TRACKED.set(Tracked::new(&counts, OnDrop::ReadAndSet));
            let _dropped_while_unwinding = Tracked::new(&counts, OnDrop::Plant);
            panic!("unwinding");
        })
    }));
    assert!(result.is_err());
    // The local was dropped inside `ctx` while unwinding and planted value 2 there, which
    // displaced value 0.
    assert_eq!(counts.dropped(), [0, 1]);
    assert_eq!(ctx.get(&TRACKED).map(|value| value.id), Some(2));
    drop(ctx);
    counts.assert_balanced();
}

/// A future that sets `TRACKED` on its first poll and completes on its second.
struct SetThenFinish {
    counts: Arc<Counts>,
    polls: usize,
    /// Ids of the values `TRACKED` had in the future's destructor (at most one).
    seen_in_drop: Arc<Mutex<Vec<Option<usize>>>>,
}

impl Future for SetThenFinish {
    type Output = Option<usize>;

    fn poll(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Option<usize>> {
        self.polls += 1;
        if self.polls == 1 {
            TRACKED.set(Tracked::new(&self.counts, OnDrop::ReadAndSet));
            Poll::Pending
        } else {
            Poll::Ready(TRACKED.with(|value| value.map(|value| value.id)))
        }
    }
}

impl Drop for SetThenFinish {
    fn drop(&mut self) {
        self.seen_in_drop.lock().unwrap().push(TRACKED.with(|value| value.map(|value| value.id)));
    }
}

#[test]
fn with_context_dropped_before_completion() {
    let counts = Counts::new();
    let seen_in_drop = Arc::new(Mutex::new(Vec::new()));
    isolated(|| {
        let mut future = Box::pin(
            SetThenFinish { counts: Arc::clone(&counts), polls: 0, seen_in_drop: Arc::clone(&seen_in_drop) }
                .in_context(Context::new()),
        );
        assert!(poll_once(future.as_mut()).is_pending());
        assert!(!TRACKED.is_set(), "the future's set stays in the future");
        drop(future);
        assert!(!TRACKED.is_set());
    });
    // The future's destructor ran inside its context and saw its value.
    assert_eq!(*seen_in_drop.lock().unwrap(), [Some(0)]);
    counts.assert_balanced();
}

#[test]
fn with_context_dropped_after_completion() {
    let counts = Counts::new();
    let seen_in_drop = Arc::new(Mutex::new(Vec::new()));
    isolated(|| {
        let mut future = Box::pin(
            SetThenFinish { counts: Arc::clone(&counts), polls: 0, seen_in_drop: Arc::clone(&seen_in_drop) }
                .in_current_context(),
        );
        assert!(poll_once(future.as_mut()).is_pending());
        assert_eq!(poll_once(future.as_mut()), Poll::Ready(Some(0)));
        assert!(counts.dropped().is_empty(), "the completed future's context still holds value 0");
        drop(future);
        assert!(!TRACKED.is_set());
    });
    assert_eq!(*seen_in_drop.lock().unwrap(), [Some(0)]);
    counts.assert_balanced();
}

#[test]
fn a_thread_releases_its_context_at_exit() {
    let counts = Counts::new();
    let in_thread = Arc::clone(&counts);
    std::thread::spawn(move || {
        // Planting values: their destructors run while the thread's context is being
        // destroyed, when there is no context left to set in.
        TRACKED.set(Tracked::new(&in_thread, OnDrop::Plant));
        let _kept = TRACKED.set(Tracked::new(&in_thread, OnDrop::Plant));
        let mut entered = Context::new();
        entered.run(|| TRACKED.set(Tracked::new(&in_thread, OnDrop::Plant)));
        SIDE.set(5);
    })
    .join()
    .unwrap();
    counts.assert_balanced();
}

thread_local! {
    static HELD: RefCell<Vec<Context>> = const { RefCell::new(Vec::new()) };
}

#[test]
fn contexts_held_in_thread_locals_are_released_at_exit() {
    let counts = Counts::new();
    let in_thread = Arc::clone(&counts);
    std::thread::spawn(move || {
        // Only a thread-local holds values: the thread's own context is first used by their
        // destructors, while the thread exits.
        let first = Context::new().with_value(&TRACKED, Tracked::new(&in_thread, OnDrop::Plant));
        let second = first.with_value(&TRACKED, Tracked::new(&in_thread, OnDrop::Plant));
        HELD.with(|held| held.borrow_mut().extend([first, second]));
    })
    .join()
    .unwrap();
    counts.assert_balanced();
}

/// What `SIDE.get()` and `UNSET.get()` returned.
type Reads = (Option<u32>, Option<u32>);

/// Records what `get` returns when it is dropped.
struct GetOnDrop {
    results: Arc<Mutex<Vec<Reads>>>,
}

impl Drop for GetOnDrop {
    fn drop(&mut self) {
        let token = UNSET.set(9);
        let reset = UNSET.reset(token);
        self.results.lock().unwrap().push((SIDE.get(), UNSET.get()));
        assert_eq!(reset, Err(ResetError::DifferentContext), "set after the context is gone");
    }
}

static UNSET: ContextVar<u32> = ContextVar::new("unset");

thread_local! {
    static PROBE: RefCell<Option<GetOnDrop>> = const { RefCell::new(None) };
}

#[test]
fn get_during_thread_local_destruction_returns_the_default() {
    let results = Arc::new(Mutex::new(Vec::new()));
    let in_thread = Arc::clone(&results);
    std::thread::spawn(move || {
        // Thread-local destructors run in the reverse order of first use: the probe is
        // registered first, so it is dropped after the thread's context is gone.
        PROBE.with(|probe| *probe.borrow_mut() = Some(GetOnDrop { results: in_thread }));
        SIDE.set(1);
        UNSET.set(2);
        assert_eq!((SIDE.get(), UNSET.get()), (Some(1), Some(2)));
    })
    .join()
    .unwrap();
    assert_eq!(*results.lock().unwrap(), [(Some(0), None)]);
}

/// Enters contexts when dropped: `Context::run`, and a `WithContext` whose future reads its
/// context when dropped.
struct EntersOnDrop {
    context: Context,
    future: Option<Pin<Box<WithContext<ReadsOnDrop>>>>,
    results: Arc<Mutex<Vec<Reads>>>,
}

/// A future that records what `SIDE` reads when it is dropped.
struct ReadsOnDrop(Arc<Mutex<Vec<Reads>>>);

impl Future for ReadsOnDrop {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Drop for ReadsOnDrop {
    fn drop(&mut self) {
        self.0.lock().unwrap().push((SIDE.get(), None));
    }
}

impl Drop for EntersOnDrop {
    fn drop(&mut self) {
        let seen = self.context.run(|| {
            SIDE.set(7); // inside an entered context: kept there even at thread exit
            (SIDE.get(), UNSET.get())
        });
        self.results.lock().unwrap().push(seen);
        drop(self.future.take());
        self.results.lock().unwrap().push((self.context.get(&SIDE).copied(), None));
    }
}

thread_local! {
    static ENTERS: RefCell<Option<EntersOnDrop>> = const { RefCell::new(None) };
}

/// At thread exit, after the thread's own context is gone, `Context::run` still enters the
/// given context and a `WithContext` still drops its future inside its own.
#[test]
fn run_and_with_context_enter_their_context_during_thread_exit() {
    let results = Arc::new(Mutex::new(Vec::new()));
    let in_thread = Arc::clone(&results);
    std::thread::spawn(move || {
        // Registered first, so dropped after the thread's own context is gone.
        ENTERS.with(|enters| {
            let context = Context::new().with_value(&UNSET, 3);
            let future =
                Box::pin(ReadsOnDrop(Arc::clone(&in_thread)).in_context(Context::new().with_value(&SIDE, 4)));
            *enters.borrow_mut() = Some(EntersOnDrop { context, future: Some(future), results: in_thread });
        });
        SIDE.set(1);
    })
    .join()
    .unwrap();
    assert_eq!(*results.lock().unwrap(), [(Some(7), Some(3)), (Some(4), None), (Some(7), None)]);
}
