//! gRPC over real TCP (loopback): a tonic server behind `TraceContextServerLayer` and a tonic
//! client over a channel wrapped in `TraceContextClientLayer`. 200 concurrent calls, each from
//! a request of its own (pinned IDs and W3C traces, a `tracestate`, a baggage member and a
//! travelling variable): every call must arrive with its own trace, state, baggage and
//! variable, and a new parent-id; 0 wrong.
//!
//! The service is written by hand on tonic's `Grpc` and `prost`-derived messages, so that no
//! `protoc` is needed.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use contextvars::ContextVar;
use contextvars::trace::client::TraceContextClientLayer;
use contextvars::trace::server::TraceContextServerLayer;
use contextvars::trace::{BaggageVar, TraceContext, TraceParent, TravellingVar};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::transport::{Endpoint, Server};
use tonic_prost::ProstCodec;
use tower::Layer;

const CALLS: usize = 200;
const PATH: &str = "/contextvars.test.Echo/Echo";

static TENANT: ContextVar<String> = ContextVar::new("tenant");
static TRAVELLING: [&dyn TravellingVar; 1] = [&BaggageVar::string("tenant", &TENANT)];

#[derive(Clone, PartialEq, prost::Message)]
struct EchoRequest {
    #[prost(uint32, tag = "1")]
    n: u32,
}

/// What the server saw while handling one call.
#[derive(Clone, PartialEq, prost::Message)]
struct EchoReply {
    #[prost(uint32, tag = "1")]
    n: u32,
    /// `TraceContext::current()` in the handler.
    #[prost(string, tag = "2")]
    correlation_id: String,
    #[prost(string, tag = "3")]
    trace_id: String,
    /// The `traceparent` header as received.
    #[prost(string, tag = "4")]
    traceparent: String,
    #[prost(string, tag = "5")]
    tracestate: String,
    #[prost(string, tag = "6")]
    baggage: String,
    /// The travelling variable, as the server layer set it.
    #[prost(string, optional, tag = "7")]
    tenant: Option<String>,
}

/// The unary handler: reports what it sees in its context.
async fn echo(request: tonic::Request<EchoRequest>) -> Result<tonic::Response<EchoReply>, tonic::Status> {
    // An await before looking: the context must hold across polls.
    tokio::task::yield_now().await;
    let trace = TraceContext::current().ok_or_else(|| tonic::Status::internal("no trace in the handler"))?;
    let header = |name: &str| {
        request.metadata().get(name).and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned()
    };
    Ok(tonic::Response::new(EchoReply {
        n: request.get_ref().n,
        correlation_id: trace.correlation_id().to_string(),
        trace_id: trace.trace_id().to_string(),
        traceparent: header("traceparent"),
        tracestate: trace.tracestate().to_string(),
        baggage: trace.baggage().to_string(),
        tenant: TENANT.get(),
    }))
}

/// The service, as generated code would write it: one method, routed by path.
#[derive(Clone)]
struct EchoServer;

impl NamedService for EchoServer {
    const NAME: &'static str = "contextvars.test.Echo";
}

impl tower::Service<http::Request<Body>> for EchoServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            if request.uri().path() != PATH {
                return Ok(tonic::Status::unimplemented("no such method").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<EchoReply, EchoRequest>::default());
            Ok(grpc.unary(tower::service_fn(echo), request).await)
        })
    }
}

/// What the client's request `n` sends.
fn outgoing(n: usize) -> TraceContext {
    let mut headers = vec![
        ("traceparent", format!("00-{:032x}-{:016x}-01", 0x6e00_0000 + n, 0x7a00 + n)),
        ("tracestate", format!("vendor=v{n}")),
        ("baggage", format!("call=c{n}")),
    ];
    if n % 2 == 1 {
        headers.push(("x-trace-id", format!("grpc-{n}")));
    }
    TraceContext::extract(&headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tonic_carries_traces_baggage_and_travelling_variables_over_tcp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(
        Server::builder()
            .layer(TraceContextServerLayer::new().baggage_vars(&TRAVELLING))
            .add_service(EchoServer)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let channel = Endpoint::from_shared(format!("http://{address}")).unwrap().connect().await.unwrap();
    let client = TraceContextClientLayer::new().baggage_vars(&TRAVELLING).layer(channel);

    let calls: Vec<_> = (0..CALLS)
        .map(|n| {
            let mut grpc = tonic::client::Grpc::new(client.clone());
            let trace = outgoing(n);
            let call = trace.clone().scope(async move {
                TENANT.set(format!("tenant-{n}"));
                grpc.ready().await.unwrap();
                let request = tonic::Request::new(EchoRequest { n: u32::try_from(n).unwrap() });
                let path = http::uri::PathAndQuery::from_static(PATH);
                grpc.unary(request, path, ProstCodec::<EchoRequest, EchoReply>::default()).await
            });
            (trace, tokio::spawn(call))
        })
        .collect();

    let mut wrong = Vec::new();
    for (n, (trace, call)) in calls.into_iter().enumerate() {
        let response = call.await.unwrap().unwrap();
        let echoed = response.metadata().get("x-trace-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let reply = response.into_inner();
        let received = TraceParent::parse(reply.traceparent.as_bytes()).unwrap();
        let sent_parent = trace.incoming_traceparent().unwrap().parent_id;
        let expected_id = if n % 2 == 1 { format!("grpc-{n}") } else { trace.trace_id().to_string() };
        let ok = reply.n as usize == n
            && reply.correlation_id == expected_id
            && echoed.as_deref() == Some(expected_id.as_str())
            && reply.trace_id == trace.trace_id().to_string()
            && received.trace_id == trace.trace_id()
            && received.parent_id != sent_parent
            && received.flags.is_sampled()
            && reply.tracestate == format!("vendor=v{n}")
            && reply.baggage == format!("call=c{n},tenant=tenant-{n}")
            && reply.tenant.as_deref() == Some(format!("tenant-{n}").as_str());
        if !ok {
            wrong.push((n, reply));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {CALLS} calls arrived wrong, the first: {:?}",
        wrong.len(),
        wrong.first()
    );
    server.abort();
}

#[tokio::test]
async fn a_call_outside_any_request_starts_a_trace_on_the_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(
        Server::builder()
            .layer(TraceContextServerLayer::new())
            .add_service(EchoServer)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = Endpoint::from_shared(format!("http://{address}")).unwrap().connect().await.unwrap();
    let mut grpc = tonic::client::Grpc::new(TraceContextClientLayer::new().layer(channel));
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(PATH);
    let response = grpc
        .unary(
            tonic::Request::new(EchoRequest { n: 7 }),
            path,
            ProstCodec::<EchoRequest, EchoReply>::default(),
        )
        .await
        .unwrap();
    let reply = response.into_inner();
    assert_eq!(reply.n, 7);
    assert!(reply.traceparent.is_empty(), "nothing sent: {reply:?}");
    assert_eq!(reply.correlation_id.len(), 32, "a trace generated by the server: {reply:?}");
    assert_eq!(reply.correlation_id, reply.trace_id);
    assert_eq!(reply.tenant, None);
    server.abort();
}
