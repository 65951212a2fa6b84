//! The auto traits of every public type: what may cross threads, and what may not.
//!
//! A `static_assertions`-style check: each `assert_*` call only compiles when the bound
//! holds, and each `not_*` check uses the ambiguity trick below, which fails to compile when
//! the trait *is* implemented.

use std::cell::Cell;
use std::future::Future;
use std::marker::PhantomPinned;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::rc::Rc;

use contextvars::{
    AndContext, Context, ContextSpawner, ContextVar, Iter, ResetError, Token, TryResetError, WithContext,
};

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}
fn assert_unpin<T: Unpin>() {}
fn assert_unwind_safe<T: UnwindSafe + RefUnwindSafe>() {}

/// `<T as NotSend<_>>::check()` resolves only when exactly one impl applies, that is when
/// `T: !Send`; for a `Send` type both impls apply and the call is ambiguous.
trait AmbiguousIfSend<A> {
    fn some_item() {}
}
impl<T: ?Sized> AmbiguousIfSend<()> for T {}
impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}

trait AmbiguousIfSync<A> {
    fn some_item() {}
}
impl<T: ?Sized> AmbiguousIfSync<()> for T {}
impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}

trait AmbiguousIfUnpin<A> {
    fn some_item() {}
}
impl<T: ?Sized> AmbiguousIfUnpin<()> for T {}
impl<T: ?Sized + Unpin> AmbiguousIfUnpin<u8> for T {}

macro_rules! assert_not_send {
    ($t:ty) => {
        let _ = <$t as AmbiguousIfSend<_>>::some_item;
    };
}
macro_rules! assert_not_sync {
    ($t:ty) => {
        let _ = <$t as AmbiguousIfSync<_>>::some_item;
    };
}
macro_rules! assert_not_unpin {
    ($t:ty) => {
        let _ = <$t as AmbiguousIfUnpin<_>>::some_item;
    };
}

type SendFuture = std::future::Ready<u8>;
type LocalFuture = std::future::Ready<Rc<u8>>;
type SendNotSyncFuture = std::future::Ready<Cell<u8>>;

/// A future that must not move once polled.
struct PinnedFuture(#[allow(dead_code, reason = "only its type matters")] PhantomPinned);

impl Future for PinnedFuture {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Ready(())
    }
}

#[test]
fn context_is_send_sync_unpin() {
    assert_send::<Context>();
    assert_sync::<Context>();
    assert_unpin::<Context>();
    assert_unwind_safe::<Context>();
    assert_send::<Iter<'_>>();
    assert_sync::<Iter<'_>>();
}

#[test]
fn context_var_is_send_sync_for_shareable_values() {
    assert_send::<ContextVar<String>>();
    assert_sync::<ContextVar<String>>();
    assert_unpin::<ContextVar<String>>();
    assert_unwind_safe::<ContextVar<String>>();
}

#[test]
fn token_follows_its_value() {
    assert_send::<Token<String>>();
    assert_sync::<Token<String>>();
    assert_unpin::<Token<String>>();
    // a token holds the old value: it is Send only when the value is
    assert_not_send!(Token<Rc<u8>>);
    assert_not_sync!(Token<Cell<u8>>);
}

#[test]
fn with_context_follows_its_future() {
    assert_send::<WithContext<SendFuture>>();
    assert_sync::<WithContext<SendFuture>>();
    assert_unpin::<WithContext<SendFuture>>();
    assert_not_send!(WithContext<LocalFuture>);
    assert_not_sync!(WithContext<LocalFuture>);
    assert_send::<WithContext<SendNotSyncFuture>>();
    assert_not_sync!(WithContext<SendNotSyncFuture>);
    assert_not_unpin!(WithContext<PinnedFuture>);
}

#[test]
fn and_context_follows_its_future() {
    assert_send::<AndContext<SendFuture>>();
    assert_sync::<AndContext<SendFuture>>();
    assert_unpin::<AndContext<SendFuture>>();
    assert_not_send!(AndContext<LocalFuture>);
    assert_not_sync!(AndContext<LocalFuture>);
    assert_send::<AndContext<SendNotSyncFuture>>();
    assert_not_sync!(AndContext<SendNotSyncFuture>);
    assert_not_unpin!(AndContext<PinnedFuture>);
}

#[test]
fn spawned_wrappers_of_async_blocks_are_send() {
    fn wrapped() -> impl Future<Output = u32> + Send + 'static {
        use contextvars::FutureExt;
        async { 1 }.in_current_context()
    }
    drop(wrapped());
    assert_send::<ContextSpawner<futures::executor::ThreadPool>>();
    assert_sync::<ContextSpawner<futures::executor::ThreadPool>>();
}

#[test]
fn wrapped_closures_are_send_when_the_closure_is() {
    fn is_send<T: Send>(_: &T) {}
    let job = Context::new().wrap(|| 1);
    is_send(&job);
    assert_eq!(job(), 1);
}

#[test]
fn closures_wrapped_for_many_calls_are_send_sync_when_the_closure_is() {
    fn is_send_sync<T: Send + Sync>(_: &T) {}
    let handle = Context::new().wrap_fn(|x: u32| x + 1);
    is_send_sync(&handle);
    assert_eq!(handle(1), 2);
}

#[cfg(feature = "rayon")]
#[test]
fn the_rayon_scope_can_be_shared_between_jobs() {
    assert_send::<contextvars::rayon::Scope<'_, '_>>();
    assert_sync::<contextvars::rayon::Scope<'_, '_>>();
    assert_unpin::<contextvars::rayon::Scope<'_, '_>>();
}

#[test]
fn errors_are_plain_data() {
    assert_send::<ResetError>();
    assert_sync::<ResetError>();
    assert_unpin::<ResetError>();
    assert_unwind_safe::<ResetError>();
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(ResetError::DifferentVar);
    assert_eq!(e.to_string(), "token was created by a different context variable");
}

#[test]
fn a_refused_token_follows_its_value_and_is_an_error() {
    static V: ContextVar<String> = ContextVar::new("v");
    static W: ContextVar<String> = ContextVar::new("w");
    assert_send::<TryResetError<String>>();
    assert_sync::<TryResetError<String>>();
    assert_unpin::<TryResetError<String>>();
    assert_not_send!(TryResetError<Rc<u8>>);
    assert_not_sync!(TryResetError<Cell<u8>>);
    let refused = W.try_reset(V.set("x".to_string())).unwrap_err();
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(refused);
    assert_eq!(e.to_string(), "token was created by a different context variable");
}
