//! The `X-Trace-ID` header: a correlation ID pinned by a proxy, a client or a test.

use std::fmt;

use super::NO_TRACE;

/// The longest `X-Trace-ID` accepted, in bytes.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{MAX_TRACE_ID_LEN, parse_trace_id_header};
///
/// assert!(parse_trace_id_header(&[b'x'; MAX_TRACE_ID_LEN]).is_some());
/// assert!(parse_trace_id_header(&[b'x'; MAX_TRACE_ID_LEN + 1]).is_none());
/// ```
pub const MAX_TRACE_ID_LEN: usize = 128;

/// The correlation ID an `X-Trace-ID` header value carries, or `None` when it is unusable
/// and must be ignored. See [`check_trace_id_header`] for the rules and the reasons.
///
/// # Examples
///
/// ```
/// use contextvars::trace::parse_trace_id_header;
///
/// assert_eq!(parse_trace_id_header(b"checkout-42"), Some("checkout-42"));
/// assert_eq!(parse_trace_id_header(b"evil\r\ntrace_id=forged"), None);
/// assert_eq!(parse_trace_id_header(b""), None);
/// ```
#[must_use]
pub fn parse_trace_id_header(value: &[u8]) -> Option<&str> {
    check_trace_id_header(value).ok()
}

/// Checks an `X-Trace-ID` header value: it must be 1 to [`MAX_TRACE_ID_LEN`] bytes of
/// visible ASCII (`0x21..=0x7e`): no space or tab (HTTP parsers already strip them around
/// a value), no CR or LF, no control byte, nothing that could forge or split a log line.
/// [`NO_TRACE`] itself (in any case) is refused too: it marks lines outside any request, and
/// a request must not be able to hide its lines among them.
///
/// # Errors
///
/// Which rule the value breaks.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{check_trace_id_header, TraceIdHeaderError};
///
/// assert_eq!(check_trace_id_header(b"job-7"), Ok("job-7"));
/// assert_eq!(check_trace_id_header(b"a b"), Err(TraceIdHeaderError::Byte { byte: b' ', position: 1 }));
/// assert_eq!(check_trace_id_header(&[b'x'; 129]), Err(TraceIdHeaderError::TooLong { len: 129 }));
/// assert_eq!(check_trace_id_header(b"no-trace"), Err(TraceIdHeaderError::Reserved));
/// ```
pub fn check_trace_id_header(value: &[u8]) -> Result<&str, TraceIdHeaderError> {
    if value.is_empty() {
        return Err(TraceIdHeaderError::Empty);
    }
    if value.len() > MAX_TRACE_ID_LEN {
        return Err(TraceIdHeaderError::TooLong { len: value.len() });
    }
    if let Some(position) = value.iter().position(|b| !(0x21..=0x7e).contains(b)) {
        return Err(TraceIdHeaderError::Byte { byte: value[position], position });
    }
    if value.eq_ignore_ascii_case(NO_TRACE.as_bytes()) {
        return Err(TraceIdHeaderError::Reserved);
    }
    // Visible ASCII is UTF-8.
    std::str::from_utf8(value).map_err(|_| TraceIdHeaderError::Byte { byte: value[0], position: 0 })
}

/// Why an `X-Trace-ID` header value is ignored.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{check_trace_id_header, TraceIdHeaderError};
///
/// let error = check_trace_id_header(b"id\r\nforged").unwrap_err();
/// assert_eq!(error, TraceIdHeaderError::Byte { byte: b'\r', position: 2 });
/// assert_eq!(error.to_string(), "x-trace-id has byte 0x0d at 2, not visible ascii");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceIdHeaderError {
    /// No bytes at all.
    Empty,
    /// Longer than [`MAX_TRACE_ID_LEN`] bytes.
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

impl fmt::Display for TraceIdHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("x-trace-id is empty"),
            Self::TooLong { len } => {
                write!(f, "x-trace-id is {len} bytes long, more than {MAX_TRACE_ID_LEN}")
            }
            Self::Byte { byte, position } => {
                write!(f, "x-trace-id has byte 0x{byte:02x} at {position}, not visible ascii")
            }
            Self::Reserved => write!(f, "x-trace-id is {NO_TRACE:?}, reserved for lines outside any request"),
        }
    }
}

impl std::error::Error for TraceIdHeaderError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_ascii_up_to_128_bytes_is_used() {
        let all_visible: Vec<u8> = (0x21..=0x7e).collect();
        assert_eq!(parse_trace_id_header(&all_visible).map(str::len), Some(94));
        assert_eq!(parse_trace_id_header(&[b'a'; 128]).map(str::len), Some(128));
        assert_eq!(parse_trace_id_header(b"x"), Some("x"));
        assert_eq!(parse_trace_id_header(b"\t 4bf92f3577b34da6a3ce929d0e0e4736 "), None);
    }

    #[test]
    fn everything_else_is_ignored() {
        assert_eq!(check_trace_id_header(b""), Err(TraceIdHeaderError::Empty));
        assert_eq!(check_trace_id_header(b" \t "), Err(TraceIdHeaderError::Byte { byte: b' ', position: 0 }));
        assert_eq!(check_trace_id_header(&[b'a'; 129]), Err(TraceIdHeaderError::TooLong { len: 129 }));
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
            assert_eq!(
                check_trace_id_header(value),
                Err(TraceIdHeaderError::Byte { byte, position }),
                "{value:?}"
            );
        }
    }

    #[test]
    fn errors_display_in_lowercase() {
        for e in [
            TraceIdHeaderError::Empty,
            TraceIdHeaderError::TooLong { len: 200 },
            TraceIdHeaderError::Byte { byte: b'\n', position: 3 },
            TraceIdHeaderError::Reserved,
        ] {
            let text = e.to_string();
            assert!(text.starts_with("x-trace-id ") && !text.ends_with('.'), "{text}");
        }
    }
}
