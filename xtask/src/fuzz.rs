//! `cargo xtask fuzz [--time S] [--target NAME] [--seed]`: the cargo-fuzz targets of `fuzz/`, each
//! run for a while over a copy of its seed corpus, with a table of what they did.
//!
//! The targets (`fuzz/fuzz_targets/`, their bodies in `fuzz/src/`) are built by `cargo fuzz` on
//! the nightly toolchain with AddressSanitizer and libFuzzer; both are installed when missing
//! (`rustup toolchain install nightly --profile minimal`, `cargo install cargo-fuzz --locked`).
//! Each target starts from `fuzz/corpus/<target>/` copied to `target/fuzz/corpus/<target>/`, so
//! the corpus a run grows never lands in the repository; crash files go to
//! `target/fuzz/artifacts/<target>/`. A target that crashes (a panic, a sanitizer report, a leak,
//! a timeout or running out of memory) fails the command, naming the target and the crash file,
//! which `cargo +nightly fuzz run <target> <file>` replays.
//!
//! `--seed` rewrites the committed seeds (`fuzz/corpus/<target>/seed-*`) from the project's own
//! code (`fuzz/examples/seed.rs`), the `verify_image` ones from `target/wanlayer/x64/wlclamp.sys`
//! when `cargo xtask build` made it (else they are kept).

