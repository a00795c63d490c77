//! `cargo xtask test`: every check CI runs, in order, stopping at the first failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::image::Arch;
use crate::{build, demo, package, sdk, soak};

/// The target with no operating system at all that proves the core is truly `no_std`.
const BARE_METAL_TARGET: &str = "riscv64gc-unknown-none-elf";

/// wanlayer-sim-driver's filter scenarios left out of the Miri run: the first over four minutes
/// under Miri, the others not timed (many links, every allocation failing in turn, every run twice).
const MIRI_SLOW_FILTER_SCENARIOS: [&str; 4] = [
    "an_attach_beyond_the_engine_module_slots_fails_cleanly",
    "many_links_are_each_tracked_and_counted",
    "every_allocation_failing_in_turn_is_handled_cleanly",
    "runs_are_deterministic",
];

/// wanlayer-sim-driver's verifier-rule and control-device tests run under Miri: the driver's
/// handlers through every rule's scenario, and the control device's reads, cancellation and cleanup.
const MIRI_RULES_AND_CONTROL: [&str; 4] = [
    "the_drivers_handlers_and_the_correct_filter_are_clean_in_every_scenario",
    "a_pending_read_completes_when_an_event_arrives_and_a_cancelled_one_never_does",
    "cleanup_with_reads_pending_cancels_them_and_frees_the_ring",
    "capture_costs_nothing_when_nobody_listens_and_the_version_reports_the_drivers_engine",
];

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

