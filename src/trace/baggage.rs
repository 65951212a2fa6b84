//! The W3C `baggage` header: [`Baggage`], key-values that travel with a request to the
//! services it calls.

use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode, utf8_percent_encode};

use super::traceparent::trim_ows;

/// The most list members read from, and sent in, a `baggage` header: the 64 the W3C
/// Baggage specification requires every platform to propagate. Members past it are dropped.
pub const MAX_BAGGAGE_MEMBERS: usize = 64;

/// The most bytes of `baggage` read from a request, and sent in one: the 8,192 the
/// specification requires every platform to propagate. Members that do not fit whole in the
/// first 8,192 bytes are dropped, and nothing past them is read; so is a member that would
/// take the header sent on past 8,192 bytes once re-encoded (a value's invalid UTF-8 is sent
/// as U+FFFD, three times as long), so that a baggage always fits in one header.
pub const MAX_BAGGAGE_LEN: usize = 8192;

/// W3C Baggage: an ordered list of `key=value` members, each with optional properties,
/// that a request carries to the services it calls (`baggage: tenant=acme,user=42;pii`).
///
/// [`extract`](Self::extract) reads a request's `baggage` header values as the
/// specification (W3C Baggage, "value" and "property") says: spaces and tabs around
/// members, keys, values and properties are skipped; values and property values are
/// percent-decoded, octets that do not then form UTF-8 are replaced with U+FFFD and the
/// member is kept, and a `%` not followed by two hex digits is kept as it is; a member that
/// does not follow the grammar is dropped and the others are kept; a repeated key keeps its
/// first member. At most [`MAX_BAGGAGE_MEMBERS`] members and [`MAX_BAGGAGE_LEN`] bytes are
/// read: the rest is dropped without being parsed, so the work a client can cause is
/// bounded.
///
/// It formats (`Display`) as the header value to send: values percent-encoded where the
/// grammar needs it, properties as received.
///
/// # Privacy
///
/// Baggage leaves the process in every call, including calls to third parties, and a
/// client can send any baggage it likes. Never put secrets or personal data in it unless
/// every service it can reach is yours, and read it only from trusted callers (see the
/// layer's `trust_baggage`). This is the specification's own advice, in its privacy and
/// security sections.
///
/// # Examples
///
/// ```
/// use contextvars::trace::Baggage;
///
/// let baggage = Baggage::extract([&b"tenant=acme , user=J%C3%BCrgen;pii;src=web%20app, bad key=1"[..]]);
/// assert_eq!(baggage.get("tenant"), Some("acme"));
/// assert_eq!(baggage.get("user"), Some("Jürgen"));
/// assert_eq!(baggage.properties("user").collect::<Vec<_>>(), [("pii", None), ("src", Some("web app"))]);
/// assert_eq!(baggage.raw_properties("user").collect::<Vec<_>>(), ["pii", "src=web%20app"]);
/// assert_eq!(baggage.len(), 2);
/// assert_eq!(baggage.to_string(), "tenant=acme,user=J%C3%BCrgen;pii;src=web%20app");
///
/// // to the letter: invalid UTF-8 becomes U+FFFD, a lone `%` stays
/// let lenient = Baggage::extract([&b"a=caf%E9,b=100%"[..]]);
/// assert_eq!((lenient.get("a"), lenient.get("b")), (Some("caf\u{fffd}"), Some("100%")));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Baggage {
    members: Vec<Member>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Member {
    key: String,
    /// Percent-decoded.
    value: String,
    properties: Vec<Property>,
}

/// A member's property: `key` or `key=value`.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Property {
    /// As received, without the optional whitespace: what is sent on.
    raw: String,
    /// `raw[..key_len]` is the key.
    key_len: usize,
    /// The value, percent-decoded.
    value: Option<String>,
}

impl Baggage {
    /// The empty baggage.
    #[must_use]
    pub const fn new() -> Self {
        Self { members: Vec::new() }
    }

