//! [`CorrelationId`]: the ID that a request's log lines carry, and how an `X-Trace-ID` header
//! (or the header a layer is configured with) pins it.

use std::fmt;
use std::sync::Arc;

use super::{NO_TRACE, TraceId};

/// The longest correlation ID accepted from a header, in bytes.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{CorrelationId, MAX_CORRELATION_ID_LEN};
///
/// assert!(CorrelationId::parse(&[b'x'; MAX_CORRELATION_ID_LEN]).is_ok());
/// assert!(CorrelationId::parse(&[b'x'; MAX_CORRELATION_ID_LEN + 1]).is_err());
/// ```
pub const MAX_CORRELATION_ID_LEN: usize = 128;

/// A request's correlation ID: what its log lines show, what the response echoes and what
/// the next service receives in `X-Trace-ID`. At most [`MAX_CORRELATION_ID_LEN`] bytes of
/// visible ASCII without spaces.
///
/// It comes from an `X-Trace-ID` header when the request has exactly one valid one, else it
/// is the W3C trace-id of the request (see [`TraceContext::extract`](super::TraceContext::extract)).
/// Cloning is one reference-count increment.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{CorrelationId, TraceContext};
///
/// let trace = TraceContext::new_root();
/// let id = trace.correlation_id();
/// assert_eq!(id.to_string(), id.as_str());
/// assert_eq!(format!("{id:>34}"), format!("  {id}"));
/// assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
///
/// assert_eq!(CorrelationId::parse(b"checkout-42").unwrap().as_str(), "checkout-42");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CorrelationId(Arc<str>);

impl CorrelationId {
    /// Parses one header value: it must be 1 to [`MAX_CORRELATION_ID_LEN`] bytes of visible
    /// ASCII (`0x21..=0x7e`): no space or tab (HTTP parsers already strip them around a
    /// value), no CR or LF, no control byte, nothing that could forge or split a log line.
    /// [`NO_TRACE`] itself (in any case) is refused too: it marks lines outside any request,
    /// and a request must not be able to hide its lines among them.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{CorrelationId, CorrelationIdError};
    ///
    /// assert_eq!(CorrelationId::parse(b"job-7").unwrap().as_str(), "job-7");
    /// assert_eq!(CorrelationId::parse(b"a b"), Err(CorrelationIdError::Byte { byte: b' ', position: 1 }));
    /// assert_eq!(CorrelationId::parse(&[b'x'; 129]), Err(CorrelationIdError::TooLong { len: 129 }));
    /// assert_eq!(CorrelationId::parse(b"no-trace"), Err(CorrelationIdError::Reserved));
    /// ```
    ///
    /// # Errors
    ///
    /// Which rule the value breaks.
    pub fn parse(value: &[u8]) -> Result<Self, CorrelationIdError> {
        check(value).map(|id| Self(id.into()))
    }

    /// The correlation ID that a request's header values pin, in the order received: `None`
    /// unless there is exactly one value and it is valid. Never fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::CorrelationId;
    ///
    /// assert_eq!(CorrelationId::extract([&b"checkout-42"[..]]).unwrap().as_str(), "checkout-42");
    /// assert_eq!(CorrelationId::extract([&b"evil\r\ntrace_id=forged"[..]]), None);
    /// assert_eq!(CorrelationId::extract([&b"a"[..], b"b"]), None);
    /// assert_eq!(CorrelationId::extract([]), None);
    /// ```
    #[must_use]
    pub fn extract<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<Self> {
        Self::try_extract(values).ok()
    }

    /// [`extract`](Self::extract), saying why no ID was pinned.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{CorrelationId, CorrelationIdError};
    ///
    /// assert_eq!(CorrelationId::try_extract([]), Err(CorrelationIdError::Missing));
    /// assert_eq!(CorrelationId::try_extract([&b"a"[..], b"a"]), Err(CorrelationIdError::Duplicated));
    /// assert_eq!(CorrelationId::try_extract([&b""[..]]), Err(CorrelationIdError::Empty));
    /// ```
    ///
    /// # Errors
    ///
    /// [`CorrelationIdError::Missing`] for no value, [`CorrelationIdError::Duplicated`] for
    /// more than one (several values are ambiguous: all are ignored), and the errors of
    /// [`parse`](Self::parse) for an invalid one.
    pub fn try_extract<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, CorrelationIdError> {
        let mut values = values.into_iter();
        let first = values.next().ok_or(CorrelationIdError::Missing)?;
        if values.next().is_some() {
            return Err(CorrelationIdError::Duplicated);
        }
        Self::parse(first)
    }

    /// An ID that [`check`] accepted.
    pub(super) fn from_str_checked(id: &str) -> Self {
        Self(id.into())
    }

    /// The W3C trace-id as a correlation ID: its 32 lowercase hex digits.
    pub(super) fn from_trace_id(trace_id: TraceId) -> Self {
        Self(trace_id.to_shared_str())
    }

