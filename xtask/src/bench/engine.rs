//! `cargo xtask bench engine`: the engine's data path beside the floor (`crates/wanlayer-bench`).
//!
//! Instruction counts by callgrind (send + send complete, receive + return, per packet) at chains
//! of 1 and 32, 64- and 1,400-byte frames, 0/1/4/16 hooks that pass or modify, 1 / 1k / 100k
//! links, each beside the floor measured in the same run (unlink each packet, read its 12 address
//! bytes, relink, hand on); lock acquisitions per packet (module-wide and per-processor reads
//! apart); packets per second on one module with 1..N threads; line-up latency and bytes per link
//! at 100k links; then criterion's wall times.

use std::path::PathBuf;
use std::process::Command;

use crate::test::{run_command, workspace_root};

/// Packets counted per callgrind run (rounds = this / chain).
const PACKETS: usize = 3200;
/// Links for the line-up latency and bytes-per-link measurement.
const LINE_UP_LINKS: &str = "100000";

fn binary() -> Result<PathBuf, String> {
    run_command("cargo", &["build", "--release", "-p", "wanlayer-bench", "--bin", "engine-bench"])?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    Ok(target.join("release").join("engine-bench"))
}

/// A scenario: direction, chain, frame length, hooks, hook kind, links.
type Scenario<'a> = (&'a str, usize, usize, usize, &'a str, u32);

fn words(scenario: Scenario<'_>) -> Vec<String> {
    let (direction, chain, frame_len, hooks, kind, links) = scenario;
    vec![direction.to_owned(), chain.to_string(), frame_len.to_string(), hooks.to_string(), kind.to_owned(), links.to_string()]
}

/// Instructions per packet callgrind counted in `measured_loop`.
fn per_packet(binary: &PathBuf, what: &str, scenario: Scenario<'_>) -> Result<f64, String> {
    let rounds = (PACKETS / scenario.1).to_string();
    let mut args = vec!["measure".to_owned(), what.to_owned(), rounds];
    args.extend(words(scenario));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let total = super::callgrind(binary, &args)?;
    Ok(total as f64 / PACKETS as f64)
}

fn output(binary: &PathBuf, args: &[&str]) -> Result<String, String> {
    let output = Command::new(binary).args(args).output().map_err(|error| format!("could not run {}: {error}", binary.display()))?;
    if !output.status.success() {
        return Err(format!("engine-bench {args:?} failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `cargo xtask bench engine`.
pub fn run() -> Result<(), String> {
    println!("\nxtask: == bench engine: instructions per packet (callgrind), the engine beside the floor measured in this run");
    let binary = binary()?;
    println!(
        "{:<8} {:>5} {:>5} {:>5} {:<6} {:>7} {:>9} {:>9} {:>7} {:>10}",
        "path", "chain", "bytes", "hooks", "kind", "links", "floor", "engine", "ratio", "per hook"
    );
    for direction in ["send", "receive"] {
        for chain in [1usize, 32] {
            let mut floors = Vec::new();
            for frame_len in [64usize, 1400] {
                let floor = per_packet(&binary, "floor", (direction, chain, frame_len, 0, "pass", 1))?;
                floors.push((frame_len, floor));
            }
            let floor_of = |frame_len: usize| floors.iter().find(|(len, _)| *len == frame_len).map_or(0.0, |(_, floor)| *floor);
            let mut no_hooks = 0.0;
            let mut rows: Vec<Scenario<'_>> = vec![(direction, chain, 64, 0, "pass", 1), (direction, chain, 1400, 0, "pass", 1)];
            for kind in ["pass", "modify"] {
                for hooks in [1usize, 4, 16] {
                    rows.push((direction, chain, 64, hooks, kind, 1));
                }
            }
            rows.push((direction, chain, 64, 0, "pass", 1000));
            rows.push((direction, chain, 64, 0, "pass", 100_000));
            for scenario in rows {
                let (_, _, frame_len, hooks, kind, links) = scenario;
                let engine = per_packet(&binary, "engine", scenario)?;
                if hooks == 0 && links == 1 && frame_len == 64 {
                    no_hooks = engine;
                }
                let floor = floor_of(frame_len);
                let per_hook = if hooks > 0 { format!("{:.1}", (engine - no_hooks) / hooks as f64) } else { "-".to_owned() };
                println!(
                    "{direction:<8} {chain:>5} {frame_len:>5} {hooks:>5} {kind:<6} {links:>7} {floor:>9.1} {engine:>9.1} {:>6.2}x {per_hook:>10}",
                    engine / floor.max(1.0)
                );
            }
        }
    }

    println!("\nlock acquisitions per packet (send + complete, receive + return), by what the lock protects");
    println!("('(per-processor read)': the reader's own processor's lock of a read-mostly value, no shared line):");
    for scenario in
        [("send", 1, 64, 0, "pass", 1), ("send", 32, 64, 0, "pass", 1), ("send", 1, 64, 4, "pass", 1), ("receive", 32, 64, 4, "pass", 1)]
    {
        let args = words(scenario);
        let mut full = vec!["locks"];
        full.extend(args.iter().map(String::as_str));
        let counts = output(&binary, &full)?;
        let line = counts.lines().collect::<Vec<_>>().join(", ");
        println!("  {:<8} chain {:>2} hooks {}: {}", scenario.0, scenario.1, scenario.3, if line.is_empty() { "none" } else { &line });
    }

    let threads = std::thread::available_parallelism().map_or(2, usize::from).max(2).to_string();
    println!("\nthroughput on one module, sends of 32 x 64 bytes over 1k links, one pass hook, real threads (Mpps, ratio to 1 thread):");
    print!("{}", output(&binary, &["threads", &threads, "1"])?);

    println!("\nline up to {LINE_UP_LINKS} links (wall time, this machine) and bytes per link:");
    print!("{}", output(&binary, &["lineup", LINE_UP_LINKS])?);

    println!("\nwall time (criterion):");
    run_command("cargo", &["bench", "-p", "wanlayer-bench", "--bench", "engine", "--", "--noplot"])
}
