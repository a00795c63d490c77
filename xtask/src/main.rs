//! `cargo xtask`: the one entry point for building, testing and demonstrating wanlayer.

use xtask::{bench, build, demo, fuzz, image, miri, package, sdk, soak, test};

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

  package [--arch x64|arm64|x86|all] [--pfx FILE [--pfx-password P]] [--catalog-version 1|2]
      build wanlayer.sys and wlclamp.sys (release), then stamp, sign and catalogue them into
      target/package/<arch>/ and verify the result (`package --help` for more)
  test
      everything CI checks: the host tests, the SDK's C header, the engine built with no OS, lints
      for the host and the driver workspace, both kernel images of both architectures verified,
      the signed packages, the demo
  bench [rules|engine]
      instruction counts under callgrind (valgrind): the rules classifier beside libpcap at 1 to
      65,536 rules, compile time and memory per rule; the engine's send and receive paths beside
      the floor, locks per packet, threads, line-up latency at 100k links, bytes per link,
      criterion wall times; results go in BENCHMARKS.md
  build [--arch x64|arm64|x86|all] [--release]
      cross-build wanlayer.sys and the sample vendor driver wlclamp.sys into
      target/wanlayer/<arch>/ and verify the images
  sdk-header [--check]
      generate crates/wanlayer-sdk/include/wanlayer.h (and its layout check) from the SDK's Rust
      definitions, or check that the checked-in files are current; then compile them as C99
  verify-image FILE.sys [--arch x64|arm64|x86] [--vendor]
      report a driver image and fail naming every problem found (--vendor: the vendor driver
      policy, ntoskrnl.exe imports only)
  lint-inf FILE.inf [--package-dir DIR]
      check an INF against the lightweight-filter rules and the files of its package
  demo
      drive a simulated RRAS server through a scripted session and print what wanlayer saw
  soak [--schedules N] [--seed S] [--threads T]
      run N (default 100,000) randomized NDIS schedules through the simulator: zero violations,
      every packet back once, every pool at zero; a failure prints its seed and shrunk schedule
  miri [--target x86_64|s390x|all] [--full]
      the tests of proto, the FFI crate, the SDK's provider table, the provider scenarios and the
      engine under Miri, on x86-64 and big-endian s390x (--full: without the skip list)
  fuzz [--time S] [--target NAME] [--seed]
      build the cargo-fuzz targets of fuzz/ (nightly, AddressSanitizer; installed when missing)
      and run each (or one) for S seconds (default 60) over a copy of its seed corpus; fails
      naming the target and the crash file (--seed: rewrite fuzz/corpus/*/seed-* first)
  help
      print this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("build") => build::run(&args[1..]),
        Some("demo") => demo::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("verify-image") => image::run(&args[1..]),
        Some("package") => package::run(&args[1..]),
        Some("lint-inf") => package::run_lint(&args[1..]),
        Some("sdk-header") => sdk::run(&args[1..]),
        Some("soak") => soak::run(&args[1..]),
        Some("miri") => miri::run(&args[1..]),
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
