//! The W3C `traceparent` header (Trace Context, level 1, and the `random` flag of level 2): [`TraceParent`] and the ids and
//! flags it carries, [`TraceId`], [`SpanId`] and [`TraceFlags`].

use std::fmt;
use std::str::FromStr;

/// Length of a version `00` `traceparent`: `vv-` + 32 + `-` + 16 + `-` + 2.
const LEN: usize = 55;

/// A W3C trace-id: 16 bytes, written as 32 lowercase hex digits. All zeros is invalid.
///
/// # Examples
///
/// ```
/// use contextvars::trace::TraceId;
///
/// let id: TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap();
/// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert!(id.is_valid());
/// assert!("4BF92F3577B34DA6A3CE929D0E0E4736".parse::<TraceId>().is_err());
/// assert!(!TraceId::INVALID.is_valid());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId([u8; 16]);

/// A W3C parent-id (the caller's span-id): 8 bytes, written as 16 lowercase hex digits. All
/// zeros is invalid.
///
/// # Examples
///
/// ```
/// use contextvars::trace::SpanId;
///
/// let id: SpanId = "00f067aa0ba902b7".parse().unwrap();
/// assert_eq!(id.to_bytes(), [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
/// assert!("0000000000000000".parse::<SpanId>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId([u8; 8]);

macro_rules! id_impls {
    ($name:ident, $bytes:literal, $int:ty) => {
        impl $name {
            /// The all-zero value, which the specification forbids on the wire.
            pub const INVALID: Self = Self([0; $bytes]);

            /// The id made of these bytes (big-endian, as written in hex).
            #[must_use]
            pub const fn from_bytes(bytes: [u8; $bytes]) -> Self {
                Self(bytes)
            }

            /// The id's bytes.
            #[must_use]
            pub const fn to_bytes(self) -> [u8; $bytes] {
                self.0
            }

            /// `false` for the all-zero value, which the specification forbids.
            #[must_use]
            pub fn is_valid(self) -> bool {
                self.0 != [0; $bytes]
            }

            #[inline(always)]
            fn from_hex(hex: &[u8]) -> Result<Self, ParseIdError> {
                let hex: &[u8; 2 * $bytes] = hex.try_into().map_err(|_| ParseIdError::Length)?;
                // Eight digits at a time, into one integer stored once at the end.
                let mut value: $int = 0;
                for chunk in hex.chunks_exact(8) {
                    let digits = <[u8; 8]>::try_from(chunk).map_err(|_| ParseIdError::Length)?;
                    value = value << 32 | <$int>::from(decode8(digits).ok_or(ParseIdError::Digit)?);
                }
                if value == 0 { Err(ParseIdError::AllZero) } else { Ok(Self(value.to_be_bytes())) }
            }

            pub(super) fn write_hex(self, out: &mut [u8]) {
                for (pair, byte) in out.chunks_exact_mut(2).zip(self.0) {
                    pair[0] = HEX[usize::from(byte >> 4)];
                    pair[1] = HEX[usize::from(byte & 0xf)];
                }
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, ParseIdError> {
                Self::from_hex(s.as_bytes())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut out = [0; 2 * $bytes];
                self.write_hex(&mut out);
                f.write_str(ascii(&out))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }
    };
}

id_impls!(TraceId, 16, u128);

impl TraceId {
    /// The 32 hex digits in a shared string, with one allocation.
    pub(super) fn to_shared_str(self) -> std::sync::Arc<str> {
        let mut out = [0; 32];
        self.write_hex(&mut out);
        ascii(&out).into()
    }
}
id_impls!(SpanId, 8, u64);

/// The 8 trace flags of a `traceparent`. Level 1 defines [`SAMPLED`](Self::SAMPLED), level 2
/// adds [`RANDOM`](Self::RANDOM).
///
/// # Examples
///
/// ```
/// use contextvars::trace::TraceFlags;
///
/// let flags = TraceFlags::from_bits(0x09);
/// assert!(flags.is_sampled());
/// assert_eq!(flags.to_string(), "09");
/// assert_eq!(TraceFlags::default().to_string(), "00");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceFlags(u8);

impl TraceFlags {
    /// The `sampled` flag: the caller may have recorded trace data.
    pub const SAMPLED: Self = Self(0x01);

    /// The `random` flag of level 2: at least the right-most 7 bytes of the trace-id are
    /// random.
    pub const RANDOM: Self = Self(0x02);

    /// Flags from their bits, as received.
    #[must_use]
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits)
    }

    /// The bits.
    #[must_use]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether the `sampled` flag is set.
    #[must_use]
    pub const fn is_sampled(self) -> bool {
        self.0 & Self::SAMPLED.0 != 0
    }

    /// Whether the `random` flag (level 2) is set.
    #[must_use]
    pub const fn is_random(self) -> bool {
        self.0 & Self::RANDOM.0 != 0
    }

    /// Only the flags levels 1 and 2 define, `sampled` and `random`: the others are
    /// reserved and must be sent as zero.
    #[must_use]
    pub const fn known(self) -> Self {
        Self(self.0 & (Self::SAMPLED.0 | Self::RANDOM.0))
    }
}

