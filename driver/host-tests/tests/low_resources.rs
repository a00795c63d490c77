//! The low-resources sweep (Driver Verifier's low-resources simulation, made exhaustive): each
//! scenario runs once to count the allocations the driver makes (pool, NBL pools, NBLs, MDLs, OID
//! clones), then once per allocation with that one failed. Every run must end without a bug check,
//! with nothing left over (`model::finish()` empty) and, where a step failed, with the failure
//! status that step documents:
//!
//! * `DriverEntry`: `STATUS_INSUFFICIENT_RESOURCES` (`0xC000009A`), nothing registered;
//! * `FilterAttach`: `NDIS_STATUS_RESOURCES` (`0xC000009A`), no module context set;
//! * `FilterOidRequest`: `NDIS_STATUS_RESOURCES` when the clone cannot be allocated;
//! * a WAN line up that cannot be tracked is still passed on (the link is not tracked);
//! * `IRP_MJ_CREATE` on the control device: `STATUS_INSUFFICIENT_RESOURCES`, no handle.
//!
//! Each scenario runs twice: on a kernel with `ExAllocatePool2` and on one without it (before build
//! 19041), where the driver takes `ExAllocatePoolWithTag`.
//!
//! On this host build the engine's own heap (`alloc`) is `std`'s, so the sweep fails the kernel
//! imports' allocations; the built images, whose global allocator is pool, are swept by the
//! emulator through the same `low_resources` API.
//!
//! The test prints one line that `cargo xtask test` reports:
//! `low-resources sweep: S scenarios, F failed allocations, B bug checks, L leaks`.
//!
//! The scenarios are `wanlayer_driver_host_tests::scenarios::low_resources` (the emulator sweeps
//! the same ones against the images); here the driver built for the host.
#![cfg(not(target_os = "windows"))]

use wanlayer_driver_host_tests::native;
use wanlayer_driver_host_tests::scenarios::low_resources::SWEEP;
use wanlayer_driver_host_tests::scenarios::{self, ALL};
use wanlayer_kernel_model::low_resources::{self, Sweep};

#[test]
fn every_allocation_failed_in_turn_ends_cleanly() {
    let mut total = Sweep::default();
    let mut report = Vec::new();
    for (scenario, run) in SWEEP.iter().flat_map(|&(name, run)| [(name, run, true), (name, run, false)]).map(|(name, run, pool2)| {
        let kernel = if pool2 { "with ExAllocatePool2" } else { "without ExAllocatePool2 (build 17763)" };
        (format!("{name}, {kernel}"), move |fail_at| run(&native(), fail_at, pool2))
    }) {
        let sweep = low_resources::sweep(run);
        report.push(format!(
            "{scenario}: {} allocations, {} failed in turn, {} bug checks, {} defects",
            sweep.allocations,
            sweep.failed_runs,
            sweep.bug_checks,
            sweep.defects.len()
        ));
        for defect in &sweep.defects {
            report.push(format!("  {scenario}: failed allocation {:?}: {}", defect.failed, defect.what));
        }
        total.allocations += sweep.allocations;
        total.failed_runs += sweep.failed_runs;
        total.bug_checks += sweep.bug_checks;
        total.defects.extend(sweep.defects);
    }
    assert!(total.allocations > 0, "no allocation counted: the model's allocating imports are not hooked up");
    let leaks = total.defects.iter().filter(|defect| defect.what.contains("not freed") || defect.what.contains("still")).count();
    println!(
        "low-resources sweep: {} scenarios, {} failed allocations, {} bug checks, {leaks} leaks",
        SWEEP.len() * 2,
        total.failed_runs,
        total.bug_checks
    );
    for line in &report {
        println!("{line}");
    }
    assert!(total.is_clean(), "{report:#?}");
}

/// Every scenario of the library swept: a run stopped by a failed check must have met a routine
/// that returned `STATUS_INSUFFICIENT_RESOURCES`, and the generic teardown must leave nothing.
/// Prints `low-resources sweep of every scenario: S scenarios, F failed allocations, B bug checks,
/// L leaks, D documented stops; statuses: ...`.
#[test]
fn every_allocation_of_every_scenario_failed_in_turn_ends_cleanly() {
    let mut total = Sweep::default();
    let mut report = Vec::new();
    for scenario in ALL {
        let sweep = scenarios::sweep(scenario, None, |run| run(&native()));
        report.push(format!(
            "{}: {} allocations, {} failed in turn, {} documented stops, {} defects",
            scenario.name,
            sweep.allocations,
            sweep.failed_runs,
            sweep.documented_stops,
            sweep.defects.len()
        ));
        for defect in &sweep.defects {
            report.push(format!("  {}: failed allocation {:?}: {}", scenario.name, defect.failed, defect.what));
        }
        total.add(sweep);
    }
    assert!(total.allocations > 0, "no allocation counted");
    let statuses: Vec<String> = total.statuses.iter().map(|(status, count)| format!("{count} x {status}")).collect();
    println!(
        "low-resources sweep of every scenario: {} scenarios, {} failed allocations, {} bug checks, {} leaks, {} documented stops; statuses: {}",
        ALL.len(),
        total.failed_runs,
        total.bug_checks,
        total.leaks,
        total.documented_stops,
        statuses.join(", ")
    );
    for line in &report {
        println!("{line}");
    }
    assert!(total.is_clean(), "{report:#?}");
}
