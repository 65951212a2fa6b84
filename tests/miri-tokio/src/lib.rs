//! Nothing here: the tests in `tests/` drive `contextvars::tokio::task_contexts` on a
//! current-thread runtime under Miri.
