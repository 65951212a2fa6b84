//! The current request's trace in SQL comments, following the
//! [sqlcommenter](https://google.github.io/sqlcommenter/spec/) specification (feature
//! `sqlcommenter`), so that a database's own logs, slow-query log and statement statistics
//! name the request that ran each statement.
//!
//! [`SqlCommenter`] is set up once with the context variables to add, and
//! [`annotate`](SqlCommenter::annotate)s each statement with the current trace:
//!
//! ```text
//! SELECT * FROM orders WHERE id = ?1 /*correlation_id='order-42',tenant='acme',traceparent='00-…-01'*/
//! ```
//!
//! As the specification asks: keys and values are URL-encoded (every byte but ASCII letters,
//! digits and ``-_.!~*'()``), a `'` is escaped as `\'`, values are quoted, the pairs are
//! sorted by key and joined by `,`; the comment goes at the end of the statement, before a
//! final `;`; and a statement that already holds a comment (`--` or `/*`) is left as it is.
//! [`annotate`] applies the same rules to key-values of your own. The repository's
//! `integration/` crate runs annotated statements on an in-memory `rusqlite` database and
//! reads the comments back from the database's own statement trace.
//!
//! # Examples
//!
//! ```
//! use contextvars::ContextVar;
//! use contextvars::trace::TraceContext;
//! use contextvars::trace::sqlcommenter::SqlCommenter;
//!
//! static TENANT: ContextVar<String> = ContextVar::new("tenant");
//! let commenter = SqlCommenter::new().var("tenant", &TENANT);
//!
//! let trace = TraceContext::extract(&[
//!     ("x-trace-id", "order-42"),
//!     ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
//!     ("tracestate", "congo=t61rcWkgMzE"),
//! ]);
//! let sql = trace.sync_scope(|| TENANT.sync_scope("acme".into(), || commenter.annotate("SELECT * FROM orders;")));
//! assert!(sql.starts_with(
//!     "SELECT * FROM orders /*correlation_id='order-42',tenant='acme',\
//!      traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-" // then a new parent-id, and the flags
//! ));
//! assert!(sql.ends_with("-01',tracestate='congo%3Dt61rcWkgMzE'*/;"));
//!
//! // Outside any request and without variables there is nothing to add.
//! assert_eq!(commenter.annotate("SELECT 1"), "SELECT 1");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::TraceContext;
use crate::ContextVar;

/// What URL encoding escapes: every byte but ASCII letters, digits and ``-_.!~*'()``.
const URL_ENCODED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Annotates SQL statements with the current trace and chosen context variables; see the
/// [module documentation](self).
///
/// Each statement gets, when there is a current [`TraceContext`]: `traceparent` (the
/// trace's trace-id and flags with a new parent-id, as an outgoing call gets), `tracestate`
/// (when not empty) and the correlation ID (key `correlation_id` unless changed with
/// [`correlation_id`](Self::correlation_id)); and, in and out of requests, each variable
/// added with [`var`](Self::var) that has a value. Cloning is cheap.
///
/// # Examples
///
/// ```
/// use contextvars::trace::TraceContext;
/// use contextvars::trace::sqlcommenter::SqlCommenter;
///
/// let commenter = SqlCommenter::new().correlation_id(Some("request_id"));
/// let sql = TraceContext::extract(&[("x-trace-id", "job-7")]).sync_scope(|| commenter.annotate("DELETE FROM jobs"));
/// assert!(sql.starts_with("DELETE FROM jobs /*request_id='job-7',traceparent='00-"));
///
/// // A statement that already holds a comment is left as it is.
/// let commented = "SELECT 1 -- health check";
/// assert_eq!(TraceContext::new_root().sync_scope(|| commenter.annotate(commented)), commented);
/// ```
#[derive(Clone)]
pub struct SqlCommenter {
    correlation_id: Option<&'static str>,
    vars: Vec<(&'static str, Arc<dyn CurrentText>)>,
}

/// A context variable's current value as text, if it has one.
trait CurrentText: Send + Sync {
    fn current_text(&self) -> Option<String>;
}

impl<T: fmt::Display + Send + Sync + 'static> CurrentText for &'static ContextVar<T> {
    fn current_text(&self) -> Option<String> {
        self.with(|value| value.map(ToString::to_string))
    }
}

impl SqlCommenter {
    /// A commenter that adds the current trace and the correlation ID, under the key
    /// `correlation_id`.
    #[must_use]
    pub const fn new() -> Self {
        Self { correlation_id: Some("correlation_id"), vars: Vec::new() }
    }

