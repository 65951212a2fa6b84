//! `TraceState::extract` on arbitrary bytes (split into header values at each 0xff
//! byte): never panics; the result has at most 32 members with distinct keys, formats as
//! printable ASCII only, and parses back to the same list.

#![no_main]

use std::collections::HashSet;

use contextvars::trace::TraceState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let state = TraceState::extract(data.split(|&b| b == 0xff));
    assert!(state.len() <= 32);
    let keys: HashSet<&str> = state.iter().map(|(key, _)| key).collect();
    assert_eq!(keys.len(), state.len(), "duplicated keys in {state:?}");

    let text = state.to_string();
    assert!(text.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{text:?}");
    assert!(!text.starts_with([' ', ',']) && !text.ends_with([' ', ',']), "{text:?}");
    assert_eq!(TraceState::extract([text.as_bytes()]), state);
    assert_eq!(state.is_empty(), text.is_empty());
});
