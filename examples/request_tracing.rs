//! Request tracing end to end: a hyper server on smol (no Tokio), a few hundred concurrent
//! keep-alive requests with and without trace headers, and every log line checked.
//!
//! Each request goes through `TraceContextServerLayer`, which picks its correlation ID (`X-Trace-ID`, else the
//! W3C `traceparent`, else a new UUID). The handler awaits, spawns a subtask, runs blocking
//! work on smol's thread pool through `Context::wrap`, and calls a second local service with
//! the propagated headers; every log line, in both services, shows the ID through the `log`
//! facade without the handler passing it along.
//!
//! Every request also carries a tenant in W3C baggage: the front service's layer sets the
//! `TENANT` context variable from it, and the client layer on its call to the second service
//! sends it on, where that service's layer sets it again. Every log line shows the tenant
//! too, and the summary counts lines that lost it or show another request's.
//!
//! The same load then runs against a copy of the service that keeps the ID in a plain
//! `thread_local!`, to show what goes wrong without context variables.
//!
//! Run with `cargo run --example request_tracing --all-features` (the minimal set is
//! `--features tower-trace,log`). Exits non-zero if any check fails.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use contextvars::trace::client::TraceContextClientLayer;
use contextvars::trace::server::TraceContextServerLayer;
use contextvars::trace::{BaggageVar, CurrentCorrelationId, NO_TRACE, TraceContext, TravellingVar};
use contextvars::{Context, ContextVar, FutureExt};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::service::TowerToHyperService;
use smol::net::{TcpListener, TcpStream};
use smol_hyper::rt::FuturesIo;
use tower::{Layer, ServiceExt};

const CONNECTIONS: usize = 64;
const REQUESTS_PER_CONNECTION: usize = 5;

/// The executor everything runs on: smol's, with two worker threads.
static EXECUTOR: smol::Executor<'static> = smol::Executor::new();

/// The tenant a request works for: set from the request's baggage by the layer, sent on to
/// the services it calls by the client layer.
static TENANT: ContextVar<String> = ContextVar::new("tenant");
static TRAVELLING: [&dyn TravellingVar; 1] = [&BaggageVar::string("tenant", &TENANT)];

// ---------------------------------------------------------------------------------------
// Logging: a `log::Log` that keeps every line, formatted with the current correlation ID.

thread_local! {
    /// Where the thread-local variant of the service keeps "its" request's ID.
    static LEAKY_ID: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// One captured log line.
struct Line {
    /// The ID the line was logged with (`no-trace` when there was none).
    correlation_id: String,
    /// The tenant the line was logged with.
    tenant: Option<String>,
    /// The request number the handler logged it for (every handler line says `req=N`).
    request: Option<usize>,
    text: String,
}

struct Logger {
    lines: Mutex<Vec<Line>>,
}

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        // `CurrentCorrelationId` reads the context when the line is formatted. The thread-local
        // variant only has its thread-local to offer.
        let correlation_id = if TraceContext::current().is_some() {
            CurrentCorrelationId.to_string()
        } else {
            LEAKY_ID.with(|id| id.borrow().clone()).unwrap_or_else(|| NO_TRACE.to_string())
        };
        let tenant = TENANT.get();
        let shown = tenant.as_deref().unwrap_or("-");
        let text =
            format!("{:<5} correlation_id={correlation_id} tenant={shown} {}", record.level(), record.args());
        let request = text.split("req=").nth(1).and_then(|rest| rest.split(' ').next()?.parse().ok());
        self.lines.lock().expect("log lock").push(Line { correlation_id, tenant, request, text });
    }

    fn flush(&self) {}
}

fn logger() -> &'static Logger {
    static LOGGER: OnceLock<&'static Logger> = OnceLock::new();
    LOGGER.get_or_init(|| Box::leak(Box::new(Logger { lines: Mutex::new(Vec::new()) })))
}

// ---------------------------------------------------------------------------------------
// The services.

type Body = Full<Bytes>;

