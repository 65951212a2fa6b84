//! Context variables against a deliberately simple reference model: shared by
//! `tests/context_model.rs` and the `context_model` fuzz target.
//!
//! The model is a stack of plain `BTreeMap`s, one per entered context, each tagged with an
//! identity (what tokens remember), plus the contexts, tokens and futures the program holds.
//! A program is a flat list of actions; `Enter`/`Scope` and the next `Leave` delimit a block
//! that runs inside `Context::run` or `ContextVar::scope`. `Panic` unwinds out of the
//! innermost block that catches; the thread's context afterwards must equal the model's.
//! Every read (current context, held contexts, inside futures and their destructors) is
//! compared with the model after every step.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};

use arbitrary::{Arbitrary, Unstructured};
use contextvars::{Context, ContextVar, FutureExt, ResetError, Token, WithContext};

/// Variables: enough that their ids spill past the first 32 and nest in the trie.
const VARS_LEN: usize = 40;
/// `var(0)` reads as this value wherever it is not set.
const DEFAULT: i64 = 1000;
/// Slots for held contexts, futures and tokens.
const SLOTS: usize = 6;
/// Deepest nesting of blocks.
const MAX_DEPTH: usize = 12;

/// Variable 0, the only one with a default.
static WITH_DEFAULT: ContextVar<V> = ContextVar::with_default("v0", V(DEFAULT));
/// Variables 1 and up.
static OTHERS: [ContextVar<V>; VARS_LEN - 1] = [const { ContextVar::new("v") }; VARS_LEN - 1];

fn cvar(index: usize) -> &'static ContextVar<V> {
    match index {
        0 => &WITH_DEFAULT,
        _ => &OTHERS[index - 1],
    }
}

/// Every variable, in index order.
fn vars() -> impl Iterator<Item = &'static ContextVar<V>> {
    (0..VARS_LEN).map(cvar)
}

/// Set and reset by every `V`'s destructor: a destructor that ran while the current context
/// was borrowed would make the `set` panic.
static PROBE: ContextVar<u32> = ContextVar::new("probe");

thread_local! {
    /// `V`s constructed (including clones) minus `V`s dropped, on this thread.
    static LIVE: Cell<i64> = const { Cell::new(0) };
    /// `true` while a value's `Clone` or `Drop` acts on the context: values made or read
    /// meanwhile act on nothing, so the actions do not recurse.
    static REENTERED: Cell<bool> = const { Cell::new(false) };
    /// What a watcher of variable 1 mirrors: its value visible on this thread.
    static MIRROR: Cell<Option<i64>> = const { Cell::new(None) };
}

/// Registers the watcher of variable 1 once: it mirrors the value into `MIRROR`.
fn watch_variable_1() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| cvar(1).watch(|_, new| MIRROR.with(|mirror| mirror.set(new.map(|v| v.0)))).keep());
}

/// The mirror after a panic unwound: watchers never run while one does, so code that catches
/// it resynchronises what it mirrors.
fn resync_mirror() {
    let value = cvar(1).with(|v| v.map(|v| v.0));
    MIRROR.with(|mirror| mirror.set(value));
}

/// The watcher's mirror agrees with the variable.
fn check_mirror() {
    let value = cvar(1).with(|v| v.map(|v| v.0));
    assert_eq!(MIRROR.with(Cell::get), value, "the watcher's mirror of variable 1");
}

/// A counted value whose `Clone` and `Drop` act on the context (see [`reenter`]), as user
/// types may: the engine runs them in the middle of reads, and drops values it released
/// right after changes, pins and context switches. Each action leaves the current context's
/// values as it found them, so the model needs no change. The default in `WITH_DEFAULT` is
/// never counted (it is never dropped); its clones are.
#[derive(Debug, Eq)]
pub(crate) struct V(i64);

