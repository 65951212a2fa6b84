//! [`Context::wrap_fn`]: a callback called many times, each call in its own copy of a context.

use crate::Context;

impl Context {
    /// Wraps `f` so that every call runs in its own copy of this context: the way to hand the
    /// caller's values to a callback that is called many times, such as a rayon `par_iter`
    /// closure or an event handler.
    ///
    /// Each call starts from `self` as it is now, whatever earlier calls set: a call's sets
    /// stay in that call, never show in the next one, and never reach the thread that makes
    /// the call. Copying a context is O(1). The closure returned is `Send` and `Sync` when `f`
    /// is, so it fits rayon's `Fn + Send + Sync` bounds. As with [`wrap`](Context::wrap), the
    /// calls start from the [`inherited`](Context::inherited) copy: variables declared
    /// [not inherited](crate::ContextVar::not_inherited) are left out.
    ///
    /// # Borrowed and several arguments
    ///
    /// `f` takes one argument of any type. Several arguments travel as a tuple
    /// (`wrap_fn(|(a, b)| ..)`, which also fits iterators of pairs such as `zip` and
    /// `enumerate`). A reference works when every call passes references of one lifetime, as
    /// `par_iter` over a slice does. A callback that must accept references of *any* lifetime
    /// (a `for<'a> Fn(&'a T)` bound) is written as a closure around a copy of the context:
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static USER: ContextVar<&str> = ContextVar::new("user");
    ///
    /// fn on_each(events: &[String], callback: impl for<'a> Fn(&'a str) -> usize) -> usize {
    ///     events.iter().map(|e| callback(e)).sum()
    /// }
    ///
    /// USER.set("alice");
    /// let ctx = Context::current();
    /// let total = on_each(&["ab".to_string(), "c".to_string()], move |event: &str| {
    ///     ctx.clone().run(|| event.len() + USER.get().map_or(0, str::len))
    /// });
    /// assert_eq!(total, 3 + 2 * "alice".len());
    /// ```
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::{Context, ContextVar};
    ///
    /// static REQUEST: ContextVar<u64> = ContextVar::new("request");
    /// static ITEM: ContextVar<u32> = ContextVar::new("item");
    ///
    /// REQUEST.set(7);
    /// let handle = Context::current().wrap_fn(|item: u32| {
    ///     assert_eq!(ITEM.get(), None); // nothing from the previous call
    ///     ITEM.set(item);
    ///     (REQUEST.get(), ITEM.get())
    /// });
    ///
    /// // any thread, any number of calls: e.g. `items.par_iter().map(handle)` with rayon
    /// let seen: Vec<_> = std::thread::scope(|s| {
    ///     let handle = &handle;
    ///     let threads: Vec<_> = (0..3).map(|i| s.spawn(move || handle(i))).collect();
    ///     threads.into_iter().map(|t| t.join().unwrap()).collect()
    /// });
    /// assert_eq!(seen, [(Some(7), Some(0)), (Some(7), Some(1)), (Some(7), Some(2))]);
    /// assert_eq!(ITEM.get(), None); // nor anything in the caller
    /// ```
    ///
    /// # Panics
    ///
    /// Whatever `f` panics with, after the caller's context is restored.
    #[must_use = "the callback runs nothing until it is called"]
    pub fn wrap_fn<A, R>(self, f: impl Fn(A) -> R) -> impl Fn(A) -> R {
        let base = self.into_inherited();
        move |arg| base.clone().run(|| f(arg))
    }
}
