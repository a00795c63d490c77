//! `cargo xtask soak [--schedules N] [--seed S]`: randomized NDIS schedules — whole RRAS server
//! runs generated from a seed and driven through wanlayer.sys's own handlers over the kernel model
//! (the driver in the loop) with hooks, vendor filters, the control device and allocation failures
//! (`wanlayer_tests::soak`) — built in release mode for speed, one schedule at a time (one driver
//! per process). It prints the schedules, operations, packets, faults injected and violations with
//! the time taken; on a failure, the seed and the schedule shrunk to what matters, and fails.

use std::time::Instant;

use crate::test::run_command;

/// Schedules `cargo xtask test` runs: a bounded soak (about a minute on two cores).
pub const TEST_SCHEDULES: u64 = 100_000;

/// `cargo xtask soak`: `schedules` from `seed` (the soak binary's default when `None`).
///
/// # Errors
/// A build failure, or a failing schedule (its seed and shrunk form are printed).
pub fn run(schedules: u64, seed: Option<u64>) -> Result<(), String> {
    let mut forwarded = vec!["--schedules".to_owned(), schedules.to_string()];
    forwarded.extend(seed.into_iter().flat_map(|seed| ["--seed".to_owned(), seed.to_string()]));
    soak(&forwarded)
}

/// Runs the soak binary of the scenario tests in release mode with `args`.
///
/// # Errors
/// The build failed or a schedule failed.
fn soak(args: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let mut command = vec!["run", "--release", "--quiet", "--package", "wanlayer-tests", "--bin", "soak", "--"];
    command.extend(args.iter().map(String::as_str));
    let result = run_command("cargo", &command);
    println!("xtask: soak finished in {:.1} s (build included)", started.elapsed().as_secs_f64());
    result.map_err(|error| format!("{error}: a randomized schedule failed (its seed and shrunk schedule are printed above)"))
}
