//! `soak --schedules N [--seed S] [--threads T] [--driver]`: runs the randomized NDIS schedules of
//! `wanlayer_tests::soak` with seeds S, S+1, ..., S+N-1 (so `--seed X --schedules 1` runs schedule
//! X again), prints what they did, and on the first failure prints its seed and the schedule shrunk
//! to the operations that matter, and exits non-zero. `cargo xtask soak` runs it in release mode.
//!
//! `--driver` runs the driver's schedules through wanlayer.sys's own handlers over the kernel
//! model (one driver per process at a time: one thread). A panic inside the driver's code (or the
//! model's `KeBugCheckEx`) cannot unwind out of its `extern "system"` handler and aborts the
//! process: the panic hook prints the seed and operation first, so the schedule can be rerun.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use wanlayer_tests::soak::{generate_for, run_on, shrink_on, Failure, RunFigures, Target};

const USAGE: &str = "usage: soak [--schedules N] [--seed S] [--threads T] [--driver]";

struct Options {
    schedules: u64,
    seed: u64,
    threads: u64,
    target: Target,
}

/// The seed of the schedule the driver soak runs now (for the panic hook: see the module doc).
static RUNNING: AtomicU64 = AtomicU64::new(0);

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
    let mut options = Options { schedules: 1000, seed: 0, threads, target: Target::Simulator };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--schedules" => options.schedules = number(args.next(), flag)?,
            "--seed" => options.seed = number(args.next(), flag)?,
            "--threads" => options.threads = number(args.next(), flag)?.max(1),
            "--driver" => options.target = Target::Driver,
            other => return Err(format!("unknown option '{other}'\n{USAGE}")),
        }
    }
    if options.target == Target::Driver {
        // The kernel model is global: one driver per process at a time.
        options.threads = 1;
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
    // each of them (and every one the shrinker provokes) on its own. The driver's may abort the
    // process: those name their schedule first.
    if options.target == Target::Driver {
        std::panic::set_hook(Box::new(|info| {
            let seed = RUNNING.load(Ordering::Relaxed);
            eprintln!("soak: a panic in the driver soak, schedule seed {seed:#x} (if the process aborts now, it came from inside the driver's code): {info}");
        }));
    } else {
        std::panic::set_hook(Box::new(|_| {}));
    }
    let target = options.target;
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
                    RUNNING.store(seed, Ordering::Relaxed);
                    match run_on(target, &generate_for(target, seed)) {
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
        "soak{}: {} schedules (seeds {:#x}..), {} operations, {} packets, {} allocation faults injected, {} reinjections, {} vendor releases, {} control requests, {} rule sets in force, {} pending pauses, {} detaches, {} violations, {:.1} s",
        if target == Target::Driver { " --driver (wanlayer.sys's handlers over the kernel model)" } else { "" },
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
    let schedule = generate_for(target, *seed);
    println!("soak: FAILED: schedule seed {seed:#x} ({} operations): {failure}", schedule.ops.len());
    let shrunk = shrink_on(target, &schedule, failure);
    println!(
        "soak: shrunk to {} operation(s) that still fail the same way (engine: event_capacity {}, max_modules {}):",
        shrunk.ops.len(),
        shrunk.event_capacity,
        shrunk.max_modules
    );
    for (index, op) in shrunk.ops.iter().enumerate() {
        println!("  {index:>3}  {op:?}");
    }
    if let Err(again) = run_on(target, &shrunk) {
        println!("soak: the shrunk schedule fails with: {again}");
    }
    let driver = if target == Target::Driver { " --driver" } else { "" };
    println!("soak: rerun the whole schedule with `cargo xtask soak{driver} --schedules 1 --seed {seed:#x}`");
    ExitCode::FAILURE
}