    /// The key of the correlation ID (`Some("correlation_id")` by default), or `None` to
    /// leave it out.
    #[must_use]
    pub const fn correlation_id(mut self, key: Option<&'static str>) -> Self {
        self.correlation_id = key;
        self
    }

    /// Adds `key='<the current value of var>'` to each statement made while `var` has a
    /// value (a tenant, a user id, a job's name).
    #[must_use]
    pub fn var<T: fmt::Display + Send + Sync + 'static>(
        mut self,
        key: &'static str,
        var: &'static ContextVar<T>,
    ) -> Self {
        self.vars.push((key, Arc::new(var)));
        self
    }

    /// `sql` with the comment, or `sql` itself when it already holds a comment or there is
    /// nothing to add.
    #[must_use]
    pub fn annotate<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        if has_comment(sql) {
            return Cow::Borrowed(sql);
        }
        let mut pairs: Vec<(&str, String)> = Vec::with_capacity(self.vars.len() + 3);
        if let Some(trace) = TraceContext::current() {
            if let Some(key) = self.correlation_id {
                pairs.push((key, trace.correlation_id().to_string()));
            }
            pairs.push(("traceparent", trace.outgoing_traceparent().to_string()));
            if !trace.tracestate().is_empty() {
                pairs.push(("tracestate", trace.tracestate().to_string()));
            }
        }
        for (key, var) in &self.vars {
            if let Some(text) = var.current_text() {
                pairs.push((key, text));
            }
        }
        annotate(sql, pairs.iter().map(|(key, value)| (*key, value.as_str())))
    }
}

impl Default for SqlCommenter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SqlCommenter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlCommenter")
            .field("correlation_id", &self.correlation_id)
            .field("vars", &self.vars.iter().map(|(key, _)| *key).collect::<Vec<_>>())
            .finish()
    }
}

/// `sql` with a sqlcommenter comment holding `pairs` (keys and values URL-encoded, `'`
/// escaped, values quoted, sorted by key), placed at the end of the statement, before a
/// final `;`. `sql` itself when it already holds a comment (`--` or `/*`) or `pairs` is
/// empty. Of two pairs with the same key, the first is kept.
///
/// # Examples
///
/// The specification's own examples:
///
/// ```
/// use contextvars::trace::sqlcommenter::annotate;
///
/// let sql = annotate("SELECT * FROM FOO", [
///     ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
///     ("traceparent", "00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01"),
///     ("framework", "spring"),
///     ("controller", "index"),
///     ("action", "/param*d"),
/// ]);
/// assert_eq!(sql, "SELECT * FROM FOO /*action='%2Fparam*d',controller='index',framework='spring',\
///     traceparent='00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01',\
///     tracestate='congo%3Dt61rcWkgMzE%2Crojo%3D00f067aa0ba902b7'*/");
///
/// assert_eq!(annotate("SELECT 1;", [("route parameter", "FOO 'BAR")]), r"SELECT 1 /*route%20parameter='FOO%20\'BAR'*/;");
/// assert_eq!(annotate("SELECT 1 /* mine */", [("k", "v")]), "SELECT 1 /* mine */");
/// ```
#[must_use]
pub fn annotate<'a, 'p>(sql: &'a str, pairs: impl IntoIterator<Item = (&'p str, &'p str)>) -> Cow<'a, str> {
    if has_comment(sql) {
        return Cow::Borrowed(sql);
    }
    let mut pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
    if pairs.is_empty() {
        return Cow::Borrowed(sql);
    }
    // Stable: of two pairs with one key, the first stays first, and the second is dropped.
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    pairs.dedup_by(|later, first| later.0 == first.0);
    let mut comment = String::with_capacity(sql.len() + 64 * pairs.len());
    let trimmed = sql.trim_end();
    let (statement, semicolon) = match trimmed.strip_suffix(';') {
        Some(statement) => (statement.trim_end(), ";"),
        None => (trimmed, ""),
    };
    comment.push_str(statement);
    comment.push_str(" /*");
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            comment.push(',');
        }
        write_escaped(&mut comment, key);
        comment.push_str("='");
        write_escaped(&mut comment, value);
        comment.push('\'');
    }
    comment.push_str("*/");
    comment.push_str(semicolon);
    // What followed the statement (a final newline), kept.
    comment.push_str(&sql[trimmed.len()..]);
    Cow::Owned(comment)
}

