//! The `threading.local()` bug, made loud: a `set` in a task that has no context of its own
//! lands in the worker thread's context. On threads marked with `thread::mark_worker` such a
//! `set` panics; with the `tokio` feature, a value one tokio task set there is kept from every
//! other task (fail closed, every build) and reported in debug builds. The corrected programs
//! see no foreign value.

mod support;

use std::panic::catch_unwind;
use std::sync::Arc;

use contextvars::{Context, ContextVar, FutureExt};
use support::yield_now;

static REQUEST_ID: ContextVar<usize> = ContextVar::new("request_id");

fn panic_message(err: &(dyn std::any::Any + Send)) -> String {
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_default()
}

#[test]
fn a_marked_thread_refuses_root_sets_and_keeps_everything_else() {
    std::thread::spawn(|| {
        contextvars::thread::mark_worker();
        assert!(contextvars::thread::is_worker());
        let err = catch_unwind(|| REQUEST_ID.set(1)).unwrap_err();
        let message = panic_message(&*err);
        assert!(message.contains("`request_id`") && message.contains("Context::current().wrap"), "{message}");
        assert_eq!(REQUEST_ID.get(), None, "the refused value was not stored");
        assert_eq!(REQUEST_ID.sync_scope(2, || REQUEST_ID.get()), Some(2));
        let mut task = Context::new();
        task.run(|| REQUEST_ID.set(3));
        assert_eq!((task.get(&REQUEST_ID), REQUEST_ID.get()), (Some(&3), None));
        let polled = futures::executor::block_on(
            async {
                REQUEST_ID.set(4);
                yield_now().await;
                REQUEST_ID.get()
            }
            .in_context(Context::new()),
        );
        assert_eq!((polled, REQUEST_ID.get()), (Some(4), None));
        contextvars::thread::unmark_worker();
        REQUEST_ID.set(6);
        assert_eq!(REQUEST_ID.get(), Some(6));
    })
    .join()
    .unwrap();
}

#[test]
fn warn_only_mode_sets_and_does_not_panic() {
    std::thread::spawn(|| {
        contextvars::thread::mark_worker_warn_only();
        REQUEST_ID.set(1);
        assert_eq!(REQUEST_ID.get(), Some(1));
    })
    .join()
    .unwrap();
}

/// tokio workers marked in `on_thread_start`: an unwrapped task's `set` panics inside the task
/// (its `JoinHandle` reports it), while spawned-with-context tasks and `scope` work.
#[cfg(feature = "tokio")]
#[test]
fn tokio_workers_marked_at_thread_start() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(contextvars::thread::mark_worker)
        .build()
        .unwrap();
    runtime.block_on(async {
        let naive = tokio::spawn(async { REQUEST_ID.set(1) });
        assert!(naive.await.unwrap_err().is_panic());
        let mut handles = Vec::new();
        for n in 0..200 {
            handles.push(contextvars::tokio::spawn(async move {
                REQUEST_ID.set(n);
                yield_now().await;
                let seen = REQUEST_ID.get();
                let scoped = REQUEST_ID.sync_scope(n + 1000, || REQUEST_ID.get());
                (seen == Some(n), scoped == Some(n + 1000))
            }));
        }
        for handle in handles {
            assert_eq!(handle.await.unwrap(), (true, true));
        }
    });
}

/// rayon workers marked in `start_handler`: a job's root `set` panics; `scope` and the
/// adapters' jobs work.
#[cfg(feature = "rayon")]
#[test]
fn rayon_workers_marked_at_start() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .start_handler(|_| contextvars::thread::mark_worker())
        .build()
        .unwrap();
    pool.install(|| {
        assert!(catch_unwind(|| REQUEST_ID.set(1)).is_err());
        assert_eq!(REQUEST_ID.sync_scope(2, || REQUEST_ID.get()), Some(2));
        let sums: Vec<usize> = (0..100)
            .map(|n| {
                REQUEST_ID
                    .sync_scope(n, || contextvars::rayon::join(|| REQUEST_ID.get(), || REQUEST_ID.get()))
            })
            .map(|(a, b)| a.unwrap_or(0) + b.unwrap_or(0))
            .collect();
        assert_eq!(sums, (0..100).map(|n| 2 * n).collect::<Vec<_>>());
    });
}

/// A hand-started smol executor thread: unwrapped tasks' sets panic, wrapped tasks work.
#[test]
fn a_hand_started_smol_thread() {
    let ex = Arc::new(smol::Executor::new());
    let worker = {
        let ex = Arc::clone(&ex);
        std::thread::spawn(move || {
            contextvars::thread::mark_worker();
            smol::block_on(ex.run(smol::Timer::after(std::time::Duration::from_millis(300))));
        })
    };
    let naive = ex.spawn(async { catch_unwind(|| REQUEST_ID.set(1)).is_err() });
    let wrapped = ex.spawn(
        async {
            REQUEST_ID.set(7);
            yield_now().await;
            REQUEST_ID.get()
        }
        .in_current_context(),
    );
    assert!(smol::block_on(naive));
    assert_eq!(smol::block_on(wrapped), Some(7));
    worker.join().unwrap();
}