impl fmt::Display for TraceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}", self.0)
    }
}

impl fmt::Debug for TraceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceFlags({:02x})", self.0)
    }
}

/// A parsed `traceparent` header: `version-traceid-parentid-flags`, such as
/// `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
///
/// Parsing follows the processing model of W3C Trace Context, level 1: two lowercase hex
/// digits of version followed by `-` (version `ff` is forbidden); exact lengths and lowercase
/// hex in every field; an all-zero trace-id or parent-id is invalid. Version `00` must be
/// exactly 55 characters. A higher version is parsed as the specification asks, by its
/// version `00` prefix: at least 55 characters, and anything after the flags must start
/// with `-` (and is ignored). Spaces and tabs around the value are HTTP's optional
/// whitespace and are skipped.
///
/// The fields can be read; a value is built with [`new`](Self::new), [`parse`](Self::parse)
/// or [`child`](Self::child) (the struct is `#[non_exhaustive]`, so that a later level's
/// fields can be added).
///
/// # Examples
///
/// ```
/// use contextvars::trace::{TraceParent, TraceParentError};
///
/// let parent: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
/// assert_eq!(parent.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert!(parent.flags.is_sampled());
/// assert_eq!(parent.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
///
/// let future = TraceParent::parse(b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more").unwrap();
/// assert_eq!(future.version, 0xcc);
///
/// assert_eq!(
///     TraceParent::parse(b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
///     Err(TraceParentError::ForbiddenVersion),
/// );
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TraceParent {
    /// The version: `0` for the format of level 1; higher ones are parsed by their prefix.
    pub version: u8,
    /// The trace the request belongs to.
    pub trace_id: TraceId,
    /// The caller's span: the parent of this request.
    pub parent_id: SpanId,
    /// The trace flags.
    pub flags: TraceFlags,
}

impl TraceParent {
    /// A version `00` `traceparent`.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{SpanId, TraceFlags, TraceId, TraceParent};
    ///
    /// let parent = TraceParent::new(TraceId::from_bytes([0xab; 16]), SpanId::from_bytes([1; 8]), TraceFlags::SAMPLED);
    /// assert_eq!(parent.to_string(), format!("00-{}-0101010101010101-01", "ab".repeat(16)));
    /// assert!(parent.is_valid());
    /// ```
    #[must_use]
    pub const fn new(trace_id: TraceId, parent_id: SpanId, flags: TraceFlags) -> Self {
        Self { version: 0, trace_id, parent_id, flags }
    }

