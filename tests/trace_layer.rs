//! `TraceContextServerLayer` on real servers over loopback: hyper 1 on smol (no Tokio at all) and axum on
//! Tokio. Thousands of requests over keep-alive connections with mixed headers; every
//! response must carry the ID its request should get, and every log line the handler emits
//! (after an await, in a spawned task, on a blocking pool, in a downstream service) must
//! carry that same ID and no other.

#![cfg(all(feature = "tower-trace", feature = "test-util"))]

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use contextvars::trace::TraceContext;
use contextvars::trace::log::{CapturedRecord, LogCapture};
use contextvars::trace::server::TraceContextServerLayer;
use contextvars::{Context, FutureExt};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use tower::Layer;

/// The tag that starts every log line of one test (the tests share the process's logger).
type Seen = Arc<str>;

/// A log line from inside request `request`: `<tag> req=<n> at=<place>`. The installed
/// [`LogCapture`] stores it with the correlation ID current when it is emitted.
fn record(seen: &Seen, request: usize, place: &'static str) {
    log::info!("{seen} req={request} at={place}");
}

/// The request number and place of one of the test's log lines.
fn parse_line(record: &CapturedRecord) -> Option<(usize, &str)> {
    let mut words = record.message.splitn(3, ' ').skip(1);
    let request = words.next()?.strip_prefix("req=")?.parse().ok()?;
    let place = words.next()?.strip_prefix("at=")?;
    Some((request, place))
}

fn request_number(path: &str) -> usize {
    path.rsplit('/').next().and_then(|n| n.parse().ok()).expect("path ends in a request number")
}

