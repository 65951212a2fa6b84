//! Property tests of the trace header parsers: what is formatted parses back to the same
//! value, no input makes them panic, and nothing that comes out of them (an ID, an outgoing
//! header) holds a CR, LF or any other control byte.

#![cfg(feature = "trace")]

use contextvars::trace::{CorrelationId, SpanId, TraceContext, TraceFlags, TraceId, TraceParent, TraceState};
use proptest::prelude::*;

fn trace_id() -> impl Strategy<Value = TraceId> {
    any::<[u8; 16]>().prop_filter("not all zeros", |b| *b != [0; 16]).prop_map(TraceId::from_bytes)
}

fn span_id() -> impl Strategy<Value = SpanId> {
    any::<[u8; 8]>().prop_filter("not all zeros", |b| *b != [0; 8]).prop_map(SpanId::from_bytes)
}

fn traceparent() -> impl Strategy<Value = TraceParent> {
    (0..=0xfe_u8, trace_id(), span_id(), any::<u8>()).prop_map(|(version, trace_id, parent_id, flags)| {
        // Any version but `ff`: built from its text, the struct being `#[non_exhaustive]`.
        let text = format!("{version:02x}-{trace_id}-{parent_id}-{}", TraceFlags::from_bits(flags));
        TraceParent::parse(text.as_bytes()).expect("a valid traceparent")
    })
}

/// A valid `tracestate` key: simple or multi-tenant.
fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z][a-z0-9_*/-]{0,20}", "[a-z0-9][a-z0-9_*/-]{0,10}@[a-z][a-z0-9_*/-]{0,13}", "[a-z]{256}",]
}

/// A valid `tracestate` value: printable ASCII but `,` and `=`, not ending with a space.
fn value() -> impl Strategy<Value = String> {
    "[ -+\\--<>-~]{0,30}[!-+\\--<>-~]"
}

/// Text that looks like trace headers, with the bytes that must never get through.
fn header_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..80),
        "[0-9a-fA-F\\-]{0,60}".prop_map(String::into_bytes),
        "[a-z0-9@=,; \t\r\n\u{0}\u{7f}_*/-]{0,80}".prop_map(String::into_bytes),
        (traceparent(), "[\r\n\u{0} \t.-]{0,3}").prop_map(|(t, junk)| format!("{t}{junk}").into_bytes()),
    ]
}