    /// Parses one `traceparent` header value.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{TraceParent, TraceParentError};
    ///
    /// let parsed = TraceParent::parse(b" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00\t").unwrap();
    /// assert!(!parsed.flags.is_sampled());
    /// assert_eq!(
    ///     TraceParent::parse(b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
    ///     Err(TraceParentError::ZeroTraceId),
    /// );
    /// assert_eq!(
    ///     TraceParent::parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"),
    ///     Err(TraceParentError::Length),
    /// );
    /// ```
    ///
    /// # Errors
    ///
    /// When the value does not follow the format; the error says which part is wrong. The
    /// specification's answer to every error is the same: restart the trace.
    pub fn parse(value: &[u8]) -> Result<Self, TraceParentError> {
        let value = trim_ows(value);
        let version = match value {
            [high, low, b'-', ..] => hex_byte(*high, *low).ok_or(TraceParentError::Version)?,
            _ => return Err(TraceParentError::Version),
        };
        if version == 0xff {
            return Err(TraceParentError::ForbiddenVersion);
        }
        if value.len() < LEN || (version == 0 && value.len() != LEN) {
            return Err(TraceParentError::Length);
        }
        if value.len() > LEN && value[LEN] != b'-' {
            return Err(TraceParentError::Trailing);
        }
        if value[35] != b'-' || value[52] != b'-' {
            return Err(TraceParentError::Delimiter);
        }
        let trace_id = TraceId::from_hex(&value[3..35]).map_err(|e| e.field(TraceParentError::TraceId))?;
        let parent_id = SpanId::from_hex(&value[36..52]).map_err(|e| e.field(TraceParentError::ParentId))?;
        let flags = hex_byte(value[53], value[54]).ok_or(TraceParentError::Flags)?;
        Ok(Self { version, trace_id, parent_id, flags: TraceFlags(flags) })
    }

    /// The `traceparent` of a request, from all its `traceparent` header values in the order
    /// received: `None` unless exactly one is present and it is valid, as the specification
    /// requires (several, even identical, restart the trace). Never fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::TraceParent;
    ///
    /// let value = &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..];
    /// assert!(TraceParent::extract([value]).is_some());
    /// assert_eq!(TraceParent::extract([value, value]), None);
    /// assert_eq!(TraceParent::extract([]), None);
    /// ```
    #[must_use]
    pub fn extract<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<Self> {
        Self::try_extract(values).ok()
    }

    /// [`extract`](Self::extract), saying why the request has no usable `traceparent`.
    ///
    /// # Errors
    ///
    /// [`TraceParentError::Missing`] for none, [`TraceParentError::Duplicated`] for more
    /// than one, and the errors of [`parse`](Self::parse) for an invalid one.
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{TraceParent, TraceParentError};
    ///
    /// let value = &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..];
    /// assert!(TraceParent::try_extract([value]).is_ok());
    /// assert_eq!(TraceParent::try_extract([value, value]), Err(TraceParentError::Duplicated));
    /// assert_eq!(TraceParent::try_extract([]), Err(TraceParentError::Missing));
    /// ```
    pub fn try_extract<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, TraceParentError> {
        let mut values = values.into_iter();
        let first = values.next().ok_or(TraceParentError::Missing)?;
        if values.next().is_some() {
            return Err(TraceParentError::Duplicated);
        }
        Self::parse(first)
    }

    /// The `traceparent` of an outgoing call made while handling this one: version `00`,
    /// the same trace-id, `parent_id` as the parent (the span of this service), and the
    /// same flags, reserved ones cleared as the specification requires (the `random` flag of
    /// level 2 is kept).
    ///
    /// # Examples
    ///
    /// ```
    /// use contextvars::trace::{SpanId, TraceParent};
    ///
    /// let incoming = TraceParent::parse(b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff").unwrap();
    /// let outgoing = incoming.child(SpanId::from_bytes([1; 8]));
    /// assert_eq!(outgoing.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-0101010101010101-03");
    /// ```
    #[must_use]
    pub const fn child(&self, parent_id: SpanId) -> Self {
        Self { version: 0, trace_id: self.trace_id, parent_id, flags: self.flags.known() }
    }

