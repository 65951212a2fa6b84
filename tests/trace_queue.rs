//! Message queue headers, in process (no broker runs here: a channel stands in for the
//! topic): producers in many requests publish messages whose headers are Kafka-shaped
//! `(String, Option<Vec<u8>>)` pairs or owned `(String, Vec<u8>)` pairs; consumers on other
//! threads handle each message in the trace it carries. Every message must arrive with its
//! own request's correlation ID, trace, baggage and `tracestate`, and a new parent-id.

#![cfg(feature = "trace")]

use std::sync::mpsc;

use contextvars::trace::{CurrentCorrelationId, HeaderSink, HeaderSource, TraceContext, TraceParent};

const MESSAGES: usize = 200;

/// What a producer knew when it published message `n`.
struct Sent {
    correlation_id: String,
    trace_id: String,
    incoming_parent: Option<String>,
}

/// The request that publishes message `n`: pinned IDs, W3C traces, and new traces, in turn.
fn request(n: usize) -> TraceContext {
    let tenant = format!("tenant-{n}");
    match n % 3 {
        0 => TraceContext::extract(&[
            ("x-trace-id", format!("order-{n}")),
            ("baggage", format!("tenant={tenant}")),
        ]),
        1 => TraceContext::extract(&[
            ("traceparent", format!("00-{:032x}-{:016x}-01", 0xabc0_0000 + n, 0x1000 + n)),
            ("tracestate", format!("vendor=v{n}")),
            ("baggage", format!("tenant={tenant}")),
        ]),
        _ => TraceContext::new_root(),
    }
}

/// Publishes every message from inside its request, on 4 producer threads, and consumes them
/// on 4 consumer threads; returns what each side saw, by message number.
fn round_trip<H>(publish: fn(&TraceContext) -> H) -> Vec<(Sent, Seen)>
where
    H: HeaderSource + Send + 'static,
{
    let (to_topic, topic) = mpsc::channel::<(usize, H)>();
    let (to_results, results) = mpsc::channel::<(usize, Seen)>();
    let mut sent: Vec<Option<Sent>> = (0..MESSAGES).map(|_| None).collect();
    let topic = std::sync::Mutex::new(topic);
    let topic = &topic;
    std::thread::scope(|s| {
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let to_topic = to_topic.clone();
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for n in (p..MESSAGES).step_by(4) {
                        let trace = request(n);
                        let headers = trace.clone().sync_scope(|| publish(&TraceContext::current().unwrap()));
                        to_topic.send((n, headers)).unwrap();
                        mine.push((
                            n,
                            Sent {
                                correlation_id: trace.correlation_id().to_string(),
                                trace_id: trace.trace_id().to_string(),
                                incoming_parent: trace
                                    .incoming_traceparent()
                                    .map(|t| t.parent_id.to_string()),
                            },
                        ));
                    }
                    mine
                })
            })
            .collect();
        drop(to_topic);
        for _ in 0..4 {
            let to_results = to_results.clone();
            s.spawn(move || {
                loop {
                    let Ok((n, headers)) = topic.lock().unwrap().recv() else { break };
                    let trace = TraceContext::extract(&headers);
                    let parent = TraceParent::extract(headers.header_values("traceparent")).unwrap();
                    let seen = trace.sync_scope(|| Seen {
                        logged: format!("{CurrentCorrelationId} handled message {n}"),
                        trace_id: TraceContext::current().unwrap().trace_id().to_string(),
                        parent: parent.parent_id.to_string(),
                        tenant: TraceContext::current().unwrap().baggage().get("tenant").map(str::to_owned),
                        tracestate: TraceContext::current().unwrap().tracestate().to_string(),
                    });
                    to_results.send((n, seen)).unwrap();
                }
            });
        }
        drop(to_results);
        for producer in producers {
            for (n, record) in producer.join().unwrap() {
                sent[n] = Some(record);
            }
        }
    });
    let mut seen: Vec<Option<Seen>> = (0..MESSAGES).map(|_| None).collect();
    for (n, record) in results {
        assert!(seen[n].replace(record).is_none(), "message {n} handled twice");
    }
    sent.into_iter().zip(seen).map(|(s, r)| (s.expect("published"), r.expect("consumed"))).collect()
}

/// What the consumer saw while handling a message.
struct Seen {
    logged: String,
    trace_id: String,
    parent: String,
    tenant: Option<String>,
    tracestate: String,
}

fn check(results: &[(Sent, Seen)]) {
    let mut wrong = 0;
    for (n, (sent, seen)) in results.iter().enumerate() {
        let ok = seen.logged == format!("{} handled message {n}", sent.correlation_id)
            && seen.trace_id == sent.trace_id
            && Some(&seen.parent) != sent.incoming_parent.as_ref()
            && seen.tenant == (n % 3 != 2).then(|| format!("tenant-{n}"))
            && seen.tracestate == if n % 3 == 1 { format!("vendor=v{n}") } else { String::new() };
        if !ok {
            wrong += 1;
        }
    }
    assert_eq!(wrong, 0, "messages that lost or mixed up their trace");
    let parents: std::collections::HashSet<&str> =
        results.iter().map(|(_, seen)| seen.parent.as_str()).collect();
    assert_eq!(parents.len(), MESSAGES, "each message gets a parent-id of its own");
}

#[test]
fn kafka_shaped_headers_carry_the_trace_from_producer_to_consumer() {
    let results = round_trip(|trace| {
        // A header the client added with no value: skipped when read.
        let mut headers: Vec<(String, Option<Vec<u8>>)> = vec![("tracestate".into(), None)];
        trace.inject(&mut headers);
        headers.push(("content-type".into(), None));
        headers
    });
    check(&results);
}

#[test]
fn owned_byte_headers_carry_the_trace_from_producer_to_consumer() {
    let results = round_trip(|trace| {
        let mut headers: Vec<(String, Vec<u8>)> = vec![("content-type".into(), b"application/json".to_vec())];
        trace.inject(&mut headers);
        headers
    });
    check(&results);
}

#[test]
fn a_message_without_trace_headers_starts_a_trace_of_its_own() {
    let headers: Vec<(String, Option<Vec<u8>>)> =
        vec![("x-trace-id".into(), None), ("traceparent".into(), None)];
    let trace = TraceContext::extract(&headers);
    assert_eq!(trace.source(), contextvars::trace::IdSource::Generated);
    let mut republished: Vec<(String, Option<Vec<u8>>)> = headers.clone();
    trace.inject(&mut republished);
    let names: Vec<&str> = republished.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["traceparent", "x-trace-id"], "the empty headers are replaced, not kept beside");
    assert!(republished.iter().all(|(_, value)| value.is_some()));
    assert_eq!(TraceContext::extract(&republished).correlation_id(), trace.correlation_id());
    // The sinks replace headers whatever their case.
    let mut owned: Vec<(String, Vec<u8>)> = vec![("X-Trace-ID".into(), b"old".to_vec())];
    owned.set_header("x-trace-id", "new".into());
    assert_eq!(owned, [("x-trace-id".to_string(), b"new".to_vec())]);
}
