//! `cargo xtask bench divert`: packets through a user-mode hook (`tests/src/bin/divert-bench.rs`):
//! taken on the send path, queued, read in batches (`DIVERT_READ`), answered in one verdict write
//! per batch (`DIVERT_VERDICTS`), reinjected, sent down and completed — at batches of 1, 16 and
//! 256, over two transports:
//!
//! * `engine`: the engine on a minimal platform (`wanlayer-bench`'s `BenchHal`), its control
//!   dispatcher called as the driver's device control handler calls it, with the I/O manager's
//!   `METHOD_BUFFERED` copies (input in, answer out). The goal (≥ 1 Mpps per core at batch 256)
//!   is measured here: every instruction of the kernel side is code `wanlayer.sys` runs.
//! * `sim`: the client's simulator transport, IRPs to `wanlayer.sys`'s own dispatch routines over
//!   the kernel model in a simulated server (the simulator's packets, ledger, verifier and trace
//!   on top): what the scenario tests run, not a measure of the kernel.
//!
//! Prints packets per second (over wall time, and over the CPU time the benchmark's thread ran:
//! one core's rate when other processes share the machine) and, from callgrind, instructions per
//! packet: the whole loop (the user side and the platform included), and the kernel side. For
//! `engine` that is everything inside the three kernel entry points (`kernel_send`,
//! `kernel_dispatch`, `kernel_send_complete`: the engine, the classifier, the protocol's
//! decoding and encoding, and the minimal platform's locks, packet reads and `memcpy`); for `sim`
//! the functions of the crates the driver links (`wanlayer_core`, `wanlayer_rules`,
//! `wanlayer_proto`, the driver's `wanlayer`) but those only the simulator or the client calls
//! (`USER_SIDE`), which leaves out the kernel model and the simulator.

use std::path::PathBuf;
use std::process::Command;

use crate::test::{run_command, workspace_root};

/// Batch sizes measured.
const BATCHES: [u32; 3] = [1, 16, 256];
/// Packets per wall-time run.
const WALL_PACKETS: u64 = 131_072;
/// Packets per callgrind run.
const COUNTED_PACKETS: u64 = 4096;
/// Transports measured.
const TRANSPORTS: [&str; 2] = ["engine", "sim"];
/// The `engine` transport's kernel entry points (inclusive counts).
const KERNEL_ENTRIES: [&str; 3] = ["divert_bench::kernel_send ", "divert_bench::kernel_dispatch ", "divert_bench::kernel_send_complete "];
/// The crates of `wanlayer.sys` whose functions count as the kernel side of the `sim` transport.
const KERNEL_CRATES: [&str; 4] = ["wanlayer_core::", "wanlayer_rules::", "wanlayer_proto::", "wanlayer::"];
/// Functions of those crates that only the simulator (building frames with `wire`) or the client
/// (reading batches, writing verdicts) calls in this loop.
const USER_SIDE: [&str; 5] =
    ["wanlayer_core::wire::", "DivertPacketRepr::parse", "DivertBatchRepr::parse", "Repr::emit", "ReadRequestRepr"];

fn binary() -> Result<PathBuf, String> {
    run_command("cargo", &["build", "--release", "-p", "wanlayer-tests", "--bin", "divert-bench"])?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    Ok(target.join("release").join("divert-bench"))
}