/// The headers request `n` sends, and the ID it must get (`None`: a generated one).
fn headers_for(n: usize) -> (Vec<(&'static str, String)>, Option<String>) {
    match n % 6 {
        0 => (vec![("x-trace-id", format!("pinned-{n}"))], Some(format!("pinned-{n}"))),
        1 => {
            let trace_id = format!("{:032x}", 0x5eed_0000 + n);
            (vec![("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))], Some(trace_id))
        }
        2 => {
            // Both: X-Trace-ID wins.
            let traceparent = format!("00-{:032x}-00f067aa0ba902b7-00", 0xfeed_0000 + n);
            (
                vec![("x-trace-id", format!("both-{n}")), ("traceparent", traceparent)],
                Some(format!("both-{n}")),
            )
        }
        3 => (vec![], None),
        4 => (vec![("x-trace-id", "with space".into()), ("traceparent", "00-BAD".into())], None),
        _ => {
            // An invalid X-Trace-ID falls through to a valid traceparent.
            let trace_id = format!("{:032x}", 0xcafe_0000 + n);
            let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
            (vec![("x-trace-id", "x".repeat(129)), ("traceparent", traceparent)], Some(trace_id))
        }
    }
}

fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Sends request `n` on a keep-alive connection; returns the echoed `x-trace-id`.
async fn send(sender: &mut SendRequest<Empty<Bytes>>, n: usize) -> String {
    let (headers, _) = headers_for(n);
    let mut request =
        Request::get(format!("/work/{n}")).header("host", "localhost").body(Empty::new()).unwrap();
    for (name, value) in headers {
        request.headers_mut().append(name, value.parse().unwrap());
    }
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    let echoed = response.headers()["x-trace-id"].to_str().unwrap().to_string();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, echoed.as_bytes(), "request {n}: the handler saw another ID than the one echoed");
    echoed
}

/// Checks the echoed IDs against the headers sent, and every recorded sighting against them.
fn check(echoed: &HashMap<usize, String>, seen: &Seen, requests: usize, places: &[&str]) {
    assert_eq!(echoed.len(), requests);
    for (n, id) in echoed {
        match headers_for(*n).1 {
            Some(expected) => assert_eq!(id, &expected, "request {n}"),
            None => assert!(is_generated(id), "request {n} got {id:?}"),
        }
    }
    let distinct: HashSet<&String> = echoed.values().collect();
    assert_eq!(distinct.len(), requests, "every request has its own ID");

    let records: Vec<CapturedRecord> = LogCapture::init()
        .records()
        .into_iter()
        .filter(|r| r.message.starts_with(&format!("{seen} ")))
        .collect();
    assert_eq!(records.len(), requests * places.len(), "every place logged for every request");
    // No line inside a request without an ID, no request with two IDs...
    assert_eq!(LogCapture::check(&records, |r| parse_line(r).map(|(n, _)| n)), Ok(records.len()));
    // ... and each request's lines carry the very ID its response echoed.
    let mismatches: Vec<_> = records
        .iter()
        .filter(|r| {
            parse_line(r)
                .is_none_or(|(n, _)| echoed.get(&n).map(String::as_str) != r.correlation_id.as_deref())
        })
        .collect();
    assert!(mismatches.is_empty(), "{} lines with a wrong ID, e.g. {:?}", mismatches.len(), &mismatches[..1]);
    for place in places {
        let count = records.iter().filter(|r| parse_line(r).is_some_and(|(_, p)| p == *place)).count();
        assert_eq!(count, requests, "{place}");
    }
}

mod on_smol {
    use smol::net::{TcpListener, TcpStream};
    use smol_hyper::rt::FuturesIo;

    use super::*;

    static EXECUTOR: smol::Executor<'static> = smol::Executor::new();

    fn downstream(
        request: &Request<Incoming>,
        seen: &Seen,
    ) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>> {
        record(seen, request_number(request.uri().path()), "downstream");
        std::future::ready(Ok(Response::new(Full::default())))
    }

    async fn handler(
        request: Request<Incoming>,
        seen: Seen,
        downstream: SocketAddr,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let n = request_number(request.uri().path());
        record(&seen, n, "handler");
        smol::future::yield_now().await;
        record(&seen, n, "after await");
        let task_seen = Arc::clone(&seen);
        EXECUTOR.spawn(async move { record(&task_seen, n, "spawned task") }.in_current_context()).await;
        let pool_seen = Arc::clone(&seen);
        smol::unblock(Context::current().wrap(move || record(&pool_seen, n, "blocking pool"))).await;

        // Call the downstream service with the propagated headers.
        let stream = TcpStream::connect(downstream).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(FuturesIo::new(stream)).await.unwrap();
        EXECUTOR.spawn(connection).detach();
        let mut call = Request::get(format!("/down/{n}"))
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .unwrap();
        TraceContext::current().unwrap().inject(call.headers_mut());
        let answer = sender.send_request(call).await.unwrap();
        assert_eq!(
            answer.headers()["x-trace-id"],
            TraceContext::current().unwrap().correlation_id().as_str()
        );

        let id = TraceContext::current().unwrap().correlation_id().to_string();
        Ok(Response::new(Full::new(Bytes::from(id))))
    }

    async fn serve<S, B>(listener: TcpListener, make_service: impl Fn() -> S)
    where
        S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
            + Send
            + 'static,
        S::Future: Send + 'static,
        B: hyper::body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
    {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(FuturesIo::new(stream), make_service());
            EXECUTOR.spawn(async move { connection.await.unwrap() }).detach();
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets")]
    fn hyper_on_smol_10k_requests_over_keep_alive() {
        const CONNECTIONS: usize = 20;
        const PER_CONNECTION: usize = 500;
        // Two executor threads, stopped at the end by closing `stop`.
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let stopped = stopped.clone();
                // `recv` fails once `stop` is dropped: that is the signal.
                std::thread::spawn(move || smol::block_on(EXECUTOR.run(stopped.recv())).is_err())
            })
            .collect();
        LogCapture::init();
        let seen: Seen = Arc::from("smol");
        let echoed = smol::block_on(EXECUTOR.run(async {
            let down = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let down_address = down.local_addr().unwrap();
            let down_seen = Arc::clone(&seen);
            let down_server = EXECUTOR.spawn(serve(down, move || {
                let seen = Arc::clone(&down_seen);
                let service = tower::service_fn(move |r| downstream(&r, &seen));
                hyper_util::service::TowerToHyperService::new(TraceContextServerLayer::new().layer(service))
            }));

            let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let front_address = front.local_addr().unwrap();
            let front_seen = Arc::clone(&seen);
            let front_server = EXECUTOR.spawn(serve(front, move || {
                let seen = Arc::clone(&front_seen);
                let service = tower::service_fn(move |r| handler(r, Arc::clone(&seen), down_address));
                hyper_util::service::TowerToHyperService::new(TraceContextServerLayer::new().layer(service))
            }));

            let clients: Vec<_> = (0..CONNECTIONS)
                .map(|c| {
                    EXECUTOR.spawn(async move {
                        let stream = TcpStream::connect(front_address).await.unwrap();
                        let (mut sender, connection) =
                            hyper::client::conn::http1::handshake(FuturesIo::new(stream)).await.unwrap();
                        EXECUTOR.spawn(connection).detach();
                        let mut echoed = Vec::new();
                        for i in 0..PER_CONNECTION {
                            let n = c * PER_CONNECTION + i;
                            echoed.push((n, send(&mut sender, n).await));
                        }
                        echoed
                    })
                })
                .collect();
            let mut echoed = HashMap::new();
            for client in clients {
                echoed.extend(client.await);
            }
            // Stop both servers: dropping their tasks cancels the accept loops (the
            // connections end as the clients', dropped with their tasks, close).
            front_server.cancel().await;
            down_server.cancel().await;
            echoed
        }));
        drop(stop);
        for worker in workers {
            assert!(worker.join().unwrap(), "the executor thread stopped on the signal");
        }
        check(
            &echoed,
            &seen,
            CONNECTIONS * PER_CONNECTION,
            &["handler", "after await", "spawned task", "blocking pool", "downstream"],
        );
        assert_eq!(TraceContext::current(), None, "nothing leaked into the test's thread");
    }
}

mod on_tokio {
    use axum::Router;
    use axum::extract::Path;
    use axum::routing::get;
    use hyper_util::rt::TokioIo;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(miri, ignore = "sockets")]
    async fn axum_on_tokio_2k_requests_over_keep_alive() {
        const CONNECTIONS: usize = 8;
        const PER_CONNECTION: usize = 250;
        LogCapture::init();
        let seen: Seen = Arc::from("axum");
        let handler_seen = Arc::clone(&seen);
        let app = Router::new()
            .route(
                "/work/{n}",
                get(move |Path(n): Path<usize>| {
                    let seen = Arc::clone(&handler_seen);
                    async move {
                        record(&seen, n, "handler");
                        tokio::task::yield_now().await;
                        record(&seen, n, "after await");
                        let task_seen = Arc::clone(&seen);
                        tokio::spawn(
                            async move { record(&task_seen, n, "spawned task") }.in_current_context(),
                        )
                        .await
                        .unwrap();
                        let pool_seen = Arc::clone(&seen);
                        tokio::task::spawn_blocking(
                            Context::current().wrap(move || record(&pool_seen, n, "blocking pool")),
                        )
                        .await
                        .unwrap();
                        TraceContext::current().unwrap().correlation_id().to_string()
                    }
                }),
            )
            .layer(TraceContextServerLayer::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|c| {
                tokio::spawn(async move {
                    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
                    let (mut sender, connection) =
                        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
                    tokio::spawn(connection);
                    let mut echoed = Vec::new();
                    for i in 0..PER_CONNECTION {
                        let n = c * PER_CONNECTION + i;
                        echoed.push((n, send(&mut sender, n).await));
                    }
                    echoed
                })
            })
            .collect();
        let mut echoed = HashMap::new();
        for client in clients {
            echoed.extend(client.await.unwrap());
        }
        server.abort();
        check(
            &echoed,
            &seen,
            CONNECTIONS * PER_CONNECTION,
            &["handler", "after await", "spawned task", "blocking pool"],
        );
    }
}

mod in_process {
    use std::future::{Ready, ready};

    use tower::{Service, ServiceExt};

    use super::*;

    #[test]
    fn errors_pass_through_and_nothing_leaks_to_the_caller() {
        let mut service = TraceContextServerLayer::new().layer(tower::service_fn(|_: Request<()>| {
            let seen = TraceContext::current().map(|t| t.correlation_id().to_string());
            ready(Err::<Response<()>, _>(seen))
        }));
        futures::executor::block_on(async {
            let request = Request::get("/").header("x-trace-id", "failing-1").body(()).unwrap();
            let future = service.ready().await.unwrap().call(request);
            assert!(
                TraceContext::current().is_none(),
                "the call ran in the request's context, not the caller's"
            );
            assert_eq!(future.await.unwrap_err(), Some("failing-1".to_string()));
            assert!(TraceContext::current().is_none());
        });
    }

    #[test]
    fn the_echo_replaces_a_handler_header_and_survives_an_unusable_id() {
        fn handler(_: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
            let mut response = Response::new(());
            response.headers_mut().insert("x-trace-id", "set-by-handler".parse().unwrap());
            ready(Ok(response))
        }
        let mut service = TraceContextServerLayer::new().layer(tower::service_fn(handler));
        futures::executor::block_on(async {
            let request = Request::get("/").header("x-trace-id", "pinned-2").body(()).unwrap();
            let response = service.ready().await.unwrap().call(request).await.unwrap();
            assert_eq!(response.headers().get_all("x-trace-id").iter().collect::<Vec<_>>(), ["pinned-2"]);

            let request = Request::get("/").header("x-trace-id", "bad\tvalue").body(()).unwrap();
            let response = service.ready().await.unwrap().call(request).await.unwrap();
            let echoed = response.headers()["x-trace-id"].to_str().unwrap();
            assert!(echoed.len() == 32 && echoed != "set-by-handler", "{echoed}");
        });
    }

    #[test]
    fn a_forged_no_trace_id_is_refused_and_not_echoed() {
        let mut service = TraceContextServerLayer::new().layer(tower::service_fn(|_: Request<()>| {
            let seen = contextvars::trace::CurrentCorrelationId.to_string();
            ready(Ok::<_, Infallible>(Response::new(seen)))
        }));
        futures::executor::block_on(async {
            let request = Request::get("/").header("x-trace-id", "no-trace").body(()).unwrap();
            let response = service.ready().await.unwrap().call(request).await.unwrap();
            let echoed = response.headers()["x-trace-id"].to_str().unwrap().to_string();
            assert!(is_generated(&echoed), "{echoed}");
            assert_eq!(
                response.into_body().into_inner(),
                echoed,
                "the handler's lines carry the generated ID"
            );
        });
    }

    /// A streamed body (server-sent events, chunked) whose frames log while they are polled,
    /// after the handler has returned and outside its future.
    #[test]
    fn every_frame_of_a_streamed_body_carries_the_id() {
        use futures::StreamExt;
        use http_body_util::StreamBody;
        use hyper::body::Frame;

        let handler = |_: Request<()>| {
            let frames = futures::stream::iter(0..3).map(|i| {
                let line = format!("frame {i} correlation_id={}\n", contextvars::trace::CurrentCorrelationId);
                Ok::<_, Infallible>(Frame::data(Bytes::from(line)))
            });
            ready(Ok::<_, Infallible>(Response::new(StreamBody::new(frames))))
        };
        let mut service = TraceContextServerLayer::new().layer(tower::service_fn(handler));
        futures::executor::block_on(async {
            let request = Request::get("/events").header("x-trace-id", "sse-7").body(()).unwrap();
            let response = service.ready().await.unwrap().call(request).await.unwrap();
            assert!(TraceContext::current().is_none());
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(
                body,
                "frame 0 correlation_id=sse-7\nframe 1 correlation_id=sse-7\nframe 2 correlation_id=sse-7\n"
            );
            assert!(TraceContext::current().is_none(), "polling the body leaks nothing");
        });
    }

    /// A body's destructor runs in the request's context too.
    #[test]
    fn a_dropped_body_sees_the_id() {
        struct LogsOnDrop(Arc<std::sync::Mutex<Option<String>>>);
        impl Drop for LogsOnDrop {
            fn drop(&mut self) {
                *self.0.lock().unwrap() = Some(contextvars::trace::CurrentCorrelationId.to_string());
            }
        }
        let seen = Arc::new(std::sync::Mutex::new(None));
        let body_seen = Arc::clone(&seen);
        let handler = move |_: Request<()>| {
            let guard = LogsOnDrop(Arc::clone(&body_seen));
            let body = Full::new(Bytes::from_static(b"x")).map_err(move |e| {
                let _ = &guard;
                e
            });
            ready(Ok::<_, Infallible>(Response::new(body)))
        };
        let service = TraceContextServerLayer::new().layer(tower::service_fn(handler));
        let request = Request::get("/").header("x-trace-id", "dropped-1").body(()).unwrap();
        let response = futures::executor::block_on(service.oneshot(request)).unwrap();
        drop(response);
        assert_eq!(seen.lock().unwrap().as_deref(), Some("dropped-1"));
    }

    /// The layer must be the outermost: a middleware outside it logs `no-trace`, one inside
    /// logs the request's ID.
    #[test]
    fn middleware_outside_the_layer_sees_no_trace_and_inside_sees_the_id() {
        use contextvars::trace::{CurrentCorrelationId, NO_TRACE};

        #[derive(Clone)]
        struct AccessLog<S> {
            inner: S,
            lines: Arc<std::sync::Mutex<Vec<String>>>,
            name: &'static str,
        }
        impl<S: Service<Request<()>>> Service<Request<()>> for AccessLog<S> {
            type Response = S::Response;
            type Error = S::Error;
            type Future = S::Future;
            fn poll_ready(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), S::Error>> {
                self.inner.poll_ready(cx)
            }
            fn call(&mut self, request: Request<()>) -> S::Future {
                self.lines.lock().unwrap().push(format!(
                    "{} {} correlation_id={CurrentCorrelationId}",
                    self.name,
                    request.uri()
                ));
                self.inner.call(request)
            }
        }
        struct AccessLogLayer(Arc<std::sync::Mutex<Vec<String>>>, &'static str);
        impl<S> Layer<S> for AccessLogLayer {
            type Service = AccessLog<S>;
            fn layer(&self, inner: S) -> AccessLog<S> {
                AccessLog { inner, lines: Arc::clone(&self.0), name: self.1 }
            }
        }
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let access_log = |name: &'static str| AccessLogLayer(Arc::clone(&lines), name);
        let handler = tower::service_fn(|_: Request<()>| ready(Ok::<_, Infallible>(Response::new(()))));
        let service = tower::ServiceBuilder::new()
            .layer(access_log("outside"))
            .layer(TraceContextServerLayer::new())
            .layer(access_log("inside"))
            .service(handler);
        let request = Request::get("/order").header("x-trace-id", "order-9").body(()).unwrap();
        futures::executor::block_on(service.oneshot(request)).unwrap();
        assert_eq!(
            *lines.lock().unwrap(),
            [
                format!("outside /order correlation_id={NO_TRACE}"),
                "inside /order correlation_id=order-9".to_string()
            ]
        );
    }

    #[test]
    fn configuration_header_name_trust_and_echo() {
        use contextvars::trace::IdSource;

        let handler = || {
            tower::service_fn(|_: Request<()>| {
                let trace = TraceContext::current().unwrap();
                ready(Ok::<_, Infallible>(Response::new((
                    trace.correlation_id().to_string(),
                    trace.source(),
                ))))
            })
        };
        let call = |layer: TraceContextServerLayer, headers: &[(&str, &str)]| {
            let mut request = Request::get("/");
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response =
                futures::executor::block_on(layer.layer(handler()).oneshot(request.body(()).unwrap()))
                    .unwrap();
            let (parts, body) = response.into_parts();
            (parts.headers, body.into_inner())
        };
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

        // Another header name: read and echoed there, x-trace-id ignored.
        let request_id =
            TraceContextServerLayer::new().id_header(http::HeaderName::from_static("x-request-id"));
        let (headers, (id, source)) =
            call(request_id.clone(), &[("x-request-id", "req-1"), ("x-trace-id", "other")]);
        assert_eq!((id.as_str(), source), ("req-1", IdSource::Header));
        assert_eq!(headers["x-request-id"], "req-1");
        assert!(headers.get("x-trace-id").is_none());
        let (_, (id, _)) = call(request_id, &[("x-trace-id", "other")]);
        assert_ne!(id, "other");

        // Untrusted: every incoming header ignored.
        let edge = TraceContextServerLayer::new().trust_incoming(false);
        let (headers, (id, source)) = call(edge, &[("x-trace-id", "pinned"), ("traceparent", tp)]);
        assert_eq!(source, IdSource::Generated);
        assert!(is_generated(&id) && !id.contains("4bf92f35"), "{id}");
        assert_eq!(headers["x-trace-id"], id.as_str());

        // No echo.
        let (headers, (id, _)) = call(TraceContextServerLayer::new().echo(false), &[("x-trace-id", "quiet")]);
        assert_eq!(id, "quiet");
        assert!(headers.get("x-trace-id").is_none());
    }

    #[test]
    fn the_wrapped_service_is_reachable() {
        let handler = tower::service_fn(|_: Request<()>| ready(Ok::<_, Infallible>(Response::new(()))));
        let mut service = TraceContextServerLayer::new().layer((handler, 7_u8));
        assert_eq!(service.get_ref().1, 7);
        service.get_mut().1 = 8;
        assert_eq!(service.into_inner().1, 8);
    }
}
