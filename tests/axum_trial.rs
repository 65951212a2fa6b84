//! The trial a new user runs, as a test: an axum service over real TCP on a plain
//! multi-thread tokio runtime (two workers, no `tokio_unstable`), whose handler does the naive
//! thing, `TraceContext::set(TraceContext::extract(&headers))` with no layer, logs through
//! `tracing` with the correlation ID in every line (`CorrelationIdFormat`), spawns a task with
//! plain `tokio::spawn`, runs a plain `spawn_blocking` job, and calls a second axum service
//! through `TraceContextClientLayer`. 200 requests at once, each with its own `X-Trace-ID`.
//!
//! No line may carry another request's ID; lines that lost theirs (`no-trace`) are counted
//! and printed. Every line must parse, with exactly one correlation ID. In debug builds the
//! leak hook receives reports naming the handler's `set` line; in release builds none.
//!
//! Run it in both profiles: `cargo test --all-features --test axum_trial` and
//! `cargo test --release --features tokio,tower-trace,tracing,test-util --test axum_trial`.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::get;
use contextvars::trace::client::TraceContextClientLayer;
use contextvars::trace::server::TraceContextServerLayer;
use contextvars::trace::tracing::{CapturedEvent, CorrelationIdFormat, TracingCapture};
use contextvars::trace::{CurrentCorrelationId, NO_TRACE, TraceContext};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tower::{Layer, ServiceExt};
use tracing::info;
use tracing_subscriber::layer::SubscriberExt;

/// Requests sent, all in flight at once.
const REQUESTS: usize = 200;

/// Where the front handler logs, in order; then the second service's line.
const FRONT_PLACES: [&str; 10] =
    ["entry", "set", "yield", "barrier", "sleep", "task", "task-yield", "blocking", "called", "end"];
const DOWNSTREAM: &str = "downstream";

/// The line of the handler's `set`, which it stores: every leak report must name it.
static SET_LINE: AtomicU32 = AtomicU32::new(0);

/// The ID request `n` sends.
fn trace_id(n: usize) -> String {
    format!("trial-{n}")
}

/// What the front handler shares: the second service's address, and a barrier that holds
/// every request until all of them are in flight.
#[derive(Clone)]
struct Front {
    downstream: SocketAddr,
    all_in: Arc<tokio::sync::Barrier>,
}

/// The naive handler: sets the request's trace in whatever context it runs in, no layer.
async fn front(State(front): State<Front>, Path(n): Path<usize>, headers: HeaderMap) -> String {
    info!("req={n} at=entry");
    SET_LINE.store(line!() + 1, Ordering::Relaxed);
    TraceContext::set(TraceContext::extract(&headers));
    info!("req={n} at=set");
    tokio::task::yield_now().await;
    info!("req={n} at=yield");
    front.all_in.wait().await;
    info!("req={n} at=barrier");
    tokio::time::sleep(Duration::from_millis(1)).await;
    info!("req={n} at=sleep");
    let task = tokio::spawn(async move {
        info!("req={n} at=task");
        tokio::task::yield_now().await;
        info!("req={n} at=task-yield");
    });
    let job = tokio::task::spawn_blocking(move || info!("req={n} at=blocking"));
    let status = call_downstream(front.downstream, n).await;
    info!("req={n} at=called");
    task.await.unwrap();
    job.await.unwrap();
    info!("req={n} at=end");
    assert_eq!(status, StatusCode::OK);
    CurrentCorrelationId.to_string()
}

/// The second service, behind `TraceContextServerLayer`: logs the `X-Trace-ID` it received.
async fn downstream(Path(n): Path<usize>, headers: HeaderMap) -> &'static str {
    let received = headers.get("x-trace-id").map_or("-", |value| value.to_str().unwrap_or("?"));
    info!("req={n} at={DOWNSTREAM} received={received}");
    "ok"
}

/// Calls the second service through the crate's client layer, one connection per call.
async fn call_downstream(address: SocketAddr, n: usize) -> StatusCode {
    let connect = tower::service_fn(move |request: Request<Empty<Bytes>>| async move {
        let stream = tokio::net::TcpStream::connect(address).await.expect("the second service accepts");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        sender.send_request(request).await
    });
    let request = Request::get(format!("/downstream/{n}"))
        .header("host", "downstream")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = TraceContextClientLayer::new().layer(connect).oneshot(request).await.unwrap();
    response.status()
}