    /// The ID as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The checks of [`CorrelationId::parse`], without allocating.
pub(super) fn check(value: &[u8]) -> Result<&str, CorrelationIdError> {
    if value.is_empty() {
        return Err(CorrelationIdError::Empty);
    }
    if value.len() > MAX_CORRELATION_ID_LEN {
        return Err(CorrelationIdError::TooLong { len: value.len() });
    }
    if let Some(position) = value.iter().position(|b| !(0x21..=0x7e).contains(b)) {
        return Err(CorrelationIdError::Byte { byte: value[position], position });
    }
    if value.eq_ignore_ascii_case(NO_TRACE.as_bytes()) {
        return Err(CorrelationIdError::Reserved);
    }
    // Visible ASCII is UTF-8.
    std::str::from_utf8(value).map_err(|_| CorrelationIdError::Byte { byte: value[0], position: 0 })
}

impl fmt::Display for CorrelationId {
    /// The ID; width and alignment apply (`{:>40}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl AsRef<str> for CorrelationId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Why a header value does not pin a correlation ID (it is then ignored).
///
/// # Examples
///
/// ```
/// use contextvars::trace::{CorrelationId, CorrelationIdError};
///
/// let error = CorrelationId::parse(b"id\r\nforged").unwrap_err();
/// assert_eq!(error, CorrelationIdError::Byte { byte: b'\r', position: 2 });
/// assert_eq!(error.to_string(), "correlation id has byte 0x0d at 2, not visible ascii");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrelationIdError {
    /// The request has no such header.
    Missing,
    /// The request has more than one such header.
    Duplicated,
    /// No bytes at all.
    Empty,
    /// Longer than [`MAX_CORRELATION_ID_LEN`] bytes.
    TooLong {
        /// The length, in bytes.
        len: usize,
    },
    /// A byte that is not visible ASCII.
    Byte {
        /// The byte.
        byte: u8,
        /// Where it is.
        position: usize,
    },
    /// The value is [`NO_TRACE`], which marks lines outside any request.
    Reserved,
}

impl fmt::Display for CorrelationIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("no correlation id header"),
            Self::Duplicated => f.write_str("more than one correlation id header"),
            Self::Empty => f.write_str("correlation id is empty"),
            Self::TooLong { len } => {
                write!(f, "correlation id is {len} bytes long, more than {MAX_CORRELATION_ID_LEN}")
            }
            Self::Byte { byte, position } => {
                write!(f, "correlation id has byte 0x{byte:02x} at {position}, not visible ascii")
            }
            Self::Reserved => {
                write!(f, "correlation id is {NO_TRACE:?}, reserved for lines outside any request")
            }
        }
    }
}

impl std::error::Error for CorrelationIdError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &[u8]) -> Option<String> {
        CorrelationId::parse(value).ok().map(|id| id.as_str().to_owned())
    }

    #[test]
    fn visible_ascii_up_to_128_bytes_is_used() {
        let all_visible: Vec<u8> = (0x21..=0x7e).collect();
        assert_eq!(parse(&all_visible).map(|id| id.len()), Some(94));
        assert_eq!(parse(&[b'a'; 128]).map(|id| id.len()), Some(128));
        assert_eq!(parse(b"x").as_deref(), Some("x"));
        assert_eq!(parse(b"\t 4bf92f3577b34da6a3ce929d0e0e4736 "), None);
    }

    #[test]
    fn everything_else_is_ignored() {
        assert_eq!(check(b""), Err(CorrelationIdError::Empty));
        assert_eq!(check(b" \t "), Err(CorrelationIdError::Byte { byte: b' ', position: 0 }));
        assert_eq!(check(&[b'a'; 129]), Err(CorrelationIdError::TooLong { len: 129 }));
        for (value, byte, position) in [
            (&b"a\rb"[..], b'\r', 1),
            (b"a\nb", b'\n', 1),
            (b"id\r\nforged", b'\r', 2),
            (b"\x00", 0, 0),
            (b"a\x1b[31m", 0x1b, 1),
            (b"a\x7f", 0x7f, 1),
            (b"caf\xc3\xa9", 0xc3, 3),
            (b"with space", b' ', 4),
            (b"a\tb", b'\t', 1),
            (b" id", b' ', 0),
            (b"id\t", b'\t', 2),
        ] {
            assert_eq!(check(value), Err(CorrelationIdError::Byte { byte, position }), "{value:?}");
        }
        assert_eq!(check(b"No-Trace"), Err(CorrelationIdError::Reserved));
    }

    #[test]
    fn exactly_one_value_pins_the_id() {
        assert_eq!(CorrelationId::try_extract([]), Err(CorrelationIdError::Missing));
        assert_eq!(CorrelationId::try_extract([&b"a"[..], b"b"]), Err(CorrelationIdError::Duplicated));
        assert_eq!(
            CorrelationId::try_extract([&b"a b"[..]]),
            Err(CorrelationIdError::Byte { byte: b' ', position: 1 })
        );
        assert_eq!(
            CorrelationId::extract([&b"job-7"[..]]).map(|id| id.to_string()).as_deref(),
            Some("job-7")
        );
    }

    #[test]
    fn errors_display_in_lowercase() {
        for e in [
            CorrelationIdError::Missing,
            CorrelationIdError::Duplicated,
            CorrelationIdError::Empty,
            CorrelationIdError::TooLong { len: 200 },
            CorrelationIdError::Byte { byte: b'\n', position: 3 },
            CorrelationIdError::Reserved,
        ] {
            let text = e.to_string();
            assert!(
                text.contains("correlation id") && text.starts_with(|c: char| c.is_ascii_lowercase()),
                "{text}"
            );
            assert!(!text.ends_with('.'), "{text}");
        }
    }
}