impl PartialEq for V {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl V {
    fn new(value: i64) -> Self {
        LIVE.with(|live| live.set(live.get() + 1));
        V(value)
    }
}

impl Clone for V {
    fn clone(&self) -> Self {
        reenter(self.0);
        V::new(self.0)
    }
}

impl Drop for V {
    fn drop(&mut self) {
        LIVE.with(|live| live.set(live.get() - 1));
        let token = PROBE.set(1);
        assert_eq!(PROBE.reset(token), Ok(()), "a value's destructor could not reset its own set");
        reenter(self.0);
    }
}

/// What a value's `Clone` or `Drop` does to the context, chosen by the value: set then
/// reset, a scope, entering a fresh context or a snapshot and setting there, a `with` inside
/// a `with` that sets and resets the lent variable, a set over a snapshot with a fold after
/// it, or a nested read. Each leaves the current context's values as they were. The values
/// these actions store act on nothing themselves.
fn reenter(seed: i64) {
    /// Lowers the flag, also when unwinding.
    struct Lower;
    impl Drop for Lower {
        fn drop(&mut self) {
            REENTERED.with(|reentered| reentered.set(false));
        }
    }
    if REENTERED.with(|reentered| reentered.replace(true)) {
        return;
    }
    let _lower = Lower;
    let var = cvar(seed.rem_euclid(5) as usize);
    let other = cvar((seed.rem_euclid(5) as usize + 1) % 5);
    match seed.rem_euclid(8) {
        1 => {
            let token = var.set(V::new(seed));
            let _ = var.reset(token);
        }
        2 => var.sync_scope(V::new(seed), || drop(var.get())),
        3 => Context::new().run(|| drop(var.set(V::new(seed)))),
        4 => {
            let mut snapshot = contextvars::copy_context();
            snapshot.run(|| drop(var.set(V::new(seed))));
        }
        5 => var.with(|lent| {
            let before = lent.map(|v| v.0);
            other.with(|_| {
                let token = var.set(V::new(seed));
                let _ = var.reset(token);
            });
            assert_eq!(lent.map(|v| v.0), before, "a lent value changed under its reader");
        }),
        6 => {
            // A set over a shared trie goes on top; the reset after the snapshot is gone folds.
            let snapshot = contextvars::copy_context();
            let token = var.set(V::new(seed));
            drop(snapshot);
            let _ = var.reset(token);
        }
        7 => drop(other.get()),
        _ => {}
    }
}

/// Which variable an action uses: mostly one of the first few, so that actions interact.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Var(usize);

impl<'a> Arbitrary<'a> for Var {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let b: u8 = u.arbitrary()?;
        Ok(Var(if b < 200 { usize::from(b) % 5 } else { 5 + usize::from(b) % (VARS_LEN - 5) }))
    }
}

/// How to read the current value of a variable.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub(crate) enum Read {
    /// `get` (falls back to the default).
    Get,
    /// `get_or` (skips the default).
    GetOr,
    /// `with` (lends the value without cloning it).
    With,
    /// `is_set`.
    IsSet,
}

/// Where a new context comes from.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub(crate) enum Derive {
    /// `copy_context()`.
    Copy,
    /// `Context::new()`.
    New,
    /// `clone` of a held context.
    Clone(u8),
    /// `with_value` on a held context.
    WithValue(u8, Var, i8),
    /// `without` on a held context.
    Without(u8, Var),
}

/// What a future does on one poll, after reading every variable.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub(crate) enum FutStep {
    /// Sets a variable, keeping the token for a later poll.
    Set(Var, i8),
    /// Resets with the most recent token it kept.
    ResetLast,
    /// Returns `Pending` without doing anything else.
    Yield,
    /// Completes.
    Finish,
    /// Panics.
    Panic,
}

/// A future's script: up to 8 steps.
#[derive(Debug, Clone)]
pub(crate) struct Steps(Vec<FutStep>);

impl<'a> Arbitrary<'a> for Steps {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = u.int_in_range(0..=8)?;
        (0..len).map(|_| u.arbitrary()).collect::<arbitrary::Result<_>>().map(Steps)
    }
}

