//! `cargo xtask`: the one entry point for building, testing and demonstrating wanlayer.

mod build;
mod demo;
mod image;
mod package;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test    run every test of the workspace, build the core for a target with no OS at all,
          and lint everything (what CI runs)
  build [--arch x64|arm64|all] [--release]   cross-build wanlayer.sys into target/wanlayer/<arch>/ and verify it
  demo    drive a simulated RRAS server through a scripted session and print what wanlayer saw
  verify-image <file.sys> [--arch x64|arm64]   report a built driver image; fail naming every problem
  package [--arch x64|arm64|all] [--pfx <file> [--pfx-password <p>]] [--catalog-version 1|2]
          stamp, sign and catalogue the built driver into target/package/<arch>/ and verify it
          (with the WDK's tools on a Windows host that has them); `package --help` for more
  lint-inf <file.inf> [--package-dir <dir>]    check an INF against the lightweight filter rules
  help    print this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("build") => build::run(&args[1..]),
        Some("demo") => demo::run(&args[1..]),
        Some("verify-image") => image::run(&args[1..]),
        Some("package") => package::run(&args[1..]),
        Some("lint-inf") => package::run_lint(&args[1..]),
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
