//! Parallel iterators in a context: `WithContext` as a rayon `ParallelIterator`, from
//! `par_iter().in_current_context()` or `.in_context(ctx)`.
//!
//! Rayon runs the closures of a pipeline (`map`, `filter`, `fold`, `reduce`, `sum`, ...) from
//! inside its consumers: a `Consumer` is split into halves for its jobs, turned into a
//! `Folder` that takes the items one at a time, and its results are combined by a `Reducer`,
//! the last combine on the thread that called the pipeline. Each adapter wraps the consumer of
//! the adapters after it, so the source is handed one consumer that holds all of them.
//! `WithContext` wraps that consumer in [`InCopies`], which makes every call of it (every
//! split, every item, every completion, every combine) run in its own copy of the context:
//! whatever closure of the chain the call reaches runs in that copy.

use ::rayon::iter::ParallelIterator;
use ::rayon::iter::plumbing::{Consumer, Folder, Reducer, UnindexedConsumer};

use crate::{Context, WithContext};

/// `in_current_context()` and `in_context(ctx)` on a parallel iterator: every closure of the
/// chain after it runs in the context, each call in its own copy (feature `rayon`).
///
/// `items.par_iter().in_current_context().map(f).filter(g).sum()` takes a snapshot of the
/// current context when `in_current_context` is called, in O(1). Every call that rayon makes
/// into the chain after it runs in its own copy of that snapshot, on whatever thread runs it:
///
/// - each item of the source, on its way through the chain (`map`, `filter`, `filter_map`,
///   `flat_map_iter`, `inspect`, `map_with`, `map_init`, `fold`'s and `reduce`'s operation,
///   `for_each`, `any`, `all`, `find_any`, the `Sum` of `sum`, the writes of `collect`);
/// - each start of a piece of work (`fold`'s and `reduce`'s identity, `map_init`'s init,
///   `map_with`'s clones of its value);
/// - each completion and each combine of two halves (`reduce`'s operation), including the
///   last one, which runs on the thread that called the pipeline.
///
/// A `set` inside a call stays in that call's copy: no other item and no other call sees it,
/// and neither does the thread, whether a worker or the caller. The closures one item passes
/// through are called one inside the other, from one call, so they share its copy: in
/// `.map(f).filter(g)`, `g` sees what `f` set for the same item, as with a sequential
/// iterator, and never what was set for another item. For closures that must not share
/// even that, wrap one with [`Context::wrap_fn`].
///
/// # Where to put it
///
/// Right before the first closure: after the adapters that build the source out of several
/// (`zip`, `enumerate`, `chain`, `interleave`, `chunks`, `step_by`, `with_min_len`, ...).
/// After it the iterator is no longer indexed, because rayon drives its index-based adapters
/// from their own end, around any consumer that `in_current_context` could wrap; `collect`
/// still keeps the order, and still fills a `Vec` of known length in place.
///
/// A second parallel iterator that an adapter after it drives on its own (the inner ones of
/// `flat_map`, the argument of `chain`) is not covered by it: give it its own
/// `.in_current_context()`. Made inside the outer closure, its snapshot is that call's copy,
/// with what the closure set.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
/// use contextvars::rayon::*;
/// use rayon::prelude::*;
///
/// static REQUEST: ContextVar<u64> = ContextVar::new("request");
/// static SEEN: ContextVar<u64> = ContextVar::new("seen");
///
/// # contextvars::Context::new().run(|| {
/// REQUEST.set(7);
/// let items: Vec<u64> = (1..=1000).collect();
/// let total: u64 = items
///     .par_iter()
///     .in_current_context()
///     .map(|&item| {
///         assert_eq!(SEEN.get(), None); // no other item's set
///         SEEN.set(item);
///         item * REQUEST.get().unwrap()
///     })
///     .filter(|&n| SEEN.get() == Some(n / 7)) // this item's set only
///     .reduce(|| 0, |a, b| a + b);
/// assert_eq!(total, 7 * 500_500);
/// assert_eq!(SEEN.get(), None); // and none in the caller
/// # });
/// ```
///
/// Inner parallel iterators of `flat_map` take their own `.in_current_context()`:
///
/// ```
/// use contextvars::ContextVar;
/// use contextvars::rayon::*;
/// use rayon::prelude::*;
///
/// static REQUEST: ContextVar<u64> = ContextVar::new("request");
/// static ROW: ContextVar<u64> = ContextVar::new("row");
///
/// # contextvars::Context::new().run(|| {
/// REQUEST.set(7);
/// let cells: Vec<_> = (0..4u64)
///     .into_par_iter()
///     .in_current_context()
///     .flat_map(|row| {
///         ROW.set(row); // seen by this row's cells
///         (0..64u64)
///             .into_par_iter()
///             .in_current_context()
///             .map(move |column| (REQUEST.get(), ROW.get(), row * 64 + column))
///     })
///     .collect();
/// assert_eq!(cells.len(), 256);
/// assert!(cells.iter().all(|&(request, row, cell)| request == Some(7) && row == Some(cell / 64)));
/// # });
/// ```
///
/// A context of one's own, with [`in_context`](crate::FutureExt::in_context):
///
/// ```
/// use contextvars::{Context, ContextVar};
/// use contextvars::rayon::*;
/// use rayon::prelude::*;
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// let ctx = Context::new().with_value(&USER, "alice");
/// let all_alice = (0..100).into_par_iter().in_context(ctx).all(|_| USER.get() == Some("alice"));
/// assert!(all_alice);
/// ```
impl<I: ParallelIterator> ParallelIterator for WithContext<I> {
    type Item = I::Item;

