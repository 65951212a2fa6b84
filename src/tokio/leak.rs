//! [`Leak`]: the report of a value an unwrapped tokio task left in a worker thread's own
//! context, and the hook that receives it.

use std::cell::RefCell;
use std::fmt;
use std::panic::Location;
use std::sync::{Arc, PoisonError, RwLock};

use ::tokio::task::Id;

/// A value that a tokio task without a context of its own set in a worker thread's own
/// context, met by another task or by code outside any task: the mistake that, without this
/// crate's fail-closed rule, shows one request's value to the next.
///
/// Also reported: a task that sets a variable from the same line again, while its earlier
/// `set` there was never reset. That is one task serving request after request, as hyper does
/// for the requests of an HTTP/1 keep-alive connection: until a later request's own `set`, its
/// reads returned the earlier request's value, which the fail-closed rule (it knows tasks, not
/// requests) cannot tell apart. Then [`observer`](Self::observer) is the setter itself.
///
/// The reader got the value it would have read had the task never set (see
/// [`contextvars::tokio`](crate::tokio)); this report names the `set` to fix. Debug builds
/// make reports; release builds only fail closed. A report reaches the hook set with
/// [`set_leak_hook`], at the thread's next `set`, `reset` or `sync_scope` (never inside the
/// read that met the value, which may be a log formatter's); without a hook, one line per
/// variable and thread goes to standard error.
///
/// # Examples
///
/// ```
/// let leaks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// let seen = leaks.clone();
/// contextvars::tokio::set_leak_hook(move |leak| seen.lock().unwrap().push(leak.to_string()));
/// // ... run the service and its tests; then:
/// assert!(leaks.lock().unwrap().is_empty(), "values leaked: {:?}", leaks.lock().unwrap());
/// # contextvars::tokio::reset_leak_hook();
/// ```
#[derive(Clone, Debug)]
pub struct Leak {
    var: &'static str,
    set_at: &'static Location<'static>,
    setter: Id,
    observer: Option<Id>,
}

impl Leak {
    /// The variable's name.
    #[must_use]
    pub fn var_name(&self) -> &'static str {
        self.var
    }

    /// Where the `set` that left the value was made: the line to fix.
    #[must_use]
    pub fn set_at(&self) -> &'static Location<'static> {
        self.set_at
    }

    /// The task that made the `set`.
    #[must_use]
    pub fn setter(&self) -> Id {
        self.setter
    }

    /// The task that met the value (read it, or set the variable over it); `None` for code
    /// outside any task; the setter itself when it set the variable from the same line
    /// again without a reset in between.
    #[must_use]
    pub fn observer(&self) -> Option<Id> {
        self.observer
    }
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.observer == Some(self.setter) {
            write!(
                f,
                "contextvars: `{}` was set at {} again by tokio task {} in the worker thread's own \
                 context, over the value its earlier `set` there left (never reset); if this task \
                 serves one request after another (an HTTP/1 keep-alive connection), the requests \
                 between read that earlier value until their own `set`. Give each request a \
                 context of its own",
                self.var, self.set_at, self.setter
            )?;
            return Self::fix(f);
        }
        write!(
            f,
            "contextvars: `{}` was set at {} by tokio task {} in the worker thread's own context, and ",
            self.var, self.set_at, self.setter
        )?;
        match self.observer {
            Some(task) => write!(f, "task {task}")?,
            None => write!(f, "code outside any task")?,
        }
        write!(
            f,
            " met it; it was kept from them (values of a task with no context of its own stay that \
             task's on this thread). Give the task a context of its own"
        )?;
        Self::fix(f)
    }
}

impl Leak {
    /// The fix, at the end of a report.
    fn fix(f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, ": spawn it with `contextvars::tokio::spawn`, or wrap it with `.in_current_context()`")?;
        if cfg!(feature = "tower") {
            write!(
                f,
                ", or serve requests through `contextvars::tower::ContextLayer` or \
                 `contextvars::trace::server::TraceContextServerLayer`"
            )?;
        }
        Ok(())
    }
}

type Hook = Arc<dyn Fn(&Leak) + Send + Sync>;

static HOOK: RwLock<Option<Hook>> = RwLock::new(None);

/// Sends every [`Leak`] report to `hook` instead of standard error: to panic in tests, count,
/// or log. Replaces the hook set before.
///
/// # Examples
///
/// ```
/// contextvars::tokio::set_leak_hook(|leak| panic!("{leak}"));
/// # contextvars::tokio::reset_leak_hook();
/// ```
pub fn set_leak_hook(hook: impl Fn(&Leak) + Send + Sync + 'static) {
    *HOOK.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(hook));
}

/// Back to the default: one line on standard error per variable and thread.
///
/// # Examples
///
/// ```
/// contextvars::tokio::set_leak_hook(|_| ());
/// contextvars::tokio::reset_leak_hook();
/// ```
pub fn reset_leak_hook() {
    *HOOK.write().unwrap_or_else(PoisonError::into_inner) = None;
}

/// Reports waiting for the thread's next change; a few, the first ones.
const MAX_PENDING: usize = 16;

thread_local! {
    static PENDING: RefCell<Vec<Leak>> = const { RefCell::new(Vec::new()) };
    /// Variables and set sites the default hook printed on this thread.
    static PRINTED: RefCell<Vec<(&'static str, &'static Location<'static>)>> = const { RefCell::new(Vec::new()) };
}

/// Records a report, in debug builds, for [`deliver`].
pub(crate) fn record(
    var: &'static str,
    set_at: &'static Location<'static>,
    setter: Id,
    observer: Option<Id>,
) {
    if !cfg!(debug_assertions) {
        return;
    }
    let _ = PENDING.try_with(|pending| {
        let mut pending = pending.borrow_mut();
        if pending.len() < MAX_PENDING {
            pending.push(Leak { var, set_at, setter, observer });
        }
    });
}

/// Hands the reports recorded on this thread to the hook: called by a `set`, `reset` or
/// `sync_scope`, outside any read.
#[inline]
pub(crate) fn deliver() {
    if cfg!(debug_assertions) && PENDING.try_with(|pending| !pending.borrow().is_empty()).unwrap_or(false) {
        deliver_now();
    }
}

#[cold]
#[inline(never)]
fn deliver_now() {
    let reports = PENDING.try_with(|pending| std::mem::take(&mut *pending.borrow_mut())).unwrap_or_default();
    let hook = HOOK.read().unwrap_or_else(PoisonError::into_inner).clone();
    for leak in &reports {
        match &hook {
            Some(hook) => hook(leak),
            None => print_once(leak),
        }
    }
}

/// The default hook: one line on standard error per variable and set site, per thread.
fn print_once(leak: &Leak) {
    let first = PRINTED
        .try_with(|printed| {
            let mut printed = printed.borrow_mut();
            let key = (leak.var, leak.set_at);
            let first = !printed.contains(&key);
            if first {
                printed.push(key);
            }
            first
        })
        .unwrap_or(true);
    if first {
        eprintln!("{leak}");
    }
}
