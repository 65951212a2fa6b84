//! `trace::sqlcommenter::annotate` on arbitrary statements and key-values: never panics; a
//! statement that holds a comment, or no pairs, is returned as it is; otherwise the result
//! is the statement (a final `;` and trailing whitespace moved after the comment) with one
//! comment that nothing in a key or value can close early, whose pairs decode back to the
//! input's, sorted by key, first value kept.

#![no_main]

use arbitrary::Arbitrary;
use contextvars::trace::sqlcommenter::annotate;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    sql: String,
    pairs: Vec<(String, String)>,
}

/// `text` with `\'` unescaped and `%XX` decoded.
fn decode(text: &str) -> String {
    let unescaped = text.replace("\\'", "'");
    let bytes = unescaped.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fuzz_target!(|input: Input| {
    let pairs = input.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let out = annotate(&input.sql, pairs);
    if input.sql.contains("--") || input.sql.contains("/*") || input.pairs.is_empty() {
        assert_eq!(out, input.sql);
        return;
    }
    // One comment, opened and closed once (the statement itself may hold a stray `*/`, in a
    // string literal for example, but no `/*`: the first ` /*` is the comment's).
    let start = out.find(" /*").unwrap();
    let comment = &out[start..];
    assert_eq!(comment.matches("/*").count(), 1, "{out:?}");
    assert_eq!(comment.matches("*/").count(), 1, "{out:?}");
    let end = start + comment.find("*/").unwrap();
    let (statement, after) = (&out[..start], &out[end + 2..]);
    let trimmed = input.sql.trim_end();
    let expected_statement = trimmed.strip_suffix(';').map_or(trimmed, str::trim_end);
    assert_eq!(statement, expected_statement);
    assert_eq!(after.strip_prefix(';').unwrap_or(after), &input.sql[trimmed.len()..]);

    // The pairs: URL-encoded text holds no `,`, `=` or unescaped `'`, so splitting is exact.
    let mut expected: Vec<(&str, &str)> = input.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    expected.sort_by(|a, b| a.0.cmp(b.0));
    expected.dedup_by(|later, first| later.0 == first.0);
    let body = &out[start + 3..end];
    let decoded: Vec<(String, String)> = body
        .split(',')
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap();
            let value = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap();
            (decode(key), decode(value))
        })
        .collect();
    let decoded: Vec<(&str, &str)> = decoded.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(decoded, expected);
});