    /// The baggage of a request's `baggage` header values, in the order received. Never
    /// fails: bad members are dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{Baggage, MAX_BAGGAGE_MEMBERS};
    ///
    /// let many = (0..100).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
    /// let baggage = Baggage::extract([many.as_bytes()]);
    /// assert_eq!(baggage.len(), MAX_BAGGAGE_MEMBERS);
    /// assert_eq!(baggage.get("k63"), Some("v"));
    /// ```
    #[must_use]
    pub fn extract<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut baggage = Self::new();
        let mut budget = MAX_BAGGAGE_LEN;
        // The length of the header value the baggage formats as.
        let mut sent = 0;
        'values: for value in values {
            let complete = value.len() <= budget;
            let value = &value[..value.len().min(budget)];
            let mut rest = value;
            while !rest.is_empty() {
                let (member, next, ended_by_comma) = match rest.iter().position(|&b| b == b',') {
                    Some(comma) => (&rest[..comma], &rest[comma + 1..], true),
                    None => (rest, &rest[rest.len()..], false),
                };
                // A member cut by the size limit is not whole: drop it and stop.
                if !ended_by_comma && !complete {
                    break 'values;
                }
                rest = next;
                let member = trim_ows(member);
                if member.is_empty() || baggage.has_key_of(member) {
                    continue;
                }
                if let Some(parsed) = parse_member(member) {
                    // Decoding can make a member longer to send than it was to receive (an
                    // invalid `%E9` goes out as U+FFFD, `%EF%BF%BD`): the baggage must still
                    // fit in one header, so a member that would not is dropped and reading stops.
                    let comma = usize::from(!baggage.members.is_empty());
                    sent += comma + encoded_len(&parsed);
                    if sent > MAX_BAGGAGE_LEN {
                        break 'values;
                    }
                    baggage.members.push(parsed);
                    if baggage.members.len() == MAX_BAGGAGE_MEMBERS {
                        break 'values;
                    }
                }
            }
            budget -= value.len();
            if budget == 0 {
                break;
            }
            // Header values are joined with a comma: count it.
            budget -= 1;
        }
        baggage
    }

    /// Whether a member already has the key of `member` (a repeated key keeps its first
    /// member: the repeat is skipped before any decoding).
    fn has_key_of(&self, member: &[u8]) -> bool {
        let Some(equals) = member.iter().position(|&b| b == b'=') else { return false };
        let key = trim_ows(&member[..equals]);
        self.members.iter().any(|m| m.key.as_bytes() == key)
    }

    /// The value of `key`, percent-decoded.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.member(key).map(|m| m.value.as_str())
    }

    /// The properties of `key`'s member, in order, as `(key, value)`: the value
    /// percent-decoded, `None` for a property without one (`;pii`).
    #[must_use = "iterators are lazy"]
    pub fn properties(&self, key: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.member(key)
            .into_iter()
            .flat_map(|m| m.properties.iter().map(|p| (&p.raw[..p.key_len], p.value.as_deref())))
    }

    /// The properties of `key`'s member as received (`key` or `key=value`, still
    /// percent-encoded, without the optional whitespace): the text a service forwards.
    #[must_use = "iterators are lazy"]
    pub fn raw_properties(&self, key: &str) -> impl Iterator<Item = &str> {
        self.member(key).into_iter().flat_map(|m| m.properties.iter().map(|p| p.raw.as_str()))
    }

    fn member(&self, key: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.key == key)
    }

    /// The members as `(key, value)` pairs, in order.
    #[must_use = "iterators are lazy"]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.members.iter().map(|m| (m.key.as_str(), m.value.as_str()))
    }

    /// The number of members.
    #[must_use]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members (then no `baggage` header is sent).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// A copy with `key` set to `value` (replacing its member, properties included, in
    /// place; else added at the end).
    ///
    /// # Errors
    ///
    /// [`BaggageError::Key`] when `key` is not an HTTP token; [`BaggageError::Full`] when
    /// the baggage would then hold more than [`MAX_BAGGAGE_MEMBERS`] members or its header
    /// would be longer than [`MAX_BAGGAGE_LEN`] bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{Baggage, BaggageError};
    ///
    /// let baggage = Baggage::new().with("tenant", "acme, inc.").unwrap();
    /// assert_eq!(baggage.to_string(), "tenant=acme%2C%20inc.");
    /// assert_eq!(Baggage::extract([baggage.to_string().as_bytes()]).get("tenant"), Some("acme, inc."));
    /// assert_eq!(baggage.with("bad key", "1"), Err(BaggageError::Key));
    /// assert_eq!(baggage.with("big", &"x".repeat(9000)), Err(BaggageError::Full));
    /// ```
    pub fn with(&self, key: &str, value: &str) -> Result<Self, BaggageError> {
        if !is_token(key.as_bytes()) {
            return Err(BaggageError::Key);
        }
        let mut copy = self.clone();
        let member = Member { key: key.to_owned(), value: value.to_owned(), properties: Vec::new() };
        match copy.members.iter_mut().find(|m| m.key == key) {
            Some(existing) => *existing = member,
            None => copy.members.push(member),
        }
        if copy.members.len() > MAX_BAGGAGE_MEMBERS || encoded_len(&copy) > MAX_BAGGAGE_LEN {
            return Err(BaggageError::Full);
        }
        Ok(copy)
    }

    /// A copy without `key`.
    #[must_use]
    pub fn without(&self, key: &str) -> Self {
        let mut copy = self.clone();
        copy.members.retain(|m| m.key != key);
        copy
    }
}

