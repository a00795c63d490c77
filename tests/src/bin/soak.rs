//! `soak --schedules N [--seed S]`: runs the randomized NDIS schedules of `wanlayer_tests::soak`
//! through wanlayer.sys's own handlers over the kernel model with seeds S, S+1, ..., S+N-1 (so
//! `--seed X --schedules 1` runs schedule X again), prints what they did, and on the first failure
//! prints its seed and the schedule shrunk to the operations that matter, and exits non-zero.
//! `cargo xtask soak` runs it in release mode.
//!
//! One driver per process at a time (the kernel model is global): schedules run one after the
//! other. A panic inside the driver's code (or the model's `KeBugCheckEx`) cannot unwind out of its
//! `extern "system"` handler and aborts the process, so the soak runs in a worker process
//! (`--worker`) watched by this one: the
//! worker's panic hook names the schedule first, and when the worker aborts, this process shrinks
//! that schedule by replaying parts of it in processes of their own (`--replay SEED --keep
//! INDEXES`: the schedule's operations at those indexes).

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use wanlayer_tests::soak::{generate, minimize, run, shrink, RunFigures};

const USAGE: &str = "usage: soak [--schedules N] [--seed S]";

/// What the worker's panic hook begins its line with, before the seed.
const PANIC_LINE: &str = "soak: a panic in the driver soak, schedule seed ";

struct Options {
    schedules: u64,
    seed: u64,
    /// This process is the soak's worker (see the module doc).
    worker: bool,
    /// Replays these operations of the schedule of `seed` and exits (see the module doc).
    keep: Option<Vec<usize>>,
}

