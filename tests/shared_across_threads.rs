//! Contexts and their values shared between threads: the engine's reference counts, its
//! in-place writes once a value is unshared again, and reads of one context from several
//! threads at once. Small, so that Miri can run it under many thread schedules.

use std::sync::Arc;

use contextvars::{Context, ContextVar, copy_context};

static NAME: ContextVar<String> = ContextVar::new("name");
static LIST: ContextVar<Vec<usize>> = ContextVar::new("list");
/// Enough variables that the trie nests below its root.
static FILLER: [ContextVar<usize>; 40] = [const { ContextVar::new("filler") }; 40];

const THREADS: usize = if cfg!(miri) { 3 } else { 8 };

fn base() -> Context {
    let mut base = Context::new();
    base.run(|| {
        NAME.set("base".to_string());
        LIST.set(vec![1, 2, 3]);
        for (i, var) in FILLER.iter().enumerate() {
            var.set(i);
        }
    });
    base
}

#[test]
fn copies_change_on_their_threads_while_the_original_changes_in_place() {
    let mut base = base();
    let workers: Vec<_> = (0..THREADS)
        .map(|i| {
            let mut ctx = base.clone();
            std::thread::spawn(move || {
                ctx.run(|| {
                    assert_eq!(NAME.get().as_deref(), Some("base"));
                    LIST.set(vec![i]);
                    FILLER[39].set(1000 + i);
                    let token = NAME.set(format!("worker {i}"));
                    assert_eq!(NAME.with(|n| n.map(String::len)), Some(format!("worker {i}").len()));
                    drop(copy_context());
                    NAME.reset(token).unwrap();
                });
                ctx
            })
        })
        .collect();
    base.run(|| {
        LIST.set(vec![9]);
        FILLER[0].set(usize::MAX);
    });
    let results: Vec<Context> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    for (i, ctx) in results.iter().enumerate() {
        assert_eq!(ctx.get(&LIST), Some(&vec![i]));
        assert_eq!(ctx.get(&FILLER[39]), Some(&(1000 + i)));
        assert_eq!(ctx.get(&FILLER[0]), Some(&0));
        assert_eq!(ctx.get(&NAME).map(String::as_str), Some("base"));
    }
    assert_eq!(base.get(&LIST), Some(&vec![9]));
    assert_eq!(base.get(&FILLER[39]), Some(&39));
    drop(results);
    // Every copy is gone: the base's values are its own again and change in place.
    base.run(|| {
        let token = LIST.set(vec![10]);
        assert_eq!(token.old_value(), Some(&vec![9]));
        LIST.reset(token).unwrap();
        assert_eq!(LIST.get(), Some(vec![9]));
    });
}

#[test]
fn one_context_read_from_several_threads_at_once() {
    let shared = Arc::new(base());
    let readers: Vec<_> = (0..THREADS)
        .map(|_| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                let sum: usize = FILLER.iter().filter_map(|var| shared.get(var)).sum();
                let mut own = (*shared).clone();
                own.run(|| LIST.with(|list| list.map(Vec::len))).zip(Some(sum)).map(|(len, sum)| len + sum)
            })
        })
        .collect();
    let expected = 3 + (0..40).sum::<usize>();
    for reader in readers {
        assert_eq!(reader.join().unwrap(), Some(expected));
    }
}

#[test]
fn the_last_copy_dropped_on_another_thread_frees_the_values() {
    static FLAGGED: ContextVar<Arc<()>> = ContextVar::new("flagged");
    let alive = Arc::new(());
    let mut ctx = Context::new();
    ctx.run(|| FLAGGED.set(Arc::clone(&alive)));
    let copies: Vec<Context> = (0..THREADS).map(|_| ctx.clone()).collect();
    drop(ctx);
    let droppers: Vec<_> = copies.into_iter().map(|copy| std::thread::spawn(move || drop(copy))).collect();
    for dropper in droppers {
        dropper.join().unwrap();
    }
    assert_eq!(Arc::strong_count(&alive), 1, "the value outlived every context holding it");
}