/// One request to the front service, over a connection of its own: its status and body.
async fn send(address: SocketAddr, n: usize) -> (StatusCode, String) {
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let request = Request::get(format!("/front/{n}"))
        .header("host", "front")
        .header("x-trace-id", trace_id(n))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// The log output: every line the fmt layer writes (one `write` per event).
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl io::Write for Output {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One parsed log line: `correlation_id=<id>  INFO <message>`, the message being
/// `req=<n> at=<place>`, and in the second service ` received=<x-trace-id or ->` after it.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    id: &'a str,
    message: &'a str,
    request: usize,
    place: &'a str,
    received: Option<&'a str>,
}

/// The request a trial ID names.
fn request_of(id: &str) -> Option<usize> {
    id.strip_prefix("trial-")?.parse().ok().filter(|&n| n < REQUESTS && trace_id(n) == id)
}

/// An ID the second service's layer made up, having received none: 32 lowercase hex digits.
fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses a line of the configured format, or `None` when the line is corrupted: a second
/// `correlation_id=`, an ID that is none of the trial's, `no-trace` or a generated one, or a
/// message that is not one of the handlers'.
fn parse(line: &str) -> Option<Line<'_>> {
    if line.matches("correlation_id=").count() != 1 {
        return None;
    }
    let (id, message) = line.strip_prefix("correlation_id=")?.split_once("  INFO ")?;
    if !(id == NO_TRACE || request_of(id).is_some() || is_generated(id)) {
        return None;
    }
    let mut words = message.split(' ');
    let request = words.next()?.strip_prefix("req=")?.parse().ok().filter(|&n| n < REQUESTS)?;
    let place = words.next()?.strip_prefix("at=")?;
    let received = match words.next() {
        Some(word) => Some(word.strip_prefix("received=")?),
        None => None,
    };
    let known = if place == DOWNSTREAM { received.is_some() } else { FRONT_PLACES.contains(&place) };
    (known && words.next().is_none()).then_some(Line { id, message, request, place, received })
}

/// Lines of one place: with their request's ID, without one (`no-trace`; in the second
/// service, an ID of its own because it received none), with another request's.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    right: usize,
    lost: usize,
    foreign: usize,
}

impl Counts {
    fn add(&mut self, other: Self) {
        self.right += other.right;
        self.lost += other.lost;
        self.foreign += other.foreign;
    }
}

/// What a line's ID says about its request. In the second service, the ID it received
/// decides, and its layer must have used exactly that one.
fn classify(line: &Line<'_>) -> Counts {
    let id = match line.received {
        Some("-") => {
            assert!(is_generated(line.id), "received no ID, yet logs a trial's: {line:?}");
            NO_TRACE
        }
        Some(received) => {
            assert_eq!(line.id, received, "the second service logs another ID than it received");
            received
        }
        None => {
            assert!(!is_generated(line.id), "the front service made up an ID: {line:?}");
            line.id
        }
    };
    if id == trace_id(line.request) {
        Counts { right: 1, ..Counts::default() }
    } else if id == NO_TRACE {
        Counts { lost: 1, ..Counts::default() }
    } else {
        Counts { foreign: 1, ..Counts::default() }
    }
}

/// Checks that every line parses and matches, one for one, an event the capture layer saw
/// (with the ID it saw); returns the lines' counts by place, and the lines with another
/// request's ID.
fn check_lines<'a>(lines: &[&'a str], events: &[CapturedEvent]) -> (BTreeMap<&'a str, Counts>, Vec<&'a str>) {
    let corrupted: Vec<&&str> = lines.iter().filter(|line| parse(line).is_none()).collect();
    assert!(
        corrupted.is_empty(),
        "{} corrupted lines: {:?}",
        corrupted.len(),
        &corrupted[..5.min(corrupted.len())]
    );
    let parsed: Vec<Line<'_>> = lines.iter().filter_map(|line| parse(line)).collect();
    assert_eq!(parsed.len(), REQUESTS * (FRONT_PLACES.len() + 1), "one line per event");

    let mut printed: Vec<(&str, &str)> = parsed.iter().map(|line| (line.id, line.message)).collect();
    let mut captured: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.correlation_id.as_deref().unwrap_or(NO_TRACE), e.message.as_str()))
        .collect();
    printed.sort_unstable();
    captured.sort_unstable();
    assert!(printed == captured, "the formatter printed other IDs than the capture layer saw");

    let mut per_place = BTreeMap::new();
    let mut foreign = Vec::new();
    for (line, parsed) in lines.iter().zip(&parsed) {
        let counts = classify(parsed);
        if counts.foreign > 0 {
            foreign.push(*line);
        }
        per_place.entry(parsed.place).or_insert_with(Counts::default).add(counts);
    }
    (per_place, foreign)
}

