//! The W3C `tracestate` header (Trace Context, level 1): [`TraceState`].

use std::fmt;

use super::traceparent::trim_ows;

/// The most list members a `tracestate` may hold.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{MAX_TRACESTATE_MEMBERS, TraceState};
///
/// let many: Vec<String> = (0..40).map(|i| format!("k{i}=v")).collect();
/// let state = TraceState::parse_headers([many.join(",").as_bytes()]);
/// assert_eq!(state.len(), MAX_TRACESTATE_MEMBERS);
/// ```
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

/// Members longer than this are the first dropped when a list is cut to
/// [`MAX_TRACESTATE_MEMBERS`], as the specification recommends.
const LONG_MEMBER: usize = 128;

/// The vendors' `tracestate`: an ordered list of `key=value` members, at most
/// [`MAX_TRACESTATE_MEMBERS`], each key at most once, every member valid.
///
/// [`parse_headers`](Self::parse_headers) processes what a request received, as W3C Trace
/// Context level 1 describes:
///
/// - several `tracestate` headers are combined, in order, as one comma-separated list;
/// - spaces and tabs around members are skipped, and so are empty members;
/// - a member whose key or value does not follow the grammar is dropped (the specification
///   allows discarding invalid entries), the others are kept;
/// - only one member per key is allowed: a key that appears more than once is ambiguous (no
///   way to tell which is the latest position), so all its members are dropped;
/// - beyond 32 members the list is cut as the specification says to truncate: members
///   longer than 128 characters go first, then members from the end.
///
/// It formats (`Display`) as the header value to send: members joined by `,`, without
/// whitespace. A service that continues traces but records no spans passes it on unchanged.
///
/// # Examples
///
/// ```
/// use contextvars::trace::TraceState;
///
/// let state = TraceState::parse_headers([&b"rojo=00f067aa0ba902b7 , BAD=1"[..], b"congo=t61rcWkgMzE"]);
/// assert_eq!(state.to_string(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
/// assert_eq!(state.get("congo"), Some("t61rcWkgMzE"));
/// assert_eq!(state.len(), 2);
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
    /// processed as the [type's documentation](Self) describes. Never fails.
    ///
    /// Only call it when the request's `traceparent` was valid: the specification forbids
    /// parsing `tracestate` otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::TraceState;
    ///
    /// let state = TraceState::parse_headers([&b"a=1,b=2,a=3"[..], b" , c=x y ,bad key=1"]);
    /// assert_eq!(state.as_str(), "b=2,c=x y");
    /// assert_eq!(state.iter().collect::<Vec<_>>(), [("b", "2"), ("c", "x y")]);
    /// assert_eq!((state.len(), state.get("a")), (2, None));
    /// ```
    pub fn parse_headers<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut members: Vec<(&str, &str)> = Vec::with_capacity(4);
        for value in values {
            for member in value.split(|&b| b == b',') {
                let member = trim_ows(member);
                if member.is_empty() {
                    continue;
                }
                if let Ok(parsed) = parse_member(member) {
                    members.push(parsed);
                }
            }
        }
        drop_duplicated_keys(&mut members);
        truncate(&mut members);
        Self::from_members(members.iter().copied())
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
    /// When the key or the value does not follow the grammar of level 1.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{TraceState, TraceStateError};
    ///
    /// let state = TraceState::parse_headers([&b"congo=1,rojo=2"[..]]);
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
    /// The key is not a simple key (a lowercase letter, then up to 255 of `a-z0-9_-*/`) nor a
    /// multi-tenant key (`tenant@system`, at most 241 and 14 characters).
    Key,
    /// The value is empty, longer than 256 characters, ends with a space, or holds a
    /// character outside printable ASCII or a `,` or `=`.
    Value,
    /// The member has no `=`.
    Member,
}

impl fmt::Display for TraceStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Key => "invalid tracestate key",
            Self::Value => "invalid tracestate value",
            Self::Member => "tracestate member is not key=value",
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

fn is_lcalpha(b: u8) -> bool {
    b.is_ascii_lowercase()
}

fn is_keychar(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
}