/// `cargo xtask test`: everything CI checks, in the order a failure is cheapest to find.
pub fn run() -> Result<(), String> {
    let driver_manifest = workspace_root().join("driver").join("Cargo.toml");
    let driver_manifest = driver_manifest.to_str().ok_or("the workspace path is not UTF-8")?.to_owned();
    let driver_target_dir = build::driver_target_dir(&workspace_root());
    let driver_target_dir = driver_target_dir.to_str().ok_or("the workspace path is not UTF-8")?.to_owned();

    step("the external tools the checks use: each missing one is named with what it skips (under CI it fails)");
    crate::tools::census()?;

    step("the host workspace's tests: engine, FFI, simulator and verifier, scenarios, xtask");
    // Every simulated world that runs wanlayer.sys's handlers (wanlayer-sim-driver's DriverFilter)
    // names its test in this file, so the scenarios that ran against the driver are counted.
    let scenario_log = workspace_root().join("target").join("driver-scenarios.txt");
    let _ = std::fs::remove_file(&scenario_log);
    // With CARGO_TARGET_DIR elsewhere the workspace's `target` may not exist yet.
    std::fs::create_dir_all(workspace_root().join("target")).map_err(|error| format!("creating the workspace's target directory: {error}"))?;
    std::env::set_var("WANLAYER_DRIVER_SCENARIOS", &scenario_log);
    run_command("cargo", &["test", "--workspace", "--all-targets"])?;
    run_command("cargo", &["test", "--workspace", "--doc"])?;
    std::env::remove_var("WANLAYER_DRIVER_SCENARIOS");
    let ran = std::fs::read_to_string(&scenario_log).unwrap_or_default();
    let scenarios: std::collections::BTreeSet<&str> = ran.lines().collect();
    if scenarios.is_empty() {
        return Err(format!("no simulator scenario recorded running against the driver's handlers in {}", scenario_log.display()));
    }
    println!("xtask: {} simulator scenarios ran against the driver's own handlers (DriverFilter: the simulator's filter scenarios, wanlayer-sim-driver, tests/)", scenarios.len());

    step("the engine on real threads (every packet back exactly once) and the hook chain's protocol model-checked with loom, optimised");
    run_command("cargo", &["test", "--release", "-p", "wanlayer-bench", "--test", "stress", "--test", "loom_hook_chain", "--", "--include-ignored"])?;

    step("the rules classifier against libpcap (differential tests; needs libpcap-dev)");
    if crate::bench::ensure_libpcap()? {
        run_command("cargo", &["test", "--release", "-p", "wanlayer-rules-differential"])?;
    } else {
        println!("xtask: SKIPPED the differential tests against libpcap: libpcap-dev is not installed (run as root to install it)");
    }

    step("Miri (strict provenance) over proto, the FFI crate, the SDK's provider table, the engine and the client's overlapped requests, on x86-64 and big-endian s390x");
    crate::miri::run_suites(&crate::miri::MiriTarget::ALL, false)?;

    step("the driver in the loop: wanlayer.sys's own handlers built for the host, against the kernel model, natively and under Miri");
    let scenarios = driver_in_the_loop(&driver_manifest, &driver_target_dir)?;
    println!("xtask: {scenarios} scenarios ran against the driver's own handlers");
    // The simulator with the driver in the loop under Miri too, bounded to the scenarios written for
    // it (wanlayer-sim-driver's, with the driver's heap in the model's pool, tests/heap.rs;
    // tests/tests/driver.rs) and the provider interface's
    // (tests/tests/provider.rs: a vendor's IoGetDeviceObjectPointer and internal device control
    // IRP through the SDK's kernel client, the driver's table; exposed provenance, like the
    // translation, so not in the strict-provenance suites): the translation's NBLs and MDLs, the
    // driver's own NBLs, OID clones, status buffers, the control device's IRPs and wake DPC. Left
    // out by name: the two lent-chain scenarios (minutes each under Miri; the driver's relinking of
    // chains longer than its record runs under Miri in driver/host-tests' data-path scenarios).
    let miri_target_dir = format!("{driver_target_dir}/miri-sim");
    run_command(
        "cargo",
        &[
            "+nightly", "miri", "test", "-p", "wanlayer-sim-driver", "--test", "scenarios", "--test", "heap", "-p", "wanlayer-tests",
            "--test", "driver", "--test", "provider", "--target-dir", &miri_target_dir, "--", "--skip", "lent_chain",
        ],
    )?;
    // wanlayer-sim-driver's scenarios of the filter, its memory, the verifier's rules and the
    // control device, on the driver's handlers: all but those that take minutes each under Miri
    // (MIRI_SLOW_FILTER_SCENARIOS), and of the rules and the control device those named
    // (MIRI_RULES_AND_CONTROL; the rest prove the simulator's rules with broken handlers, or take
    // minutes: a hundred thousand links, arbitrary bytes into every request, capture overflow,
    // injection); 3 min 42 s of tests under Miri on two cores (load 1-2).
    println!(
        "xtask: under Miri too: wanlayer-sim-driver's engine_memory, filter_scenarios but {}, and {}",
        MIRI_SLOW_FILTER_SCENARIOS.join(", "),
        MIRI_RULES_AND_CONTROL.join(", ")
    );
    let mut filter = vec![
        "+nightly", "miri", "test", "-p", "wanlayer-sim-driver", "--test", "engine_memory", "--test", "filter_scenarios", "--target-dir", &miri_target_dir, "--",
        "--exact",
    ];
    filter.extend(MIRI_SLOW_FILTER_SCENARIOS.iter().flat_map(|name| ["--skip", name]));
    run_command("cargo", &filter)?;
    let mut rules_and_control =
        vec!["+nightly", "miri", "test", "-p", "wanlayer-sim-driver", "--test", "verifier_rules", "--test", "control", "--target-dir", &miri_target_dir, "--", "--exact"];
    rules_and_control.extend(MIRI_RULES_AND_CONTROL);
    run_command("cargo", &rules_and_control)?;
    let sweep = low_resources_sweep(&driver_manifest, &driver_target_dir)?;
    println!("xtask: {sweep}");

    step("the C header of the SDK: generated from its Rust definitions, compiled as C99, its layout Rust's");
    sdk::check()?;
    sdk::compile_c(&sdk::c_compiler())?;

    step("the engine, the control protocol and the SDK's provider build for a target with no operating system at all");
    ensure_targets(&[BARE_METAL_TARGET])?;
    run_command("cargo", &["build", "--package", "wanlayer-core", "--package", "wanlayer-proto", "--target", BARE_METAL_TARGET])?;
    run_command("cargo", &["build", "--package", "wanlayer-sdk", "--features", "provider", "--target", BARE_METAL_TARGET])?;

    step("lints: the host workspace and the driver workspace (wanlayer.sys, wlclamp.sys) for every architecture");
    run_command("cargo", &["clippy", "--workspace", "--all-targets", "--", "--deny", "warnings"])?;
    ensure_targets(&[build::target_triple(Arch::X64)])?;
    run_command(
        "cargo",
        &["clippy", "--package", "wanlayer-client", "--package", "wanlayerctl", "--target", build::target_triple(Arch::X64), "--", "--deny", "warnings"],
    )?;
    // The client's Windows transports (overlapped I/O, the completion port) compile for every Windows architecture.
    for arch in [Arch::Arm64, Arch::X86] {
        ensure_targets(&[build::target_triple(arch)])?;
        run_command("cargo", &["check", "--package", "wanlayer-client", "--package", "wanlayerctl", "--target", build::target_triple(arch)])?;
    }
    for arch in Arch::ALL {
        let triple = build::target_triple(arch);
        ensure_targets(&[triple])?;
        run_command(
            "cargo",
            &[
                "clippy",
                "--manifest-path",
                &driver_manifest,
                "--workspace",
                "--target",
                triple,
                "--target-dir",
                &driver_target_dir,
                "--",
                "--deny",
                "warnings",
            ],
        )?;
    }

    step("wanlayer.sys and wlclamp.sys, debug, for every architecture (x64, arm64, x86), each image verified");
    build::build(&Arch::ALL, false)?;

    step("the signed packages (release images), verified");
    package::run(package::Options::default())?;

    step("the shipped images on an emulated processor: the driver-in-the-loop scenarios and the low-resources sweep against wanlayer.sys, wlclamp.sys's DriverEntry (x64, arm64 and x86, the last under the emulator built for 32-bit Linux; debug, and release as the signed package files)");
    emulate_images(&driver_manifest, &driver_target_dir)?;

    step("the demo session in the simulator");
    demo::run()?;

    step("randomized NDIS schedules through wanlayer.sys's own handlers over the kernel model (a bounded soak)");
    soak::run(soak::TEST_SCHEDULES, None)?;

    println!("\nxtask: every check passed");
    Ok(())
}