/// The seed of the schedule the soak runs now (for the panic hook: see the module doc).
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
    let mut options = Options { schedules: 1000, seed: 0, worker: false, keep: None };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--schedules" => options.schedules = number(args.next(), flag)?,
            "--seed" => options.seed = number(args.next(), flag)?,
            "--worker" => options.worker = true,
            "--replay" => options.seed = number(args.next(), flag)?,
            "--keep" => {
                let text = args.next().ok_or_else(|| format!("--keep needs a value\n{USAGE}"))?;
                let keep: Result<Vec<usize>, _> = text.split(',').filter(|index| !index.is_empty()).map(str::parse).collect();
                options.keep = Some(keep.map_err(|_| format!("--keep: '{text}' is not a list of indexes"))?);
            }
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
    if !options.worker && options.keep.is_none() {
        return supervise(&args);
    }
    // Panics are failures the runner reports with the schedule; the default hook would print
    // each of them (and every one the shrinker provokes) on its own. The driver's may abort the
    // process: those name their schedule first.
    std::panic::set_hook(Box::new(|info| {
        let seed = RUNNING.load(Ordering::Relaxed);
        let info = info.to_string().replace('\n', " ");
        eprintln!("{PANIC_LINE}{seed:#x} (if the process aborts now, it came from inside the driver's code): {info}");
    }));
    if let Some(keep) = &options.keep {
        RUNNING.store(options.seed, Ordering::Relaxed);
        let schedule = generate(options.seed);
        let ops = keep.iter().filter_map(|&index| schedule.ops.get(index).copied()).collect();
        return match run(&schedule.with_ops(ops)) {
            Ok(_) => ExitCode::SUCCESS,
            Err(failure) => {
                println!("soak: replay failed: {failure}");
                ExitCode::FAILURE
            }
        };
    }
    let started = Instant::now();
    let mut totals = RunFigures::default();
    let mut failure = None;
    for index in 0..options.schedules {
        let seed = options.seed.wrapping_add(index);
        RUNNING.store(seed, Ordering::Relaxed);
        match run(&generate(seed)) {
            Ok(run) => totals.add(&run),
            Err(found) => {
                failure = Some((seed, found));
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    println!(
        "soak (wanlayer.sys's handlers over the kernel model): {} schedules (seeds {:#x}..), {} operations, {} packets, {} allocation faults injected, {} reinjections, {} vendor releases, {} control requests, {} rule sets in force, {} pending pauses, {} detaches, {} violations, {:.1} s",
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
        u64::from(failure.is_some()),
        elapsed.as_secs_f64()
    );
    let Some((seed, failure)) = failure else {
        return ExitCode::SUCCESS;
    };
    let schedule = generate(seed);
    println!("soak: FAILED: schedule seed {seed:#x} ({} operations): {failure}", schedule.ops.len());
    let shrunk = shrink(&schedule, &failure);
    println!(
        "soak: shrunk to {} operation(s) that still fail the same way (without ExAllocatePool2: {}):",
        shrunk.ops.len(),
        shrunk.without_pool2
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

/// The soak's watcher: runs the soak in a worker process with `args`, passing its output
/// on; when the worker aborts (a panic inside the driver's code), shrinks the schedule its panic
/// hook named by replaying parts of it in processes of their own.
fn supervise(args: &[String]) -> ExitCode {
    let Ok(exe) = std::env::current_exe() else {
        eprintln!("soak: cannot find this executable to start the worker");
        return ExitCode::FAILURE;
    };
    let worker = Command::new(&exe).args(args).arg("--worker").stderr(Stdio::piped()).spawn();
    let mut worker = match worker {
        Ok(worker) => worker,
        Err(error) => {
            eprintln!("soak: the worker did not start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut last_panic: Option<(u64, String)> = None;
    if let Some(stderr) = worker.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if let Some(rest) = line.strip_prefix(PANIC_LINE) {
                let seed = rest.split_whitespace().next().and_then(|hex| u64::from_str_radix(hex.trim_start_matches("0x"), 16).ok());
                // The schedule's first panic is the one that matters (the abort's own follows it).
                if seed.is_some() && last_panic.as_ref().map(|(known, _)| Some(*known)) != Some(seed) {
                    last_panic = seed.map(|seed| (seed, line.clone()));
                }
            }
        }
    }
    let status = match worker.wait() {
        Ok(status) => status,
        Err(error) => {
            eprintln!("soak: the worker was lost: {error}");
            return ExitCode::FAILURE;
        }
    };
    if status.success() {
        return ExitCode::SUCCESS;
    }
    if status.code() == Some(1) {
        // A failure the worker caught, shrank and printed itself.
        return ExitCode::FAILURE;
    }
    let Some((seed, line)) = last_panic else {
        println!("soak: FAILED: the worker ended with {status} and named no schedule");
        return ExitCode::FAILURE;
    };
    let schedule = generate(seed);
    println!("soak: FAILED: the worker aborted ({status}) in schedule seed {seed:#x} ({} operations): {line}", schedule.ops.len());
    let aborts = |keep: &[usize]| {
        let list: Vec<String> = keep.iter().map(usize::to_string).collect();
        let replay = Command::new(&exe)
            .args(["--replay", &seed.to_string(), "--keep", &list.join(",")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // Aborted (killed by SIGABRT): no exit code.
        replay.is_ok_and(|status| status.code().is_none())
    };
    let all: Vec<usize> = (0..schedule.ops.len()).collect();
    if !aborts(&all) {
        println!("soak: replaying the schedule in a process of its own did not abort again");
        return ExitCode::FAILURE;
    }
    let kept = minimize(&all, aborts);
    println!("soak: shrunk to {} operation(s) that still abort (replayed one process each):", kept.len());
    for (index, &op) in kept.iter().enumerate() {
        println!("  {index:>3}  {:?}", schedule.ops[op]);
    }
    let list: Vec<String> = kept.iter().map(usize::to_string).collect();
    println!("soak: rerun it with `soak --replay {seed:#x} --keep {}` (the soak binary of wanlayer-tests)", list.join(","));
    ExitCode::FAILURE
}
