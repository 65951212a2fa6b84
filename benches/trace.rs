//! The request-boundary costs of `contextvars::trace`: parsing and formatting `traceparent`,
//! processing `tracestate`, checking an `X-Trace-ID`, and with the `http` feature extracting
//! a `TraceContext` from a `HeaderMap` and injecting the outgoing headers.
//!
//! `cargo bench --bench trace --all-features`; results in BENCHMARKS-trace.md.

use std::hint::black_box;

use contextvars::trace::{Baggage, CorrelationId, TraceContext, TraceParent, TraceState};
use criterion::{Criterion, criterion_group, criterion_main};

const TRACEPARENT: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACESTATE: &[u8] = b"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,vendor@tenant=opaque-value";
const BAGGAGE: &[u8] = b"tenant=acme,user=J%C3%BCrgen;pii,region=eu-west-1";

fn traceparent(c: &mut Criterion) {
    let mut group = c.benchmark_group("traceparent");
    group.bench_function("parse", |b| b.iter(|| TraceParent::parse(black_box(TRACEPARENT))));
    group.bench_function("parse/invalid (uppercase trace-id)", |b| {
        let bad = b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01";
        b.iter(|| TraceParent::parse(black_box(bad)));
    });
    let parsed = TraceParent::parse(TRACEPARENT).expect("valid");
    group.bench_function("format (to_string)", |b| b.iter(|| black_box(&parsed).to_string()));
    group.finish();
}

fn other_headers(c: &mut Criterion) {
    let mut group = c.benchmark_group("headers");
    group.bench_function("tracestate/parse 3 members", |b| {
        b.iter(|| TraceState::extract([black_box(TRACESTATE)]));
    });
    let full: String =
        (0..32).map(|i| format!("vendor{i:02}=opaque-value-{i:02}")).collect::<Vec<_>>().join(",");
    group.bench_function("tracestate/parse 32 members", |b| {
        b.iter(|| TraceState::extract([black_box(full.as_bytes())]));
    });
    // What a client can make the parser do: refused at the 33rd member, or by the length.
    let many: String = (0..3_000).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
    group.bench_function("tracestate/refuse 3k members (stops at the 33rd)", |b| {
        b.iter(|| TraceState::extract([black_box(many.as_bytes())]));
    });
    let huge = "a=1,".repeat(1 << 18);
    group.bench_function("tracestate/refuse 1 MB", |b| {
        b.iter(|| TraceState::extract([black_box(huge.as_bytes())]));
    });
    let state = TraceState::extract([TRACESTATE]);
    group.bench_function("tracestate/format 3 members", |b| b.iter(|| black_box(&state).to_string()));
    group.bench_function("baggage/parse 3 members", |b| {
        b.iter(|| Baggage::extract([black_box(BAGGAGE)]));
    });
    let full: String = (0..64).map(|i| format!("key{i:02}=value-{i:02};prop")).collect::<Vec<_>>().join(",");
    group.bench_function("baggage/parse 64 members", |b| {
        b.iter(|| Baggage::extract([black_box(full.as_bytes())]));
    });
    let huge = "a=1,".repeat(1 << 18);
    group.bench_function("baggage/1 MB (reads 8 KiB)", |b| {
        b.iter(|| Baggage::extract([black_box(huge.as_bytes())]));
    });
    let baggage = Baggage::extract([BAGGAGE]);
    group.bench_function("baggage/format 3 members", |b| b.iter(|| black_box(&baggage).to_string()));
    group.bench_function("x-trace-id/check 36 bytes", |b| {
        b.iter(|| CorrelationId::parse(black_box(b"7c9e6679-7425-40de-944b-e07fc1f90ae7")));
    });
    group.finish();
}

