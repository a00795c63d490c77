//! `cargo xtask test`: every check CI runs, in order, stopping at the first failure.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target with no operating system at all that proves the core is truly `no_std`.
const BARE_METAL_TARGET: &str = "riscv64gc-unknown-none-elf";

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Runs `program args` in the workspace root, failing with the command line when it fails.
pub fn run_command(program: &str, args: &[&str]) -> Result<(), String> {
    println!("xtask: $ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|error| format!("could not start {program}: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

/// Installs rustup targets that are missing.
pub fn ensure_targets(targets: &[&str]) -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|error| format!("could not run rustup: {error}"))?;
    let installed = String::from_utf8_lossy(&installed.stdout);
    let missing: Vec<&str> = targets.iter().copied().filter(|target| !installed.lines().any(|line| line.trim() == *target)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut args = vec!["target", "add"];
    args.extend(missing);
    run_command("rustup", &args)
}

pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(unknown) = args.first() {
        return Err(format!("`test` takes no arguments (got '{unknown}')"));
    }
    run_command("cargo", &["test", "--workspace", "--all-targets"])?;
    run_command("cargo", &["test", "--workspace", "--doc"])?;
    ensure_targets(&[BARE_METAL_TARGET])?;
    run_command("cargo", &["build", "--package", "wanlayer-core", "--target", BARE_METAL_TARGET])?;
    run_command("cargo", &["clippy", "--workspace", "--all-targets", "--", "--deny", "warnings"])?;
    println!("xtask: every check passed");
    Ok(())
}