    /// Whether the value may be sent: version not `ff`, neither id all zeros.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.version != 0xff && self.trace_id.is_valid() && self.parent_id.is_valid()
    }

    /// The header value, without allocating.
    fn encode(&self) -> [u8; LEN] {
        let mut out = [b'-'; LEN];
        out[0] = HEX[usize::from(self.version >> 4)];
        out[1] = HEX[usize::from(self.version & 0xf)];
        self.trace_id.write_hex(&mut out[3..35]);
        self.parent_id.write_hex(&mut out[36..52]);
        out[53] = HEX[usize::from(self.flags.0 >> 4)];
        out[54] = HEX[usize::from(self.flags.0 & 0xf)];
        out
    }
}

impl FromStr for TraceParent {
    type Err = TraceParentError;

    fn from_str(s: &str) -> Result<Self, TraceParentError> {
        Self::parse(s.as_bytes())
    }
}

impl fmt::Display for TraceParent {
    /// The header value: `vv-<trace-id>-<parent-id>-<flags>`, 55 characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ascii(&self.encode()))
    }
}

/// Why a `traceparent` could not be used.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{TraceParent, TraceParentError};
///
/// let error = TraceParent::parse(b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").unwrap_err();
/// assert_eq!(error, TraceParentError::TraceId);
/// assert_eq!(error.to_string(), "traceparent trace-id is not 32 lowercase hex digits");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceParentError {
    /// The request has no `traceparent` header.
    Missing,
    /// The request has more than one `traceparent` header.
    Duplicated,
    /// The value does not start with two lowercase hex digits and `-`.
    Version,
    /// The version is `ff`, which the specification forbids.
    ForbiddenVersion,
    /// The value is too short, or a version `00` value is not exactly 55 characters.
    Length,
    /// A higher version has more after the flags, but not separated by `-`.
    Trailing,
    /// The fields are not separated by `-` at the right places.
    Delimiter,
    /// The trace-id is not 32 lowercase hex digits.
    TraceId,
    /// The trace-id is all zeros.
    ZeroTraceId,
    /// The parent-id is not 16 lowercase hex digits.
    ParentId,
    /// The parent-id is all zeros.
    ZeroParentId,
    /// The flags are not 2 lowercase hex digits.
    Flags,
}

impl fmt::Display for TraceParentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "no traceparent header",
            Self::Duplicated => "more than one traceparent header",
            Self::Version => "traceparent does not start with a two-digit lowercase hex version and '-'",
            Self::ForbiddenVersion => "traceparent version ff is forbidden",
            Self::Length => "traceparent has the wrong length",
            Self::Trailing => "traceparent has data after the flags not separated by '-'",
            Self::Delimiter => "traceparent fields are not separated by '-'",
            Self::TraceId => "traceparent trace-id is not 32 lowercase hex digits",
            Self::ZeroTraceId => "traceparent trace-id is all zeros",
            Self::ParentId => "traceparent parent-id is not 16 lowercase hex digits",
            Self::ZeroParentId => "traceparent parent-id is all zeros",
            Self::Flags => "traceparent flags are not 2 lowercase hex digits",
        })
    }
}

impl std::error::Error for TraceParentError {}

/// Why a [`TraceId`] or [`SpanId`] could not be parsed.
///
/// # Examples
///
/// ```
/// use contextvars::trace::{ParseIdError, SpanId};
///
/// assert_eq!("00f067aa".parse::<SpanId>(), Err(ParseIdError::Length));
/// assert_eq!("00F067AA0BA902B7".parse::<SpanId>().unwrap_err().to_string(), "id is not lowercase hex");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseIdError {
    /// Not exactly 32 (trace-id) or 16 (parent-id) characters.
    Length,
    /// A character other than `0`-`9` and `a`-`f`.
    Digit,
    /// All zeros, which the specification forbids.
    AllZero,
}