/// One step of a program.
#[derive(Debug, Clone, Arbitrary)]
pub(crate) enum Action {
    /// `set`, keeping the token in a slot.
    Set { var: Var, value: i8, token: u8 },
    /// `reset` on `var` with the token in a slot: right or wrong variable, right or wrong
    /// context.
    Reset { var: Var, token: u8 },
    /// Drops a token without using it.
    DropToken { token: u8 },
    /// Reads the current value.
    Read { var: Var, how: Read },
    /// Makes a context and keeps it in a slot (dropping what was there).
    Derive { how: Derive, to: u8 },
    /// Drops a held context.
    DropContext { slot: u8 },
    /// Opens a block that runs inside `Context::run` on a held context (a fresh one when the
    /// slot is empty); `catch` wraps the run in `catch_unwind`.
    Enter { slot: u8, catch: bool },
    /// Opens a block that runs inside `ContextVar::scope`.
    Scope { var: Var, value: i8 },
    /// Closes the innermost block.
    Leave,
    /// Panics: unwinds to the innermost catching `Enter` (or the end of the program).
    Panic,
    /// Wraps a future (a script of `FutStep`s) in a context taken from `how`.
    Spawn { how: Derive, slot: u8, steps: Steps },
    /// Polls a future once.
    Poll { slot: u8 },
    /// Sets a variable in a future's context from outside (`context_mut().run(..)`).
    SetInFuture { slot: u8, var: Var, value: i8, token: u8 },
    /// Drops a future, finished or not.
    DropFuture { slot: u8 },
}

/// A program as a tree: `Enter`/`Scope` ... `Leave` become blocks.
#[derive(Debug)]
enum Node {
    Step(Action),
    Enter { slot: u8, catch: bool, body: Vec<Node> },
    Scope { var: Var, value: i8, body: Vec<Node> },
}

/// Builds the tree: unmatched `Leave`s are ignored, unclosed blocks close at the end, and
/// blocks nested deeper than `MAX_DEPTH` are flattened into their parent.
fn parse(actions: &[Action]) -> Vec<Node> {
    // Each open block: its opening action and its body so far; the root has no opener.
    let mut stack: Vec<(Option<Action>, Vec<Node>)> = vec![(None, Vec::new())];
    let mut flattened = 0usize;
    let close = |stack: &mut Vec<(Option<Action>, Vec<Node>)>| {
        let (opener, body) = stack.pop().expect("an open block");
        let node = match opener {
            Some(Action::Enter { slot, catch }) => Node::Enter { slot, catch, body },
            Some(Action::Scope { var, value }) => Node::Scope { var, value, body },
            _ => unreachable!("only Enter and Scope open blocks"),
        };
        stack.last_mut().expect("the root").1.push(node);
    };
    for action in actions {
        match action {
            Action::Enter { .. } | Action::Scope { .. } => {
                if stack.len() > MAX_DEPTH {
                    flattened += 1;
                } else {
                    stack.push((Some(action.clone()), Vec::new()));
                }
            }
            Action::Leave => {
                if flattened > 0 {
                    flattened -= 1;
                } else if stack.len() > 1 {
                    close(&mut stack);
                }
            }
            _ => stack.last_mut().expect("the root").1.push(Node::Step(action.clone())),
        }
    }
    while stack.len() > 1 {
        close(&mut stack);
    }
    stack.pop().expect("the root").1
}

/// A context in the model: its identity (fresh for every `Context` value, as tokens see it)
/// and its variables.
#[derive(Debug, Clone)]
struct ModelCtx {
    ident: u64,
    vars: BTreeMap<usize, i64>,
}

/// A token and what the model expects of it.
struct HeldToken {
    var: usize,
    /// Identity of the context the `set` happened in.
    ident: u64,
    /// The value before the `set`.
    old: Option<i64>,
    token: Token<V>,
}

/// What a future reads and does, recorded by the future and checked by the program.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// Values of the first few variables, read by `poll` or by the destructor.
    Reads(Vec<Option<i64>>),
    /// Result of a `ResetLast`.
    Reset(Result<(), ResetError>),
}

