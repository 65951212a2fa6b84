//! `tower` middleware that runs each request in a context of its own (feature `tower`, which
//! brings only `tower-layer` and `tower-service`: no tracing, no `http`).
//!
//! A server polls the requests of one HTTP/1 keep-alive connection inside the same
//! connection task, one after the other. Whatever gives tasks their own context (the crate's
//! spawn helpers, or `contextvars::tokio::task_contexts`), a request handler that `set`s a
//! variable sets it in the connection's context, and the next request on the connection sees
//! it. [`ContextLayer`] gives every request its own snapshot instead: per-request isolation
//! on keep-alive connections needs it (or the trace layer of feature `tower-trace`,
//! `contextvars::trace::server::TraceContextServerLayer`, which does the same and adds the
//! request's trace).
//!
//! Generic over the request type: it works for any `tower::Service`, HTTP or not. Make it
//! the outermost layer, so that every other middleware runs inside the request's context.
//!
//! # A forgotten layer, on tokio
//!
//! A handler that sets a variable with no layer in front runs in whatever context its task
//! has. Served by tokio with nothing giving tasks their own context, that is a worker
//! thread's own context, shared by every task the thread polls. The guarantee that a request
//! never sees another request's value there, even when this layer is forgotten, **needs the
//! `tokio` feature**: with it, such a `set` stays the task's own on that thread and every
//! other request reads as if it had not been made, and debug builds report the `set`'s file
//! and line (see `contextvars::tokio`). Without the feature, the next request polled on that
//! thread reads the value. The layer remains the fix: with it, every request keeps its values
//! whatever thread it resumes on.

use std::task::{Context as TaskContext, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::{FutureExt, WithContext};

/// A `tower` layer that runs every request in its own snapshot of the current context.
///
/// For each request, [`ContextService`] takes a snapshot of the context current at `call`
/// (the connection's), and runs the inner service's `call` and every poll of its response
/// future in it, with [`WithContext`]. Sets made while handling the request stay in the
/// request: they reach neither the connection nor the next request on it.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
/// use contextvars::tower::ContextLayer;
/// use tower::{service_fn, Layer, Service, ServiceExt};
///
/// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
///
/// # futures::executor::block_on(contextvars::with_context(async {
/// let handler = service_fn(|n: u32| async move {
///     let seen = REQUEST_ID.get(); // what an earlier request left, if anything
///     REQUEST_ID.set(n);
///     Ok::<_, std::convert::Infallible>(seen)
/// });
/// let mut service = ContextLayer::new().layer(handler);
/// assert_eq!(service.ready().await.unwrap().call(1).await.unwrap(), None);
/// assert_eq!(service.ready().await.unwrap().call(2).await.unwrap(), None);
/// assert_eq!(REQUEST_ID.get(), None);
/// # }));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ContextLayer {
    _private: (),
}

impl ContextLayer {
    /// The layer.
    #[must_use]
    pub const fn new() -> Self {
        Self { _private: () }
    }
}

impl<S> Layer<S> for ContextLayer {
    type Service = ContextService<S>;

    fn layer(&self, inner: S) -> ContextService<S> {
        ContextService { inner }
    }
}

/// The service built by [`ContextLayer`]; see there for what it does.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
/// use contextvars::tower::ContextService;
/// use tower::{service_fn, ServiceExt};
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// # futures::executor::block_on(contextvars::with_context(async {
/// USER.set("alice");
/// let handler = service_fn(|()| async {
///     let seen = USER.get(); // the snapshot taken at `call`
///     USER.set("bob"); // stays in the request
///     Ok::<_, std::convert::Infallible>(seen)
/// });
/// let seen = ContextService::new(handler).oneshot(()).await.unwrap();
/// assert_eq!((seen, USER.get()), (Some("alice"), Some("alice")));
/// # }));
/// ```
#[derive(Debug, Clone)]
pub struct ContextService<S> {
    inner: S,
}

impl<S> ContextService<S> {
    /// Wraps `inner`; the same as `ContextLayer::new().layer(inner)`.
    #[must_use]
    pub const fn new(inner: S) -> Self {
        Self { inner }
    }

    /// The wrapped service.
    #[must_use]
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    #[must_use]
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    #[must_use]
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, R> Service<R> for ContextService<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = WithContext<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let mut context = crate::current::inherit();
        let inner = &mut self.inner;
        let future = context.run(|| inner.call(request));
        future.in_context(context)
    }
}