/// The leak hook and the tracing subscriber are the process's: one test at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn the_naive_axum_handler_never_logs_another_requests_id() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let output = Output::default();
    let writer = output.clone();
    let capture = TracingCapture::new();
    let fmt = tracing_subscriber::fmt::layer()
        .without_time()
        .with_target(false)
        .compact()
        .with_writer(move || writer.clone())
        .map_event_format(CorrelationIdFormat::new);
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(fmt).with(capture.clone()))
        .unwrap();
    let reports = Arc::new(Mutex::new(Vec::new()));
    let hook_reports = Arc::clone(&reports);
    contextvars::tokio::set_leak_hook(move |leak| {
        let at = leak.set_at();
        hook_reports.lock().unwrap().push((leak.var_name(), at.file().to_owned(), at.line()));
    });

    let answers = serve_and_send();

    contextvars::tokio::reset_leak_hook();
    let text = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (per_place, foreign) = check_lines(&lines, &capture.take());
    // The lines after the handler's set (its entry line comes before it, and has no ID).
    let mut total = Counts::default();
    for (_, counts) in per_place.iter().filter(|(place, _)| **place != "entry") {
        total.add(*counts);
    }
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    eprintln!(
        "axum trial ({profile}): {} lines from {REQUESTS} concurrent requests; after the handler's set: \
         {} right, {} lost (no-trace), {} foreign",
        lines.len(),
        total.right,
        total.lost,
        total.foreign
    );
    for (place, counts) in &per_place {
        eprintln!(
            "  at={place:<10} right {:>3}  lost {:>3}  foreign {:>3}",
            counts.right, counts.lost, counts.foreign
        );
    }
    assert!(
        foreign.is_empty(),
        "{} lines with another request's ID: {:#?}",
        foreign.len(),
        &foreign[..foreign.len().min(10)]
    );
    assert_eq!(per_place["set"].right, REQUESTS, "a task reads its own value right after its set");
    assert_eq!(per_place["entry"].lost, REQUESTS, "before its set, a request reads no ID");
    for (n, (status, body)) in answers.iter().enumerate() {
        assert_eq!(*status, StatusCode::OK, "request {n}");
        assert!(*body == trace_id(n) || body == NO_TRACE, "request {n} answered with {body}");
    }

    let reports = reports.lock().unwrap();
    let set_line = SET_LINE.load(Ordering::Relaxed);
    eprintln!("  leak reports: {} (the handler's set is at line {set_line})", reports.len());
    if cfg!(debug_assertions) {
        assert!(!reports.is_empty(), "debug builds report the naive set");
        for (var, file, line) in reports.iter() {
            assert_eq!(*var, "trace_context");
            assert!(
                file.ends_with("axum_trial.rs") && *line == set_line,
                "a report names {file}:{line}, not the handler's set (line {set_line})"
            );
        }
    } else {
        assert!(reports.is_empty(), "release builds only fail closed: {reports:?}");
    }
}

/// Starts both services on a plain two-worker runtime and sends every request at once from a
/// runtime of its own, each over a connection of its own: each request's status and body.
fn serve_and_send() -> Vec<(StatusCode, String)> {
    let server = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let front_address = server.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let downstream_address = listener.local_addr().unwrap();
        let app =
            Router::new().route("/downstream/{n}", get(downstream)).layer(TraceContextServerLayer::new());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front_address = listener.local_addr().unwrap();
        let all_in = Arc::new(tokio::sync::Barrier::new(REQUESTS));
        let app = Router::new()
            .route("/front/{n}", get(front))
            .with_state(Front { downstream: downstream_address, all_in });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        front_address
    });

    let clients = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let answers = clients.block_on(async {
        let mut requests = tokio::task::JoinSet::new();
        for n in 0..REQUESTS {
            requests.spawn(async move { (n, send(front_address, n).await) });
        }
        let mut answers = vec![(StatusCode::INTERNAL_SERVER_ERROR, String::new()); REQUESTS];
        while let Some(answer) = requests.join_next().await {
            let (n, answer) = answer.unwrap();
            answers[n] = answer;
        }
        answers
    });
    server.shutdown_background();
    answers
}