/// Runs the loop under callgrind; returns the instructions counted inside `measured_loop_*`.
fn counted(binary: &PathBuf, transport: &str, batch: u32) -> Result<Counts, String> {
    let out = std::env::temp_dir().join(format!("wanlayer-bench-divert-{}.callgrind", std::process::id()));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg("--toggle-collect=*measured_loop*")
        .arg(binary)
        .args(["measure", transport, &batch.to_string(), &COUNTED_PACKETS.to_string()])
        .output()
        .map_err(|error| format!("could not start valgrind: {error}"))?;
    if !status.status.success() {
        return Err(format!("callgrind divert-bench failed: {}", String::from_utf8_lossy(&status.stderr)));
    }
    let annotate = |inclusive: &str| {
        Command::new("callgrind_annotate")
            .args(["--threshold=100", inclusive, &out.display().to_string()])
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
            .map_err(|error| format!("could not run callgrind_annotate: {error}"))
    };
    let (inclusive, exclusive) = (annotate("--inclusive=yes")?, annotate("--inclusive=no")?);
    let _ = std::fs::remove_file(&out);
    let mut total = 0;
    let mut entries = 0;
    let mut crates = 0;
    for (text, is_inclusive) in [(&inclusive, true), (&exclusive, false)] {
        for line in text.lines() {
            let Some((count, rest)) = line.trim_start().split_once(' ') else { continue };
            let Ok(count) = count.replace(',', "").parse::<u64>() else { continue };
            if rest.contains("PROGRAM TOTALS") {
                total = count;
                continue;
            }
            let Some(function) = rest.split_once("???:").map(|(_, function)| function.trim_start_matches('<')) else { continue };
            if is_inclusive && KERNEL_ENTRIES.iter().any(|entry| function.starts_with(entry)) {
                entries += count;
            }
            if !is_inclusive
                && KERNEL_CRATES.iter().any(|krate| function.starts_with(krate))
                && !USER_SIDE.iter().any(|user| function.contains(user))
            {
                crates += count;
            }
        }
    }
    let kernel = if transport == "engine" { entries } else { crates };
    if total == 0 {
        return Err("no instruction total in callgrind_annotate's output".to_owned());
    }
    Ok(Counts { total, kernel, crates })
}

/// Instructions counted inside the measured loop.
struct Counts {
    /// All of them.
    total: u64,
    /// The kernel side: inside the kernel entry points (`engine`), or in the driver's crates
    /// (`sim`).
    kernel: u64,
    /// In functions of the driver's crates only (exclusive; the platform's locks, packet reads
    /// and `memcpy` left out).
    crates: u64,
}

/// (wall, on-CPU) packets per second.
fn packets_per_second(binary: &PathBuf, transport: &str, batch: u32) -> Result<(f64, f64), String> {
    // Enough packets for about a second of CPU time: the thread's CPU time is read in ticks of
    // 10 ms.
    let packets = match (transport, batch) {
        ("engine", _) => WALL_PACKETS * 16,
        (_, 1) => WALL_PACKETS,
        _ => WALL_PACKETS * 2,
    };
    let output = Command::new(binary)
        .args(["pps", transport, &batch.to_string(), &packets.to_string()])
        .output()
        .map_err(|error| format!("could not run {}: {error}", binary.display()))?;
    if !output.status.success() {
        return Err(format!("divert-bench failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut rates = text.split_whitespace().map(str::parse::<f64>);
    match (rates.next(), rates.next()) {
        (Some(Ok(wall)), Some(Ok(on_cpu))) => Ok((wall, on_cpu)),
        _ => Err("divert-bench printed no rates".to_owned()),
    }
}

/// `cargo xtask bench divert`.
pub fn run() -> Result<(), String> {
    println!("\nxtask: == bench divert: take -> queue -> batch read -> verdict write -> reinject");
    let binary = binary()?;
    println!(
        "{:>9} {:>6} {:>12} {:>14} {:>20} {:>19} {:>22}",
        "transport", "batch", "packets/s", "per CPU second", "instructions/packet", "kernel side/packet", "driver crates/packet"
    );
    for transport in TRANSPORTS {
        for batch in BATCHES {
            let (wall, on_cpu) = packets_per_second(&binary, transport, batch)?;
            let counts = counted(&binary, transport, batch)?;
            println!(
                "{transport:>9} {batch:>6} {wall:>12.0} {on_cpu:>14.0} {:>20} {:>19} {:>22}",
                counts.total / COUNTED_PACKETS,
                counts.kernel / COUNTED_PACKETS,
                counts.crates / COUNTED_PACKETS
            );
        }
    }
    Ok(())
}
