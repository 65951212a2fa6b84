//! The cases of W3C Trace Context's test suite (`test/test.py` of w3c/trace-context, run at
//! its default strictness, level 2), one test each under the same name, with the same
//! inputs and the same expectations.
//!
//! The suite sends a request to a service and reads the headers of the call the service
//! then makes back to it. Here the service is [`relay`]: `TraceContext::extract` on the
//! incoming headers, `TraceContext::inject` into each outgoing call. The checks read the
//! outgoing headers the way the suite does: exactly one `traceparent` of the version `00`
//! format, and a `tracestate` in which every member must follow the key and value grammar
//! (the suite fails on any other), where a repeated key keeps its first value.

#![cfg(feature = "http")]

use contextvars::trace::TraceContext;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The ids the suite sends.
const TRACE_ID: &str = "12345678901234567890123456789012";
const PARENT_ID: &str = "1234567890123456";

/// A valid `traceparent` with flags `00`, sent with the `tracestate` cases.
fn parent_00() -> (&'static str, String) {
    ("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-00"))
}

/// The service under test: extracts the trace of a request with these headers (in this
/// order) and makes `calls` outgoing calls, returning the headers of each.
fn relay(incoming: &[(&str, String)], calls: usize) -> Vec<HeaderMap> {
    let mut headers = HeaderMap::new();
    for (name, value) in incoming {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        headers.append(name, HeaderValue::from_str(value).expect("a valid header value"));
    }
    let trace = TraceContext::extract(&headers);
    (0..calls)
        .map(|_| {
            let mut outgoing = HeaderMap::new();
            trace.inject(&mut outgoing);
            outgoing
        })
        .collect()
}

/// What the suite reads from one outgoing call.
#[derive(Debug)]
struct Outgoing {
    version: String,
    trace_id: String,
    parent_id: String,
    flags: u8,
    /// The `tracestate` members, a repeated key keeping its first value.
    tracestate: Vec<(String, String)>,
}

