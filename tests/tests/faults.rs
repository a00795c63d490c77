//! Low-resources simulation on the main session. With wanlayer.sys's own handlers in the loop, the
//! kernel model (`wanlayer-kernel-model`, its `low_resources`) fails the driver's real
//! allocations — pool blocks, NBL pools, NBLs, MDLs, and its Rust heap: this binary's global
//! allocator is [`DriverHeap`], so the engine's tables, links, held packets and event queue are
//! pool tagged `WLrs` as in the kernel. The session runs once to count them, then once per
//! allocation with that one failing; then with whole kinds of memory refused: the frames of the
//! driver's own NBLs, its heap while the line ups are indicated (its links), while packets are
//! sent and received (its taken packets), and from the start (its engine and event queue). Every
//! run must end clean — the verifier (and the kernel model behind it) caught nothing, no packet
//! lost or completed twice, nothing leaked — and what failed must be reported: a failed start,
//! the engine's counters, a failed replacement, or the driver's own report.

use std::collections::BTreeSet;

use wanlayer_core::hal::PathContext;
use wanlayer_core::stats::DropReason;
use wanlayer_core::{Engine, ModuleId, NdisStatus};
use wanlayer_kernel_model::low_resources;
use wanlayer_sim::{
    Edge, EngineFilter, FilterAttachParameters, FilterDriver, OidDisposition, OidRequest, Rras, SimChain, SimHal, StatusIndication,
};
use wanlayer_sim_driver::heap::{self, DriverHeap, HEAP_TAG};
use wanlayer_sim_driver::{DriverFilter, FRAME_TAG};
use wanlayer_tests::session::{main_session, SessionReport};
use wanlayer_tests::setup::assert_settled;

#[global_allocator]
static HEAP: DriverHeap = DriverHeap;

/// Runs the main session on a new driver, after `prepare` (the model's run has begun: plans and
/// refusals set there hit this session's allocations), checks that it ended clean, and returns the
/// report and the server (unloaded; the model's run still held) for the caller's own checks.
#[track_caller]
fn session_with(prepare: impl FnOnce()) -> (SessionReport, Rras<DriverFilter>) {
    session_on(DriverFilter::new(), prepare)
}

/// [`session_with`] on `filter` (the driver, or the driver with its heap refused at times).
#[track_caller]
fn session_on<F: EngineFilter>(filter: F, prepare: impl FnOnce()) -> (SessionReport, Rras<F>) {
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
    assert!(heap::allocations() > 0, "the engine's memory is among them");
    assert_eq!(low_resources::failed_allocation(), None);
    assert!(report.loaded && report.lifecycle_errors.is_empty(), "{report:?}");
    assert_eq!((report.drops(DropReason::Resources), report.untracked_line_ups(), report.replace_errors), (0, 0, 0));
}

#[test]
fn every_single_allocation_failing_in_turn_is_handled_cleanly_and_reported() {
    // The heap's figures are the process's: read once this run holds the model (no other test's
    // driver runs meanwhile).
    let mut heap_before = 0;
    let (baseline, counting) = session_with(|| heap_before = heap::allocations());
    let allocations = low_resources::allocations();
    let heap_allocations = heap::allocations() - heap_before;
    drop(counting);
    let mut kinds_failed = BTreeSet::new();
    let mut heap_failed = 0;
    for n in 1..=allocations {
        let mut refused_before = 0;
        let (report, rras) = session_with(|| {
            refused_before = heap::refusals();
            low_resources::plan(Some(n));
        });
        let Some((at, kind)) = low_resources::failed_allocation() else {
            panic!("allocation {n} is reached in every run");
        };
        assert_eq!(at, n);
        let of_heap = heap::refusals() > refused_before;
        // NDIS_STATUS_RESOURCES returned by a routine, a send completed with it, or the driver's
        // log reporting it.
        let driver_reported = low_resources::current_run().returned.iter().any(|&(status, _)| status == low_resources::RESOURCES);
        let counted = report.replace_errors > 0
            || report.drops(DropReason::Resources) > 0
            || report.untracked_line_ups() > 0
            || report.device_names_lost() > 0;
        let reported = !report.loaded || counted || driver_reported;
        assert!(report.lifecycle_errors.is_empty() || driver_reported, "allocation {n} ({kind:?}): {:?}", report.lifecycle_errors);
        assert!(reported, "allocation {n} ({kind:?}, heap: {of_heap}) failed without a trace: {report:?}");
        assert_eq!(report.links_without_name as u64, report.device_names_lost(), "allocation {n} ({kind:?}): every lost name is counted");
        if report.loaded {
            assert_ne!(report.counts, baseline.counts, "allocation {n} ({kind:?}) changed nothing the engine counts?");
        }
        assert!(!rras.is_loaded(), "allocation {n}: the session ends unloaded");
        heap_failed += u64::from(of_heap);
        kinds_failed.insert(if of_heap { "Heap".to_owned() } else { format!("{kind:?}") });
    }
    println!("{allocations} allocations failed in turn: {heap_failed} of the driver's heap, {} kernel objects", allocations - heap_failed);
    assert_eq!(heap_failed, heap_allocations, "each of the {heap_allocations} heap allocations failed once");
    let expected: BTreeSet<String> = ["Heap", "Pool", "NblPool", "Nbl", "Mdl"].map(str::to_owned).into();
    assert_eq!(kinds_failed, expected, "heap, pool, NBL pool, NBL and MDL allocations each failed ({allocations} runs)");
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

// ----- the engine's memory: the driver's heap refused --------------------------------------------

/// When the driver's heap is refused ([`HeapRefused`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum During {
    /// While a status is indicated (line ups and downs): the links' memory.
    Status,
    /// While packets are sent and received: the taken packets' memory.
    DataPath,
}