/// The naive handler for the keep-alive case: the ID it reads before its set, and after an
/// await.
async fn naive_keep_alive(headers: HeaderMap) -> String {
    let entry = CurrentCorrelationId.to_string();
    KEEP_ALIVE_SET_LINE.store(line!() + 1, Ordering::Relaxed);
    TraceContext::set(TraceContext::extract(&headers));
    tokio::time::sleep(Duration::from_millis(1)).await;
    tokio::task::yield_now().await;
    format!("{entry} {CurrentCorrelationId}")
}

static KEEP_ALIVE_SET_LINE: AtomicU32 = AtomicU32::new(0);

/// A keep-alive connection serves its requests one after another in one tokio task, hyper's
/// connection task, and the fail-closed rule knows tasks, not requests. What this test pins:
///
/// - after its own `set`, a request reads its own ID or nothing, never an earlier one, on
///   whatever thread the task resumes (a claim is returned only while it is the task's
///   latest);
/// - before it, a request reads nothing or an earlier request's ID *of its own connection*
///   (the limit, counted and printed), never another connection's;
/// - debug builds report it at the handler's `set`: the same line setting again with no reset
///   in between, the setter its own observer. Release builds report nothing.
///
/// The fix, which every report names, is a context per request (`ContextLayer`,
/// `TraceContextServerLayer`).
#[test]
fn a_keep_alive_connection_shows_an_earlier_id_only_before_the_requests_set_and_says_so() {
    const CONNECTIONS: usize = 4;
    const SEQUENTIAL: usize = 50;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let reports = Arc::new(Mutex::new(Vec::new()));
    let hook_reports = Arc::clone(&reports);
    contextvars::tokio::set_leak_hook(move |leak| {
        let by_itself = leak.observer() == Some(leak.setter());
        hook_reports.lock().unwrap().push((leak.set_at().file().to_owned(), leak.set_at().line(), by_itself));
    });
    let server = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let address = server.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new().route("/", get(naive_keep_alive));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        address
    });
    let clients = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Request `n` of connection `c` carries the ID `trial-{c * SEQUENTIAL + n}`.
    let answers: Vec<Vec<String>> = clients.block_on(async {
        let connections = (0..CONNECTIONS).map(|c| async move {
            let stream = tokio::net::TcpStream::connect(address).await.unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
            tokio::spawn(connection);
            let mut answers = Vec::new();
            for n in 0..SEQUENTIAL {
                sender.ready().await.unwrap();
                let request = Request::get("/")
                    .header("host", "front")
                    .header("x-trace-id", trace_id(c * SEQUENTIAL + n))
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let body = sender.send_request(request).await.unwrap().into_body().collect().await.unwrap();
                answers.push(String::from_utf8(body.to_bytes().to_vec()).unwrap());
            }
            answers
        });
        futures::future::join_all(connections).await
    });
    server.shutdown_background();
    contextvars::tokio::reset_leak_hook();

    let mut earlier_at_entry = 0;
    for (c, answers) in answers.iter().enumerate() {
        let earlier: Vec<String> = (0..SEQUENTIAL).map(|n| trace_id(c * SEQUENTIAL + n)).collect();
        for (n, answer) in answers.iter().enumerate() {
            let (entry, after) = answer.split_once(' ').unwrap();
            assert!(
                after == NO_TRACE || after == earlier[n],
                "connection {c}, request {n}: after its set it read {after}"
            );
            if entry != NO_TRACE {
                assert!(
                    earlier[..n].iter().any(|id| id == entry),
                    "connection {c}, request {n}: before its set it read {entry}, not its connection's"
                );
                earlier_at_entry += 1;
            }
        }
    }
    eprintln!(
        "keep-alive: {earlier_at_entry} of {} requests read their connection's earlier ID before their own set",
        CONNECTIONS * SEQUENTIAL
    );
    let reports = reports.lock().unwrap();
    if cfg!(debug_assertions) {
        let line = KEEP_ALIVE_SET_LINE.load(Ordering::Relaxed);
        assert!(
            reports.iter().any(|(_, _, by_itself)| *by_itself),
            "no report of a set made again: {reports:?}"
        );
        for (file, at, _) in reports.iter() {
            assert_eq!((file.as_str(), *at), ("tests/axum_trial.rs", line), "{reports:?}");
        }
    } else {
        assert!(reports.is_empty(), "{reports:?}");
    }
}
