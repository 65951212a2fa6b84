//! The W3C `tracestate` header (Trace Context, level 2 key grammar): [`TraceState`].

use std::fmt;

use super::traceparent::trim_ows;

/// The most list members a `tracestate` may hold; a received list with more is discarded.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{MAX_TRACESTATE_MEMBERS, TraceState};
///
/// let members = |n: usize| (0..n).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
/// assert_eq!(TraceState::extract([members(MAX_TRACESTATE_MEMBERS).as_bytes()]).len(), 32);
/// assert!(TraceState::extract([members(MAX_TRACESTATE_MEMBERS + 1).as_bytes()]).is_empty());
/// ```
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

/// The most bytes of `tracestate` header values read; a request that sends more has its
/// `tracestate` discarded without looking at it. The longest valid list, 32 members of a
/// 256-character key and a 256-character value, is 16,447 bytes: this leaves room for
/// optional whitespace and empty members.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{MAX_TRACESTATE_LEN, TraceState, TraceStateError};
///
/// let padded = format!("{}a=1", " ".repeat(MAX_TRACESTATE_LEN));
/// assert_eq!(TraceState::try_extract([padded.as_bytes()]), Err(TraceStateError::TooLong));
/// ```
pub const MAX_TRACESTATE_LEN: usize = 32 * 1024;

/// The vendors' `tracestate`: an ordered list of `key=value` members, at most
/// [`MAX_TRACESTATE_MEMBERS`], each key at most once, every member valid.
///
/// [`extract`](Self::extract) processes what a request received. It implements the key
/// grammar of W3C Trace Context **level 2** (a key is a lowercase letter or a digit, then up
/// to 255 of `a-z0-9_-*/@`, so `foo@`, `foo@@bar` and `tenant@vendor` are keys) and the
/// strict choices that W3C's test suite checks at its default level:
///
/// - several `tracestate` headers are combined, in order, as one comma-separated list;
/// - spaces and tabs around members are skipped, and so are empty members;
/// - a key that appears again keeps its first member; the later ones are dropped;
/// - one invalid member (bad key, bad or empty value, no `=`), more than 32 members, or more
///   than [`MAX_TRACESTATE_LEN`] bytes of header values discard the whole header: the list
///   is then empty, and the trace itself is still continued.
///
/// Parsing stops at the first reason to discard, so the work a client can cause is bounded
/// by [`MAX_TRACESTATE_LEN`] bytes and 33 members, whatever it sends.
///
/// It formats (`Display`) as the header value to send: members joined by `,`, without
/// whitespace. A service that continues traces but records no spans passes it on unchanged.
///
/// # Examples
///
/// ```
/// use contextvars::trace::TraceState;
///
/// let state = TraceState::extract([&b"rojo=00f067aa0ba902b7 , "[..], b"congo=t61rcWkgMzE"]);
/// assert_eq!(state.to_string(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
/// assert_eq!(state.get("congo"), Some("t61rcWkgMzE"));
/// assert_eq!(state.len(), 2);
///
/// // one invalid member discards the header
/// assert!(TraceState::extract([&b"rojo=1,BAD=2"[..]]).is_empty());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct TraceState {
    /// The header value: the members joined by `,`.
    text: String,
    /// Where each member is in `text`.
    members: Vec<Member>,
}

/// One member of a [`TraceState`]: `text[start..equals]` is its key, `text[equals + 1..end]`
/// its value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Member {
    start: usize,
    equals: usize,
    end: usize,
}

impl TraceState {
    /// The empty list.
    #[must_use]
    pub const fn new() -> Self {
        Self { text: String::new(), members: Vec::new() }
    }

    /// The list carried by a request's `tracestate` header values, in the order received,
    /// processed as the [type's documentation](Self) describes: empty when the header is
    /// missing or must be discarded. Never fails.
    ///
    /// Only call it when the request's `traceparent` was valid: the specification forbids
    /// using `tracestate` otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::TraceState;
    ///
    /// let state = TraceState::extract([&b"a=1,b=2,a=3"[..], b" , c=x y ,"]);
    /// assert_eq!(state.as_str(), "a=1,b=2,c=x y");
    /// assert_eq!(state.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2"), ("c", "x y")]);
    ///
    /// assert!(TraceState::extract([&b"a=1"[..], b"b="]).is_empty());
    /// ```
    #[must_use]
    pub fn extract<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Self {
        Self::try_extract(values).unwrap_or_default()
    }

