//! `CorrelationIdLogger::init`, used as its documentation shows, prints: it installs the logger
//! and raises `log`'s maximum level (left at `Off`, `log` would drop every record before any
//! logger sees it). Its own binary: it installs the process's global logger.

#![cfg(feature = "log")]

use std::sync::{Arc, Mutex};

use contextvars::trace::TraceContext;
use contextvars::trace::log::CorrelationIdLogger;

struct Lines(Arc<Mutex<Vec<String>>>);

impl log::Log for Lines {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push(format!("{} {}", record.level(), record.args()));
    }

    fn flush(&self) {}
}

#[test]
fn init_installs_the_logger_and_sets_the_level() {
    assert_eq!(log::max_level(), log::LevelFilter::Off);
    let lines = Arc::new(Mutex::new(Vec::new()));
    CorrelationIdLogger::new(Lines(Arc::clone(&lines))).init(log::LevelFilter::Info);
    assert_eq!(log::max_level(), log::LevelFilter::Info);

    TraceContext::extract(&[("x-trace-id", "init-1")]).sync_scope(|| log::info!(user = 5; "paid"));
    log::debug!("below the level");
    assert_eq!(*lines.lock().unwrap(), ["INFO correlation_id=init-1 paid"]);
    assert!(CorrelationIdLogger::new(Lines(Arc::clone(&lines))).try_init(log::LevelFilter::Info).is_err());
    let second = std::panic::catch_unwind(|| {
        CorrelationIdLogger::new(Lines(Arc::clone(&lines))).init(log::LevelFilter::Debug);
    });
    let message = second.unwrap_err().downcast::<String>().unwrap();
    assert!(message.starts_with("CorrelationIdLogger::init: "), "{message}");
    assert_eq!(log::max_level(), log::LevelFilter::Info, "a failed init leaves the level alone");
}