fn is_printable(s: &str) -> bool {
    s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

proptest! {
    #[test]
    fn traceparent_round_trips(parent in traceparent()) {
        let text = parent.to_string();
        prop_assert_eq!(text.len(), 55);
        prop_assert_eq!(TraceParent::parse(text.as_bytes()), Ok(parent));
        prop_assert_eq!(text.parse::<TraceParent>(), Ok(parent));
        // Higher versions may carry more fields, after a `-`.
        if parent.version > 0 {
            prop_assert_eq!(TraceParent::parse(format!("{text}-future").as_bytes()), Ok(parent));
        }
    }

    #[test]
    fn ids_round_trip(trace in trace_id(), span in span_id()) {
        prop_assert_eq!(trace.to_string().parse::<TraceId>(), Ok(trace));
        prop_assert_eq!(span.to_string().parse::<SpanId>(), Ok(span));
    }

    #[test]
    fn tracestate_round_trips(members in proptest::collection::btree_map(key(), value(), 0..=32)) {
        let header = members.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ,\t");
        let state = TraceState::extract([header.as_bytes()]);
        prop_assert_eq!(state.len(), members.len());
        for (k, v) in &members {
            prop_assert_eq!(state.get(k), Some(v.as_str()));
        }
        let again = TraceState::extract([state.to_string().as_bytes()]);
        prop_assert_eq!(again, state);
    }

    #[test]
    fn baggage_output_is_clean_and_round_trips(a in header_like(), b in header_like()) {
        let baggage = contextvars::trace::Baggage::extract([&a[..], &b[..]]);
        prop_assert!(baggage.len() <= contextvars::trace::MAX_BAGGAGE_MEMBERS);
        let text = baggage.to_string();
        prop_assert!(text.len() <= contextvars::trace::MAX_BAGGAGE_LEN);
        prop_assert!(text.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{:?}", text);
        prop_assert_eq!(contextvars::trace::Baggage::extract([text.as_bytes()]), baggage);
    }

    #[test]
    fn baggage_members_round_trip(members in proptest::collection::btree_map("[a-zA-Z0-9!#$&'*+.^_|~-]{1,12}", "\\PC{0,20}", 0..=24)) {
        let mut baggage = contextvars::trace::Baggage::new();
        for (key, value) in &members {
            baggage = baggage.with(key, value).unwrap();
        }
        let again = contextvars::trace::Baggage::extract([baggage.to_string().as_bytes()]);
        prop_assert_eq!(again.len(), members.len());
        for (key, value) in &members {
            prop_assert_eq!(again.get(key), Some(value.as_str()));
        }
    }

    #[test]
    fn pinned_ids_round_trip(id in "[!-~]{1,128}") {
        prop_assert_eq!(CorrelationId::parse(id.as_bytes()).map(|id| id.to_string()), Ok(id));
    }

    #[test]
    fn parsers_never_panic_and_output_stays_clean(
        a in header_like(),
        b in header_like(),
        c in header_like(),
    ) {
        if let Ok(parent) = TraceParent::parse(&a) {
            prop_assert!(parent.is_valid());
            prop_assert_eq!(TraceParent::parse(parent.to_string().as_bytes()), Ok(parent));
        }
        prop_assert_eq!(TraceParent::extract([&a[..], &b[..]]), None);

        let state = TraceState::extract([&a[..], &b[..], &c[..]]);
        prop_assert!(state.len() <= 32);
        let text = state.to_string();
        prop_assert!(is_printable(&text), "{:?}", text);
        prop_assert_eq!(TraceState::extract([text.as_bytes()]), state);

        if let Ok(id) = CorrelationId::parse(&a) {
            let id = id.as_str();
            prop_assert!(!id.is_empty() && id.len() <= 128);
            prop_assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{:?}", id);
        }

        let trace = TraceContext::extract(&[
            ("x-trace-id", &a[..]),
            ("traceparent", &b[..]),
            ("tracestate", &c[..]),
            ("tracestate", &a[..]),
        ]);
        let id = trace.correlation_id().as_str();
        prop_assert!(!id.is_empty() && id.len() <= 128 && id.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{:?}", id);
        let mut outgoing: Vec<(&str, String)> = Vec::new();
        trace.inject(&mut outgoing);
        for (name, value) in &outgoing {
            prop_assert!(is_printable(value), "{}: {:?}", name, value);
        }
        let next = TraceContext::extract(&outgoing);
        prop_assert_eq!(next.correlation_id(), trace.correlation_id());
        prop_assert_eq!(next.trace_id(), trace.trace_id());
        prop_assert_eq!(next.tracestate(), trace.tracestate());
    }
}

#[test]
fn extraction_follows_the_order_x_trace_id_then_traceparent_then_generated() {
    use contextvars::trace::IdSource;
    let tp = &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..];
    let both = TraceContext::extract(&[("X-Trace-ID", &b"pinned"[..]), ("traceparent", tp)]);
    assert_eq!((both.correlation_id().as_str(), both.source()), ("pinned", IdSource::Header));
    assert_eq!(both.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");

    let bad_pin = TraceContext::extract(&[("x-trace-id", &b"a\nb"[..]), ("traceparent", tp)]);
    assert_eq!(
        (bad_pin.correlation_id().as_str(), bad_pin.source()),
        ("4bf92f3577b34da6a3ce929d0e0e4736", IdSource::TraceParent)
    );

    let two_pins = TraceContext::extract(&[("x-trace-id", &b"a"[..]), ("x-trace-id", &b"b"[..])]);
    assert_eq!(two_pins.source(), IdSource::Generated);

    let two_parents =
        TraceContext::extract(&[("traceparent", tp), ("traceparent", tp), ("tracestate", &b"a=1"[..])]);
    assert_eq!(two_parents.source(), IdSource::Generated);
    assert_ne!(two_parents.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(two_parents.tracestate().is_empty(), "tracestate is not parsed without a valid traceparent");
    assert!(two_parents.incoming_traceparent().is_none());

    // A pinned ID that is a valid trace-id also becomes the trace-id of the new trace.
    let hex_pin = TraceContext::extract(&[("x-trace-id", &b"0af7651916cd43dd8448eb211c80319c"[..])]);
    assert_eq!(hex_pin.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");

    let outgoing = both.outgoing_traceparent();
    assert_eq!(outgoing.version, 0);
    assert_eq!(outgoing.flags, TraceFlags::SAMPLED);
    assert_ne!(outgoing.parent_id.to_string(), "00f067aa0ba902b7");
}

#[test]
fn generated_ids_are_uuid_v4_as_32_lowercase_hex_digits() {
    let ids: Vec<String> = (0..100).map(|_| TraceContext::new_root().correlation_id().to_string()).collect();
    for id in &ids {
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{id}");
        assert_eq!(&id[12..13], "4", "version nibble of a UUID v4: {id}");
        assert!(id.parse::<TraceId>().is_ok());
    }
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len());
}

#[test]
fn the_no_trace_sentinel_cannot_be_pinned() {
    use contextvars::trace::{CorrelationIdError, CurrentCorrelationId, IdSource, NO_TRACE};
    for forged in [NO_TRACE, "NO-TRACE", "No-Trace"] {
        assert_eq!(CorrelationId::parse(forged.as_bytes()), Err(CorrelationIdError::Reserved), "{forged}");
        let trace = TraceContext::extract(&[("x-trace-id", forged.as_bytes())]);
        assert_eq!(trace.source(), IdSource::Generated, "{forged}");
        assert_ne!(trace.correlation_id().as_str().to_ascii_lowercase(), NO_TRACE);
        // The request's lines are not mistaken for lines outside any request.
        assert_ne!(trace.sync_scope(|| CurrentCorrelationId.to_string()), NO_TRACE);
    }
    // Only the exact sentinel is refused.
    assert_eq!(CorrelationId::parse(b"no-trace-1").unwrap().as_str(), "no-trace-1");
}

#[test]
fn logs_and_propagation_follow_one_precedence_across_two_hops() {
    use contextvars::trace::IdSource;
    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const HEX: &str = "0af7651916cd43dd8448eb211c80319c";
    // (headers, correlation ID in logs, W3C trace-id sent on; None = generated)
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, Option<&'a str>);
    let cases: [Case<'_>; 5] = [
        (&[("x-trace-id", "pinned-123")], Some("pinned-123"), None),
        (&[("x-trace-id", "pinned-123"), ("traceparent", TP)], Some("pinned-123"), Some(&TP[3..35])),
        (&[("x-trace-id", HEX)], Some(HEX), Some(HEX)),
        (&[("x-trace-id", HEX), ("traceparent", TP)], Some(HEX), Some(&TP[3..35])),
        (&[("traceparent", TP)], Some(&TP[3..35]), Some(&TP[3..35])),
    ];
    for (headers, logged, sent) in cases {
        let first = TraceContext::extract(headers);
        assert_eq!(Some(first.correlation_id().as_str()), logged, "{headers:?}");
        let trace_id = first.trace_id().to_string();
        match sent {
            Some(sent) => assert_eq!(trace_id, sent, "{headers:?}"),
            None => assert!(trace_id != HEX && trace_id != TP[3..35] && trace_id.len() == 32),
        }
        assert_eq!(first.ids_differ(), logged != Some(trace_id.as_str()), "{headers:?}");
        // The next service logs the same ID and continues the same trace.
        let mut outgoing: Vec<(&str, String)> = Vec::new();
        first.inject(&mut outgoing);
        let second = TraceContext::extract(&outgoing);
        assert_eq!(second.correlation_id(), first.correlation_id());
        assert_eq!(second.trace_id(), first.trace_id());
        assert_eq!(second.ids_differ(), first.ids_differ());
    }
    let generated = TraceContext::extract(&Vec::<(&str, &[u8])>::new());
    assert_eq!(generated.source(), IdSource::Generated);
    assert!(!generated.ids_differ());
    assert_eq!(generated.correlation_id().as_str(), generated.trace_id().to_string());
}

#[test]
fn tracestate_parse_work_is_bounded() {
    use contextvars::trace::{MAX_TRACESTATE_LEN, TraceStateError};
    use std::cell::Cell;

    // Parsing stops at the 33rd member: a bad member after it is never looked at, and no
    // further header value is read.
    let members: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
    let first = format!("{},BAD KEY=1", members.join(","));
    let pulled = Cell::new(0);
    let values = [first.as_bytes(), b"@also=bad"].into_iter().inspect(|_| pulled.set(pulled.get() + 1));
    assert_eq!(TraceState::try_extract(values), Err(TraceStateError::TooManyMembers));
    assert_eq!(pulled.get(), 1, "no header value is read after the member limit");

    // Past the size limit, nothing more is read: a 1 MB value is refused by its length,
    // before its first (invalid) member is looked at.
    let huge = format!("@bad=1,{}", "a".repeat(1 << 20));
    assert_eq!(TraceState::try_extract([huge.as_bytes()]), Err(TraceStateError::TooLong));
    // The limit is on all values together: the second pushes past it, unread.
    let half = format!("{}a=1", " ".repeat(MAX_TRACESTATE_LEN / 2));
    let pulled = Cell::new(0);
    let values = [half.as_bytes(), half.as_bytes(), b"@bad", b"x=1"]
        .into_iter()
        .inspect(|_| pulled.set(pulled.get() + 1));
    assert_eq!(TraceState::try_extract(values), Err(TraceStateError::TooLong));
    assert_eq!(pulled.get(), 2);
    // Up to the limit, everything is read.
    let fits = format!("{}a=1", " ".repeat(MAX_TRACESTATE_LEN - 3));
    assert_eq!(TraceState::extract([fits.as_bytes()]).get("a"), Some("1"));
    // The longest valid list fits: 32 members of a 256-character key and value.
    let longest: Vec<String> =
        (0..32).map(|i| format!("{}{:04}={}", "k".repeat(252), i, "v".repeat(256))).collect();
    let longest = longest.join(",");
    assert_eq!(longest.len(), 16_447);
    assert_eq!(TraceState::extract([longest.as_bytes()]).len(), 32);
}
