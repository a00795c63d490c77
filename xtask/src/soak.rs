//! `cargo xtask soak [--schedules N] [--seed S] [--threads T]`: randomized NDIS schedules — whole
//! RRAS server runs generated from a seed and driven through the simulator with hooks, vendor
//! filters, the control device and allocation failures (`wanlayer_tests::soak`) — built in release
//! mode for speed. It prints the schedules, operations, packets, faults injected and violations
//! with the time taken; on a failure, the seed and the schedule shrunk to what matters, and fails.

use std::time::Instant;

use crate::test::run_command;

/// Schedules run when `--schedules` is not given.
pub const DEFAULT_SCHEDULES: u64 = 100_000;

/// Schedules `cargo xtask test` runs: a bounded soak (well under two minutes on two cores).
pub const TEST_SCHEDULES: u64 = 50_000;

const USAGE: &str = "usage: cargo xtask soak [--schedules N] [--seed S] [--threads T]";

/// `cargo xtask soak`.
///
/// # Errors
/// A bad option, a build failure, or a failing schedule (its seed and shrunk form are printed).
pub fn run(args: &[String]) -> Result<(), String> {
    let mut forwarded: Vec<String> = Vec::new();
    let mut schedules_given = false;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--schedules" | "--seed" | "--threads" => {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
                schedules_given |= flag == "--schedules";
                forwarded.extend([flag.clone(), value.clone()]);
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown option '{other}'\n{USAGE}")),
        }
    }
    if !schedules_given {
        forwarded.extend(["--schedules".to_owned(), DEFAULT_SCHEDULES.to_string()]);
    }
    soak(&forwarded)
}

/// Runs the soak binary of the scenario tests in release mode with `args`.
///
/// # Errors
/// The build failed or a schedule failed.
pub fn soak(args: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let mut command = vec!["run", "--release", "--quiet", "--package", "wanlayer-tests", "--bin", "soak", "--"];
    command.extend(args.iter().map(String::as_str));
    let result = run_command("cargo", &command);
    println!("xtask: soak finished in {:.1} s (build included)", started.elapsed().as_secs_f64());
    result.map_err(|error| format!("{error}: a randomized schedule failed (its seed and shrunk schedule are printed above)"))
}
