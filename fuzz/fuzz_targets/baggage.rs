//! `Baggage::extract` on arbitrary bytes (split into header values at each 0xff byte): never
//! panics; keeps at most 64 members with distinct keys; formats as printable ASCII without
//! spaces, in at most 8,192 bytes (one header, even when decoding made a value longer to send),
//! and parses back to the same baggage.

#![no_main]

use std::collections::HashSet;

use contextvars::trace::{Baggage, MAX_BAGGAGE_LEN, MAX_BAGGAGE_MEMBERS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let baggage = Baggage::extract(data.split(|&b| b == 0xff));
    assert!(baggage.len() <= MAX_BAGGAGE_MEMBERS);
    let keys: HashSet<&str> = baggage.iter().map(|(key, _)| key).collect();
    assert_eq!(keys.len(), baggage.len(), "duplicated keys in {baggage:?}");

    let text = baggage.to_string();
    assert!(text.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{text:?}");
    assert!(text.len() <= MAX_BAGGAGE_LEN, "{} bytes", text.len());
    assert_eq!(Baggage::extract([text.as_bytes()]), baggage);
    assert_eq!(baggage.is_empty(), text.is_empty());
});
