//! [`CurrentValue`]: any context variable's current value, read when it is formatted.

use std::fmt;

use crate::ContextVar;

/// Formats as the current value of a context variable, or a placeholder when it has none:
/// the adapter that puts a variable of your own (a tenant, a user id) into log lines, the
/// way [`CurrentCorrelationId`](super::CurrentCorrelationId) does for the correlation ID.
///
/// The value is read each time it is formatted, never cached, so one `CurrentValue` serves
/// every record. Width, fill and alignment (`{:>10}`) apply to the whole value.
///
/// # Examples
///
/// ```
/// use contextvars::ContextVar;
/// use contextvars::trace::CurrentValue;
///
/// static TENANT: ContextVar<String> = ContextVar::new("tenant");
/// let tenant = CurrentValue::new(&TENANT).missing("no-tenant");
///
/// assert_eq!(format!("tenant={tenant}"), "tenant=no-tenant");
/// TENANT.sync_scope("acme".to_string(), || {
///     assert_eq!(format!("tenant={tenant}"), "tenant=acme");
///     assert_eq!(format!("[{tenant:>6}]"), "[  acme]");
/// });
/// ```
pub struct CurrentValue<T: 'static> {
    var: &'static ContextVar<T>,
    missing: &'static str,
}

impl<T: Send + Sync + fmt::Display + 'static> CurrentValue<T> {
    /// The adapter for `var`, showing `-` when it has no value.
    #[must_use]
    pub const fn new(var: &'static ContextVar<T>) -> Self {
        Self { var, missing: "-" }
    }

    /// Shows `missing` instead of `-` when the variable has no value.
    #[must_use]
    pub const fn missing(mut self, missing: &'static str) -> Self {
        self.missing = missing;
        self
    }
}

impl<T: Send + Sync + fmt::Display + 'static> fmt::Display for CurrentValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.var.with(|value| match value {
            // Through a string, so that width and alignment apply to any `Display`.
            Some(value) if f.width().is_some() => f.pad(&value.to_string()),
            Some(value) => fmt::Display::fmt(value, f),
            None => f.pad(self.missing),
        })
    }
}

impl<T> Clone for CurrentValue<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for CurrentValue<T> {}

impl<T> fmt::Debug for CurrentValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentValue").field("var", &self.var).field("missing", &self.missing).finish()
    }
}

/// The fields a log integration adds to each line: `key=value` pairs whose values are read
/// when a line is formatted.
#[cfg(any(feature = "log", feature = "tracing"))]
#[derive(Clone)]
pub(super) struct Fields(Vec<(&'static str, std::sync::Arc<dyn fmt::Display + Send + Sync>)>);

#[cfg(any(feature = "log", feature = "tracing"))]
impl Fields {
    /// `correlation_id` alone.
    pub(super) fn correlation_id() -> Self {
        Self(vec![("correlation_id", std::sync::Arc::new(super::CurrentCorrelationId))])
    }

    pub(super) fn rename_first(&mut self, key: &'static str) {
        self.0[0].0 = key;
    }

    pub(super) fn push<T: Send + Sync + fmt::Display + 'static>(
        &mut self,
        key: &'static str,
        var: &'static ContextVar<T>,
    ) {
        self.0.push((key, std::sync::Arc::new(CurrentValue::new(var))));
    }

    /// `key=value key=value `, each followed by a space.
    pub(super) fn write_prefix(&self, out: &mut impl fmt::Write) -> fmt::Result {
        for (key, value) in &self.0 {
            write!(out, "{key}={value} ")?;
        }
        Ok(())
    }

    /// `"key":"value",` for each field, values escaped as JSON strings.
    #[cfg(feature = "tracing")]
    pub(super) fn write_json_members(&self, out: &mut String) {
        for (key, value) in &self.0 {
            write_json_string(out, key);
            out.push(':');
            write_json_string(out, &value.to_string());
            out.push(',');
        }
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|(key, _)| *key)
    }
}

/// `text` as a JSON string literal.
#[cfg(feature = "tracing")]
fn write_json_string(out: &mut String, text: &str) {
    use fmt::Write as _;
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
