//! SQL comments against a real database: statements annotated by `SqlCommenter` run on
//! SQLite (in memory, through `rusqlite`), and the comments are read back from SQLite's own
//! statement trace (`trace_v2`): each carries its own request's `traceparent`, `tracestate`,
//! correlation ID and tenant, and the statements still do what they say.

use std::sync::{Arc, Mutex};

use contextvars::ContextVar;
use contextvars::trace::TraceContext;
use contextvars::trace::sqlcommenter::SqlCommenter;
use rusqlite::Connection;
use rusqlite::trace::{TraceEvent, TraceEventCodes};

static TENANT: ContextVar<String> = ContextVar::new("tenant");

const REQUESTS: usize = 100;

/// A connection whose executed statements (their text, as SQLite traces it) land in the
/// returned list.
fn traced_connection() -> (Connection, Arc<Mutex<Vec<String>>>) {
    let mut connection = Connection::open_in_memory().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    connection
        .trace_v2(
            TraceEventCodes::SQLITE_TRACE_STMT,
            Some(move |event: TraceEvent<'_>| {
                if let TraceEvent::Stmt(_, sql) = event {
                    sink.lock().unwrap().push(sql.to_owned());
                }
            }),
        )
        .unwrap();
    (connection, seen)
}

/// The key-values of the sqlcommenter comment at the end of `sql` (before a final `;`),
/// unescaped and URL-decoded.
fn comment_of(sql: &str) -> Vec<(String, String)> {
    let start = sql.rfind("/*").unwrap_or_else(|| panic!("no comment in {sql:?}")) + 2;
    let end = sql.rfind("*/").unwrap();
    let decode = |text: &str| {
        let unescaped = text.replace("\\'", "'");
        let bytes = unescaped.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&unescaped[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    sql[start..end]
        .split(',')
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap();
            let value = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap();
            (decode(key), decode(value))
        })
        .collect()
}

fn request(n: usize) -> TraceContext {
    TraceContext::extract(&[
        ("x-trace-id", format!("order-{n}")),
        ("traceparent", format!("00-{:032x}-{:016x}-01", 0x5a1_0000 + n, 0x99 + n)),
        ("tracestate", format!("db=x{n},other=y")),
    ])
}

#[test]
fn sqlite_sees_each_request_s_comment_on_its_statements() {
    let commenter = SqlCommenter::new().var("tenant", &TENANT);
    let (connection, seen) = traced_connection();
    connection.execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL)").unwrap();

    for n in 0..REQUESTS {
        request(n).sync_scope(|| {
            TENANT.sync_scope(format!("acme 'n{n}'"), || {
                let insert = format!("INSERT INTO orders (id, tenant) VALUES ({n}, 'tenant-{n}');");
                let annotated = commenter.annotate(&insert);
                assert!(annotated.ends_with("*/;"), "{annotated}");
                assert_eq!(connection.execute(&annotated, []).unwrap(), 1);
                let select = format!("SELECT tenant FROM orders WHERE id = {n}");
                let tenant: String =
                    connection.query_row(&commenter.annotate(&select), [], |row| row.get(0)).unwrap();
                assert_eq!(tenant, format!("tenant-{n}"));
            });
        });
    }

    let statements = seen.lock().unwrap().clone();
    let annotated: Vec<&String> = statements.iter().filter(|sql| !sql.starts_with("CREATE")).collect();
    assert_eq!(annotated.len(), 2 * REQUESTS, "every statement traced once");
    let mut wrong = 0;
    for sql in annotated {
        // Which request ran it: the literal id in the statement.
        let n: usize = sql
            .split(|c: char| !c.is_ascii_digit())
            .find(|digits| !digits.is_empty())
            .and_then(|digits| digits.parse().ok())
            .unwrap();
        let trace = request(n);
        let pairs = comment_of(sql);
        let keys: Vec<&str> = pairs.iter().map(|(key, _)| key.as_str()).collect();
        let value = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let traceparent =
            value("traceparent").and_then(|v| contextvars::trace::TraceParent::parse(v.as_bytes()).ok());
        let ok = keys == ["correlation_id", "tenant", "traceparent", "tracestate"]
            && value("correlation_id") == Some(format!("order-{n}").as_str())
            && value("tenant") == Some(format!("acme 'n{n}'").as_str())
            && value("tracestate") == Some(format!("db=x{n},other=y").as_str())
            && traceparent.is_some_and(|t| t.trace_id == trace.trace_id() && t.flags.is_sampled());
        if !ok {
            wrong += 1;
            eprintln!("wrong comment for request {n}: {sql}");
        }
    }
    assert_eq!(wrong, 0);
}

#[test]
fn statements_that_hold_a_comment_run_unchanged_and_outside_requests_nothing_is_added() {
    let commenter = SqlCommenter::new().var("tenant", &TENANT);
    let (connection, seen) = traced_connection();
    let own = "SELECT 1 /* mine */";
    request(1).sync_scope(|| {
        let value: i64 = connection.query_row(&commenter.annotate(own), [], |row| row.get(0)).unwrap();
        assert_eq!(value, 1);
    });
    let plain = "SELECT 2";
    let value: i64 = connection.query_row(&commenter.annotate(plain), [], |row| row.get(0)).unwrap();
    assert_eq!(value, 2);
    // Outside a request, a variable alone still makes a comment.
    let tenant_only = TENANT.sync_scope("solo".into(), || commenter.annotate("SELECT 3").into_owned());
    let value: i64 = connection.query_row(&tenant_only, [], |row| row.get(0)).unwrap();
    assert_eq!(value, 3);
    assert_eq!(*seen.lock().unwrap(), [own, plain, "SELECT 3 /*tenant='solo'*/"]);
}
