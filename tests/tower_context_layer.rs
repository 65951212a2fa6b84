//! `contextvars::tower::ContextLayer`: every request runs in its own snapshot of the context
//! current at `call`; what a request sets reaches neither the caller nor the next request.
#![cfg(feature = "tower")]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use contextvars::tower::{ContextLayer, ContextService};
use contextvars::{Context, ContextVar};
use futures::executor::block_on;
use tower::{Layer, Service, ServiceExt, service_fn};

static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
static CONNECTION: ContextVar<&str> = ContextVar::new("connection");

fn send_sync_unpin<T: Send + Sync + Unpin>() {}

#[test]
fn the_types_follow_their_inner_service() {
    send_sync_unpin::<ContextLayer>();
    send_sync_unpin::<ContextService<()>>();
}

/// A service whose `call` itself sets a variable before returning its future, as a
/// middleware below the layer might.
#[derive(Clone)]
struct SetsInCall;

impl Service<u32> for SetsInCall {
    type Response = (Option<u32>, Option<&'static str>);
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, n: u32) -> Self::Future {
        let at_call = REQUEST_ID.get();
        REQUEST_ID.set(n);
        Box::pin(async move {
            assert_eq!(REQUEST_ID.get(), Some(n), "the future runs where `call` set it");
            Ok((at_call, CONNECTION.get()))
        })
    }
}

#[test]
fn requests_on_one_connection_are_isolated_and_see_the_connection() {
    let mut connection = Context::new().with_value(&CONNECTION, "conn-1");
    connection.run(|| {
        let mut service = ContextLayer::new().layer(SetsInCall);
        block_on(async {
            for n in 1..=5 {
                let seen = service.ready().await.unwrap().call(n).await.unwrap();
                // Nothing left by the request before; the connection's values inherited.
                assert_eq!(seen, (None, Some("conn-1")));
            }
        });
        assert_eq!(REQUEST_ID.get(), None);
    });
    // The control: without the layer, the second request sees what the first set.
    connection.run(|| {
        let mut service = SetsInCall;
        block_on(async {
            assert_eq!(service.call(1).await.unwrap(), (None, Some("conn-1")));
            assert_eq!(service.call(2).await.unwrap(), (Some(1), Some("conn-1")));
        });
    });
}

#[test]
fn the_snapshot_is_taken_at_call() {
    let service = ContextService::new(service_fn(|()| async { Ok::<_, Infallible>(CONNECTION.get()) }));
    let mut later = Context::new().with_value(&CONNECTION, "later");
    let seen = later.run(|| block_on(service.clone().oneshot(())));
    assert_eq!(seen.unwrap(), Some("later"));
    assert_eq!(block_on(service.oneshot(())).unwrap(), None);
}

/// Records, on drop, the request ID it sees.
struct SeesOnDrop(Arc<Mutex<Vec<Option<u32>>>>);

impl Drop for SeesOnDrop {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(REQUEST_ID.get());
    }
}

#[test]
fn a_cancelled_request_is_dropped_in_its_own_context() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let mut service = ContextLayer::new().layer(service_fn(move |n: u32| {
        let guard = SeesOnDrop(log.clone());
        async move {
            REQUEST_ID.set(n);
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok::<_, Infallible>(())
        }
    }));
    let mut response = Box::pin(service.call(9));
    let waker = futures::task::noop_waker();
    assert!(response.as_mut().poll(&mut TaskContext::from_waker(&waker)).is_pending());
    drop(response); // the client went away
    assert_eq!(*seen.lock().unwrap(), [Some(9)]);
    assert_eq!(REQUEST_ID.get(), None);
}