/// Whether the statement holds a comment the specification forbids touching.
fn has_comment(sql: &str) -> bool {
    sql.contains("--") || sql.contains("/*")
}

/// `text` URL-encoded, then each `'` escaped as `\'`.
fn write_escaped(out: &mut String, text: &str) {
    for chunk in utf8_percent_encode(text, URL_ENCODED) {
        for (i, part) in chunk.split('\'').enumerate() {
            if i > 0 {
                out.push_str("\\'");
            }
            out.push_str(part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specification_s_serialization_examples() {
        let value = |text: &str| {
            let mut out = String::new();
            write_escaped(&mut out, text);
            out
        };
        assert_eq!(value("route parameter"), "route%20parameter");
        assert_eq!(value("/param first"), "%2Fparam%20first");
        assert_eq!(value("DROP"), "DROP");
        assert_eq!(value("FOO 'BAR"), "FOO%20\\'BAR");
        assert_eq!(value("/param*d"), "%2Fparam*d");
        assert_eq!(
            value("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
            "congo%3Dt61rcWkgMzE%2Crojo%3D00f067aa0ba902b7"
        );
        // What URL encoding keeps, and what it escapes.
        assert_eq!(value("AZaz09-_.!~*'()"), "AZaz09-_.!~*\\'()");
        assert_eq!(value("a;b/c?d#e\"f\\g é\n*/"), "a%3Bb%2Fc%3Fd%23e%22f%5Cg%20%C3%A9%0A*%2F");
    }

    #[test]
    fn the_comment_goes_before_a_final_semicolon_and_trailing_space_stays() {
        let pairs = [("k", "v")];
        assert_eq!(annotate("SELECT 1", pairs), "SELECT 1 /*k='v'*/");
        assert_eq!(annotate("SELECT 1;", pairs), "SELECT 1 /*k='v'*/;");
        assert_eq!(annotate("SELECT 1 ;\n", pairs), "SELECT 1 /*k='v'*/;\n");
        assert_eq!(annotate("SELECT 1; SELECT 2;", pairs), "SELECT 1; SELECT 2 /*k='v'*/;");
        assert_eq!(annotate("SELECT 1", []), "SELECT 1");
    }

    #[test]
    fn statements_with_comments_are_left_alone() {
        for sql in ["SELECT 1 -- x", "SELECT /* hint */ 1", "SELECT 1 /*a='b'*/;", "/*x*/SELECT 1"] {
            assert!(matches!(annotate(sql, [("k", "v")]), Cow::Borrowed(s) if s == sql), "{sql}");
        }
    }

    #[test]
    fn keys_are_sorted_and_a_repeated_key_keeps_its_first_value() {
        let sql = annotate("Q", [("b", "2"), ("a", "1"), ("b", "3"), ("A", "0")]);
        assert_eq!(sql, "Q /*A='0',a='1',b='2'*/");
    }

    #[test]
    fn no_value_can_end_the_comment_or_the_quotes() {
        let sql = annotate("Q", [("k*/", "*/ DROP TABLE t; --'")]);
        assert_eq!(sql, "Q /*k*%2F='*%2F%20DROP%20TABLE%20t%3B%20--\\''*/");
        assert_eq!(sql.matches("*/").count(), 1);
    }
}