/// The driver with its heap refused during some of its callbacks: Driver Verifier's low-resources
/// simulation aimed at the driver's heap tag for as long as those calls last.
struct HeapRefused {
    driver: DriverFilter,
    during: During,
}

impl HeapRefused {
    fn new(during: During) -> Self {
        Self { driver: DriverFilter::new(), during }
    }

    fn call<R>(&self, now: During, call: impl FnOnce(&DriverFilter) -> R) -> R {
        if now != self.during {
            return call(&self.driver);
        }
        low_resources::refuse_pool_tag(HEAP_TAG);
        let result = call(&self.driver);
        low_resources::allow_pool_tag(HEAP_TAG);
        result
    }
}

impl FilterDriver for HeapRefused {
    fn driver_entry(&mut self, hal: &SimHal) -> Result<(), NdisStatus> {
        self.driver.driver_entry(hal)
    }
    fn unload(&mut self) {
        self.driver.unload();
    }
    fn attach(&self, params: &FilterAttachParameters) -> Result<ModuleId, NdisStatus> {
        self.driver.attach(params)
    }
    fn detach(&self, module: ModuleId) {
        self.driver.detach(module);
    }
    fn restart(&self, module: ModuleId) -> NdisStatus {
        self.driver.restart(module)
    }
    fn pause(&self, module: ModuleId) -> NdisStatus {
        self.driver.pause(module)
    }
    fn send(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        self.call(During::DataPath, |driver| driver.send(module, chain, ctx));
    }
    fn send_complete(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        self.driver.send_complete(module, chain, ctx);
    }
    fn cancel_send(&self, module: ModuleId, cancel_id: u64) {
        self.driver.cancel_send(module, cancel_id);
    }
    fn receive(&self, module: ModuleId, chain: SimChain, resources: bool, ctx: PathContext) -> SimChain {
        self.call(During::DataPath, |driver| driver.receive(module, chain, resources, ctx))
    }
    fn return_receives(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        self.driver.return_receives(module, chain, ctx);
    }
    fn status(&self, module: ModuleId, indication: &mut StatusIndication) {
        self.call(During::Status, |driver| driver.status(module, indication));
    }
    fn oid_request(&self, module: ModuleId, request: OidRequest) -> OidDisposition {
        self.driver.oid_request(module, request)
    }
    fn oid_complete(&self, module: ModuleId, request: OidRequest, status: NdisStatus) {
        self.driver.oid_complete(module, request, status);
    }
}

impl EngineFilter for HeapRefused {
    type Hal = <DriverFilter as EngineFilter>::Hal;

    fn engine(&self) -> Option<&Engine<Self::Hal>> {
        self.driver.engine()
    }
    fn pool_charged(&self, pool: wanlayer_core::hal::Pool) -> usize {
        self.driver.pool_charged(pool)
    }
}

