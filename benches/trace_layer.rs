//! What `TraceContextServerLayer` costs a server: the same hyper service with and without the layer, side
//! by side, under a keep-alive load generator on loopback.
//!
//! The server runs on one thread (a current-thread Tokio runtime), the load generator on
//! another: `CONNECTIONS` keep-alive connections, each sending requests back to back with
//! mixed headers (an `X-Trace-ID`, a `traceparent` with a `tracestate`, nothing, garbage).
//! Rounds alternate between the two services (and which goes first), so that the machine's
//! noise spreads over both; the summary compares the medians.
//!
//! ```text
//! cargo bench --bench trace_layer --all-features
//! TRACE_LAYER_ROUNDS=10 TRACE_LAYER_SECONDS=3 cargo bench --bench trace_layer --all-features
//! TRACE_LAYER_ROUNDS=40 TRACE_LAYER_MILLIS=500 cargo bench --bench trace_layer --all-features
//! TRACE_LAYER_SERVE=1 cargo bench --bench trace_layer --all-features   # serve only, for wrk
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use contextvars::trace::server::TraceContextServerLayer;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tower::Layer;

const CONNECTIONS: usize = 32;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The handler both servers run: a small fixed answer.
async fn handler(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

async fn serve<S, B>(listener: tokio::net::TcpListener, service: S)
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + 'static,
    B: hyper::body::Body<Data = Bytes> + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let connection = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service.clone());
        tokio::task::spawn_local(async move {
            let _ = connection.await;
        });
    }
}

/// Starts both servers on a thread of their own; returns (plain, traced) addresses.
fn start_servers() -> (SocketAddr, SocketAddr) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async move {
            let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let traced = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send((plain.local_addr().expect("address"), traced.local_addr().expect("address")))
                .expect("send");
            let service = tower::service_fn(handler);
            tokio::task::spawn_local(serve(plain, TowerToHyperService::new(service)));
            serve(traced, TowerToHyperService::new(TraceContextServerLayer::new().layer(service))).await;
        });
    });
    rx.recv().expect("servers started")
}

fn headers_for(n: usize, request: &mut Request<Empty<Bytes>>) {
    let headers = request.headers_mut();
    match n % 4 {
        0 => {
            headers.insert("x-trace-id", format!("load-{n}").parse().expect("header"));
        }
        1 => {
            let traceparent = format!("00-{:032x}-00f067aa0ba902b7-01", n + 1);
            headers.insert("traceparent", traceparent.parse().expect("header"));
            headers.insert("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".parse().expect("header"));
        }
        2 => {}
        _ => {
            headers.insert("x-trace-id", "has spaces".parse().expect("header"));
            headers.insert("traceparent", "00-garbage".parse().expect("header"));
        }
    }
}

/// Sends requests on `CONNECTIONS` keep-alive connections for `duration`; returns how many
/// completed.
async fn load(address: SocketAddr, duration: Duration) -> usize {
    let deadline = Instant::now() + duration;
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            tokio::task::spawn_local(async move {
                let stream = tokio::net::TcpStream::connect(address).await.expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
                tokio::task::spawn_local(connection);
                let mut done = 0;
                while Instant::now() < deadline {
                    let mut request =
                        Request::get("/").header("host", "localhost").body(Empty::new()).expect("request");
                    headers_for(c * 1_000_000 + done, &mut request);
                    sender.ready().await.expect("ready");
                    let response = sender.send_request(request).await.expect("response");
                    let body = response.into_body().collect().await.expect("body").to_bytes();
                    assert_eq!(&body[..], b"ok");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for client in clients {
        total += client.await.expect("client");
    }
    total
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 { f64::midpoint(values[mid - 1], values[mid]) } else { values[mid] }
}

fn main() {
    let (plain, traced) = start_servers();
    if env("TRACE_LAYER_SERVE", 0) == 1 {
        println!("plain:  http://{plain}/");
        println!("traced: http://{traced}/");
        loop {
            std::thread::park();
        }
    }
    let rounds = env("TRACE_LAYER_ROUNDS", 5);
    // Shorter rounds follow the machine's drifting load more closely.
    let millis = env("TRACE_LAYER_MILLIS", 1000 * env("TRACE_LAYER_SECONDS", 2));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let local = tokio::task::LocalSet::new();
    let (mut without, mut with) = (Vec::new(), Vec::new());
    println!("{CONNECTIONS} keep-alive connections, {rounds} rounds of {millis} ms per service");
    local.block_on(&runtime, async {
        // Warm up both.
        load(plain, Duration::from_millis(500)).await;
        load(traced, Duration::from_millis(500)).await;
        for round in 0..rounds {
            let order = if round % 2 == 0 { [false, true] } else { [true, false] };
            for layered in order {
                let address = if layered { traced } else { plain };
                #[allow(clippy::cast_precision_loss)]
                let rate = load(address, Duration::from_millis(millis)).await as f64 * 1000.0 / millis as f64;
                println!(
                    "round {round}: {:<18} {rate:>9.0} req/s",
                    if layered { "with TraceContextServerLayer" } else { "without" }
                );
                if layered { with.push(rate) } else { without.push(rate) }
            }
        }
    });
    // The machine's load drifts over a run: the two runs of one round, back to back, are the
    // fairest comparison, so the per-round ratios are reported too.
    let mut ratios: Vec<f64> = with.iter().zip(&without).map(|(w, wo)| w / wo).collect();
    let (ratio, without, with) = (median(&mut ratios), median(&mut without), median(&mut with));
    println!();
    println!("median without TraceContextServerLayer  {without:>9.0} req/s");
    println!("median with TraceContextServerLayer     {with:>9.0} req/s");
    println!("change of the medians      {:>+9.2} %", (with / without - 1.0) * 100.0);
    println!("median change per round    {:>+9.2} %", (ratio - 1.0) * 100.0);
}