/// Lints and runs `driver/host-tests` (the driver's handlers against the kernel model) on the host,
/// then runs them again under Miri (x86-64, Stacked Borrows; permissive provenance, since the
/// model keeps the addresses the driver gives it as integers, as the kernel's tables do); returns
/// how many scenarios passed natively.
fn driver_in_the_loop(driver_manifest: &str, target_dir: &str) -> Result<usize, String> {
    let package = ["--manifest-path", driver_manifest, "--package", "wanlayer-driver", "--package", "wanlayer-driver-host-tests"];
    let mut clippy = vec!["clippy"];
    clippy.extend(package);
    clippy.extend(["--all-targets", "--target-dir", target_dir, "--", "--deny", "warnings"]);
    run_command("cargo", &clippy)?;
    let mut test = vec!["test"];
    test.extend(package);
    test.extend(["--target-dir", target_dir]);
    println!("xtask: $ cargo {}", test.join(" "));
    let output = Command::new("cargo")
        .args(&test)
        .current_dir(workspace_root())
        .output()
        .map_err(|error| format!("could not start cargo: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        return Err(format!("`cargo {}` failed ({})", test.join(" "), output.status));
    }
    let miri_target_dir = format!("{target_dir}/miri");
    let mut miri = vec!["+nightly", "miri", "test", "--no-fail-fast"];
    miri.extend(package);
    miri.extend(["--target-dir", &miri_target_dir]);
    run_command("cargo", &miri)?;
    Ok(stdout
        .lines()
        .filter_map(|line| line.strip_prefix("test result: ok. "))
        .filter_map(|rest| rest.split(' ').next()?.parse::<usize>().ok())
        .sum())
}

/// Runs the low-resources sweep of `driver/host-tests` (every allocation of each scenario failed
/// in turn, `tests/low_resources.rs`) and returns its summary line: scenarios, failed
/// allocations, bug checks, leaks.
fn low_resources_sweep(driver_manifest: &str, target_dir: &str) -> Result<String, String> {
    let args = [
        "test",
        "--manifest-path",
        driver_manifest,
        "--package",
        "wanlayer-driver-host-tests",
        "--test",
        "low_resources",
        "--target-dir",
        target_dir,
        "--",
        "--nocapture",
    ];
    println!("xtask: $ cargo {}", args.join(" "));
    let output = Command::new("cargo")
        .args(args)
        .current_dir(workspace_root())
        .output()
        .map_err(|error| format!("could not start cargo: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        print!("{stdout}");
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        return Err(format!("the low-resources sweep failed ({})", output.status));
    }
    // Its two summaries (the sweep scenarios; every scenario of the library), wherever the test
    // harness's own output put them on a line.
    let summaries: Vec<&str> = stdout.lines().filter_map(|line| line.find("low-resources sweep").map(|at| &line[at..])).collect();
    if summaries.is_empty() {
        return Err("the low-resources sweep printed no summary".to_owned());
    }
    Ok(summaries.join("\nxtask: "))
}

/// Builds `driver/emulator` and runs it against the debug and release images the steps above
/// built (`target/driver/<triple>/<profile>/`, what `build` copies to `target/wanlayer/<arch>/`):
/// every driver-in-the-loop scenario against `wanlayer.sys` on an emulated processor (unicorn;
/// imports bound to the kernel model), the emulator's own checks proven live (a wild pointer,
/// a leak, a special-pool overrun), the low-resources sweep of the host tests' sweep scenarios
/// (each allocation the image makes failed in a run of its own) and `wlclamp.sys` registering
/// beside it through the provider table.
/// Prints per architecture and profile each scenario with the deepest stack a call of it used,
/// the probes, the sweep's failed allocations and the failures. x86 images (PE32) run under the
/// emulator built for `i686-unknown-linux-gnu` (the kernel model's structures in x86 layouts),
/// whose unicorn is compiled with `gcc -m32` through [`m32_compilers`].
fn emulate_images(driver_manifest: &str, driver_target_dir: &str) -> Result<(), String> {
    let package = ["--manifest-path", driver_manifest, "--package", "wanlayer-emulator", "--target-dir", driver_target_dir];
    let mut clippy = vec!["clippy", "--all-targets"];
    clippy.extend(package);
    clippy.extend(["--", "--deny", "warnings"]);
    run_command("cargo", &clippy)?;
    let mut build = vec!["build"];
    build.extend(package);
    run_command("cargo", &build)?;
    let (c_compiler, cxx_compiler) = m32_compilers(Path::new(driver_target_dir))?;
    let mut build_32 = build.clone();
    build_32.extend(["--target", HOST_32]);
    clippy.insert(1, "--target");
    clippy.insert(2, HOST_32);
    for arguments in [&clippy, &build_32] {
        println!("xtask: $ cargo {}", arguments.join(" "));
        let status = Command::new("cargo")
            .args(arguments.iter())
            .env("CC_i686_unknown_linux_gnu", &c_compiler)
            .env("CXX_i686_unknown_linux_gnu", &cxx_compiler)
            .current_dir(workspace_root())
            .status()
            .map_err(|error| format!("could not start cargo: {error}"))?;
        if !status.success() {
            return Err(format!("`cargo {}` failed ({status})", arguments.join(" ")));
        }
    }
    for arch in [Arch::X64, Arch::Arm64, Arch::X86] {
        let emulator = match arch {
            Arch::X86 => Path::new(driver_target_dir).join(HOST_32).join("debug").join("wanlayer-emulator"),
            _ => Path::new(driver_target_dir).join("debug").join("wanlayer-emulator"),
        };
        for profile in ["debug", "release"] {
            // The release pass runs the signed files the package step wrote (it ran before this
            // step): the bytes that ship.
            let (driver, vendor) = if profile == "release" {
                let packaged = package::package_root().join(arch.to_string());
                (packaged.join("wanlayer.sys"), packaged.join("wlclamp.sys"))
            } else {
                let images = build::output_dir(Path::new(driver_target_dir), arch, profile);
                (images.join("wanlayer.dll"), images.join("wlclamp.dll"))
            };
            let label = format!("{arch} {profile}");
            let output = Command::new(&emulator)
                .args(["--label", &label, "--driver"])
                .arg(&driver)
                .arg("--vendor")
                .arg(&vendor)
                // Every scenario's low-resources sweep, every allocation failed in turn; after the
                // first scenario, the same DriverEntry's allocations are left out (~40 s an image).
                .args(["--sweep-every-scenario", "all"])
                .output()
                .map_err(|error| format!("could not start {}: {error}", emulator.display()))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            for line in stdout.lines() {
                println!("xtask: {line}");
            }
            if !output.status.success() {
                eprint!("{}", String::from_utf8_lossy(&output.stderr));
                return Err(format!("the emulator failed against the {label} images ({})", output.status));
            }
        }
    }
    Ok(())
}

/// The 32-bit host the emulator is built for to run x86 images.
const HOST_32: &str = "i686-unknown-linux-gnu";

/// `gcc -m32` and `g++ -m32` as two programs (scripts in `target_dir`): unicorn's CMake build
/// probes the compiler it is given without the flags, and would build for x86-64 otherwise.
fn m32_compilers(target_dir: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    use std::os::unix::fs::PermissionsExt;
    let mut written = Vec::new();
    for (name, compiler) in [("gcc-m32", "gcc"), ("g++-m32", "g++")] {
        let path = target_dir.join(name);
        std::fs::create_dir_all(target_dir).map_err(|error| format!("cannot create {}: {error}", target_dir.display()))?;
        std::fs::write(&path, format!("#!/bin/sh\nexec {compiler} -m32 \"$@\"\n"))
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)))
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        written.push(path);
    }
    let cxx = written.pop().unwrap_or_default();
    Ok((written.pop().unwrap_or_default(), cxx))
}