impl ParseIdError {
    /// The matching [`TraceParentError`] for the field whose syntax error is `syntax`.
    fn field(self, syntax: TraceParentError) -> TraceParentError {
        match (self, syntax) {
            (Self::AllZero, TraceParentError::TraceId) => TraceParentError::ZeroTraceId,
            (Self::AllZero, TraceParentError::ParentId) => TraceParentError::ZeroParentId,
            _ => syntax,
        }
    }
}

impl fmt::Display for ParseIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Length => "id has the wrong number of hex digits",
            Self::Digit => "id is not lowercase hex",
            Self::AllZero => "id is all zeros",
        })
    }
}

impl std::error::Error for ParseIdError {}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The value of each lowercase hex digit; `0xff` for every other byte.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 16 {
        table[HEX[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Decodes eight lowercase hex digits at once (SWAR: each byte of a `u64` is one digit), or
/// `None` if any is not one.
#[inline(always)]
fn decode8(digits: [u8; 8]) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word = u64::from_le_bytes(digits);
    if word & HIGH != 0 {
        return None;
    }
    // With every byte below 0x80, adding `0x80 - low` sets a byte's high bit exactly when the
    // byte is at least `low`, and no carry crosses into the next byte.
    let at_least = |low: u8| word.wrapping_add(ONES * u64::from(0x80 - low)) & HIGH;
    let digit = at_least(b'0') & !at_least(b'9' + 1);
    let letter = at_least(b'a') & !at_least(b'f' + 1);
    if digit | letter != HIGH {
        return None;
    }
    // '0'..='9' are 0x30..=0x39 and 'a'..='f' are 0x61..=0x66: the low nibble, plus 9 for letters.
    let nibbles = (word & (ONES * 0x0f)) + (letter >> 7) * 9;
    // Byte i holds digit i; pair them (high digit first), then close the gaps.
    let pairs = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff_00ff_00ff_00ff;
    let quads = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
    let bytes = (quads | (quads >> 16)) as u32;
    Some(bytes.swap_bytes())
}

/// The byte written as two lowercase hex digits.
fn hex_byte(high: u8, low: u8) -> Option<u8> {
    let (high, low) = (HEX_VALUE[usize::from(high)], HEX_VALUE[usize::from(low)]);
    if (high | low) & 0xf0 == 0 { Some(high << 4 | low) } else { None }
}

/// `value` without the spaces and tabs around it.
pub(super) fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    &value[start..end]
}

/// Hex digits and dashes as text; they are ASCII, so this cannot fail.
fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const T: &str = "12345678901234567890123456789012";
    const P: &str = "1234567890123456";

    fn parse(s: &str) -> Result<TraceParent, TraceParentError> {
        TraceParent::parse(s.as_bytes())
    }

