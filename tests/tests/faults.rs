//! Low-resources simulation on the main session. With wanlayer.sys's own handlers in the loop, the
//! kernel model (`wanlayer-kernel-model`, its `low_resources`) fails the driver's real
//! allocations — pool blocks, NBL pools, NBLs, MDLs: the session runs once to count them, then
//! once per allocation with that one failing, then with the frames of the driver's own NBLs
//! refused. The engine's own memory (its pools, the driver's Rust heap) is failed through the
//! simulator's fault plans on the `CoreFilter` (see below why). Every run must end clean — the
//! verifier (and the kernel model behind it) caught nothing, no packet lost or completed twice,
//! nothing leaked — and what failed must be reported: a failed start, the engine's counters, a
//! failed replacement, or the driver's own report.

use std::collections::BTreeSet;

use wanlayer_core::hal::Pool;
use wanlayer_core::stats::DropReason;
use wanlayer_core::NdisStatus;
use wanlayer_kernel_model::low_resources::{self, AllocationKind};
use wanlayer_sim::{Allocation, CoreFilter, Edge, FaultPlan, Rras};
use wanlayer_sim_driver::{DriverFilter, FRAME_TAG};
use wanlayer_tests::session::{main_session, SessionReport};
use wanlayer_tests::setup::assert_settled;

/// Runs the main session on a new driver, after `prepare` (the model's run has begun: plans and
/// refusals set there hit this session's allocations), checks that it ended clean, and returns the
/// report and the server (unloaded; the model's run still held) for the caller's own checks.
#[track_caller]
fn session_with(prepare: impl FnOnce()) -> (SessionReport, Rras<DriverFilter>) {
    let filter = DriverFilter::new();
    prepare();
    let mut rras = Rras::builder().build(filter);
    let report = main_session(&mut rras);
    let failed = low_resources::failed_allocation();
    assert!(rras.verifier().is_clean(), "failed {failed:?}: {}", rras.verifier().report());
    assert_settled(&rras);
    (report, rras)
}

#[test]
fn the_main_session_allocates_from_the_kernel_pool_and_for_packets() {
    let (report, _rras) = session_with(|| {});
    let allocations = low_resources::allocations();
    assert!(allocations > 30, "{allocations} allocations");
    assert_eq!(low_resources::failed_allocation(), None);
    assert!(report.loaded && report.lifecycle_errors.is_empty(), "{report:?}");
    assert_eq!((report.drops(DropReason::Resources), report.untracked_line_ups(), report.replace_errors), (0, 0, 0));
}

#[test]
fn every_single_allocation_failing_in_turn_is_handled_cleanly_and_reported() {
    let (baseline, counting) = session_with(|| {});
    let allocations = low_resources::allocations();
    drop(counting);
    let mut kinds_failed = BTreeSet::new();
    for n in 1..=allocations {
        let (report, rras) = session_with(|| low_resources::plan(Some(n)));
        let Some((at, kind)) = low_resources::failed_allocation() else {
            panic!("allocation {n} is reached in every run");
        };
        assert_eq!(at, n);
        // NDIS_STATUS_RESOURCES returned by a routine, a send completed with it, or the driver's
        // log reporting it.
        let driver_reported = low_resources::current_run().returned.iter().any(|&(status, _)| status == low_resources::RESOURCES);
        let reported = !report.loaded || report.replace_errors > 0 || report.drops(DropReason::Resources) > 0 || driver_reported;
        assert!(report.lifecycle_errors.is_empty() || driver_reported, "allocation {n} ({kind:?}): {:?}", report.lifecycle_errors);
        assert!(reported, "allocation {n} ({kind:?}) failed without a trace: {report:?}");
        if report.loaded {
            assert_ne!(report.counts, baseline.counts, "allocation {n} ({kind:?}) changed nothing the engine counts?");
        }
        assert!(!rras.is_loaded(), "allocation {n}: the session ends unloaded");
        kinds_failed.insert(format!("{kind:?}"));
    }
    let expected: BTreeSet<String> = [AllocationKind::Pool, AllocationKind::NblPool, AllocationKind::Nbl, AllocationKind::Mdl]
        .iter()
        .map(|kind| format!("{kind:?}"))
        .collect();
    assert_eq!(kinds_failed, expected, "pool, NBL pool, NBL and MDL allocations each failed ({allocations} runs)");
}

#[test]
fn without_frame_memory_replacements_fail_and_lent_receives_cannot_be_taken() {
    let (report, rras) = session_with(|| low_resources::refuse_pool_tag(FRAME_TAG));
    assert!(low_resources::refused_by_tag() > 0);
    assert!(report.lifecycle_errors.is_empty(), "{:?}", report.lifecycle_errors);
    assert_eq!((report.replaced, report.replace_errors), (0, 20));
    assert_eq!(report.drops(DropReason::Resources), 5, "the five lent receives the queue wanted could not be copied");
    let copies: u64 = report.counts.iter().map(|(_, c)| c.receive.copied_for_resources).sum();
    assert_eq!(copies, 0);
    let modified: u64 = report.counts.iter().map(|(_, c)| c.send.modified + c.receive.modified).sum();
    assert_eq!(modified, 0, "a failed edit is no edit");
    assert!(rras.miniport(Edge::WanIp).sent.iter().all(|d| rras.protocol(Edge::WanIp).sent.contains(&d.packet)), "originals went down");
}