/// Announces a step.
fn step(what: &str) {
    println!("\nxtask: == {what}");
}

#[cfg(test)]
mod tests {
    use std::fs;

    /// The kernel crates (and the driver workspace: wanlayer.sys, wlclamp.sys) and their roots.
    const KERNEL_CRATES: [&str; 7] = [
        "crates/wanlayer-core",
        "crates/wanlayer-ndis",
        "crates/wanlayer-sdk",
        "crates/wanlayer-driver-logic",
        "crates/wanlayer-rules",
        "driver",
        "driver/vendor-sample",
    ];

    /// The crate-root attribute that makes clippy's refusals errors outside tests.
    const DENY: &str = "#![cfg_attr(not(test), deny(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types))]";

    /// Infallible allocation is refused in every kernel crate, by one list: each crate's
    /// `clippy.toml` is the driver workspace's (wlclamp.sys inherits it from `driver/`), and each
    /// crate root denies what it lists.
    #[test]
    fn every_kernel_crate_refuses_infallible_allocation_by_one_list() {
        let root = super::workspace_root();
        let reference = fs::read_to_string(root.join("driver/clippy.toml")).expect("driver/clippy.toml");
        assert!(reference.contains("alloc::sync::Arc::new") && reference.contains("alloc::vec"), "the list names Arc::new and vec!");
        for krate in KERNEL_CRATES {
            let own = root.join(krate).join("clippy.toml");
            if krate == "driver/vendor-sample" {
                assert!(!own.exists(), "{krate} inherits driver/clippy.toml");
            } else {
                assert_eq!(fs::read_to_string(&own).expect("clippy.toml"), reference, "{krate}/clippy.toml differs from driver/clippy.toml");
            }
            let lib = fs::read_to_string(root.join(krate).join("src/lib.rs")).expect("lib.rs");
            assert!(lib.contains(DENY), "{krate}/src/lib.rs does not deny the list outside tests");
        }
    }
}
