//! Context variables that cross services in W3C baggage, between two real hyper services on
//! Tokio over loopback: a value set in service A is what `get` returns in service B, with
//! nothing at either boundary but the server layer and the client layer.

#![cfg(feature = "tower-trace")]

use std::convert::Infallible;
use std::net::SocketAddr;

use contextvars::ContextVar;
use contextvars::trace::client::TraceContextClientLayer;
use contextvars::trace::server::TraceContextServerLayer;
use contextvars::trace::{BaggageVar, TraceContext, TravellingVar};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tower::{Layer, ServiceExt};

static TENANT: ContextVar<String> = ContextVar::new("tenant");
static QUOTA: ContextVar<u32> = ContextVar::new("quota");
/// Set in service A, never declared as travelling: it must stay there.
static SECRET: ContextVar<String> = ContextVar::new("secret");

static TENANT_IN_BAGGAGE: BaggageVar<String> = BaggageVar::string("tenant", &TENANT);
static QUOTA_IN_BAGGAGE: BaggageVar<u32> =
    BaggageVar::new("quota", &QUOTA, u32::to_string, |s| s.parse().ok());
static TRAVELLING: [&dyn TravellingVar; 2] = [&TENANT_IN_BAGGAGE, &QUOTA_IN_BAGGAGE];

/// Serves `service` on a fresh loopback port.
async fn serve<S, B>(service: S) -> SocketAddr
where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    address
}

/// An HTTP/1 client for `address`, one connection per request.
fn client(
    address: SocketAddr,
) -> tower::util::BoxCloneService<Request<Empty<Bytes>>, Response<Incoming>, hyper::Error> {
    tower::util::BoxCloneService::new(tower::service_fn(move |request: Request<Empty<Bytes>>| async move {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        sender.send_request(request).await
    }))
}

async fn body_text(response: Response<Incoming>) -> String {
    String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

/// Service B: answers with what its handler sees.
async fn service_b(trust_baggage: bool) -> SocketAddr {
    let handler = tower::service_fn(|request: Request<Incoming>| async move {
        let trace = TraceContext::current().unwrap();
        let seen = format!(
            "tenant={:?} quota={:?} secret={:?} id={} other={:?} baggage={:?}",
            TENANT.get(),
            QUOTA.get(),
            SECRET.get(),
            trace.correlation_id(),
            trace.baggage().get("other"),
            request.headers().get("baggage").map(|v| v.to_str().unwrap().to_string()),
        );
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(seen))))
    });
    let layer = TraceContextServerLayer::new().baggage_vars(&TRAVELLING).trust_baggage(trust_baggage);
    serve(layer.layer(handler)).await
}

/// Service A: sets the secret (and, for `/override`, a new tenant), then calls B through
/// the client layer and answers with B's answer.
async fn service_a(b: SocketAddr) -> SocketAddr {
    let handler = tower::service_fn(move |request: Request<Incoming>| async move {
        let _secret = SECRET.set("hunter2".to_string());
        let _tenant = (request.uri().path() == "/override").then(|| TENANT.set("override".to_string()));
        let client = TraceContextClientLayer::new().baggage_vars(&TRAVELLING).layer(client(b));
        let answer = client.oneshot(Request::get("/").body(Empty::new()).unwrap()).await.unwrap();
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body_text(answer).await))))
    });
    serve(TraceContextServerLayer::new().baggage_vars(&TRAVELLING).layer(handler)).await
}

async fn call(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> String {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    body_text(client(address).oneshot(request.body(Empty::new()).unwrap()).await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(miri, ignore = "sockets")]
async fn a_value_from_the_caller_reaches_service_b() {
    let a = service_a(service_b(true).await).await;
    let headers = [("x-trace-id", "req-1"), ("baggage", "tenant=acme,quota=12,other=kept%20too")];
    let seen = call(a, "/", &headers).await;
    assert_eq!(
        seen,
        r#"tenant=Some("acme") quota=Some(12) secret=None id=req-1 other=Some("kept too") baggage=Some("tenant=acme,quota=12,other=kept%20too")"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(miri, ignore = "sockets")]
async fn a_value_set_in_service_a_is_what_b_gets() {
    let a = service_a(service_b(true).await).await;
    let seen = call(a, "/override", &[("x-trace-id", "req-2"), ("baggage", "tenant=acme")]).await;
    assert_eq!(
        seen,
        r#"tenant=Some("override") quota=None secret=None id=req-2 other=None baggage=Some("tenant=override")"#
    );
    // Without any incoming baggage, too.
    let seen = call(a, "/override", &[("x-trace-id", "req-3")]).await;
    assert!(seen.starts_with(r#"tenant=Some("override") quota=None secret=None id=req-3"#), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(miri, ignore = "sockets")]
async fn an_untrusting_service_ignores_baggage() {
    let a = service_a(service_b(false).await).await;
    let seen = call(a, "/", &[("x-trace-id", "req-4"), ("baggage", "tenant=acme,other=1")]).await;
    assert!(seen.starts_with("tenant=None quota=None secret=None id=req-4 other=None"), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(miri, ignore = "sockets")]
async fn values_that_do_not_decode_are_ignored_and_limits_hold() {
    let a = service_a(service_b(true).await).await;
    let seen = call(a, "/", &[("baggage", "quota=many,tenant=acme")]).await;
    assert!(seen.starts_with(r#"tenant=Some("acme") quota=None"#), "{seen}");

    // 100 members arrive; 64 are kept and sent on.
    let many: Vec<String> = (0..100).map(|i| format!("k{i}=v")).collect();
    let seen = call(a, "/", &[("baggage", &many.join(","))]).await;
    let sent = seen.split("baggage=Some(\"").nth(1).unwrap().trim_end_matches("\")");
    assert_eq!(sent.split(',').count(), 64, "{sent}");
}

static BAD_KEY: BaggageVar<String> = BaggageVar::string("tenant id", &TENANT);
static BAD: [&dyn TravellingVar; 1] = [&BAD_KEY];

#[test]
#[should_panic(expected = "baggage key \"tenant id\" is not an HTTP token")]
fn a_key_that_could_never_travel_is_refused_loudly() {
    let _ = TraceContextClientLayer::new().baggage_vars(&BAD);
}