fn context(c: &mut Criterion) {
    let mut group = c.benchmark_group("trace_context");
    group.bench_function("extract/pairs traceparent+tracestate", |b| {
        b.iter(|| {
            TraceContext::extract(black_box(&[("traceparent", TRACEPARENT), ("tracestate", TRACESTATE)]))
        });
    });
    group.bench_function("new_root (random ids)", |b| b.iter(TraceContext::new_root));
    // The fork check reads the process id once per id generated.
    group.bench_function("std::process::id (the fork check)", |b| b.iter(std::process::id));
    #[cfg(feature = "http")]
    {
        use http::HeaderMap;
        let mut incoming = HeaderMap::new();
        incoming.insert(
            "traceparent",
            http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        incoming
            .insert("tracestate", http::HeaderValue::from_static("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
        incoming.insert("accept", http::HeaderValue::from_static("*/*"));
        group.bench_function("extract/traceparent+tracestate", |b| {
            b.iter(|| TraceContext::extract(black_box(&incoming)));
        });
        let mut pinned = HeaderMap::new();
        pinned.insert("x-trace-id", http::HeaderValue::from_static("checkout-42"));
        group.bench_function("extract/x-trace-id", |b| b.iter(|| TraceContext::extract(black_box(&pinned))));
        group.bench_function("extract/no headers (generates an id)", |b| {
            let empty = HeaderMap::new();
            b.iter(|| TraceContext::extract(black_box(&empty)));
        });
        let trace = TraceContext::extract(&incoming);
        group.bench_function("inject", |b| {
            b.iter_batched_ref(HeaderMap::new, |out| trace.inject(out), criterion::BatchSize::SmallInput);
        });
        // The same with a `baggage` header of 3 members (one percent-encoded value, a property).
        let mut with_baggage = incoming.clone();
        with_baggage.insert(
            "baggage",
            http::HeaderValue::from_static("tenant=acme,user=J%C3%BCrgen;pii,region=eu-west-1"),
        );
        group.bench_function("extract/traceparent+tracestate+baggage", |b| {
            b.iter(|| TraceContext::extract(black_box(&with_baggage)));
        });
        let trace = TraceContext::extract(&with_baggage);
        group.bench_function("inject (with baggage)", |b| {
            b.iter_batched_ref(HeaderMap::new, |out| trace.inject(out), criterion::BatchSize::SmallInput);
        });
    }
    group.finish();
}

/// What `TraceContextServer::call` adds to a request, against the same service called bare: the
/// service answers at once, so the difference is the layer's own cost per request.
#[cfg(feature = "tower-trace")]
fn layer(c: &mut Criterion) {
    use std::convert::Infallible;
    use std::future::{Ready, ready};

    use contextvars::trace::server::TraceContextServerLayer;
    use http::{Request, Response};
    use tower::{Layer, Service};

    fn handler(_: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
        ready(Ok(Response::new(())))
    }
    let request = || {
        Request::get("/")
            .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .header("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
            .body(())
            .expect("request")
    };
    let mut group = c.benchmark_group("layer");
    let mut bare = tower::service_fn(handler);
    group.bench_function("call/without", |b| {
        b.iter_batched(
            request,
            |r| futures::executor::block_on(bare.call(r)),
            criterion::BatchSize::SmallInput,
        );
    });
    let mut traced = TraceContextServerLayer::new().layer(tower::service_fn(handler));
    group.bench_function("call/with TraceContextServerLayer (traceparent)", |b| {
        b.iter_batched(
            request,
            |r| futures::executor::block_on(traced.call(r)),
            criterion::BatchSize::SmallInput,
        );
    });
    group.bench_function("call/with TraceContextServerLayer (no headers)", |b| {
        let empty = || Request::get("/").body(()).expect("request");
        b.iter_batched(
            empty,
            |r| futures::executor::block_on(traced.call(r)),
            criterion::BatchSize::SmallInput,
        );
    });
    group.finish();
}

#[cfg(not(feature = "tower-trace"))]
fn layer(_: &mut Criterion) {}

criterion_group!(benches, traceparent, other_headers, context, layer);
criterion_main!(benches);