/// With the `tokio` feature: the naive axum handler (sets the request's ID, awaits, reads it
/// back; no layer, no wrapper), 200 concurrent requests over real TCP. It never answers with
/// another request's ID: a value set by a task with no context of its own stays that task's
/// on its thread (a task that moved to another worker, or whose value another task's set
/// replaced, reads nothing: a lost value, never a foreign one). In debug builds each leak is
/// reported, naming the `set`'s line. The same handler run through `ContextVar::scope`
/// answers every request right.
#[cfg(feature = "tokio")]
mod naive_axum {
    use axum::extract::Path;

    use super::REQUEST_ID;

    /// The line of the naive `set`, which the reports name.
    pub(super) const SET_LINE: u32 = line!() + 4;

    pub(super) async fn naive(Path(n): Path<usize>) -> String {
        let before = REQUEST_ID.get();
        REQUEST_ID.set(n);
        tokio::task::yield_now().await;
        format!("{before:?} {:?}", REQUEST_ID.get())
    }

    pub(super) async fn corrected(Path(n): Path<usize>) -> String {
        REQUEST_ID
            .scope(n, async move {
                let before = REQUEST_ID.get();
                tokio::task::yield_now().await;
                format!("{before:?} {:?}", REQUEST_ID.get())
            })
            .await
    }

    /// Whether a body shows a request ID other than `n`.
    pub(super) fn foreign(body: &str, n: usize) -> bool {
        body.split(' ').any(|seen| seen.starts_with("Some(") && seen != format!("Some({n})"))
    }

    pub(super) async fn request(address: std::net::SocketAddr, path: &str) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_string())
    }
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_naive_axum_handler_never_answers_with_another_requests_id() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::routing::get;

    let reports = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&reports);
    contextvars::tokio::set_leak_hook(move |leak| {
        seen.lock().unwrap().push((leak.var_name(), leak.set_at().line()));
    });
    for route in ["naive", "corrected"] {
        let app = Router::new()
            .route("/naive/{n}", get(naive_axum::naive))
            .route("/corrected/{n}", get(naive_axum::corrected));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let (wrong, lost, right) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut clients = Vec::new();
        for n in 0..200 {
            let (wrong, lost, right) = (Arc::clone(&wrong), Arc::clone(&lost), Arc::clone(&right));
            clients.push(tokio::spawn(async move {
                let body =
                    naive_axum::request(address, &format!("/{route}/{n}")).await.expect("a 200 answer");
                if naive_axum::foreign(&body, n) {
                    wrong.fetch_add(1, Ordering::SeqCst);
                } else if body.ends_with(&format!("Some({n})")) {
                    right.fetch_add(1, Ordering::SeqCst);
                } else {
                    lost.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        for client in clients {
            client.await.unwrap();
        }
        server.abort();
        let (wrong, lost, right) =
            (wrong.load(Ordering::SeqCst), lost.load(Ordering::SeqCst), right.load(Ordering::SeqCst));
        assert_eq!(wrong, 0, "{route}: answered with another request's ID");
        assert_eq!(wrong + lost + right, 200);
        if route == "corrected" {
            assert_eq!(right, 200, "{route}: {lost} lost");
        }
    }
    contextvars::tokio::reset_leak_hook();
    let reports = reports.lock().unwrap();
    if cfg!(debug_assertions) {
        assert!(!reports.is_empty(), "the naive handler's leaks were reported");
        assert!(
            reports.iter().all(|&(var, line)| var == "request_id" && line == naive_axum::SET_LINE),
            "every report names the naive set's line: {reports:?}"
        );
    } else {
        assert!(reports.is_empty(), "release builds only fail closed");
    }
}

/// A library-style `set`/`reset` pair with no await between, in many tokio tasks at once,
/// while other tasks read: never trips the check.
#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_set_reset_pair_in_a_task_never_trips_the_check() {
    static LIBRARY: ContextVar<usize> = ContextVar::new("library");
    let mut handles = Vec::new();
    for n in 0..500 {
        handles.push(tokio::spawn(async move {
            let token = LIBRARY.set(n);
            let seen = LIBRARY.get();
            LIBRARY.reset(token).unwrap();
            yield_now().await;
            LIBRARY.sync_scope(n, || LIBRARY.get()) == Some(n) && seen == Some(n) && LIBRARY.get().is_none()
        }));
    }
    for handle in handles {
        assert!(handle.await.unwrap());
    }
}

#[test]
fn worker_marks_are_per_thread() {
    std::thread::spawn(contextvars::thread::mark_worker).join().unwrap();
    assert!(!contextvars::thread::is_worker());
}
