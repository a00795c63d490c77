//! `cargo xtask bench divert`: packets through a user-mode hook in the simulator's transport
//! (`tests/src/bin/divert-bench.rs`): taken on the send path, queued, read in batches, answered
//! in one verdict write per batch, reinjected, sent and completed — at batches of 1, 16 and 256.
//!
//! Prints packets per second (wall time, this machine) and, from callgrind, instructions per
//! packet: the whole loop (the simulator's own work included: building frames, its ledger and
//! verifier, its trace, the I/O manager's buffers), and the kernel side — instructions in
//! functions of the crates `wanlayer.sys` links (`wanlayer_core`, `wanlayer_rules`,
//! `wanlayer_proto`) but those only the simulator or the client calls (`USER_SIDE`); this leaves
//! out the simulator's HAL calls and locks and libc's `memcpy`, and keeps the engine's send,
//! reinject and completion paths, the classifier, the queue, and the decoding and encoding of
//! the requests and answers the driver handles.

use std::path::PathBuf;
use std::process::Command;

use crate::test::{run_command, workspace_root};

/// Batch sizes measured.
const BATCHES: [u32; 3] = [1, 16, 256];
/// Packets per wall-time run.
const WALL_PACKETS: u64 = 131_072;
/// Packets per callgrind run.
const COUNTED_PACKETS: u64 = 4096;
/// The crates of `wanlayer.sys` whose functions count as the kernel side.
const KERNEL_CRATES: [&str; 3] = ["wanlayer_core::", "wanlayer_rules::", "wanlayer_proto::"];
/// Functions of those crates that only the simulator (building frames with `wire`) or the client
/// (reading batches, writing verdicts) calls in this loop.
const USER_SIDE: [&str; 5] = ["wanlayer_core::wire::", "DivertPacketRepr::parse", "DivertBatchRepr::parse", "Repr::emit", "ReadRequestRepr"];

fn binary() -> Result<PathBuf, String> {
    run_command("cargo", &["build", "--release", "-p", "wanlayer-tests", "--bin", "divert-bench"])?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    Ok(target.join("release").join("divert-bench"))
}

/// Runs the loop under callgrind; returns (all instructions, kernel-side instructions) counted
/// inside `measured_loop`.
fn counted(binary: &PathBuf, batch: u32) -> Result<(u64, u64), String> {
    let out = std::env::temp_dir().join(format!("wanlayer-bench-divert-{}.callgrind", std::process::id()));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg("--toggle-collect=*measured_loop*")
        .arg(binary)
        .args(["measure", &batch.to_string(), &COUNTED_PACKETS.to_string()])
        .output()
        .map_err(|error| format!("could not start valgrind: {error}"))?;
    if !status.status.success() {
        return Err(format!("callgrind divert-bench failed: {}", String::from_utf8_lossy(&status.stderr)));
    }
    let annotated = Command::new("callgrind_annotate")
        .args(["--threshold=100", &out.display().to_string()])
        .output()
        .map_err(|error| format!("could not run callgrind_annotate: {error}"))?;
    let _ = std::fs::remove_file(&out);
    let text = String::from_utf8_lossy(&annotated.stdout);
    let mut total = 0;
    let mut kernel = 0;
    for line in text.lines() {
        let Some((count, rest)) = line.trim_start().split_once(' ') else { continue };
        let Ok(count) = count.replace(',', "").parse::<u64>() else { continue };
        if rest.contains("PROGRAM TOTALS") {
            total = count;
            continue;
        }
        let Some(function) = rest.split_once("???:").map(|(_, function)| function.trim_start_matches('<')) else { continue };
        if KERNEL_CRATES.iter().any(|krate| function.starts_with(krate)) && !USER_SIDE.iter().any(|user| function.contains(user)) {
            kernel += count;
        }
    }
    if total == 0 {
        return Err("no instruction total in callgrind_annotate's output".to_owned());
    }
    Ok((total, kernel))
}

fn packets_per_second(binary: &PathBuf, batch: u32) -> Result<f64, String> {
    let packets = if batch == 1 { WALL_PACKETS / 4 } else { WALL_PACKETS };
    let output = Command::new(binary)
        .args(["pps", &batch.to_string(), &packets.to_string()])
        .output()
        .map_err(|error| format!("could not run {}: {error}", binary.display()))?;
    if !output.status.success() {
        return Err(format!("divert-bench failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().map_err(|_| "divert-bench printed no rate".to_owned())
}

/// `cargo xtask bench divert`.
pub fn run() -> Result<(), String> {
    println!("\nxtask: == bench divert: take -> queue -> batch read -> verdict write -> reinject, simulator transport");
    let binary = binary()?;
    println!("{:>6} {:>14} {:>22} {:>22}", "batch", "packets/s", "instructions/packet", "kernel side/packet");
    for batch in BATCHES {
        let rate = packets_per_second(&binary, batch)?;
        let (total, kernel) = counted(&binary, batch)?;
        println!("{batch:>6} {rate:>14.0} {:>22} {:>22}", total / COUNTED_PACKETS, kernel / COUNTED_PACKETS);
    }
    Ok(())
}
