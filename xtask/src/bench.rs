//! `cargo xtask bench [rules|engine|divert]`: benchmarks counted in instructions by callgrind (deterministic,
//! unlike wall time on a shared machine). Each section is one function of `SECTIONS`; with no
//! argument every section runs.
//!
//! `rules`: wanlayer's classifier beside libpcap's `bpf_filter` on the same no-match packets and
//! rules (`src net A/32 and tcp dst port P`), instructions per packet at 1 to 65,536 rules, with
//! an empty loop's count subtracted; then compile time and memory per rule. libpcap's optimiser
//! is superlinear (minutes for 4,096 rules natively), so its programs are compiled natively,
//! saved, and measured under callgrind, up to 4,096 rules.

use std::path::PathBuf;
use std::process::Command;

use crate::test::{run_command, workspace_root};
use xtask_cli::BenchSection;

mod divert;
mod engine;

/// One benchmark section's runner.
type Section = fn() -> Result<(), String>;

/// Benchmark sections: name and runner.
const SECTIONS: [(BenchSection, Section); 3] =
    [(BenchSection::Rules, rules), (BenchSection::Engine, engine::run), (BenchSection::Divert, divert::run)];

/// Rule counts measured.
const RULE_COUNTS: [usize; 6] = [1, 16, 256, 1024, 4096, 65536];
/// The largest rule count libpcap is compiled for (natively, saved, then measured under
/// callgrind: its optimiser takes minutes at 4,096 rules and would take hours at 65,536).
const LIBPCAP_MAX_RULES: usize = 4096;
/// Packets per measurement (the bench binary's `PACKETS`).
const PACKETS: u64 = 1000;

/// `cargo xtask bench [SECTION...]`.
pub fn run(chosen: &[BenchSection]) -> Result<(), String> {
    for (name, section) in SECTIONS {
        if chosen.is_empty() || chosen.contains(&name) {
            section()?;
        }
    }
    Ok(())
}

/// Makes sure libpcap-dev is installed: installs it with apt-get when running as root, else
/// fails under CI (`CI` set) or returns false (the caller prints a visible skip).
pub fn ensure_libpcap() -> Result<bool, String> {
    if libpcap_present() {
        return Ok(true);
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0");
    if root && Command::new("apt-get").arg("--version").output().is_ok() {
        run_command("apt-get", &["update", "-qq"])?;
        run_command("apt-get", &["install", "-y", "-qq", "libpcap-dev"])?;
        return Ok(libpcap_present());
    }
    if std::env::var_os("CI").is_some() {
        return Err("libpcap-dev is missing and cannot be installed here (not root or no apt-get)".to_owned());
    }
    Ok(false)
}

/// Whether libpcap's development files are installed (Debian's package, or the library where
/// the differential package's build script looks for it).
fn libpcap_present() -> bool {
    Command::new("dpkg").args(["-s", "libpcap-dev"]).output().is_ok_and(|output| output.status.success())
        || ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"]
            .iter()
            .any(|dir| std::path::Path::new(dir).join("libpcap.so").exists())
}

fn bench_binary() -> Result<PathBuf, String> {
    run_command("cargo", &["build", "--release", "-p", "wanlayer-rules-differential", "--bin", "rules-bench"])?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    Ok(target.join("release").join("rules-bench"))
}

/// Instructions callgrind counted inside `measured_loop` for one run.
fn callgrind(binary: &PathBuf, args: &[&str]) -> Result<u64, String> {
    let out = std::env::temp_dir().join(format!("wanlayer-bench-{}.callgrind", std::process::id()));
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg("--toggle-collect=*measured_loop*")
        .arg(binary)
        .args(args)
        .output()
        .map_err(|error| format!("could not start valgrind: {error}"))?;
    if !output.status.success() {
        return Err(format!("callgrind {args:?} failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let text = std::fs::read_to_string(&out).map_err(|error| format!("{}: {error}", out.display()))?;
    let _ = std::fs::remove_file(&out);
    text.lines()
        .find_map(|line| line.strip_prefix("summary:").or_else(|| line.strip_prefix("totals:")).and_then(|count| count.trim().parse().ok()))
        .ok_or_else(|| "no instruction total in callgrind's output".to_owned())
}

fn rules() -> Result<(), String> {
    println!("\nxtask: == bench rules: instructions per no-match packet, `src net A/32 and tcp dst port P` rules");
    if !ensure_libpcap()? {
        println!("xtask: SKIPPED bench rules: libpcap-dev is not installed (run as root to install it)");
        return Ok(());
    }
    let binary = bench_binary()?;
    let binary_text = binary.to_str().ok_or("the target path is not UTF-8")?.to_owned();
    let floor = callgrind(&binary, &["measure", "floor", "1"])?;
    println!("empty-loop floor: {} instructions per packet (subtracted)", floor / PACKETS);
    println!("{:>7} {:>10} {:>10}   (libpcap: '-' = not compiled, its optimiser would take hours)", "rules", "wanlayer", "libpcap");
    for count in RULE_COUNTS {
        let count_text = count.to_string();
        let ours = callgrind(&binary, &["measure", "wanlayer", &count_text])?.saturating_sub(floor) / PACKETS;
        let theirs = if count <= LIBPCAP_MAX_RULES {
            let saved = std::env::temp_dir().join(format!("wanlayer-bench-libpcap-{count}.bpf"));
            let saved_text = saved.to_str().ok_or("the temporary path is not UTF-8")?.to_owned();
            run_command(&binary_text, &["save-libpcap", &count_text, &saved_text])?;
            let measured = callgrind(&binary, &["measure", "libpcap-saved", &count_text, &saved_text]);
            let _ = std::fs::remove_file(&saved);
            (measured?.saturating_sub(floor) / PACKETS).to_string()
        } else {
            "-".to_owned()
        };
        println!("{count:>7} {ours:>10} {theirs:>10}");
    }
    println!("\ncompile time and memory per rule (wall time, this machine):");
    for count in [1usize, 256, 1024] {
        run_command(&binary_text, &["costs", &count.to_string()])?;
    }
    for count in [4096usize, 65536] {
        run_command(&binary_text, &["costs-wanlayer", &count.to_string()])?;
    }
    Ok(())
}
