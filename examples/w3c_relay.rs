//! The service W3C Trace Context's test harness drives: for each `POST`, it reads a JSON
//! array of `{"url": ..., "arguments": ...}` and posts each `arguments` to its `url`, with
//! the trace headers `TraceContext::inject` writes for the request `TraceContextServerLayer`
//! extracted. `tests/trace_w3c.rs` runs the harness's cases against the same two calls in
//! process; this example lets the harness itself check them over HTTP:
//!
//! ```sh
//! cargo run --example w3c_relay --all-features          # listens on 127.0.0.1:5000
//! python test/test.py http://127.0.0.1:5000/test        # in a checkout of w3c/trace-context
//! ```
//!
//! `W3C_RELAY_ADDR` changes the address.

use std::convert::Infallible;

use contextvars::trace::TraceContext;
use contextvars::trace::server::TraceContextServerLayer;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tower::Layer;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Posts `arguments` to `url` with the current trace's headers.
async fn call(url: &str, arguments: &serde_json::Value) -> Result<(), Error> {
    let uri: hyper::Uri = url.parse()?;
    let authority = uri.authority().ok_or("no authority")?.to_string();
    let stream = tokio::net::TcpStream::connect(&authority).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut request = Request::post(uri.path())
        .header("host", authority)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(arguments)?)))?;
    TraceContext::current().ok_or("no trace")?.inject(request.headers_mut());
    let response = sender.send_request(request).await?;
    response.into_body().collect().await?;
    Ok(())
}

async fn relay(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body =
        request.into_body().collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default();
    let actions: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap_or_default();
    for action in &actions {
        if let Some(url) = action["url"].as_str() {
            if let Err(error) = call(url, &action["arguments"]).await {
                eprintln!("callback to {url} failed: {error}");
            }
        }
    }
    let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
    response.headers_mut().insert("content-type", "application/json".parse().expect("valid"));
    Ok(response)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let address = std::env::var("W3C_RELAY_ADDR").unwrap_or_else(|_| "127.0.0.1:5000".into());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("w3c_relay listening on http://{address}/test");
    loop {
        let (stream, _) = listener.accept().await?;
        let service =
            TowerToHyperService::new(TraceContextServerLayer::new().layer(tower::service_fn(relay)));
        tokio::spawn(
            hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
        );
    }
}