    #[test]
    fn spec_examples_parse() {
        let sampled = parse(VALID).unwrap();
        assert_eq!(sampled.version, 0);
        assert_eq!(sampled.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(sampled.parent_id.to_string(), "00f067aa0ba902b7");
        assert_eq!(sampled.flags, TraceFlags::SAMPLED);
        let not_sampled = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        assert!(!not_sampled.flags.is_sampled());
        assert_eq!(parse(&format!("00-{T}-{P}-01")).unwrap().trace_id.to_string(), T);
    }

    #[test]
    fn optional_whitespace_around_the_value_is_skipped() {
        for value in [
            format!(" 00-{T}-{P}-01"),
            format!("\t00-{T}-{P}-01"),
            format!("00-{T}-{P}-01 "),
            format!("00-{T}-{P}-01\t"),
            format!("\t 00-{T}-{P}-01 \t"),
        ] {
            assert_eq!(parse(&value).unwrap().trace_id.to_string(), T, "{value:?}");
        }
        assert!(parse(&format!("\r\n00-{T}-{P}-01")).is_err());
        assert!(parse(&format!("00-{T}-{P}-01\n")).is_err());
    }

    #[test]
    fn version_00_must_be_exactly_55_characters() {
        assert_eq!(parse(&format!("00-{T}-{P}-01.")), Err(TraceParentError::Length));
        assert_eq!(
            parse(&format!("00-{T}-{P}-01-what-the-future-will-be-like")),
            Err(TraceParentError::Length)
        );
    }

    #[test]
    fn higher_versions_are_parsed_by_their_prefix() {
        assert_eq!(parse(&format!("cc-{T}-{P}-01")).unwrap().trace_id.to_string(), T);
        let future = parse(&format!("cc-{T}-{P}-01-what-the-future-will-be-like")).unwrap();
        assert_eq!((future.version, future.trace_id.to_string()), (0xcc, T.to_string()));
        assert_eq!(
            parse(&format!("cc-{T}-{P}-01.what-the-future-will-be-like")),
            Err(TraceParentError::Trailing)
        );
        assert_eq!(parse(&format!("cc-{T}-{P}-0")), Err(TraceParentError::Length));
        assert_eq!(parse(&format!("01-{T}-{P}-01-")).unwrap().version, 1);
        assert_eq!(parse(&format!("fe-{T}-{P}-01")).unwrap().version, 0xfe);
    }

    #[test]
    fn spec_invalid_cases() {
        use TraceParentError::*;
        let cases = [
            (format!("ff-{T}-{P}-01"), ForbiddenVersion),
            (format!(".0-{T}-{P}-01"), Version),
            (format!("0.-{T}-{P}-01"), Version),
            (format!("000-{T}-{P}-01"), Version),
            (format!("0000-{T}-{P}-01"), Version),
            (format!("0-{T}-{P}-01"), Version),
            (format!("0A-{T}-{P}-01"), Version),
            (format!("00-00000000000000000000000000000000-{P}-01"), ZeroTraceId),
            (format!("00-.2345678901234567890123456789012-{P}-01"), TraceId),
            (format!("00-1234567890123456789012345678901.-{P}-01"), TraceId),
            (format!("00-4BF92F3577B34DA6A3CE929D0E0E4736-{P}-01"), TraceId),
            (format!("00-123456789012345678901234567890123-{P}-01"), Length),
            (format!("00-1234567890123456789012345678901-{P}-01"), Length),
            (format!("00-{T}-0000000000000000-01"), ZeroParentId),
            (format!("00-{T}-.234567890123456-01"), ParentId),
            (format!("00-{T}-123456789012345.-01"), ParentId),
            (format!("00-{T}-00F067AA0BA902B7-01"), ParentId),
            (format!("00-{T}-12345678901234567-01"), Length),
            (format!("00-{T}-123456789012345-01"), Length),
            (format!("00-{T}-{P}-.0"), Flags),
            (format!("00-{T}-{P}-0."), Flags),
            (format!("00-{T}-{P}-0A"), Flags),
            (format!("00-{T}-{P}-001"), Length),
            (format!("00-{T}-{P}-1"), Length),
            (format!("00_{T}-{P}-01"), Version),
            (format!("00-{T}_{P}-01"), Delimiter),
            (format!("00-{T}-{P}_01"), Delimiter),
            (String::new(), Version),
            ("00-".to_string(), Length),
        ];
        for (value, error) in cases {
            assert_eq!(parse(&value), Err(error), "{value:?}");
        }
    }

    #[test]
    fn several_headers_restart_the_trace() {
        let a = format!("00-{T}-{P}-01");
        let b = "00-12345678901234567890123456789011-1234567890123456-01";
        assert_eq!(TraceParent::try_extract([a.as_bytes(), b.as_bytes()]), Err(TraceParentError::Duplicated));
        assert_eq!(TraceParent::try_extract([a.as_bytes(), a.as_bytes()]), Err(TraceParentError::Duplicated));
        assert_eq!(TraceParent::try_extract([]), Err(TraceParentError::Missing));
        assert_eq!(TraceParent::extract([a.as_bytes(), a.as_bytes()]), None);
        assert_eq!(TraceParent::extract([a.as_bytes()]).unwrap().trace_id.to_string(), T);
    }

    #[test]
    fn child_keeps_the_trace_and_the_known_flags() {
        let incoming = parse(&format!("cc-{T}-{P}-07-extra")).unwrap();
        let child = incoming.child(SpanId::from_bytes([0xab; 8]));
        assert_eq!(child.to_string(), format!("00-{T}-abababababababab-03"));
        assert!(child.flags.is_sampled() && child.flags.is_random());
        let unsampled = parse(&format!("00-{T}-{P}-00")).unwrap().child(SpanId::from_bytes([1; 8]));
        assert!(!unsampled.flags.is_sampled());
    }

    #[test]
    fn ids_and_flags_format_as_lowercase_hex() {
        let trace = TraceId::from_bytes([0xab; 16]);
        assert_eq!(trace.to_string(), "ab".repeat(16));
        assert_eq!(format!("{trace:?}"), format!("TraceId({})", "ab".repeat(16)));
        assert_eq!(SpanId::from_bytes([0, 1, 2, 3, 4, 5, 6, 0xff]).to_string(), "00010203040506ff");
        assert_eq!(TraceFlags::from_bits(0xa0).to_string(), "a0");
        assert_eq!(TraceFlags::from_bits(0xa1).known(), TraceFlags::SAMPLED);
        assert_eq!("abc".parse::<TraceId>(), Err(ParseIdError::Length));
        assert_eq!("g".repeat(32).parse::<TraceId>(), Err(ParseIdError::Digit));
        assert_eq!("0".repeat(16).parse::<SpanId>(), Err(ParseIdError::AllZero));
        assert!(
            !TraceParent::new(TraceId::INVALID, SpanId::from_bytes([1; 8]), TraceFlags::default()).is_valid()
        );
    }

    #[test]
    fn eight_digits_at_a_time_agree_with_one_at_a_time() {
        for byte in 0..=255u8 {
            for position in 0..8 {
                let mut digits = *b"0123abcd";
                digits[position] = byte;
                let one_by_one = digits
                    .chunks_exact(2)
                    .try_fold(0u32, |acc, pair| Some(acc << 8 | u32::from(hex_byte(pair[0], pair[1])?)));
                assert_eq!(decode8(digits), one_by_one, "{digits:?}");
            }
        }
        assert_eq!(decode8(*b"00f067aa"), Some(0x00f0_67aa));
        assert_eq!(decode8(*b"ffffffff"), Some(u32::MAX));
        assert_eq!(decode8(*b"9a9a9a9a"), Some(0x9a9a_9a9a));
    }

    #[test]
    fn errors_display_in_lowercase_without_a_period() {
        let errors = [
            TraceParentError::Missing,
            TraceParentError::Duplicated,
            TraceParentError::Version,
            TraceParentError::ForbiddenVersion,
            TraceParentError::Length,
            TraceParentError::Trailing,
            TraceParentError::Delimiter,
            TraceParentError::TraceId,
            TraceParentError::ZeroTraceId,
            TraceParentError::ParentId,
            TraceParentError::ZeroParentId,
            TraceParentError::Flags,
        ];
        let texts = errors.iter().map(ToString::to_string).chain(
            [ParseIdError::Length, ParseIdError::Digit, ParseIdError::AllZero]
                .iter()
                .map(ToString::to_string),
        );
        for text in texts {
            assert!(text.starts_with(|c: char| c.is_ascii_lowercase()) && !text.ends_with('.'), "{text}");
        }
    }
}