    /// [`extract`](Self::extract), saying why a header was discarded.
    ///
    /// # Errors
    ///
    /// The first reason found to discard the header.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{TraceState, TraceStateError};
    ///
    /// assert_eq!(TraceState::try_extract([&b"a=1,@b=2"[..]]), Err(TraceStateError::Key));
    /// assert_eq!(TraceState::try_extract([&b"a=b=c"[..]]), Err(TraceStateError::Value));
    /// let many = (0..33).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
    /// assert_eq!(TraceState::try_extract([many.as_bytes()]), Err(TraceStateError::TooManyMembers));
    /// ```
    pub fn try_extract<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, TraceStateError> {
        let mut members: Vec<(&str, &str)> = Vec::new();
        let (mut len, mut count) = (0, 0);
        for value in values {
            len += value.len();
            if len > MAX_TRACESTATE_LEN {
                return Err(TraceStateError::TooLong);
            }
            for member in value.split(|&b| b == b',') {
                let member = trim_ows(member);
                if member.is_empty() {
                    continue;
                }
                let (key, value) = parse_member(member)?;
                // Repeats count: the limit is on what was received.
                count += 1;
                if count > MAX_TRACESTATE_MEMBERS {
                    return Err(TraceStateError::TooManyMembers);
                }
                if members.iter().all(|(k, _)| *k != key) {
                    members.push((key, value));
                }
            }
        }
        Ok(Self::from_members(members.iter().copied()))
    }

    /// The list of these members, already checked.
    fn from_members<'a>(members: impl IntoIterator<Item = (&'a str, &'a str)> + Clone) -> Self {
        let (mut count, mut len) = (0, 0);
        for (key, value) in members.clone() {
            count += 1;
            len += key.len() + value.len() + 2;
        }
        let mut state = Self { text: String::with_capacity(len), members: Vec::with_capacity(count) };
        for (key, value) in members {
            if !state.text.is_empty() {
                state.text.push(',');
            }
            let start = state.text.len();
            state.text.push_str(key);
            let equals = state.text.len();
            state.text.push('=');
            state.text.push_str(value);
            state.members.push(Member { start, equals, end: state.text.len() });
        }
        state
    }

    /// The value of `key`, if the list has it.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The members as `(key, value)` pairs, in order.
    #[must_use = "iterators are lazy"]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.members.iter().map(|m| (&self.text[m.start..m.equals], &self.text[m.equals + 1..m.end]))
    }

    /// The number of members.
    #[must_use]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the list is empty (then no `tracestate` header is sent).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The header value to send: the members joined by `,`, without whitespace; the same as
    /// `to_string()`, without allocating.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A copy of the list with `key=value` as its first member, for a service that records
    /// spans and adds its own entry: an existing member with this key is removed, and the
    /// list is cut to [`MAX_TRACESTATE_MEMBERS`] from the end.
    ///
    /// # Errors
    ///
    /// When the key or the value does not follow the grammar.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{TraceState, TraceStateError};
    ///
    /// let state = TraceState::extract([&b"congo=1,rojo=2"[..]]);
    /// assert_eq!(state.with_member("rojo", "3").unwrap().to_string(), "rojo=3,congo=1");
    /// assert_eq!(state.with_member("Rojo", "3"), Err(TraceStateError::Key));
    /// assert_eq!(state.with_member("rojo", "a,b"), Err(TraceStateError::Value));
    /// ```
    pub fn with_member(&self, key: &str, value: &str) -> Result<Self, TraceStateError> {
        if !is_key(key.as_bytes()) {
            return Err(TraceStateError::Key);
        }
        if !is_value(value.as_bytes()) {
            return Err(TraceStateError::Value);
        }
        let others = self.iter().filter(|(k, _)| *k != key);
        let members: Vec<(&str, &str)> =
            std::iter::once((key, value)).chain(others).take(MAX_TRACESTATE_MEMBERS).collect();
        Ok(Self::from_members(members.iter().copied()))
    }
}