    fn drive_unindexed<C>(self, consumer: C) -> C::Result
    where
        C: UnindexedConsumer<Self::Item>,
    {
        let (inner, context) = self.into_parts();
        let consumer = InCopies { base: consumer, context };
        match inner {
            Some(inner) => inner.drive_unindexed(consumer),
            // Only a value that is also a future, polled to its end, has none: no items.
            None => consumer.into_folder().complete(),
        }
    }

    fn opt_len(&self) -> Option<usize> {
        // Every item goes through, none is added: the source's length, if it knows it (what
        // lets `collect` fill a `Vec` in place). `InCopies` passes the indexed calls through.
        self.get_ref().map_or(Some(0), ParallelIterator::opt_len)
    }
}

/// A consumer, folder or reducer of rayon's whose every call runs in its own copy of
/// `context`: the consumer of the chain after `in_current_context`, and the folders and
/// reducers it makes.
struct InCopies<T> {
    base: T,
    context: Context,
}

impl<T> InCopies<T> {
    /// Runs `f` on the base in a fresh copy of the context; the copy and its sets are dropped
    /// when it returns (or unwinds), and the thread's own context is back in place.
    fn call<R>(self, f: impl FnOnce(T) -> R) -> (R, Context) {
        let Self { base, context } = self;
        let result = context.clone().run(|| f(base));
        (result, context)
    }

    /// [`call`](Self::call) by reference, for the calls that keep the base.
    fn call_ref<R>(&self, f: impl FnOnce(&T) -> R) -> InCopies<R> {
        InCopies { base: self.context.clone().run(|| f(&self.base)), context: self.context.clone() }
    }
}

impl<Item, C: Consumer<Item>> Consumer<Item> for InCopies<C> {
    type Folder = InCopies<C::Folder>;
    type Reducer = InCopies<C::Reducer>;
    type Result = C::Result;

    /// A split may clone user values (`map_with`'s).
    fn split_at(self, index: usize) -> (Self, Self, Self::Reducer) {
        let ((left, right, reducer), context) = self.call(|base| base.split_at(index));
        (
            InCopies { base: left, context: context.clone() },
            InCopies { base: right, context: context.clone() },
            InCopies { base: reducer, context },
        )
    }

    /// The start of a piece of work: `fold`'s and `reduce`'s identity, `map_init`'s init.
    fn into_folder(self) -> Self::Folder {
        let (base, context) = self.call(Consumer::into_folder);
        InCopies { base, context }
    }

    /// Flags, no user code: read directly.
    fn full(&self) -> bool {
        self.base.full()
    }
}

impl<Item, C: UnindexedConsumer<Item>> UnindexedConsumer<Item> for InCopies<C> {
    fn split_off_left(&self) -> Self {
        self.call_ref(UnindexedConsumer::split_off_left)
    }

    fn to_reducer(&self) -> Self::Reducer {
        self.call_ref(UnindexedConsumer::to_reducer)
    }
}

/// `consume_iter` is left to its default, which calls `consume` once per item: the base's own
/// `consume_iter` would run a whole batch of items in one copy.
impl<Item, F: Folder<Item>> Folder<Item> for InCopies<F> {
    type Result = F::Result;

    /// One item through the chain, with every closure it reaches.
    fn consume(self, item: Item) -> Self {
        let (base, context) = self.call(|base| base.consume(item));
        InCopies { base, context }
    }

    /// The end of a piece of work: what `fold` hands on, what `flat_map` still combines.
    fn complete(self) -> Self::Result {
        self.call(Folder::complete).0
    }

    fn full(&self) -> bool {
        self.base.full()
    }
}

impl<R, B: Reducer<R>> Reducer<R> for InCopies<B> {
    /// The combine of two halves, up to the last one on the caller's thread.
    fn reduce(self, left: R, right: R) -> R {
        self.call(|base| base.reduce(left, right)).0
    }
}