/// Sends the protocol saw completed with `status`, over both edges.
fn completed_with<F: EngineFilter>(rras: &Rras<F>, status: NdisStatus) -> usize {
    [Edge::WanIp, Edge::WanIpv6].iter().map(|edge| rras.protocol(*edge).completions.iter().filter(|c| c.status == status).count()).sum()
}

#[test]
fn without_link_memory_every_line_up_is_untracked_and_the_traffic_passes_unmatched() {
    let (report, rras) = session_on(HeapRefused::new(During::Status), || {});
    assert!(low_resources::refused_by_tag() > 0);
    assert!(report.lifecycle_errors.is_empty(), "{:?}", report.lifecycle_errors);
    assert_eq!((report.untracked_line_ups(), report.links_tracked, report.taken()), (2, 0, 0));
    let unmatched: u64 = report.counts.iter().map(|(_, c)| c.send.unmatched + c.receive.unmatched).sum();
    let packets: u64 = report.counts.iter().map(|(_, c)| c.send.traffic.packets + c.receive.traffic.packets).sum();
    assert_eq!(unmatched, packets, "no link, so every packet is unmatched");
    assert_eq!(report.counts.iter().map(|(_, c)| c.line_downs_unknown).sum::<u64>(), 1, "the line down is for a link never tracked");
    assert_eq!(report.replaced, 0, "the hooks never saw a packet");
    assert_eq!(completed_with(&rras, NdisStatus::SUCCESS), 12, "every send went through");
    assert!(rras.protocol(Edge::WanIp).links.is_empty() && rras.protocol(Edge::WanIpv6).links.len() == 1, "line ups still reached IP");
}

#[test]
fn without_taken_memory_every_take_fails_with_resources() {
    let (report, rras) = session_on(HeapRefused::new(During::DataPath), || {});
    assert!(low_resources::refused_by_tag() > 0);
    assert!(report.lifecycle_errors.is_empty(), "{:?}", report.lifecycle_errors);
    assert_eq!((report.taken(), report.drops(DropReason::Resources)), (0, 24), "each of the 24 takes was refused and dropped");
    assert_eq!(report.queue.map(|q| q.send.taken + q.receive.taken), Some(24), "the hook did ask");
    assert_eq!(completed_with(&rras, NdisStatus::RESOURCES), 12, "every send the hook tried to hold");
    let copies: u64 = report.counts.iter().map(|(_, c)| c.receive.copied_for_resources).sum();
    assert_eq!(copies, 5, "lent receives were copied before the store refused them");
    assert_eq!(rras.protocol(Edge::WanIpv6).received.len(), 2, "only what arrived after the hook was removed");
}

#[test]
fn without_engine_or_event_memory_the_driver_does_not_load_and_leaks_nothing() {
    // The engine (its tables) and its event queue are the driver's first heap allocations, in
    // DriverEntry: each refused in turn, then the heap refused from the start.
    let loaded = Rras::builder().build(DriverFilter::new());
    assert!(loaded.is_loaded());
    let in_driver_entry = low_resources::allocations();
    drop(loaded);
    let mut heap_in_driver_entry = 0;
    for n in 1..=in_driver_entry {
        let mut refused_before = 0;
        let (report, rras) = session_with(|| {
            refused_before = heap::refusals();
            low_resources::plan(Some(n));
        });
        if heap::refusals() == refused_before {
            continue;
        }
        heap_in_driver_entry += 1;
        assert!(!report.loaded && !rras.is_loaded(), "DriverEntry's heap allocation {n} refused: the driver does not load");
        assert_eq!(low_resources::failures(), 1, "allocation {n}: DriverEntry gives up at the first refusal");
        assert!(wanlayer_kernel_model::log().iter().any(|line| line.contains("no memory")), "allocation {n}: the driver says why");
    }
    assert!(heap_in_driver_entry >= 2, "the engine and its event queue at least: {heap_in_driver_entry}");
    let (report, rras) = session_with(|| low_resources::refuse_pool_tag(HEAP_TAG));
    assert!(!report.loaded && !rras.is_loaded());
    assert_eq!(low_resources::refused_by_tag(), 1, "DriverEntry gives up at the first refusal");
    println!("DriverEntry makes {in_driver_entry} allocations, {heap_in_driver_entry} of them the driver's heap");
}
