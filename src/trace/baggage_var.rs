//! [`BaggageVar`]: a context variable that travels to other services in W3C baggage.

use std::fmt;

use crate::{Context, ContextVar};

/// A context variable declared to travel in baggage: what the layers need to send its
/// value and to set it from a request. Implemented by [`BaggageVar`] only (the trait is
/// sealed, so that it can gain methods); the layers take a
/// `&'static [&'static dyn TravellingVar]`.
pub trait TravellingVar: sealed::Sealed + Send + Sync {
    /// The baggage key.
    fn key(&self) -> &'static str;

    /// The variable's current value, encoded; `None` when it has none.
    fn encode_current(&self) -> Option<String>;

    /// `context` with the variable set to the decoded `value`, or `None` when `value` does
    /// not decode (it is then ignored).
    fn decode_into(&self, value: &str, context: &Context) -> Option<Context>;
}

/// Declares that a `ContextVar` travels in W3C baggage under `key`, with a codec: the
/// value set in one service is what `get` returns in the services it calls, through
/// `TraceContextServerLayer::baggage_vars` on the server side and
/// `TraceContextClientLayer::baggage_vars` on the client side (feature `tower-trace`). Only
/// variables declared this way ever leave the process.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
/// use contextvars::trace::{BaggageVar, TravellingVar};
///
/// static TENANT: ContextVar<String> = ContextVar::new("tenant");
/// static TENANT_IN_BAGGAGE: BaggageVar<String> = BaggageVar::string("tenant", &TENANT);
///
/// static QUOTA: ContextVar<u32> = ContextVar::new("quota");
/// static QUOTA_IN_BAGGAGE: BaggageVar<u32> =
///     BaggageVar::new("quota", &QUOTA, |q| q.to_string(), |text| text.parse().ok());
///
/// QUOTA.sync_scope(7, || assert_eq!(QUOTA_IN_BAGGAGE.encode_current().as_deref(), Some("7")));
/// let context = QUOTA_IN_BAGGAGE.decode_into("12", &contextvars::Context::new()).unwrap();
/// assert_eq!(context.get(&QUOTA), Some(&12));
/// assert!(QUOTA_IN_BAGGAGE.decode_into("many", &contextvars::Context::new()).is_none());
/// # let _ = &TENANT_IN_BAGGAGE;
/// ```
pub struct BaggageVar<T: 'static> {
    key: &'static str,
    var: &'static ContextVar<T>,
    encode: fn(&T) -> String,
    decode: fn(&str) -> Option<T>,
}

impl<T: Send + Sync + 'static> BaggageVar<T> {
    /// `var` travels under `key`, written by `encode` and read back by `decode` (a value
    /// that does not decode is ignored).
    ///
    /// The key must be an HTTP token (letters, digits and ``!#$%&'*+-.^_`|~``); the layers
    /// panic when given one that is not.
    #[must_use]
    pub const fn new(
        key: &'static str,
        var: &'static ContextVar<T>,
        encode: fn(&T) -> String,
        decode: fn(&str) -> Option<T>,
    ) -> Self {
        Self { key, var, encode, decode }
    }
}

impl BaggageVar<String> {
    /// A `String` variable that travels as it is.
    #[must_use]
    pub const fn string(key: &'static str, var: &'static ContextVar<String>) -> Self {
        Self::new(key, var, String::clone, decode_string)
    }
}

#[allow(clippy::unnecessary_wraps, reason = "the codec's signature")]
fn decode_string(text: &str) -> Option<String> {
    Some(text.to_owned())
}

mod sealed {
    /// Implemented by the crate's travelling variables only.
    #[allow(unreachable_pub, reason = "a sealed supertrait: public, in a private module")]
    pub trait Sealed {}
}

impl<T: Send + Sync + 'static> sealed::Sealed for BaggageVar<T> {}

impl<T: Send + Sync + 'static> TravellingVar for BaggageVar<T> {
    fn key(&self) -> &'static str {
        self.key
    }

    fn encode_current(&self) -> Option<String> {
        self.var.with(|value| value.map(self.encode))
    }

    fn decode_into(&self, value: &str, context: &Context) -> Option<Context> {
        (self.decode)(value).map(|value| context.with_value(self.var, value))
    }
}

impl<T> fmt::Debug for BaggageVar<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaggageVar").field("key", &self.key).field("var", &self.var).finish_non_exhaustive()
    }
}

/// Panics when a declared key is not an HTTP token: such a variable could never travel.
#[cfg(feature = "tower-trace")]
#[track_caller]
pub(super) fn check_keys(vars: &[&dyn TravellingVar]) {
    for var in vars {
        let key = var.key();
        let token = !key.is_empty()
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        assert!(token, "baggage key {key:?} is not an HTTP token: use letters, digits and !#$%&'*+-.^_`|~");
    }
}