// ----- the engine's memory: the simulator's fault plans, CoreFilter -------------------------------
//
// On the host the driver's Rust heap (the engine's tables, links, held packets, event queue) is
// the test process's allocator, not kernel pool: the kernel model sees only the driver's imports,
// so a failure of the engine's memory is reached through the simulator's fault plans on the
// engine's pools (`CoreFilter`). For wanlayer.sys itself those allocations fail in the emulator's
// low-resources sweep, where the image's heap is kernel pool (`driver/emulator`).

/// Runs the main session on the CoreFilter with `plan`, checks that it ended clean, and returns the
/// report and the server (unloaded).
#[track_caller]
fn core_session_with(plan: FaultPlan) -> (SessionReport, Rras<CoreFilter>) {
    let mut rras = Rras::builder().faults(plan).build(CoreFilter::default());
    let report = main_session(&mut rras);
    assert!(rras.verifier().is_clean(), "failures {:?}: {}", rras.faults().failures(), rras.verifier().report());
    assert_settled(&rras);
    assert!(report.lifecycle_errors.is_empty(), "failures {:?}: {:?}", rras.faults().failures(), report.lifecycle_errors);
    (report, rras)
}

/// Sends the protocol saw completed with `status`, over both edges.
fn core_completed_with(rras: &Rras<CoreFilter>, status: NdisStatus) -> usize {
    [Edge::WanIp, Edge::WanIpv6].iter().map(|edge| rras.protocol(*edge).completions.iter().filter(|c| c.status == status).count()).sum()
}

#[test]
fn every_single_engine_allocation_failing_in_turn_is_handled_cleanly_and_shows_in_the_counts() {
    let (baseline, counting) = core_session_with(FaultPlan::new());
    let attempts = counting.faults().attempts();
    let mut kinds_failed = Vec::new();
    for n in 1..=attempts {
        let (report, rras) = core_session_with(FaultPlan::new().fail_nth(n));
        let failures = rras.faults().failures();
        assert_eq!(failures.len(), 1, "attempt {n} is reached in every run: {failures:?}");
        let (_, what) = failures[0];
        let visible = match what {
            Allocation::Charge(Pool::Engine | Pool::Event) => !report.loaded,
            Allocation::Charge(Pool::Link) => report.untracked_line_ups() == 1 || report.device_names_lost() == 1,
            Allocation::Charge(Pool::Taken) => report.drops(DropReason::Resources) > 0,
            Allocation::Charge(Pool::Control) => false, // the session opens no control handle: never attempted
            Allocation::Packet => report.replace_errors == 1 || report.drops(DropReason::Resources) == 1,
            Allocation::OidClone => false,
        };
        assert!(visible, "attempt {n} ({what}) failed without a trace in the counters: {report:?}");
        assert_eq!(report.links_without_name as u64, report.device_names_lost(), "attempt {n} ({what}): every lost name is counted");
        if report.loaded {
            assert_ne!(report.counts, baseline.counts, "attempt {n} ({what}) changed nothing the engine counts?");
        }
        if !kinds_failed.contains(&what) {
            kinds_failed.push(what);
        }
    }
    assert_eq!(kinds_failed.len(), 5, "engine, event, link, taken and packet allocations each failed: {kinds_failed:?}");
}

#[test]
fn without_link_memory_every_line_up_is_untracked_and_the_traffic_passes_unmatched() {
    let (report, rras) = core_session_with(FaultPlan::new().fail_pool(Pool::Link));
    assert_eq!((report.untracked_line_ups(), report.links_tracked, report.taken()), (2, 0, 0));
    let unmatched: u64 = report.counts.iter().map(|(_, c)| c.send.unmatched + c.receive.unmatched).sum();
    let packets: u64 = report.counts.iter().map(|(_, c)| c.send.traffic.packets + c.receive.traffic.packets).sum();
    assert_eq!(unmatched, packets, "no link, so every packet is unmatched");
    assert_eq!(report.counts.iter().map(|(_, c)| c.line_downs_unknown).sum::<u64>(), 1, "the line down is for a link never tracked");
    assert_eq!(report.replaced, 0, "the hooks never saw a packet");
    assert_eq!(core_completed_with(&rras, NdisStatus::SUCCESS), 12, "every send went through");
    assert!(rras.protocol(Edge::WanIp).links.is_empty() && rras.protocol(Edge::WanIpv6).links.len() == 1, "line ups still reached IP");
}

#[test]
fn without_taken_memory_every_take_fails_with_resources() {
    let (report, rras) = core_session_with(FaultPlan::new().fail_pool(Pool::Taken));
    assert_eq!((report.taken(), report.drops(DropReason::Resources)), (0, 24), "each of the 24 takes was refused and dropped");
    assert_eq!(report.queue.map(|q| q.send.taken + q.receive.taken), Some(24), "the hook did ask");
    assert_eq!(core_completed_with(&rras, NdisStatus::RESOURCES), 12, "every send the hook tried to hold");
    let copies: u64 = report.counts.iter().map(|(_, c)| c.receive.copied_for_resources).sum();
    assert_eq!(copies, 5, "lent receives were copied before the store refused them");
    assert_eq!(rras.protocol(Edge::WanIpv6).received.len(), 2, "only what arrived after the hook was removed");
}

#[test]
fn without_engine_or_event_memory_the_driver_does_not_load_and_leaks_nothing() {
    for pool in [Pool::Engine, Pool::Event] {
        let (report, rras) = core_session_with(FaultPlan::new().fail_pool(pool));
        assert!(!report.loaded && !rras.is_loaded(), "{pool:?}");
        assert_eq!(rras.faults().failures().len(), 1, "{pool:?}: driver entry gives up at the first refusal");
    }
}
