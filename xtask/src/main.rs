//! `cargo xtask`: the one entry point for building, testing and demonstrating wanlayer.

mod demo;
mod image;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test    run every test of the workspace, build the core for a target with no OS at all,
          and lint everything (what CI runs)
  demo    drive a simulated RRAS server through a scripted session and print what wanlayer saw
  verify-image <file.sys> [--arch x64|arm64]   report a built driver image; fail naming every problem
  help    print this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("demo") => demo::run(&args[1..]),
        Some("verify-image") => image::run(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command '{other}'\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
