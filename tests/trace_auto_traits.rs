//! The auto traits of the public types of `contextvars::trace`: everything crosses threads,
//! so a trace can follow a request onto any worker.

#![cfg(feature = "trace")]

fn send_sync_unpin<T: Send + Sync + Unpin>() {}

#[test]
fn trace_types_are_send_sync_and_unpin() {
    use contextvars::trace::*;
    send_sync_unpin::<TraceContext>();
    send_sync_unpin::<CorrelationId>();
    send_sync_unpin::<IdSource>();
    send_sync_unpin::<CurrentCorrelationId>();
    send_sync_unpin::<TraceParent>();
    send_sync_unpin::<TraceId>();
    send_sync_unpin::<SpanId>();
    send_sync_unpin::<TraceFlags>();
    send_sync_unpin::<TraceState>();
    send_sync_unpin::<Baggage>();
    send_sync_unpin::<BaggageError>();
    send_sync_unpin::<BaggageVar<String>>();
    send_sync_unpin::<&'static dyn TravellingVar>();
    send_sync_unpin::<CurrentValue<String>>();
    send_sync_unpin::<TraceParentError>();
    send_sync_unpin::<ParseIdError>();
    send_sync_unpin::<TraceStateError>();
    send_sync_unpin::<CorrelationIdError>();
    send_sync_unpin::<Background<std::future::Ready<()>>>();
}

#[cfg(feature = "tower-trace")]
#[test]
fn layer_types_follow_their_inner_service() {
    use contextvars::trace::client::{TraceContextClient, TraceContextClientLayer};
    use contextvars::trace::server::{
        ResponseBody, ResponseFuture, TraceContextServer, TraceContextServerLayer,
    };
    fn send<T: Send>() {}
    send_sync_unpin::<TraceContextServerLayer>();
    send_sync_unpin::<TraceContextServer<()>>();
    send_sync_unpin::<ResponseFuture<std::future::Ready<()>>>();
    send_sync_unpin::<ResponseBody<String>>();
    send_sync_unpin::<TraceContextClientLayer>();
    send_sync_unpin::<TraceContextClient<()>>();
    send::<ResponseFuture<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>>();
}

#[cfg(feature = "log")]
#[test]
fn log_types_are_send_and_sync() {
    use contextvars::trace::log::CorrelationIdLogger;
    send_sync_unpin::<CorrelationIdLogger<env_logger::Logger>>();
}

#[cfg(feature = "test-util")]
#[test]
fn test_util_types_are_send_and_sync() {
    use contextvars::trace::log::{CaptureError, CapturedRecord, LogCapture};
    send_sync_unpin::<LogCapture>();
    send_sync_unpin::<CapturedRecord>();
    send_sync_unpin::<CaptureError>();
}

#[cfg(feature = "tracing")]
#[test]
fn tracing_types_are_send_and_sync() {
    use contextvars::trace::tracing::CorrelationIdFormat;
    send_sync_unpin::<CorrelationIdFormat<tracing_subscriber::fmt::format::Format>>();
}

#[cfg(feature = "sqlcommenter")]
#[test]
fn sqlcommenter_types_are_send_and_sync() {
    send_sync_unpin::<contextvars::trace::sqlcommenter::SqlCommenter>();
}

#[cfg(feature = "opentelemetry_0_33")]
#[test]
fn opentelemetry_types_are_send_and_sync() {
    send_sync_unpin::<contextvars::trace::opentelemetry::W3cPropagator>();
}
