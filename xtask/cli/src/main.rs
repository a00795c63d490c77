//! `cargo xtask` (the alias in `.cargo/config.toml` runs this binary): parses the command line,
//! so `help`, `--help` and mistakes answer at once, then runs the same arguments through the
//! `xtask` binary (`cargo run --package xtask`), which builds the workspace crates and the
//! signing stack only when a command needs them.

use clap::Parser;
use std::path::Path;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    xtask_cli::Cli::parse();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let status = Command::new(cargo)
        .args(["run", "--quiet", "--package", "xtask", "--manifest-path"])
        .arg(manifest)
        .arg("--")
        .args(std::env::args_os().skip(1))
        .status();
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => ExitCode::from(status.code().and_then(|code| u8::try_from(code).ok()).unwrap_or(1)),
        Err(error) => {
            eprintln!("xtask: cannot run cargo: {error}");
            ExitCode::FAILURE
        }
    }
}