impl fmt::Display for Member {
    /// `key=value;property…`, the value percent-encoded where needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, utf8_percent_encode(&self.value, NOT_OCTET))?;
        for property in &self.properties {
            write!(f, ";{}", property.raw)?;
        }
        Ok(())
    }
}

/// How many bytes `item` formats as, counted without building the text.
fn encoded_len(item: &impl fmt::Display) -> usize {
    let mut counter = Counter(0);
    let _ = fmt::Write::write_fmt(&mut counter, format_args!("{item}"));
    counter.0
}

struct Counter(usize);

impl fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

impl fmt::Display for Baggage {
    /// The header value: `key=value;property` members joined by `,`, values
    /// percent-encoded where needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, member) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            fmt::Display::fmt(member, f)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Baggage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Why [`Baggage::with`] refused a member.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{Baggage, BaggageError};
///
/// let error = Baggage::new().with("", "1").unwrap_err();
/// assert_eq!((error, error.to_string()), (BaggageError::Key, "baggage key is not an http token".to_string()));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaggageError {
    /// The key is empty or holds a character that is not allowed in an HTTP token.
    Key,
    /// More than [`MAX_BAGGAGE_MEMBERS`] members, or more than [`MAX_BAGGAGE_LEN`] bytes.
    Full,
}

impl fmt::Display for BaggageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Key => "baggage key is not an http token",
            Self::Full => "baggage would exceed 64 members or 8192 bytes",
        })
    }
}

impl std::error::Error for BaggageError {}

/// `tchar` of RFC 9110.
fn is_token(key: &[u8]) -> bool {
    !key.is_empty() && key.iter().all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `baggage-octet`: printable ASCII but space, `"`, `,`, `;` and `\`.
fn is_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// What a value's encoding escapes: every byte that is not a `baggage-octet` (controls,
/// space, `"`, `,`, `;`, `\`; bytes above 0x7e always are), and `%` itself.
const NOT_OCTET: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b',').add(b';').add(b'\\').add(b'%');

/// `value` percent-decoded, invalid UTF-8 replaced with U+FFFD, a `%` not followed by two
/// hex digits kept as it is.
fn decode(value: &[u8]) -> String {
    percent_decode(value).decode_utf8_lossy().into_owned()
}