/// Variables a future reads on every poll and when dropped.
const FUT_READS: usize = 6;

fn read_vars() -> Seen {
    Seen::Reads((0..FUT_READS).map(|index| cvar(index).get().map(|v| v.0)).collect())
}

/// A future that runs its script, one step per poll, reading variables every time.
struct Script {
    steps: std::vec::IntoIter<FutStep>,
    tokens: Vec<(usize, Token<V>)>,
    log: Rc<RefCell<Vec<Seen>>>,
}

/// Marks the panics a program asks for, so that a failed check is never taken for one.
struct Injected;

impl Future for Script {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<()> {
        self.log.borrow_mut().push(read_vars());
        match self.steps.next() {
            Some(FutStep::Set(Var(var), value)) => {
                let token = cvar(var).set(V::new(value.into()));
                self.tokens.push((var, token));
            }
            Some(FutStep::ResetLast) => {
                if let Some((var, token)) = self.tokens.pop() {
                    let result = cvar(var).reset(token);
                    self.log.borrow_mut().push(Seen::Reset(result));
                }
            }
            Some(FutStep::Yield) => {}
            Some(FutStep::Panic) => std::panic::panic_any(Injected),
            Some(FutStep::Finish) | None => return Poll::Ready(()),
        }
        Poll::Pending
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        self.log.borrow_mut().push(read_vars());
    }
}

/// A future under test and its model.
struct HeldFuture {
    future: Pin<Box<WithContext<Script>>>,
    model: ModelCtx,
    /// The script, as the model replays it; kept in step with the future's own copy.
    steps: std::vec::IntoIter<FutStep>,
    /// The model of the tokens the future holds: (variable, value before the set).
    tokens: Vec<(usize, Option<i64>)>,
    log: Rc<RefCell<Vec<Seen>>>,
    done: bool,
    /// The script completed, so the wrapper dropped it (inside its context) right then.
    dropped: bool,
}

/// The program's state: the model stack and everything the program holds.
struct State {
    /// The contexts entered, innermost last; `stack[0]` is the one the program starts in.
    stack: Vec<ModelCtx>,
    contexts: [Option<(Context, ModelCtx)>; SLOTS],
    tokens: [Option<HeldToken>; SLOTS],
    futures: [Option<HeldFuture>; SLOTS],
    next_ident: u64,
}

fn slot(index: u8) -> usize {
    usize::from(index) % SLOTS
}

impl State {
    fn fresh_ident(&mut self) -> u64 {
        self.next_ident += 1;
        self.next_ident
    }

    fn current(&mut self) -> &mut ModelCtx {
        self.stack.last_mut().expect("a current context")
    }

    /// Makes a context as `how` says, with its model; `None` when `how` names an empty slot.
    fn derive(&mut self, how: Derive) -> Option<(Context, ModelCtx)> {
        let ident = self.fresh_ident();
        let (ctx, vars) = match how {
            Derive::Copy => (contextvars::copy_context(), self.current().vars.clone()),
            Derive::New => (Context::new(), BTreeMap::new()),
            Derive::Clone(from) => {
                let (ctx, model) = self.contexts[slot(from)].as_ref()?;
                (ctx.clone(), model.vars.clone())
            }
            Derive::WithValue(from, Var(var), value) => {
                let (ctx, model) = self.contexts[slot(from)].as_ref()?;
                let mut vars = model.vars.clone();
                vars.insert(var, value.into());
                (ctx.with_value(cvar(var), V::new(value.into())), vars)
            }
            Derive::Without(from, Var(var)) => {
                let (ctx, model) = self.contexts[slot(from)].as_ref()?;
                let mut vars = model.vars.clone();
                vars.remove(&var);
                (ctx.without(cvar(var)), vars)
            }
        };
        Some((ctx, ModelCtx { ident, vars }))
    }

