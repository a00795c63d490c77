//! The INF linter of `cargo xtask lint-inf` and `cargo xtask package`
//! ([`xtask::package::lint_bytes`]): decoding (UTF-8, UTF-16 with a byte-order mark), the INF
//! grammar, and the lightweight-filter rules.
//!
//! Invariants: no panic, whatever the bytes; the problems come sorted by line, each with a
//! message; the same bytes give the same problems.

/// Runs one input.
pub fn run(data: &[u8]) {
    let problems = xtask::package::lint_bytes(data, None);
    assert!(problems.windows(2).all(|pair| pair[0].line <= pair[1].line), "problems are sorted by line");
    assert!(problems.iter().all(|problem| !problem.message.is_empty()), "every problem says what is wrong");
    let again = xtask::package::lint_bytes(data, None);
    assert_eq!(problems.len(), again.len(), "the linter is deterministic");
}