/// `key OWS "=" OWS value *( OWS ";" OWS property )`, already trimmed.
fn parse_member(member: &[u8]) -> Option<Member> {
    let mut parts = member.split(|&b| b == b';');
    let pair = parts.next()?;
    let equals = pair.iter().position(|&b| b == b'=')?;
    let key = trim_ows(&pair[..equals]);
    let value = trim_ows(&pair[equals + 1..]);
    if !is_token(key) || !value.iter().all(|&b| is_octet(b)) {
        return None;
    }
    let value = decode(value);
    let mut properties = Vec::new();
    for property in parts {
        let property = trim_ows(property);
        // Kept as `key` or `key=value`, without the optional whitespace.
        let (raw, key_len, value) = match property.iter().position(|&b| b == b'=') {
            Some(equals) => {
                let (key, value) = (trim_ows(&property[..equals]), trim_ows(&property[equals + 1..]));
                if !is_token(key) || !value.iter().all(|&b| is_octet(b)) {
                    return None;
                }
                ([key, b"=", value].concat(), key.len(), Some(decode(value)))
            }
            None if is_token(property) => (property.to_vec(), property.len(), None),
            None => return None,
        };
        // Checked: ASCII.
        properties.push(Property { raw: String::from_utf8_lossy(&raw).into_owned(), key_len, value });
    }
    // Checked: ASCII.
    let key = String::from_utf8_lossy(key).into_owned();
    Some(Member { key, value, properties })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> Baggage {
        Baggage::extract(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn members_properties_and_whitespace() {
        let baggage = parse(&["key1 = value1 ; prop1 ; prop2 = x , key2=value2", "\tkey3=%20v%2C3"]);
        assert_eq!(
            baggage.iter().collect::<Vec<_>>(),
            [("key1", "value1"), ("key2", "value2"), ("key3", " v,3")]
        );
        assert_eq!(baggage.properties("key1").collect::<Vec<_>>(), [("prop1", None), ("prop2", Some("x"))]);
        assert_eq!(baggage.raw_properties("key1").collect::<Vec<_>>(), ["prop1", "prop2=x"]);
        assert_eq!(baggage.to_string(), "key1=value1;prop1;prop2=x,key2=value2,key3=%20v%2C3");
        assert_eq!(parse(&[&baggage.to_string()]), baggage);
    }

    #[test]
    fn bad_members_are_dropped_and_the_others_kept() {
        for bad in ["no-equals", "bad key=1", "=1", "k=a b", "k=\"q\"", "k=a\\b", "k=1;bad prop", "k=1;"] {
            let baggage = parse(&[&format!("a=1,{bad},b=2")]);
            assert_eq!(baggage.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")], "{bad:?}");
        }
        assert_eq!(parse(&["a=1,a=2"]).get("a"), Some("1"));
        assert_eq!(parse(&["k="]).get("k"), Some(""));
        assert!(parse(&["", " , ,"]).is_empty());
    }

    #[test]
    fn decoding_follows_the_specification_to_the_letter() {
        // Octets that are not UTF-8 once decoded: U+FFFD, and the member is kept.
        let baggage = parse(&["a=1,k=%C3,l=caf%E9%20x,m=%F0%9F%98,b=2"]);
        assert_eq!(
            baggage.iter().collect::<Vec<_>>(),
            [("a", "1"), ("k", "\u{fffd}"), ("l", "caf\u{fffd} x"), ("m", "\u{fffd}"), ("b", "2")]
        );
        // A `%` not followed by two hex digits is kept as it is.
        let baggage = parse(&["k=%zz,l=100%,m=%4,n=%%41"]);
        assert_eq!(
            baggage.iter().collect::<Vec<_>>(),
            [("k", "%zz"), ("l", "100%"), ("m", "%4"), ("n", "%A")]
        );
        // Both are sent on encoded, and read back the same.
        assert_eq!(baggage.to_string(), "k=%25zz,l=100%25,m=%254,n=%25A");
        assert_eq!(parse(&[&baggage.to_string()]), baggage);
        // Property values are decoded the same way; their raw text is kept for forwarding.
        let baggage = parse(&["k=v;p=a%20b;q=%FF;r=%x;flag"]);
        assert_eq!(
            baggage.properties("k").collect::<Vec<_>>(),
            [("p", Some("a b")), ("q", Some("\u{fffd}")), ("r", Some("%x")), ("flag", None)]
        );
        assert_eq!(baggage.raw_properties("k").collect::<Vec<_>>(), ["p=a%20b", "q=%FF", "r=%x", "flag"]);
        assert_eq!(baggage.to_string(), "k=v;p=a%20b;q=%FF;r=%x;flag");
        assert_eq!(baggage.properties("missing").count(), 0);
    }

    #[test]
    fn encoding_escapes_exactly_what_is_not_a_baggage_octet() {
        let all: String = (0x20..=0x7e_u8).map(char::from).chain(['\u{7f}', '\n', 'é']).collect();
        let text = Baggage::new().with("k", &all).unwrap().to_string();
        let value = text.strip_prefix("k=").unwrap();
        let mut expected = String::new();
        for b in all.bytes() {
            if is_octet(b) && b != b'%' {
                expected.push(char::from(b));
            } else {
                expected.push_str(percent_encoding::percent_encode_byte(b));
            }
        }
        assert_eq!(value, expected);
        assert_eq!(parse(&[&text]).get("k"), Some(all.as_str()));
    }

    #[test]
    fn limits_keep_64_members_and_8192_bytes_of_whole_members() {
        let many: Vec<String> = (0..64).map(|i| format!("k{i:02}={}", "v".repeat(100))).collect();
        let header = many.join(",");
        assert!(header.len() < MAX_BAGGAGE_LEN);
        assert_eq!(parse(&[&header]).len(), 64);
        assert_eq!(parse(&[&format!("{header},k64=v")]).len(), 64);

        // 8,192 bytes: the member that crosses the limit is dropped, not cut.
        let member = format!("k={}", "v".repeat(1020)); // 1,022 bytes, 1,023 with the comma
        let members: Vec<String> = (0..9).map(|i| member.replacen('k', &format!("k{i}"), 1)).collect();
        let baggage = parse(&[&members.join(",")]);
        assert_eq!(baggage.len(), 8, "8 whole members fit in 8,192 bytes");
        assert!(baggage.get("k7").is_some_and(|v| v.len() == 1020));
        assert_eq!(baggage.get("k8"), None);
        // Exactly 8,192 bytes is read whole.
        let exact = format!("k={}", "v".repeat(MAX_BAGGAGE_LEN - 2));
        assert_eq!(parse(&[&exact]).get("k").map(str::len), Some(MAX_BAGGAGE_LEN - 2));
        let over = format!("k={}", "v".repeat(MAX_BAGGAGE_LEN - 1));
        assert!(parse(&[&over]).is_empty());
    }

    #[test]
    fn what_is_read_fits_in_one_header_when_sent_on() {
        // `%E9` is not UTF-8: it is read as U+FFFD and sent as `%EF%BF%BD`, three times as
        // long. 2,000 of them are 6,002 bytes received and would be 18,002 sent.
        let grows = format!("k={}", "%E9".repeat(2000));
        assert!(grows.len() <= MAX_BAGGAGE_LEN);
        let baggage = parse(&["a=1", &grows, "b=2"]);
        assert_eq!(baggage.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["a"], "dropped, and reading stopped");

        // Up to the limit exactly: 910 U+FFFD are 8,190 bytes sent, with `k=` 8,192.
        let fits = format!("k={}", "%E9".repeat(910));
        let baggage = parse(&[&fits]);
        assert_eq!(baggage.get("k").map(|v| v.chars().count()), Some(910));
        assert_eq!(baggage.to_string().len(), MAX_BAGGAGE_LEN);
        assert_eq!(parse(&[&baggage.to_string()]), baggage);
        let one_more = format!("k={}", "%E9".repeat(911));
        assert!(parse(&[&one_more]).is_empty());
    }

    #[test]
    fn nothing_past_the_limits_is_read() {
        use std::cell::Cell;
        let members: Vec<String> = (0..64).map(|i| format!("k{i}=v")).collect();
        let first = members.join(",");
        let pulled = Cell::new(0);
        let values = [first.as_bytes(), b"late=1"].into_iter().inspect(|_| pulled.set(pulled.get() + 1));
        assert_eq!(Baggage::extract(values).len(), 64);
        assert_eq!(pulled.get(), 1, "no value is read after the 64th member");

        let big = format!("a=1,{}", "x".repeat(1 << 20));
        let pulled = Cell::new(0);
        let values = [big.as_bytes(), b"late=1"].into_iter().inspect(|_| pulled.set(pulled.get() + 1));
        let baggage = Baggage::extract(values);
        assert_eq!((baggage.len(), baggage.get("a"), pulled.get()), (1, Some("1"), 1));
    }

    #[test]
    fn with_and_without() {
        let baggage = parse(&["a=1;p,b=2"]).with("a", "é").unwrap().with("c", "3").unwrap();
        assert_eq!(baggage.to_string(), "a=%C3%A9,b=2,c=3");
        assert_eq!(baggage.without("b").to_string(), "a=%C3%A9,c=3");
        let full = parse(&[&(0..64).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",")]);
        assert_eq!(full.with("one-more", "v"), Err(BaggageError::Full));
        assert!(full.with("k0", "replaced").is_ok());
        for e in [BaggageError::Key, BaggageError::Full] {
            let text = e.to_string();
            assert!(text.starts_with("baggage ") && !text.ends_with('.'));
        }
    }
}
