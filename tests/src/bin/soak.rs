//! `soak --schedules N [--seed S] [--threads T]`: runs the randomized NDIS schedules of
//! `wanlayer_tests::soak` with seeds S, S+1, ..., S+N-1 (so `--seed X --schedules 1` runs schedule
//! X again), prints what they did, and on the first failure prints its seed and the schedule shrunk
//! to the operations that matter, and exits non-zero. `cargo xtask soak` runs it in release mode.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use wanlayer_tests::soak::{generate, run, shrink, Failure, RunFigures};

const USAGE: &str = "usage: soak [--schedules N] [--seed S] [--threads T]";

struct Options {
    schedules: u64,
    seed: u64,
    threads: u64,
}

fn number(value: Option<&String>, flag: &str) -> Result<u64, String> {
    let text = value.ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("{flag}: '{text}' is not a number\n{USAGE}"))
}

fn options(args: &[String]) -> Result<Options, String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let mut options = Options { schedules: 1000, seed: 0, threads };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--schedules" => options.schedules = number(args.next(), flag)?,
            "--seed" => options.seed = number(args.next(), flag)?,
            "--threads" => options.threads = number(args.next(), flag)?.max(1),
            other => return Err(format!("unknown option '{other}'\n{USAGE}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match options(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("soak: {message}");
            return ExitCode::FAILURE;
        }
    };
    // Panics are failures the runner reports with the schedule; the default hook would print
    // each of them (and every one the shrinker provokes) on its own.
    std::panic::set_hook(Box::new(|_| {}));
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let totals = Mutex::new(RunFigures::default());
    let failures: Mutex<Vec<(u64, Failure)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..options.threads.min(options.schedules.max(1)) {
            scope.spawn(|| {
                let mut figures = RunFigures::default();
                while !stop.load(Ordering::Relaxed) {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= options.schedules {
                        break;
                    }
                    let seed = options.seed.wrapping_add(index);
                    match run(&generate(seed)) {
                        Ok(run) => figures.add(&run),
                        Err(failure) => {
                            stop.store(true, Ordering::Relaxed);
                            failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((seed, failure));
                        }
                    }
                }
                totals.lock().unwrap_or_else(std::sync::PoisonError::into_inner).add(&figures);
            });
        }
    });
    let totals = totals.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut failures = failures.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    failures.sort_by_key(|(seed, _)| *seed);
    let elapsed = started.elapsed();
    println!(
        "soak: {} schedules (seeds {:#x}..), {} operations, {} packets, {} allocation faults injected, {} reinjections, {} vendor releases, {} control requests, {} rule sets in force, {} pending pauses, {} detaches, {} violations, {:.1} s",
        totals.schedules,
        options.seed,
        totals.operations,
        totals.packets,
        totals.faults,
        totals.reinjected,
        totals.vendor_released,
        totals.control_requests,
        totals.rule_sets,
        totals.pauses_pending,
        totals.detaches,
        failures.len(),
        elapsed.as_secs_f64()
    );
    let Some((seed, failure)) = failures.first() else {
        return ExitCode::SUCCESS;
    };
    let schedule = generate(*seed);
    println!("soak: FAILED: schedule seed {seed:#x} ({} operations): {failure}", schedule.ops.len());
    let shrunk = shrink(&schedule, failure);
    println!(
        "soak: shrunk to {} operation(s) that still fail the same way (engine: event_capacity {}, max_modules {}):",
        shrunk.ops.len(),
        shrunk.event_capacity,
        shrunk.max_modules
    );
    for (index, op) in shrunk.ops.iter().enumerate() {
        println!("  {index:>3}  {op:?}");
    }
    if let Err(again) = run(&shrunk) {
        println!("soak: the shrunk schedule fails with: {again}");
    }
    println!("soak: rerun the whole schedule with `cargo xtask soak --schedules 1 --seed {seed:#x}`");
    ExitCode::FAILURE
}