    /// Compares everything observable with the model.
    fn check(&self) {
        let current = self.stack.last().expect("a current context");
        check_current(current);
        check_mirror();
        for (ctx, model) in self.contexts.iter().flatten() {
            check_held(ctx, model);
        }
        for held in self.tokens.iter().flatten() {
            assert_eq!(held.token.old_value().map(|v| v.0), held.old, "a token's old value");
        }
        for held in self.futures.iter().flatten() {
            assert!(held.log.borrow().is_empty(), "a future ran outside its polls");
        }
    }

    fn run(&mut self, nodes: &[Node]) {
        for node in nodes {
            match node {
                Node::Step(action) => self.step(action),
                Node::Enter { slot: index, catch, body } => self.enter(slot(*index), *catch, body),
                Node::Scope { var: Var(var), value, body } => {
                    let var = *var;
                    let old = self.current().vars.insert(var, (*value).into());
                    let depth = self.stack.len();
                    // Restores the model as `scope` restores the variable: also on unwinding.
                    let restore = |state: &mut Self| {
                        state.stack.truncate(depth);
                        let current = state.current();
                        match old {
                            Some(old) => current.vars.insert(var, old),
                            None => current.vars.remove(&var),
                        };
                    };
                    let result = catch_unwind(AssertUnwindSafe(|| {
                        cvar(var).sync_scope(V::new((*value).into()), || self.run(body));
                    }));
                    restore(self);
                    if let Err(payload) = result {
                        resume_unwind(payload);
                    }
                }
            }
            self.check();
        }
    }

    fn enter(&mut self, index: usize, catch: bool, body: &[Node]) {
        let (mut ctx, model) = match self.contexts[index].take() {
            Some(held) => held,
            None => (Context::new(), ModelCtx { ident: self.fresh_ident(), vars: BTreeMap::new() }),
        };
        let depth = self.stack.len();
        self.stack.push(model);
        let result = catch_unwind(AssertUnwindSafe(|| ctx.run(|| self.run(body))));
        // Whatever the body left in this context (up to the panic, if any) stays there.
        self.stack.truncate(depth + 1);
        let model = self.stack.pop().expect("the entered context");
        match result {
            Ok(()) => self.contexts[index] = Some((ctx, model)),
            Err(payload) if catch && payload.is::<Injected>() => {
                resync_mirror();
                self.contexts[index] = Some((ctx, model));
                // The caller's context is back, whatever the body did before it panicked.
                let current = self.stack.last().expect("a current context");
                check_current(current);
                let snapshot = contextvars::copy_context();
                check_held(&snapshot, current);
            }
            // Not caught here: the context is dropped while unwinding.
            Err(payload) => {
                drop(ctx);
                resume_unwind(payload);
            }
        }
    }