impl fmt::Debug for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl fmt::Display for TraceState {
    /// The header value: `key=value` members joined by `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a `tracestate` member is invalid.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{TraceState, TraceStateError};
///
/// let error = TraceState::new().with_member("vendor", "").unwrap_err();
/// assert_eq!((error, error.to_string()), (TraceStateError::Value, "invalid tracestate value".to_string()));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceStateError {
    /// The key does not start with a lowercase letter or a digit, is longer than 256
    /// characters, or holds a character outside `a-z0-9_-*/@`.
    Key,
    /// The value is empty, longer than 256 characters, ends with a space, or holds a
    /// character outside printable ASCII or a `,` or `=`.
    Value,
    /// The member has no `=`.
    Member,
    /// More than [`MAX_TRACESTATE_MEMBERS`] members.
    TooManyMembers,
    /// More than [`MAX_TRACESTATE_LEN`] bytes of header values.
    TooLong,
}

impl fmt::Display for TraceStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Key => "invalid tracestate key",
            Self::Value => "invalid tracestate value",
            Self::Member => "tracestate member is not key=value",
            Self::TooManyMembers => "tracestate has more than 32 members",
            Self::TooLong => "tracestate is longer than 32768 bytes",
        })
    }
}

impl std::error::Error for TraceStateError {}

/// One `key=value` member, already trimmed and not empty.
fn parse_member(member: &[u8]) -> Result<(&str, &str), TraceStateError> {
    let equals = member.iter().position(|&b| b == b'=').ok_or(TraceStateError::Member)?;
    let (key, value) = (&member[..equals], &member[equals + 1..]);
    if !is_key(key) {
        return Err(TraceStateError::Key);
    }
    if !is_value(value) {
        return Err(TraceStateError::Value);
    }
    // Both are ASCII once checked.
    let key = std::str::from_utf8(key).map_err(|_| TraceStateError::Key)?;
    let value = std::str::from_utf8(value).map_err(|_| TraceStateError::Value)?;
    Ok((key, value))
}