use crate::test::workspace_root;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Every target, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/` spell it.
pub const TARGETS: &[&str] = &["proto", "wire", "control", "wan_status", "inf_lint", "verify_image", "certificate", "rules"];

/// Per-input time limit: an input that takes longer is reported as a crash (a hang).
const INPUT_TIMEOUT_SECONDS: u64 = 30;

/// Runs `program args` in `dir`, failing with the command line when it cannot start or fails.
fn run_in(dir: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    println!("xtask: $ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .map_err(|error| format!("could not start {program}: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

/// True when `program args` starts and succeeds (output discarded).
fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|output| output.status.success())
}

/// Installs the nightly toolchain and cargo-fuzz when they are missing.
fn ensure_tools() -> Result<(), String> {
    if !succeeds("rustc", &["+nightly", "--version"]) {
        run_in(&workspace_root(), "rustup", &["toolchain", "install", "nightly", "--profile", "minimal"])?;
    }
    if !succeeds("cargo", &["+nightly", "fuzz", "--version"]) {
        run_in(&workspace_root(), "cargo", &["install", "cargo-fuzz", "--locked"])?;
    }
    Ok(())
}

/// The figures libFuzzer prints with `-print_final_stats=1`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Stats {
    executions: u64,
    execs_per_second: u64,
    new_units: u64,
}

fn parse_stats(log: &str) -> Stats {
    let value = |name: &str| {
        log.lines()
            .filter_map(|line| line.trim().strip_prefix(name))
            .filter_map(|rest| rest.trim_start_matches(':').trim().parse::<u64>().ok())
            .next_back()
            .unwrap_or(0)
    };
    Stats {
        executions: value("stat::number_of_executed_units"),
        execs_per_second: value("stat::average_exec_per_sec"),
        new_units: value("stat::new_units_added"),
    }
}

/// One target's run.
#[derive(Debug, Clone)]
struct Outcome {
    target: String,
    stats: Stats,
    seeds: usize,
    corpus: usize,
    crashes: Vec<PathBuf>,
    seconds: f64,
}

/// Files in `dir` (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|entry| entry.path()).filter(|path| path.is_file()).collect())
        .unwrap_or_default();
    found.sort();
    found
}

/// Runs `target` for `seconds` over a fresh copy of its seed corpus.
fn run_target(target: &str, seconds: u64) -> Result<Outcome, String> {
    let root = workspace_root();
    let seeds = root.join("fuzz").join("corpus").join(target);
    let scratch = root.join("target").join("fuzz").join("corpus").join(target);
    let artifacts = root.join("target").join("fuzz").join("artifacts").join(target);
    for dir in [&scratch, &artifacts] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|error| format!("cannot clear {}: {error}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    }
    let seed_files = files(&seeds);
    for seed in &seed_files {
        let name = seed.file_name().ok_or("a seed without a name")?;
        std::fs::copy(seed, scratch.join(name)).map_err(|error| format!("cannot copy {}: {error}", seed.display()))?;
    }
    let scratch_arg = scratch.to_str().ok_or("the workspace path is not UTF-8")?;
    let artifact_prefix = format!("-artifact_prefix={}/", artifacts.to_str().ok_or("the workspace path is not UTF-8")?);
    let max_time = format!("-max_total_time={seconds}");
    let timeout = format!("-timeout={INPUT_TIMEOUT_SECONDS}");
    let args =
        ["+nightly", "fuzz", "run", target, scratch_arg, "--", &max_time, &timeout, "-print_final_stats=1", &artifact_prefix];
    println!("xtask: $ cargo {}", args.join(" "));
    let started = Instant::now();
    let output = Command::new("cargo")
        .args(args)
        .current_dir(&root)
        .output()
        .map_err(|error| format!("could not start cargo fuzz: {error}"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    let log_path = root.join("target").join("fuzz").join(format!("{target}.log"));
    std::fs::write(&log_path, log.as_bytes()).map_err(|error| format!("cannot write {}: {error}", log_path.display()))?;
    let crashes = files(&artifacts);
    if !output.status.success() && crashes.is_empty() {
        return Err(format!(
            "fuzz target {target} failed without a crash file ({}); its output is in {}",
            output.status,
            log_path.display()
        ));
    }
    Ok(Outcome {
        target: target.to_string(),
        stats: parse_stats(&log),
        seeds: seed_files.len(),
        corpus: files(&scratch).len(),
        crashes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn print_table(outcomes: &[Outcome]) {
    println!(
        "{:<14} {:>12} {:>9} {:>7} {:>8} {:>10} {:>8}",
        "target", "executions", "exec/s", "seeds", "corpus", "new units", "crashes"
    );
    for outcome in outcomes {
        println!(
            "{:<14} {:>12} {:>9} {:>7} {:>8} {:>10} {:>8}   ({:.0} s)",
            outcome.target,
            outcome.stats.executions,
            outcome.stats.execs_per_second,
            outcome.seeds,
            outcome.corpus,
            outcome.stats.new_units,
            outcome.crashes.len(),
            outcome.seconds
        );
    }
}

/// Rewrites the committed seeds from the project's own code.
fn seed() -> Result<(), String> {
    let root = workspace_root();
    let mut args = vec!["run", "--manifest-path", "fuzz/Cargo.toml", "--example", "seed", "--", "fuzz"];
    let image = root.join("target").join("wanlayer").join("x64").join("wlclamp.sys");
    let image = image.to_str().ok_or("the workspace path is not UTF-8")?.to_owned();
    if Path::new(&image).exists() {
        args.push(&image);
    } else {
        println!("xtask: no {image} (cargo xtask build makes it): the verify_image seeds are kept");
    }
    run_in(&root, "cargo", &args)
}

/// `cargo xtask fuzz`: every target (or `target`) for `seconds` each, after rewriting the seeds
/// when `reseed`.
pub fn run(seconds: u64, target: Option<String>, reseed: bool) -> Result<(), String> {
    let targets: Vec<String> = match target {
        Some(name) if TARGETS.contains(&name.as_str()) => vec![name],
        Some(name) => return Err(format!("no fuzz target '{name}' (targets: {})", TARGETS.join(", "))),
        None => TARGETS.iter().map(|name| (*name).to_string()).collect(),
    };
    ensure_tools()?;
    if reseed {
        seed()?;
    }
    let root = workspace_root();
    let started = Instant::now();
    if targets.len() == TARGETS.len() {
        run_in(&root, "cargo", &["+nightly", "fuzz", "build"])?;
    } else {
        for target in &targets {
            run_in(&root, "cargo", &["+nightly", "fuzz", "build", target])?;
        }
    }
    println!("xtask: fuzz targets built in {:.0} s", started.elapsed().as_secs_f64());
    let mut outcomes = Vec::new();
    for target in &targets {
        outcomes.push(run_target(target, seconds)?);
    }
    print_table(&outcomes);
    let crashed: Vec<String> = outcomes
        .iter()
        .flat_map(|outcome| outcome.crashes.iter().map(move |file| format!("{} crashed: {}", outcome.target, file.display())))
        .collect();
    println!("xtask: fuzzing took {:.0} s in all", started.elapsed().as_secs_f64());
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz: {}\n(replay with `cargo +nightly fuzz run <target> <file>`; the log is target/fuzz/<target>.log)",
            crashed.join("\nfuzz: ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_target_is_named() {
        assert!(run(1, Some("nope".into()), false).unwrap_err().contains("no fuzz target 'nope'"));
    }

    #[test]
    fn final_stats_are_read_from_the_log() {
        let log = "#1 INITED\nstat::number_of_executed_units: 1234\nstat::average_exec_per_sec:     41\n\
                   stat::new_units_added:          7\nstat::slowest_unit_time_sec:    0\n";
        assert_eq!(parse_stats(log), Stats { executions: 1234, execs_per_second: 41, new_units: 7 });
        assert_eq!(parse_stats("no stats"), Stats::default());
    }

    #[test]
    fn every_target_has_a_source_and_seeds() {
        let fuzz = workspace_root().join("fuzz");
        for target in TARGETS {
            assert!(fuzz.join("fuzz_targets").join(format!("{target}.rs")).is_file(), "{target} has a source");
            let seeds = files(&fuzz.join("corpus").join(target));
            assert!(!seeds.is_empty(), "{target} has seeds");
            let bytes: u64 = seeds.iter().filter_map(|seed| seed.metadata().ok()).map(|meta| meta.len()).sum();
            assert!(bytes < 256 * 1024, "{target}'s seeds stay small: {bytes} bytes");
        }
    }
}