/// The downstream service: looks something up and answers with the IDs it received.
async fn inventory(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let number = request.uri().path().trim_start_matches("/stock/").to_string();
    log::info!("req={number} inventory: looking up stock");
    let trace = TraceContext::current().expect("TraceContextServerLayer sets the trace");
    let body =
        format!("{} {} {}", trace.correlation_id(), trace.trace_id(), TENANT.get().unwrap_or_default());
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// The front service's handler: awaits, spawns, offloads, calls downstream.
async fn checkout(request: Request<Incoming>, downstream: SocketAddr) -> Result<Response<Body>, Infallible> {
    let number = request.uri().path().trim_start_matches("/checkout/").to_string();
    log::info!("req={number} checkout: request received");

    smol::Timer::after(Duration::from_millis(1)).await;
    log::info!("req={number} checkout: after an await");

    // A subtask, started in a snapshot of this request's context.
    let n = number.clone();
    EXECUTOR
        .spawn(async move { log::info!("req={n} checkout: in a spawned subtask") }.in_current_context())
        .await;

    // Blocking work on smol's thread pool, carried there by `Context::wrap`.
    let n = number.clone();
    smol::unblock(Context::current().wrap(move || log::info!("req={n} checkout: blocking work on the pool")))
        .await;

    // A call to the downstream service through the client layer, which adds the trace's
    // headers and the tenant's baggage.
    let client = TraceContextClientLayer::new().baggage_vars(&TRAVELLING).layer(tower::service_fn(
        move |request: Request<Empty<Bytes>>| async move {
            let stream = TcpStream::connect(downstream).await?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(FuturesIo::new(stream)).await?;
            EXECUTOR.spawn(connection).detach();
            let response = sender.send_request(request).await?;
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(String::from_utf8_lossy(&body).into_owned())
        },
    ));
    let request = Request::get(format!("/stock/{number}")).header("host", "localhost").body(Empty::new());
    let downstream_answer = client.oneshot(request.expect("request")).await.ok();
    log::info!("req={number} checkout: inventory answered");

    let body = downstream_answer.unwrap_or_default();
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// The same handler without the crate: the ID goes into a thread-local at the start.
async fn checkout_thread_local(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let number = request.uri().path().trim_start_matches("/checkout/").to_string();
    let id = request
        .headers()
        .get("x-trace-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| format!("generated-{number}"), str::to_string);
    LEAKY_ID.with(|slot| *slot.borrow_mut() = Some(id.clone()));
    log::info!("req={number} checkout: request received");
    smol::Timer::after(Duration::from_millis(1)).await;
    log::info!("req={number} checkout: after an await");
    let n = number.clone();
    EXECUTOR.spawn(async move { log::info!("req={n} checkout: in a spawned subtask") }).await;
    let n = number.clone();
    smol::unblock(move || log::info!("req={n} checkout: blocking work on the pool")).await;
    smol::Timer::after(Duration::from_millis(1)).await;
    log::info!("req={number} checkout: inventory answered");
    let mut response = Response::new(Full::new(Bytes::from(id.clone())));
    response.headers_mut().insert("x-trace-id", id.parse().expect("visible ASCII"));
    Ok(response)
}

/// Accepts connections forever, serving each with `make_service`'s service.
async fn serve<S, B>(listener: TcpListener, make_service: impl Fn() -> S + Send + 'static)
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let service = make_service();
        EXECUTOR
            .spawn(async move {
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(FuturesIo::new(stream), service);
                if let Err(error) = connection.await {
                    eprintln!("connection error: {error}");
                }
            })
            .detach();
    }
}

async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    path: &str,
    headers: impl FnOnce(&mut hyper::HeaderMap),
) -> Option<(Option<String>, String)> {
    let mut request = Request::get(path).header("host", "localhost").body(Empty::new()).ok()?;
    headers(request.headers_mut());
    sender.ready().await.ok()?;
    let response = sender.send_request(request).await.ok()?;
    let echoed = response.headers().get("x-trace-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((echoed, String::from_utf8_lossy(&body).into_owned()))
}

// ---------------------------------------------------------------------------------------
// The load: keep-alive connections, each sending requests one after another.

/// What a request sent, and so which ID it must get.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Headers {
    PinnedId,
    TraceParent,
    Nothing,
    Garbage,
}

fn headers_for(request: usize) -> (Headers, Vec<(&'static str, String)>) {
    let (kind, mut headers) = trace_headers_for(request);
    headers.push(("baggage", format!("tenant=t{request},unrelated=kept")));
    (kind, headers)
}

fn trace_headers_for(request: usize) -> (Headers, Vec<(&'static str, String)>) {
    match request % 5 {
        0 => (Headers::PinnedId, vec![("x-trace-id", format!("client-{request}"))]),
        1 => (
            Headers::TraceParent,
            vec![("traceparent", format!("00-{:032x}-00f067aa0ba902b7-01", 0x00ab_c000 + request))],
        ),
        2 => (Headers::Nothing, vec![]),
        3 => (
            Headers::Garbage,
            vec![("x-trace-id", "has spaces in it".into()), ("traceparent", "00-ABC-bad".into())],
        ),
        _ => (
            Headers::Garbage,
            vec![
                ("x-trace-id", "x".repeat(200)),
                ("traceparent", format!("ff-{:032x}-00f067aa0ba902b7-01", 1)),
            ],
        ),
    }
}

struct Outcome {
    request: usize,
    kind: Headers,
    echoed: Option<String>,
    body: String,
}

async fn load(address: SocketAddr) -> Vec<Outcome> {
    let clients = (0..CONNECTIONS).map(|connection| {
        EXECUTOR.spawn(async move {
            let stream = TcpStream::connect(address).await.expect("connect");
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(FuturesIo::new(stream)).await.expect("handshake");
            EXECUTOR.spawn(conn).detach();
            let mut outcomes = Vec::new();
            for i in 0..REQUESTS_PER_CONNECTION {
                let request = connection * REQUESTS_PER_CONNECTION + i;
                let (kind, headers) = headers_for(request);
                let answer = send(&mut sender, &format!("/checkout/{request}"), |map| {
                    for (name, value) in headers {
                        map.append(name, value.parse().expect("valid header value"));
                    }
                })
                .await;
                let (echoed, body) = answer.unwrap_or((None, String::new()));
                outcomes.push(Outcome { request, kind, echoed, body });
            }
            outcomes
        })
    });
    let mut all = Vec::new();
    for client in clients.collect::<Vec<_>>() {
        all.extend(client.await);
    }
    all
}

fn listener() -> (TcpListener, SocketAddr) {
    let std = StdListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let address = std.local_addr().expect("local address");
    (TcpListener::try_from(std).expect("async listener"), address)
}

fn main() {
    log::set_logger(logger()).expect("no other logger");
    log::set_max_level(log::LevelFilter::Info);
    for _ in 0..2 {
        std::thread::spawn(|| smol::block_on(EXECUTOR.run(smol::future::pending::<()>())));
    }
    let failures = smol::block_on(EXECUTOR.run(run()));
    if failures > 0 {
        eprintln!("error: {failures} check(s) failed");
        std::process::exit(1);
    }
}

async fn run() -> usize {
    let (inventory_listener, inventory_address) = listener();
    EXECUTOR
        .spawn(serve(inventory_listener, || {
            TowerToHyperService::new(
                TraceContextServerLayer::new().baggage_vars(&TRAVELLING).layer(tower::service_fn(inventory)),
            )
        }))
        .detach();
    let (front_listener, front_address) = listener();
    EXECUTOR
        .spawn(serve(front_listener, move || {
            let handler = tower::service_fn(move |request| checkout(request, inventory_address));
            TowerToHyperService::new(TraceContextServerLayer::new().baggage_vars(&TRAVELLING).layer(handler))
        }))
        .detach();

    let outcomes = load(front_address).await;
    let lines = std::mem::take(&mut *logger().lines.lock().expect("log lock"));
    let failures = report_traced(&outcomes, &lines);

    let (leaky_listener, leaky_address) = listener();
    EXECUTOR.spawn(serve(leaky_listener, || hyper::service::service_fn(checkout_thread_local))).detach();
    let leaky_outcomes = load(leaky_address).await;
    let leaky_lines = std::mem::take(&mut *logger().lines.lock().expect("log lock"));
    report_thread_local(&leaky_outcomes, &leaky_lines);
    failures
}

fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn report_traced(outcomes: &[Outcome], lines: &[Line]) -> usize {
    let mut failures = 0;
    let mut check = |ok: bool, what: String| {
        if !ok {
            failures += 1;
            eprintln!("check failed: {what}");
        }
    };

    // Each response: the right ID, echoed, and the same one downstream (body: "<id> <w3c>").
    let (mut preserved, mut generated) = (0, 0);
    let mut id_of = HashMap::new();
    for outcome in outcomes {
        let echoed = outcome.echoed.clone().unwrap_or_default();
        let expected_ok = match outcome.kind {
            Headers::PinnedId => echoed == format!("client-{}", outcome.request),
            Headers::TraceParent => echoed == format!("{:032x}", 0x00ab_c000 + outcome.request),
            Headers::Nothing | Headers::Garbage => is_generated(&echoed),
        };
        check(expected_ok, format!("request {} ({:?}) got ID {echoed:?}", outcome.request, outcome.kind));
        let downstream_id = outcome.body.split(' ').next().unwrap_or_default();
        check(
            downstream_id == echoed,
            format!("request {}: downstream saw {downstream_id:?}", outcome.request),
        );
        let downstream_tenant = outcome.body.split(' ').nth(2).unwrap_or_default();
        check(
            downstream_tenant == format!("t{}", outcome.request),
            format!("request {}: downstream saw tenant {downstream_tenant:?}", outcome.request),
        );
        match outcome.kind {
            Headers::PinnedId | Headers::TraceParent => preserved += 1,
            Headers::Nothing | Headers::Garbage => generated += 1,
        }
        id_of.insert(outcome.request, echoed);
    }
    let distinct: std::collections::HashSet<_> = id_of.values().collect();
    check(
        distinct.len() == outcomes.len(),
        format!("{} distinct IDs for {} requests", distinct.len(), outcomes.len()),
    );

    // Each log line: inside a request, never the sentinel, never another request's ID; and
    // the same for its tenant.
    let (mut sentinel_inside, mut leaks, mut tenant_lost, mut tenant_foreign) = (0, 0, 0, 0);
    for line in lines {
        let Some(request) = line.request else { continue };
        if line.correlation_id == NO_TRACE {
            sentinel_inside += 1;
        } else if id_of.get(&request) != Some(&line.correlation_id) {
            leaks += 1;
        }
        match &line.tenant {
            None => tenant_lost += 1,
            Some(tenant) if *tenant != format!("t{request}") => tenant_foreign += 1,
            Some(_) => {}
        }
    }
    let expected_lines = outcomes.len() * 6;
    check(lines.len() == expected_lines, format!("{} log lines, expected {expected_lines}", lines.len()));
    check(sentinel_inside == 0, format!("{sentinel_inside} lines inside a request without an ID"));
    check(leaks == 0, format!("{leaks} lines with another request's ID"));
    check(tenant_lost == 0, format!("{tenant_lost} lines inside a request without a tenant"));
    check(tenant_foreign == 0, format!("{tenant_foreign} lines with another request's tenant"));

    println!("== with contextvars: hyper on smol, TraceContextServerLayer, the log facade ==");
    println!("sample (request 1 sent a traceparent, request 3 garbage headers):");
    for line in lines.iter().filter(|l| matches!(l.request, Some(1 | 3))) {
        println!("  {}", line.text);
    }
    println!();
    println!("requests                          {}", outcomes.len());
    println!("log lines                         {}", lines.len());
    println!("IDs preserved from headers        {preserved}");
    println!("IDs generated                     {generated}");
    println!("lines inside a request, no ID     {sentinel_inside}");
    println!("lines with another request's ID   {leaks}");
    println!("lines inside a request, no tenant {tenant_lost}");
    println!("lines with another's tenant       {tenant_foreign}");
    println!();
    failures
}

fn report_thread_local(outcomes: &[Outcome], lines: &[Line]) {
    let id_of: HashMap<usize, &str> =
        outcomes.iter().map(|o| (o.request, o.echoed.as_deref().unwrap_or_default())).collect();
    let sentinel_inside =
        lines.iter().filter(|l| l.request.is_some() && l.correlation_id == NO_TRACE).count();
    let leaks = lines
        .iter()
        .filter(|l| l.correlation_id != NO_TRACE)
        .filter(|l| l.request.and_then(|r| id_of.get(&r)).is_some_and(|id| *id != l.correlation_id))
        .count();
    println!("== the same load, the ID in a plain thread_local! ==");
    println!("sample (request 1):");
    for line in lines.iter().filter(|l| l.request == Some(1)) {
        println!("  {}", line.text);
    }
    println!();
    println!("log lines                         {}", lines.len());
    println!("lines inside a request, no ID     {sentinel_inside}");
    println!("lines with another request's ID   {leaks}");
}