impl Outgoing {
    fn get(&self, key: &str) -> Option<&str> {
        self.tracestate.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn tracestate_text(&self) -> String {
        self.tracestate.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
    }
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Reads the outgoing headers as the suite does, failing where the suite would.
fn read(headers: &HeaderMap) -> Outgoing {
    let parents: Vec<&HeaderValue> = headers.get_all("traceparent").iter().collect();
    assert_eq!(parents.len(), 1, "expected one traceparent, got {parents:?}");
    let text = parents[0].to_str().expect("an ascii traceparent");
    let fields: Vec<&str> = text.split('-').collect();
    assert_eq!(fields.len(), 4, "traceparent {text:?}");
    assert!(is_lower_hex(fields[0], 2), "version of {text:?}");
    assert!(is_lower_hex(fields[1], 32), "trace-id of {text:?}");
    assert!(is_lower_hex(fields[2], 16), "parent-id of {text:?}");
    assert!(is_lower_hex(fields[3], 2), "flags of {text:?}");
    let flags = u8::from_str_radix(fields[3], 16).expect("hex flags");

    let mut tracestate: Vec<(String, String)> = Vec::new();
    for value in &headers.get_all("tracestate") {
        let value = value.to_str().expect("an ascii tracestate");
        for member in value.split(',').map(|m| m.trim_matches([' ', '\t'])) {
            if member.is_empty() {
                continue;
            }
            let (key, value) = member.split_once('=').expect("key=value");
            assert!(is_key(key), "illegal tracestate key {key:?} sent");
            assert!(is_value(value), "illegal tracestate value {value:?} sent");
            if !tracestate.iter().any(|(k, _)| k == key) {
                tracestate.push((key.to_string(), value.to_string()));
            }
        }
    }
    Outgoing {
        version: fields[0].to_string(),
        trace_id: fields[1].to_string(),
        parent_id: fields[2].to_string(),
        flags,
        tracestate,
    }
}

/// The key grammar of the suite (and of Trace Context level 2).
fn is_key(key: &str) -> bool {
    let keychar = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/@".contains(&b);
    let first_ok = key.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    first_ok && key.len() <= 256 && key.bytes().all(keychar)
}

/// `value = 0*255(chr) nblk-chr`.
fn is_value(value: &str) -> bool {
    let nblk = |b: u8| matches!(b, 0x21..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e);
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 256
        && nblk(bytes[bytes.len() - 1])
        && bytes.iter().all(|&b| b == b' ' || nblk(b))
}

/// One request, one outgoing call.
fn single(incoming: &[(&str, String)]) -> Outgoing {
    let calls = relay(incoming, 1);
    read(&calls[0])
}

fn header(name: &'static str, value: &str) -> (&'static str, String) {
    (name, value.to_string())
}

fn tracestate(value: &str) -> (&'static str, String) {
    header("tracestate", value)
}

/// The suite's cases that send an invalid `traceparent` and expect a new trace-id.
fn assert_restarted(value: &str) {
    let out = single(&[header("traceparent", value)]);
    assert_ne!(out.trace_id, TRACE_ID, "{value:?} was continued");
    assert_ne!(out.trace_id, "0".repeat(32));
    assert_eq!(out.version, "00");
}

fn assert_continued(name: &'static str, value: &str) -> Outgoing {
    let out = single(&[header(name, value)]);
    assert_eq!(out.trace_id, TRACE_ID, "{name}: {value:?} was not continued");
    out
}

// TraceContextTest

#[test]
fn test_both_traceparent_and_tracestate_missing() {
    let out = single(&[]);
    assert_ne!(out.trace_id, "0".repeat(32));
    assert_ne!(out.parent_id, "0".repeat(16));
}

#[test]
fn test_traceparent_included_tracestate_missing() {
    let out = assert_continued("traceparent", &format!("00-{TRACE_ID}-{PARENT_ID}-01"));
    assert_ne!(out.parent_id, PARENT_ID);
}

#[test]
fn test_traceparent_duplicated() {
    let out = single(&[
        header("traceparent", "00-12345678901234567890123456789011-1234567890123456-01"),
        header("traceparent", &format!("00-{TRACE_ID}-{PARENT_ID}-01")),
    ]);
    assert_ne!(out.trace_id, "12345678901234567890123456789011");
    assert_ne!(out.trace_id, TRACE_ID);
}

#[test]
fn test_traceparent_header_name() {
    for name in ["trace-parent", "trace.parent"] {
        let out = single(&[header(name, &format!("00-{TRACE_ID}-{PARENT_ID}-01"))]);
        assert_ne!(out.trace_id, TRACE_ID, "{name}");
    }
}

#[test]
fn test_traceparent_header_name_valid_casing() {
    for name in ["TraceParent", "TrAcEpArEnT", "TRACEPARENT"] {
        assert_continued(name, &format!("00-{TRACE_ID}-{PARENT_ID}-01"));
    }
}

#[test]
fn test_traceparent_version_0x00() {
    assert_restarted(&format!("00-{TRACE_ID}-{PARENT_ID}-01."));
    assert_restarted(&format!("00-{TRACE_ID}-{PARENT_ID}-01-what-the-future-will-be-like"));
}

#[test]
fn test_traceparent_version_0xcc() {
    assert_continued("traceparent", &format!("cc-{TRACE_ID}-{PARENT_ID}-01"));
    assert_continued("traceparent", &format!("cc-{TRACE_ID}-{PARENT_ID}-01-what-the-future-will-be-like"));
    assert_restarted(&format!("cc-{TRACE_ID}-{PARENT_ID}-01.what-the-future-will-be-like"));
}

#[test]
fn test_traceparent_version_0xff() {
    assert_restarted(&format!("ff-{TRACE_ID}-{PARENT_ID}-01"));
}

#[test]
fn test_traceparent_version_illegal_characters() {
    assert_restarted(&format!(".0-{TRACE_ID}-{PARENT_ID}-01"));
    assert_restarted(&format!("0.-{TRACE_ID}-{PARENT_ID}-01"));
}

#[test]
fn test_traceparent_version_too_long() {
    assert_restarted(&format!("000-{TRACE_ID}-{PARENT_ID}-01"));
    assert_restarted(&format!("0000-{TRACE_ID}-{PARENT_ID}-01"));
}

#[test]
fn test_traceparent_version_too_short() {
    assert_restarted(&format!("0-{TRACE_ID}-{PARENT_ID}-01"));
}

#[test]
fn test_traceparent_trace_id_all_zero() {
    assert_restarted(&format!("00-{}-{PARENT_ID}-01", "0".repeat(32)));
}

#[test]
fn test_traceparent_trace_id_illegal_characters() {
    assert_restarted(&format!("00-.2345678901234567890123456789012-{PARENT_ID}-01"));
    assert_restarted(&format!("00-1234567890123456789012345678901.-{PARENT_ID}-01"));
}

#[test]
fn test_traceparent_trace_id_too_long() {
    let value = format!("00-123456789012345678901234567890123-{PARENT_ID}-01");
    assert_restarted(&value);
    let out = single(&[header("traceparent", &value)]);
    assert_ne!(out.trace_id, "23456789012345678901234567890123");
}

#[test]
fn test_traceparent_trace_id_too_short() {
    assert_restarted(&format!("00-1234567890123456789012345678901-{PARENT_ID}-01"));
}

#[test]
fn test_traceparent_parent_id_all_zero() {
    assert_restarted(&format!("00-{TRACE_ID}-0000000000000000-01"));
}

#[test]
fn test_traceparent_parent_id_illegal_characters() {
    assert_restarted(&format!("00-{TRACE_ID}-.234567890123456-01"));
    assert_restarted(&format!("00-{TRACE_ID}-123456789012345.-01"));
}

#[test]
fn test_traceparent_parent_id_too_long() {
    assert_restarted(&format!("00-{TRACE_ID}-12345678901234567-01"));
}

#[test]
fn test_traceparent_parent_id_too_short() {
    assert_restarted(&format!("00-{TRACE_ID}-123456789012345-01"));
}

#[test]
fn test_traceparent_trace_flags_illegal_characters() {
    assert_restarted(&format!("00-{TRACE_ID}-{PARENT_ID}-.0"));
    assert_restarted(&format!("00-{TRACE_ID}-{PARENT_ID}-0."));
}

#[test]
fn test_traceparent_trace_flags_too_long() {
    assert_restarted(&format!("00-{TRACE_ID}-{PARENT_ID}-001"));
}

#[test]
fn test_traceparent_trace_flags_too_short() {
    assert_restarted(&format!("00-{TRACE_ID}-{PARENT_ID}-1"));
}

#[test]
fn test_traceparent_ows_handling() {
    for value in [
        format!(" 00-{TRACE_ID}-{PARENT_ID}-01"),
        format!("\t00-{TRACE_ID}-{PARENT_ID}-01"),
        format!("00-{TRACE_ID}-{PARENT_ID}-01 "),
        format!("00-{TRACE_ID}-{PARENT_ID}-01\t"),
        format!("\t 00-{TRACE_ID}-{PARENT_ID}-01 \t"),
    ] {
        assert_continued("traceparent", &value);
    }
}

#[test]
fn test_tracestate_included_traceparent_missing() {
    let one = single(&[tracestate("foo=1")]);
    let two = single(&[tracestate("foo=1,bar=2")]);
    assert_eq!(one.tracestate.len(), two.tracestate.len());
    // Without a `traceparent`, the `tracestate` is discarded altogether.
    assert!(one.tracestate.is_empty());
}

#[test]
fn test_tracestate_included_traceparent_included() {
    let out = single(&[parent_00(), tracestate("foo=1,bar=2")]);
    assert_eq!(out.trace_id, TRACE_ID);
    assert_eq!((out.get("foo"), out.get("bar")), (Some("1"), Some("2")));
}

#[test]
fn test_tracestate_header_name() {
    for name in ["trace-state", "trace.state"] {
        let out = single(&[parent_00(), header(name, "foo=1")]);
        assert_eq!(out.get("foo"), None, "{name}");
    }
}

#[test]
fn test_tracestate_header_name_valid_casing() {
    for name in ["TraceState", "TrAcEsTaTe", "TRACESTATE"] {
        let out = single(&[parent_00(), header(name, "foo=1")]);
        assert_eq!(out.get("foo"), Some("1"), "{name}");
    }
}

#[test]
fn test_tracestate_empty_header() {
    let out = single(&[parent_00(), tracestate("")]);
    assert_eq!(out.trace_id, TRACE_ID);
    assert!(out.tracestate.is_empty());
    let calls = relay(&[parent_00(), tracestate("")], 1);
    assert!(calls[0].get("tracestate").is_none(), "an empty tracestate is not sent");

    for headers in [
        [parent_00(), tracestate("foo=1"), tracestate("")],
        [parent_00(), tracestate(""), tracestate("foo=1")],
    ] {
        let out = single(&headers);
        assert_eq!(out.trace_id, TRACE_ID);
        assert_eq!(out.get("foo"), Some("1"));
    }
}

#[test]
fn test_tracestate_multiple_headers_different_keys() {
    let out =
        single(&[parent_00(), tracestate("foo=1,bar=2"), tracestate("rojo=1,congo=2"), tracestate("baz=3")]);
    assert_eq!(out.trace_id, TRACE_ID);
    let text = out.tracestate_text();
    let positions: Vec<usize> = ["foo=1", "bar=2", "rojo=1", "congo=2", "baz=3"]
        .iter()
        .map(|member| text.find(member).unwrap_or_else(|| panic!("{member} missing from {text:?}")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "order of {text:?}");
}

#[test]
fn test_tracestate_duplicated_keys() {
    let cases: [(&[&str], &[&str]); 4] = [
        (&["foo=1,foo=1"], &["foo=1"]),
        (&["foo=1,foo=2"], &["foo=1", "foo=2"]),
        (&["foo=1", "foo=1"], &["foo=1"]),
        (&["foo=1", "foo=2"], &["foo=1", "foo=2"]),
    ];
    for (values, any_of) in cases {
        let mut headers = vec![parent_00()];
        headers.extend(values.iter().map(|v| tracestate(v)));
        let out = single(&headers);
        assert_eq!(out.trace_id, TRACE_ID);
        let text = out.tracestate_text();
        assert!(any_of.iter().any(|member| text.contains(member)), "{values:?} gave {text:?}");
    }
}

#[test]
fn test_tracestate_all_allowed_characters() {
    let key: String = ('a'..='z').chain('0'..='9').chain("_-*/".chars()).collect();
    let value: String = (0x20u8..=0x2b).chain(0x2d..=0x3c).chain(0x3e..=0x7e).map(char::from).collect();
    for key in [key.clone(), format!("{key}@a-z0-9_-*/")] {
        let out = single(&[parent_00(), tracestate(&format!("{key}={value}"))]);
        assert_eq!(out.get(&key), Some(value.as_str()), "{key}");
    }
}

#[test]
fn test_tracestate_ows_handling() {
    for value in ["foo=1 \t , \t bar=2, \t baz=3", "foo=1\t \t,\t \tbar=2,\t \tbaz=3"] {
        let out = single(&[parent_00(), tracestate(value)]);
        assert_eq!((out.get("foo"), out.get("bar"), out.get("baz")), (Some("1"), Some("2"), Some("3")));
    }
    for value in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
        let out = single(&[parent_00(), tracestate(value)]);
        assert_eq!(out.trace_id, TRACE_ID);
        assert_eq!(out.get("foo"), Some("1"), "{value:?}");
    }
}

#[test]
fn test_tracestate_key_illegal_characters() {
    for (value, key) in [("foo =1", "foo "), ("FOO=1", "FOO"), ("foo.bar=1", "foo.bar")] {
        let out = single(&[parent_00(), tracestate(value)]);
        assert_eq!(out.get(key), None, "{value:?}");
    }
}

#[test]
fn test_tracestate_key_illegal_vendor_format() {
    for key in ["foo@", "foo@@bar", "foo@bar@baz"] {
        let out = single(&[parent_00(), tracestate(&format!("{key}=1,bar=2"))]);
        assert_eq!((out.get(key), out.get("bar")), (Some("1"), Some("2")), "{key}");
    }
    let out = single(&[parent_00(), tracestate("@foo=1,bar=2")]);
    assert_eq!(out.get("bar"), None);
}

#[test]
fn test_tracestate_member_count_limit() {
    let members = |n: usize| (1..=n).map(|i| format!("bar{i:02}={i:02}")).collect::<Vec<_>>();
    let headers = |members: Vec<String>| {
        let mut headers = vec![parent_00()];
        headers.extend(members.chunks(10).map(|chunk| tracestate(&chunk.join(","))));
        headers
    };
    let out = single(&headers(members(32)));
    assert_eq!(out.get("bar01"), Some("01"));
    assert_eq!(out.tracestate.len(), 32);

    let out = single(&headers(members(33)));
    assert_eq!(out.get("bar01"), None);
}

#[test]
fn test_tracestate_key_length_limit() {
    let kept = |key: &str| {
        let out = single(&[parent_00(), tracestate("foo=1"), tracestate(&format!("{key}=1"))]);
        assert_eq!(out.get("foo"), Some("1"), "{key}");
        assert_eq!(out.get(key), Some("1"), "{key}");
    };
    kept(&"z".repeat(256));
    kept(&format!("{}@{}", "t".repeat(241), "v".repeat(14)));
    kept(&format!("{}@v", "t".repeat(242)));
    kept(&format!("t@{}", "v".repeat(15)));

    let out = single(&[parent_00(), tracestate("foo=1"), tracestate(&format!("{}=1", "z".repeat(257)))]);
    assert_eq!(out.get("foo"), None);
}

#[test]
fn test_tracestate_value_illegal_characters() {
    let out = single(&[parent_00(), tracestate("foo=bar=baz")]);
    assert_eq!(out.get("foo"), None);
    let out = single(&[parent_00(), tracestate("foo=,bar=3")]);
    assert_eq!((out.get("foo"), out.get("bar")), (None, None));
}

// AdvancedTest

#[test]
fn test_multiple_requests_with_valid_traceparent() {
    let calls = relay(&[header("traceparent", &format!("00-{TRACE_ID}-{PARENT_ID}-01"))], 3);
    let outs: Vec<Outgoing> = calls.iter().map(read).collect();
    assert!(outs.iter().all(|out| out.trace_id == TRACE_ID));
    let mut parents: Vec<&str> = outs.iter().map(|out| out.parent_id.as_str()).collect();
    parents.sort_unstable();
    parents.dedup();
    assert_eq!(parents.len(), 3);
}

#[test]
fn test_multiple_requests_without_traceparent() {
    let outs: Vec<Outgoing> = relay(&[], 3).iter().map(read).collect();
    let mut parents: Vec<&str> = outs.iter().map(|out| out.parent_id.as_str()).collect();
    parents.sort_unstable();
    parents.dedup();
    assert_eq!(parents.len(), 3);
}

#[test]
fn test_multiple_requests_with_illegal_traceparent() {
    let calls = relay(&[header("traceparent", &format!("00-{}-{PARENT_ID}-01", "0".repeat(32)))], 3);
    let outs: Vec<Outgoing> = calls.iter().map(read).collect();
    assert!(outs.iter().all(|out| out.trace_id != "0".repeat(32)));
    let mut parents: Vec<&str> = outs.iter().map(|out| out.parent_id.as_str()).collect();
    parents.sort_unstable();
    parents.dedup();
    assert_eq!(parents.len(), 3);
}

// TraceContext2Test (level 2; the suite skips it unless asked for level 2)

#[test]
fn test_propagates_random_flag() {
    let out = assert_continued("traceparent", &format!("00-{TRACE_ID}-{PARENT_ID}-02"));
    assert_ne!(out.parent_id, PARENT_ID);
    assert_eq!(out.flags & 0x02, 0x02, "random flag not set");
}