    #[allow(clippy::too_many_lines, reason = "one arm per action, each a few lines")]
    fn step(&mut self, action: &Action) {
        match *action {
            Action::Set { var: Var(var), value, token } => {
                let ident = self.current().ident;
                let old = self.current().vars.insert(var, value.into());
                let real = cvar(var).set(V::new(value.into()));
                assert_eq!(real.old_value().map(|v| v.0), old);
                self.tokens[slot(token)] = Some(HeldToken { var, ident, old, token: real });
            }
            Action::Reset { var: Var(var), token } => {
                let Some(held) = self.tokens[slot(token)].take() else { return };
                let expected = if held.var != var {
                    Err(ResetError::DifferentVar)
                } else if held.ident != self.current().ident {
                    Err(ResetError::DifferentContext)
                } else {
                    let current = self.current();
                    match held.old {
                        Some(old) => current.vars.insert(var, old),
                        None => current.vars.remove(&var),
                    };
                    Ok(())
                };
                assert_eq!(cvar(var).reset(held.token), expected);
            }
            Action::DropToken { token } => self.tokens[slot(token)] = None,
            Action::Read { var: Var(var), how } => {
                let model = self.current().vars.get(&var).copied();
                let with_default = model.or((var == 0).then_some(DEFAULT));
                match how {
                    Read::Get => assert_eq!(cvar(var).get().map(|v| v.0), with_default),
                    Read::GetOr => assert_eq!(cvar(var).get_or(V::new(-1)).0, model.unwrap_or(-1)),
                    Read::With => assert_eq!(cvar(var).with(|v| v.map(|v| v.0)), with_default),
                    Read::IsSet => assert_eq!(cvar(var).is_set(), model.is_some()),
                }
            }
            Action::Derive { how, to } => {
                if let Some(made) = self.derive(how) {
                    self.contexts[slot(to)] = Some(made);
                }
            }
            Action::DropContext { slot: index } => self.contexts[slot(index)] = None,
            Action::Panic => std::panic::panic_any(Injected),
            Action::Spawn { how, slot: index, steps: Steps(ref steps) } => {
                let Some((ctx, model)) = self.derive(how) else { return };
                let log = Rc::new(RefCell::new(Vec::new()));
                let script =
                    Script { steps: steps.clone().into_iter(), tokens: Vec::new(), log: Rc::clone(&log) };
                self.futures[slot(index)] = Some(HeldFuture {
                    future: Box::pin(script.in_context(ctx)),
                    model,
                    steps: steps.clone().into_iter(),
                    tokens: Vec::new(),
                    log,
                    done: false,
                    dropped: false,
                });
            }
            Action::Poll { slot: index } => self.poll(slot(index)),
            Action::SetInFuture { slot: index, var: Var(var), value, token } => {
                let Some(held) = self.futures[slot(index)].as_mut() else { return };
                let old = held.model.vars.insert(var, value.into());
                let ident = held.model.ident;
                let real = held.future.as_mut().context_mut().run(|| cvar(var).set(V::new(value.into())));
                assert_eq!(real.old_value().map(|v| v.0), old);
                self.tokens[slot(token)] = Some(HeldToken { var, ident, old, token: real });
            }
            Action::Enter { .. } | Action::Scope { .. } | Action::Leave => {
                unreachable!("blocks are parsed into nodes")
            }
            Action::DropFuture { slot: index } => {
                if let Some(held) = self.futures[slot(index)].take() {
                    // The script's destructor runs inside the future's context, unless it ran
                    // already when the script completed.
                    let expected = if held.dropped { vec![] } else { vec![expected_reads(&held.model)] };
                    let log = Rc::clone(&held.log);
                    drop(held);
                    assert_eq!(log.borrow_mut().drain(..).collect::<Vec<_>>(), expected);
                }
            }
        }
    }

    fn poll(&mut self, index: usize) {
        let Some(held) = self.futures[index].as_mut() else { return };
        if held.done {
            return;
        }
        let mut expected = vec![expected_reads(&held.model)];
        let step = held.steps.next();
        let result = catch_unwind(AssertUnwindSafe(|| {
            held.future.as_mut().poll(&mut TaskContext::from_waker(Waker::noop()))
        }));
        match step {
            Some(FutStep::Set(Var(var), value)) => {
                let old = held.model.vars.insert(var, value.into());
                held.tokens.push((var, old));
            }
            Some(FutStep::ResetLast) => {
                if let Some((var, old)) = held.tokens.pop() {
                    match old {
                        Some(old) => held.model.vars.insert(var, old),
                        None => held.model.vars.remove(&var),
                    };
                    expected.push(Seen::Reset(Ok(())));
                }
            }
            Some(FutStep::Finish) | None => held.done = true,
            Some(FutStep::Yield | FutStep::Panic) => {}
        }
        match (result, step) {
            (Err(payload), Some(FutStep::Panic)) if payload.is::<Injected>() => {
                resync_mirror();
                held.done = true;
            }
            (Err(payload), _) => resume_unwind(payload),
            (Ok(poll), _) => {
                assert_eq!(poll.is_ready(), held.done);
                if poll.is_ready() {
                    // The completed script is dropped at once, inside the future's context.
                    expected.push(expected_reads(&held.model));
                    held.dropped = true;
                }
            }
        }
        let seen: Vec<Seen> = held.log.borrow_mut().drain(..).collect();
        assert_eq!(seen, expected, "what the future saw on this poll");
    }
}