/// `key = simple-key / multi-tenant-key` of level 1.
fn is_key(key: &[u8]) -> bool {
    match key.iter().position(|&b| b == b'@') {
        None => {
            matches!(key, [first, rest @ ..] if is_lcalpha(*first) && rest.len() <= 255 && rest.iter().all(|&b| is_keychar(b)))
        }
        Some(at) => {
            let (tenant, system) = (&key[..at], &key[at + 1..]);
            let tenant_ok = matches!(tenant, [first, rest @ ..]
                if (is_lcalpha(*first) || first.is_ascii_digit()) && rest.len() <= 240 && rest.iter().all(|&b| is_keychar(b)));
            let system_ok = matches!(system, [first, rest @ ..]
                if is_lcalpha(*first) && rest.len() <= 13 && rest.iter().all(|&b| is_keychar(b)));
            tenant_ok && system_ok
        }
    }
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

/// Removes every member whose key appears more than once.
fn drop_duplicated_keys(members: &mut Vec<(&str, &str)>) {
    if members.len() <= 2 * MAX_TRACESTATE_MEMBERS {
        // The usual case: few members, compare them pairwise without allocating.
        let duplicated =
            |key: &str, members: &[(&str, &str)]| members.iter().filter(|(k, _)| *k == key).count() > 1;
        if members.iter().any(|(k, _)| duplicated(k, members)) {
            let all = members.clone();
            members.retain(|(k, _)| !duplicated(k, &all));
        }
        return;
    }
    let mut keys: Vec<&str> = members.iter().map(|(k, _)| *k).collect();
    keys.sort_unstable();
    let mut duplicated: Vec<&str> = keys.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
    if duplicated.is_empty() {
        return;
    }
    duplicated.dedup();
    members.retain(|(k, _)| duplicated.binary_search(k).is_err());
}

/// Cuts the list to [`MAX_TRACESTATE_MEMBERS`]: long members first, then from the end.
fn truncate(members: &mut Vec<(&str, &str)>) {
    let mut excess = members.len().saturating_sub(MAX_TRACESTATE_MEMBERS);
    if excess == 0 {
        return;
    }
    let is_long = |(k, v): &(&str, &str)| k.len() + 1 + v.len() > LONG_MEMBER;
    let long = members.iter().filter(|m| is_long(m)).count();
    if long > 0 {
        // Drop up to `excess` long members, the last ones first.
        let mut to_drop = excess.min(long);
        excess -= to_drop;
        let mut keep = vec![true; members.len()];
        for (i, member) in members.iter().enumerate().rev() {
            if to_drop == 0 {
                break;
            }
            if is_long(member) {
                keep[i] = false;
                to_drop -= 1;
            }
        }
        let mut flags = keep.into_iter();
        members.retain(|_| flags.next().unwrap_or(true));
    }
    members.truncate(members.len() - excess);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> TraceState {
        TraceState::parse_headers(values.iter().map(|v| v.as_bytes()))
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
    fn invalid_members_are_dropped_and_the_others_kept() {
        for bad in
            ["foo =1", "FOO=1", "foo.bar=1", "foo@=1", "@foo=1", "foo@@bar=1", "foo@bar@baz=1", "1foo=1"]
        {
            let state = parse(&[&format!("{bad},bar=2")]);
            assert_eq!(state.to_string(), "bar=2", "{bad:?}");
        }
        for bad in
            ["foo=", "foo=a\u{1}b", "foo=a=b", "foo=\u{7f}", "foo=é", "foo", "=1", "foo=a\tb", "foo=a\r\nx"]
        {
            let state = parse(&[&format!("bar=2,{bad}")]);
            assert_eq!(state.get("bar"), Some("2"), "{bad:?}");
            assert_eq!(state.get("foo"), None, "{bad:?}");
        }
    }

    #[test]
    fn key_and_value_length_limits() {
        let cases = [
            (format!("{}=1", "z".repeat(256)), true),
            (format!("{}=1", "z".repeat(257)), false),
            (format!("{}@{}=1", "t".repeat(241), "v".repeat(14)), true),
            (format!("{}@v=1", "t".repeat(242)), false),
            (format!("t@{}=1", "v".repeat(15)), false),
            (format!("foo={}", "v".repeat(256)), true),
            (format!("foo={}", "v".repeat(257)), false),
        ];
        for (member, valid) in cases {
            let state = parse(&["foo0=1", &member]);
            assert_eq!(state.len(), if valid { 2 } else { 1 }, "{member}");
            assert_eq!(state.get("foo0"), Some("1"));
        }
    }

    #[test]
    fn duplicated_keys_drop_every_member_with_that_key() {
        for values in [&["foo=1,foo=1"][..], &["foo=1,foo=2"], &["foo=1", "foo=1"], &["foo=1", "foo=2"]] {
            let state = parse(values);
            assert_eq!(state.get("foo"), None, "{values:?}");
        }
        assert_eq!(parse(&["a=1,b=2,a=3,c=4"]).to_string(), "b=2,c=4");
        // Long lists take another path.
        let many: Vec<String> = (0..70).map(|i| format!("k{i}=v")).chain(["k5=again".into()]).collect();
        let state = parse(&[&many.join(",")]);
        assert_eq!((state.len(), state.get("k5"), state.get("k4")), (32, None, Some("v")));
        assert_eq!((state.get("k32"), state.get("k33")), (Some("v"), None));
        assert_eq!(format!("{:?}", parse(&["a=1"])), r#"{"a": "1"}"#);
        assert_eq!(parse(&["a=1, b=2"]).as_str(), "a=1,b=2");
    }

    #[test]
    fn at_most_32_members() {
        let members: Vec<String> = (1..=32).map(|i| format!("bar{i:02}={i:02}")).collect();
        let state = parse(&[&members.join(",")]);
        assert_eq!((state.len(), state.get("bar01")), (32, Some("01")));

        let members: Vec<String> = (1..=34).map(|i| format!("bar{i:02}={i:02}")).collect();
        let state = parse(&[&members.join(",")]);
        assert_eq!(state.len(), 32);
        assert_eq!((state.get("bar32"), state.get("bar33")), (Some("32"), None));

        // Long members are dropped before the last ones.
        let long = format!("long={}", "x".repeat(200));
        let mut members: Vec<String> = (1..=32).map(|i| format!("bar{i:02}={i:02}")).collect();
        members.insert(3, long);
        let state = parse(&[&members.join(",")]);
        assert_eq!((state.len(), state.get("long"), state.get("bar32")), (32, None, Some("32")));
    }

    #[test]
    fn with_member_puts_the_entry_first() {
        let state = parse(&["a=1,b=2"]);
        assert_eq!(state.with_member("c", "3").unwrap().to_string(), "c=3,a=1,b=2");
        assert_eq!(state.with_member("b", "9").unwrap().to_string(), "b=9,a=1");
        assert_eq!(TraceState::new().with_member("k", "v ").unwrap_err(), TraceStateError::Value);
        let full = parse(&[&(1..=32).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",")]);
        let added = full.with_member("new", "1").unwrap();
        assert_eq!((added.len(), added.get("k32")), (32, None));
    }

    #[test]
    fn errors_display_in_lowercase() {
        for e in [TraceStateError::Key, TraceStateError::Value, TraceStateError::Member] {
            let text = e.to_string();
            assert!(text.starts_with(|c: char| c.is_ascii_lowercase()) && !text.ends_with('.'));
        }
    }
}