/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )` of level 2, with
/// `keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`.
fn is_key(key: &[u8]) -> bool {
    let keychar =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/' | b'@');
    matches!(key, [first, rest @ ..]
        if (first.is_ascii_lowercase() || first.is_ascii_digit()) && rest.len() <= 255 && rest.iter().all(|&b| keychar(b)))
}

/// `value = 0*255(chr) nblk-chr`: 1 to 256 printable ASCII characters but `,` and `=`, the
/// last not a space.
fn is_value(value: &[u8]) -> bool {
    let nblk = |b: u8| matches!(b, 0x21..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e);
    match value {
        [chars @ .., last] => {
            chars.len() <= 255 && nblk(*last) && chars.iter().all(|&b| b == b' ' || nblk(b))
        }
        [] => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> TraceState {
        TraceState::extract(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn combines_headers_in_order() {
        let state = parse(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]);
        assert_eq!(state.to_string(), "foo=1,bar=2,rojo=1,congo=2,baz=3");
        assert_eq!(state.iter().collect::<Vec<_>>()[2], ("rojo", "1"));
    }

    #[test]
    fn empty_headers_and_members_are_accepted() {
        assert!(parse(&[""]).is_empty());
        assert_eq!(parse(&["foo=1", ""]).to_string(), "foo=1");
        assert_eq!(parse(&["", "foo=1"]).to_string(), "foo=1");
        assert_eq!(parse(&[",foo=1,, \t ,bar=2,"]).to_string(), "foo=1,bar=2");
    }

    #[test]
    fn optional_whitespace_around_members_is_skipped() {
        for value in ["foo=1 \t , \t bar=2, \t baz=3", "foo=1\t \t,\t \tbar=2,\t \tbaz=3"] {
            assert_eq!(parse(&[value]).to_string(), "foo=1,bar=2,baz=3");
        }
        for value in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
            assert_eq!(parse(&[value]).get("foo"), Some("1"), "{value:?}");
        }
        // A leading space after `=` belongs to the value.
        assert_eq!(parse(&["foo= 1"]).get("foo"), Some(" 1"));
    }

    #[test]
    fn all_allowed_characters() {
        let key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
        let value: String = (0x20u8..=0x7e).filter(|b| !matches!(b, b',' | b'=')).map(char::from).collect();
        assert_eq!(parse(&[&format!("{key}={value}")]).get(key), Some(&*value));
        for vendor_key in [format!("{key}@a-z0-9_-*/"), "0tenant@system".to_string()] {
            assert_eq!(parse(&[&format!("{vendor_key}={value}")]).get(&vendor_key), Some(&*value));
        }
    }

    #[test]
    fn one_invalid_member_discards_the_header() {
        for bad in ["foo =1", "FOO=1", "foo.bar=1", "@foo=1", "_foo=1", "foo", "=1"] {
            let header = format!("{bad},bar=2");
            assert_eq!(TraceState::try_extract([header.as_bytes()]).map(|s| s.len()).ok(), None, "{bad:?}");
            assert!(parse(&["bar=2", bad]).is_empty(), "{bad:?}");
        }
        for bad in ["foo=", "foo=a\u{1}b", "foo=a=b", "foo=\u{7f}", "foo=é", "foo=a\tb", "foo=a\r\nx"] {
            assert!(parse(&[&format!("bar=2,{bad}")]).is_empty(), "{bad:?}");
        }
        assert_eq!(TraceState::try_extract([&b"a=1,b"[..]]), Err(TraceStateError::Member));
    }

    #[test]
    fn level_2_keys_with_at_signs_are_kept() {
        for key in ["foo@", "foo@@bar", "foo@bar@baz", "0tenant@system", "1", "a@1"] {
            assert_eq!(parse(&[&format!("{key}=1,bar=2")]).get(key), Some("1"), "{key}");
        }
    }

    #[test]
    fn key_and_value_length_limits() {
        let cases = [
            (format!("{}=1", "z".repeat(256)), true),
            (format!("{}=1", "z".repeat(257)), false),
            (format!("{}@{}=1", "t".repeat(241), "v".repeat(14)), true),
            (format!("{}@v=1", "t".repeat(242)), true),
            (format!("t@{}=1", "v".repeat(15)), true),
            (format!("{}@{}=1", "t".repeat(242), "v".repeat(14)), false),
            (format!("foo={}", "v".repeat(256)), true),
            (format!("foo={}", "v".repeat(257)), false),
        ];
        for (member, valid) in cases {
            let state = parse(&["foo0=1", &member]);
            assert_eq!(state.len(), if valid { 2 } else { 0 }, "{member}");
        }
    }

    #[test]
    fn a_repeated_key_keeps_its_first_member() {
        for values in [&["foo=1,foo=1"][..], &["foo=1,foo=2"], &["foo=1", "foo=1"], &["foo=1", "foo=2"]] {
            let state = parse(values);
            assert_eq!((state.len(), state.get("foo")), (1, Some("1")), "{values:?}");
        }
        assert_eq!(parse(&["a=1,b=2,a=3,c=4"]).to_string(), "a=1,b=2,c=4");
        assert_eq!(format!("{:?}", parse(&["a=1"])), r#"{"a": "1"}"#);
        assert_eq!(parse(&["a=1, b=2"]).as_str(), "a=1,b=2");
    }

    #[test]
    fn more_than_32_members_discard_the_header() {
        let members: Vec<String> = (1..=32).map(|i| format!("bar{i:02}={i:02}")).collect();
        let state = parse(&[&members.join(",")]);
        assert_eq!((state.len(), state.get("bar01")), (32, Some("01")));

        let members: Vec<String> = (1..=33).map(|i| format!("bar{i:02}={i:02}")).collect();
        assert_eq!(
            TraceState::try_extract([members.join(",").as_bytes()]),
            Err(TraceStateError::TooManyMembers)
        );
        // Repeats count: 33 members received, even if only 32 keys.
        let repeated = format!("{},bar01=again", members[..32].join(","));
        assert!(parse(&[&repeated]).is_empty());
        // Empty members do not.
        assert_eq!(parse(&[&format!("{},,, ,", members[..32].join(","))]).len(), 32);
    }

    #[test]
    fn with_member_puts_the_entry_first() {
        let state = parse(&["a=1,b=2"]);
        assert_eq!(state.with_member("c", "3").unwrap().to_string(), "c=3,a=1,b=2");
        assert_eq!(state.with_member("b", "9").unwrap().to_string(), "b=9,a=1");
        assert_eq!(TraceState::new().with_member("k", "v ").unwrap_err(), TraceStateError::Value);
        let full = parse(&[&(1..=32).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",")]);
        assert_eq!(full.len(), 32);
        let added = full.with_member("new", "1").unwrap();
        assert_eq!((added.len(), added.get("k32")), (32, None));
    }

    #[test]
    fn errors_display_in_lowercase() {
        for e in [
            TraceStateError::Key,
            TraceStateError::Value,
            TraceStateError::Member,
            TraceStateError::TooManyMembers,
            TraceStateError::TooLong,
        ] {
            let text = e.to_string();
            assert!(text.starts_with(|c: char| c.is_ascii_lowercase()) && !text.ends_with('.'));
        }
    }
}