fn expected_reads(model: &ModelCtx) -> Seen {
    Seen::Reads(
        (0..FUT_READS).map(|var| model.vars.get(&var).copied().or((var == 0).then_some(DEFAULT))).collect(),
    )
}

/// The current context against its model, through reads that change nothing.
fn check_current(model: &ModelCtx) {
    for (index, var) in vars().enumerate() {
        let expected = model.vars.get(&index).copied();
        assert_eq!(var.is_set(), expected.is_some(), "is_set of variable {index}");
        let with_default = expected.or((index == 0).then_some(DEFAULT));
        assert_eq!(var.get().map(|v| v.0), with_default, "get of variable {index}");
    }
}

/// A context that is not current against its model.
fn check_held(ctx: &Context, model: &ModelCtx) {
    assert_eq!(ctx.len(), model.vars.len());
    assert_eq!(ctx.iter().count(), model.vars.len());
    for (index, var) in vars().enumerate() {
        assert_eq!(ctx.get(var).map(|v| v.0), model.vars.get(&index).copied(), "variable {index}");
        assert_eq!(ctx.contains(var), model.vars.contains_key(&index));
    }
}

/// Keeps the program's own panics quiet (they are expected) and reports every other one.
fn quiet_injected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Injected>() {
                previous(info);
            }
        }));
    });
}

/// Turns bytes into a program: as many actions as the bytes make.
pub(crate) fn decode(bytes: &[u8]) -> Vec<Action> {
    let mut u = Unstructured::new(bytes);
    std::iter::from_fn(|| if u.is_empty() { None } else { u.arbitrary().ok() }).collect()
}

/// Runs a program inside a fresh context, checking every step against the model.
///
/// # Panics
///
/// On any difference from the model, and when values leak or are dropped twice.
pub(crate) fn run_context(actions: &[Action]) {
    quiet_injected_panics();
    watch_variable_1();
    resync_mirror();
    let program = parse(actions);
    let before = contextvars::copy_context();
    let live_before = LIVE.with(Cell::get);
    let mut state = State {
        stack: Vec::new(),
        contexts: Default::default(),
        tokens: Default::default(),
        futures: Default::default(),
        next_ident: 0,
    };
    let base = ModelCtx { ident: state.fresh_ident(), vars: BTreeMap::new() };
    state.stack.push(base);
    let mut outer = Context::new();
    outer.run(|| {
        for node in &program {
            // A panic that no block catches ends this top-level node only.
            match catch_unwind(AssertUnwindSafe(|| state.run(std::slice::from_ref(node)))) {
                Ok(()) => {}
                Err(payload) if payload.is::<Injected>() => {
                    resync_mirror();
                    state.check();
                }
                Err(payload) => resume_unwind(payload),
            }
        }
    });
    assert_eq!(state.stack.len(), 1);
    check_held(&outer, &state.stack[0]);
    // The thread's own context never changed.
    check_held(&contextvars::copy_context(), &ModelCtx { ident: 0, vars: snapshot_vars(&before) });
    drop(outer);
    drop(state);
    // The values dropped just now acted on the thread's own context, and left it as it was.
    check_held(&contextvars::copy_context(), &ModelCtx { ident: 0, vars: snapshot_vars(&before) });
    // Values their actions replaced while a snapshot shared the trie stay there out of sight
    // until the context's next change: one releases them.
    let token = PROBE.set(0);
    assert_eq!(PROBE.reset(token), Ok(()));
    assert_eq!(LIVE.with(Cell::get), live_before, "values leaked or were dropped twice");
}

fn snapshot_vars(ctx: &Context) -> BTreeMap<usize, i64> {
    vars().enumerate().filter_map(|(index, var)| ctx.get(var).map(|v| (index, v.0))).collect()
}
