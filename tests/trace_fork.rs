//! After `fork()`, parent and child generate different ids.
//!
//! Ids come from a per-thread buffer of OS randomness, which a forked child inherits: without
//! a check, both processes would hand out the same trace-ids and parent-ids. This test forks
//! for real (through the `fork` crate's safe wrapper), so it runs without the test harness:
//! a forked child of a multi-threaded process may only do little, and this process has one
//! thread.

#[cfg(all(unix, feature = "trace"))]
fn main() {
    use std::io::{Read, Write};

    use contextvars::trace::TraceContext;

    let ids = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                let trace = TraceContext::new_root();
                let outgoing = trace.outgoing_traceparent();
                format!("{} {}", trace.trace_id(), outgoing.parent_id)
            })
            .collect()
    };

    // Fill the buffer, so that the child would inherit unused random bytes.
    let before = ids(1);
    let path = std::env::temp_dir().join(format!("contextvars-fork-{}", std::process::id()));
    match fork::fork().expect("fork") {
        fork::Fork::Child => {
            let child = ids(4).join("\n");
            let written = std::fs::File::create(&path).and_then(|mut file| file.write_all(child.as_bytes()));
            std::process::exit(i32::from(written.is_err()));
        }
        fork::Fork::Parent(pid) => {
            let status = fork::waitpid(pid).expect("the child exits");
            assert_eq!(status, 0, "the child wrote its ids and exited");
            let parent = ids(4);
            let mut child = String::new();
            std::fs::File::open(&path)
                .and_then(|mut file| file.read_to_string(&mut child))
                .expect("child ids");
            let _ = std::fs::remove_file(&path);
            let child: Vec<&str> = child.lines().collect();
            assert_eq!(child.len(), 4, "the child wrote its ids");
            for id in &child {
                assert!(!parent.iter().any(|p| p == id), "parent and child both generated {id}");
                assert!(!before.iter().any(|p| p == id), "the child reused {id}");
            }
            println!(
                "trace_fork: parent and child ids differ ({} and {} checked)",
                parent.len(),
                child.len()
            );
        }
    }
}

#[cfg(not(all(unix, feature = "trace")))]
fn main() {}
