//! Runs one schedule through wanlayer.sys's own handlers in the simulator ([`DriverFilter`], the
//! driver in the loop over the kernel model), with the engine's hooks, vendor filters registered
//! through the SDK's kernel client and the driver's provider table, the driver's control device and
//! the kernel model's allocation failures, and checks how it ended.

use std::cell::Cell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use wanlayer_core::hal::{PathContext, Pool};
use wanlayer_core::hook::{Direction, HookId};
use wanlayer_core::{NdisStatus, ReinjectVerdict};
use wanlayer_kernel_model::low_resources::{self, AllocationKind};
use wanlayer_proto::ioctl::*;
use wanlayer_proto::{
    Access, CaptureBatch, CaptureBatchRepr, CaptureStart, CaptureStartRepr, EventBatch, EventBatchRepr, EventKind, Expected, HeaderOnly,
    HookList, HookListRepr, Inject, InjectRepr, LinkList, LinkListRepr, LinkQuery, LinkQueryRepr, ModuleList, ModuleListRepr, ModuleStats,
    ModuleStatsRepr, ReadRequest, ReadRequestRepr, RuleStatsList, RuleStatsListRepr, RuleStatsQuery, RuleStatsQueryRepr, RulesInfo,
    RulesInfoRepr, RulesSet, RulesSetRepr, RulesVersion, RulesVersionRepr, ScopeRequest, ScopeRequestRepr, Status, Subscribe,
    SubscribeRepr, Target as Scope,
};
use wanlayer_rules::{compile, Action, RuleSource};
use wanlayer_sdk::client::{ProviderTable, Registration};
use wanlayer_sdk::kernel::Connection;
use wanlayer_sdk::{Packet, Provider, Ticket, VendorFilter, Verdict};
use wanlayer_sim::oid::{OID_GEN_CURRENT_PACKET_FILTER, OID_GEN_MAXIMUM_FRAME_SIZE};
use wanlayer_sim::{
    Delivery, Edge, EngineFilter, Flow, HandleId, IoCompletion, IoId, IoOutcome, IrqlPolicy, LinkParams, NdisState, PauseOutcome,
    ReceiveOptions, Rras, SendOptions, SimLink, StatusBuffer, StatusIndication, MILLISECOND,
};
use wanlayer_sim_driver::DriverFilter;
use wlclamp::{ClampFilter, Config};

use super::{Adapter, ControlOp, Failure, FaultOp, HookKind, Lend, Op, Payload, Schedule, StatusKind, Timing, VendorKind, Ways};
use crate::frames::syn_frame;
use crate::sample_hooks::{Applies, CountingHook, DropHook, MssClampHook, MtuHook, QueueHook, TtlRewriteHook};
use crate::setup::UDP;
use crate::vendors::{revoke_all, try_connect, DroppingVendor, TakingVendor, TunnelVendor};

/// What runs did, summed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct RunFigures {
    /// Schedules run.
    pub schedules: u64,
    /// Operations run.
    pub operations: u64,
    /// Packets the simulator made (sends, receives and the filter's own).
    pub packets: u64,
    /// Allocations failed by fault injection.
    pub faults: u64,
    /// Tickets reinjected successfully by hooks.
    pub reinjected: u64,
    /// Packets vendors gave back (wlclamp's releases, the taker's tickets).
    pub vendor_released: u64,
    /// Control-device requests made.
    pub control_requests: u64,
    /// Rule sets put in force through the control device.
    pub rule_sets: u64,
    /// Pauses that pended.
    pub pauses_pending: u64,
    /// Modules detached during the schedule (before the final unload).
    pub detaches: u64,
}

impl RunFigures {
    /// Adds `other` to these.
    pub fn add(&mut self, other: &RunFigures) {
        self.schedules += other.schedules;
        self.operations += other.operations;
        self.packets += other.packets;
        self.faults += other.faults;
        self.reinjected += other.reinjected;
        self.vendor_released += other.vendor_released;
        self.control_requests += other.control_requests;
        self.rule_sets += other.rule_sets;
        self.pauses_pending += other.pauses_pending;
        self.detaches += other.detaches;
    }
}

/// Runs `schedule` on a fresh server (NdisWan's two edges and an Ethernet adapter) around
/// wanlayer.sys's own handlers and checks its end: the verifier clean after every operation, and
/// after unload every packet home and every pool at zero (the simulator's, the driver's own
/// counters, and the kernel model's pool, NBLs and handles, which it reports to the verifier at
/// unload). A panic anywhere is a failure too. The run holds the kernel model from start to end
/// (one driver per process at a time): runs on other threads wait for it.
///
/// # Errors
/// The first [`Failure`] found.
pub fn run(schedule: &Schedule) -> Result<RunFigures, Failure> {
    let at = Cell::new(None);
    match catch_unwind(AssertUnwindSafe(|| run_checked(schedule, &at))) {
        Ok(result) => result,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_else(|| "a panic without a message".to_owned());
            Err(Failure { at: at.get(), kind: "panic".to_owned(), detail })
        }
    }
}

/// The kinds of the kernel model's allocations a schedule aims a failure at.
const DRIVER_ALLOCATIONS: [AllocationKind; 5] =
    [AllocationKind::Pool, AllocationKind::NblPool, AllocationKind::Nbl, AllocationKind::Mdl, AllocationKind::OidClone];

/// The server a schedule runs on: NdisWan's two edges and an Ethernet adapter around a driver not
/// loaded yet; a quarter of the schedules run on a kernel without `ExAllocatePool2`.
fn server(schedule: &Schedule) -> Rras<DriverFilter> {
    let filter = DriverFilter::new();
    wanlayer_kernel_model::set_pool2_absent(schedule.without_pool2);
    Rras::builder().ethernet().build(filter)
}

/// Runs `body` with the driver's control device and the vendors: a vendor driver's connection
/// (`\Device\WanLayer` opened and the provider table asked for through the SDK's kernel client, as
/// wlclamp's `DriverEntry` does), which the vendor lets go of (its `DriverUnload`) before
/// wanlayer.sys unloads.
fn with_device<'r, R>(rras: &'r Rras<DriverFilter>, body: impl FnOnce(&DriverDevice<'r>, &mut Vendors<'r, '_>) -> R) -> R {
    let device = DriverDevice { rras, dpcs_held: Cell::new(false) };
    let connection = try_connect(rras).ok();
    let result = {
        let table = connection.as_ref().map(Connection::table);
        let mut vendors = Vendors { rras, table, registered: Vec::new() };
        body(&device, &mut vendors)
    };
    rras.filter().vendor_call(false, || drop(connection));
    result
}

/// Injects an allocation failure of the kernel model, one allocation each: the `after`-th from
/// now, or the next of a kind.
fn inject(fault: FaultOp) {
    match fault {
        FaultOp::FailSoon { after } => low_resources::plan(Some(low_resources::allocations() + u64::from(after))),
        FaultOp::FailKind(index) => low_resources::fail_next_of_kind(DRIVER_ALLOCATIONS[usize::from(index) % DRIVER_ALLOCATIONS.len()]),
        FaultOp::FailNbl => low_resources::fail_next_of_kind(AllocationKind::Nbl),
        FaultOp::FailOidClone => low_resources::fail_next_of_kind(AllocationKind::OidClone),
        FaultOp::Heal => low_resources::heal(),
    }
}

fn run_checked(schedule: &Schedule, at: &Cell<Option<usize>>) -> Result<RunFigures, Failure> {
    let mut rras = server(schedule);
    if !rras.is_loaded() {
        return Err(Failure { at: None, kind: "start".to_owned(), detail: "the driver did not load".to_owned() });
    }
    // With too few module slots the last adapters stay unfiltered; the others run.
    for edge in rras.edges() {
        let _ = rras.attach(edge);
    }
    rras.restart_all().map_err(|error| Failure { at: None, kind: "start".to_owned(), detail: error.to_string() })?;
    let mut figures = RunFigures { schedules: 1, operations: schedule.ops.len() as u64, ..RunFigures::default() };
    let applied = with_device(&rras, |device, vendors| {
        let mut state = State::new(&rras, device, vendors);
        for (index, op) in schedule.ops.iter().enumerate() {
            at.set(Some(index));
            state.apply(*op);
            violations(&rras, Some(index))?;
        }
        at.set(None);
        state.teardown();
        Ok(state.figures)
    });
    figures.add(&applied?);
    rras.run_until_idle();
    rras.unload();
    rras.run_until_idle();
    violations(&rras, None)?;
    let ledger = rras.ledger_counts();
    if ledger.home != ledger.created {
        return Err(Failure { at: None, kind: "ledger".to_owned(), detail: ledger.to_string() });
    }
    let mut charged: Vec<String> =
        rras.pools().into_iter().filter(|(_, usage)| usage.current > 0).map(|(pool, usage)| format!("{pool:?}: {usage:?}")).collect();
    charged.extend(Pool::ALL.into_iter().filter_map(|pool| {
        let left = rras.filter().pool_charged(pool);
        (left > 0).then(|| format!("{pool:?}: {left} bytes still charged by the filter"))
    }));
    if !charged.is_empty() {
        return Err(Failure { at: None, kind: "pool".to_owned(), detail: charged.join("; ") });
    }
    figures.packets = ledger.created as u64;
    figures.faults = low_resources::failures();
    Ok(figures)
}

/// The verifier's findings as a failure named after the first rule broken.
fn violations<F: EngineFilter>(rras: &Rras<F>, at: Option<usize>) -> Result<(), Failure> {
    let verifier = rras.verifier();
    match verifier.violations().first() {
        None => Ok(()),
        Some(first) => Err(Failure { at, kind: first.rule.name().to_owned(), detail: verifier.report() }),
    }
}

fn edge_of(adapter: Adapter) -> Edge {
    match adapter {
        Adapter::Ip => Edge::WanIp,
        Adapter::Ipv6 => Edge::WanIpv6,
        Adapter::Ethernet => Edge::Ethernet,
    }
}

fn lend_options(lend: Lend) -> ReceiveOptions {
    let (resources, read_only) = match lend {
        Lend::Plain => (false, false),
        Lend::Resources => (true, false),
        Lend::ReadOnly => (false, true),
        Lend::ResourcesReadOnly => (true, true),
    };
    ReceiveOptions { resources, read_only, irql: None }
}

fn applies(ways: Ways) -> Applies {
    match ways {
        Ways::Sends => Applies::Sends,
        Ways::Receives => Applies::Receives,
        Ways::Both => Applies::Both,
    }
}

fn delivery(timing: Timing) -> Delivery {
    match timing {
        Timing::After(micros) => Delivery::After(u64::from(micros) * 1_000),
        Timing::Hold => Delivery::Hold,
    }
}

/// A hook the schedule added, with its queue when it takes packets.
struct AddedHook {
    id: HookId,
    queue: Option<Arc<QueueHook>>,
}

/// The driver's control device `\\.\WanLayer` through its own dispatch routines. The device's DPC
/// is the driver's: [`ControlOp::Service`] alternately holds the DPCs the driver queues (a
/// processor busy at `DISPATCH_LEVEL`: events wake handles whose wake DPC waits) and lets the held
/// ones run; they run too before virtual time moves on and at the teardown. A cancel cancels every
/// request the driver holds in its cancel-safe queue.
struct DriverDevice<'r> {
    rras: &'r Rras<DriverFilter>,
    dpcs_held: Cell<bool>,
}

impl DriverDevice<'_> {
    /// Opens a read-write handle (`None`: the driver refused it).
    fn open(&self) -> Option<HandleId> {
        self.rras.filter().control_open(Access::READ_WRITE).ok()
    }

    /// A buffered device control on `handle`.
    fn ioctl(&self, handle: HandleId, code: u32, input: &[u8], output_len: usize) -> IoOutcome {
        self.rras.filter().control_ioctl(handle, code, input, output_len)
    }

    /// [`ControlOp::Service`]: holds the driver's DPCs, or lets the held ones run.
    fn service(&self) {
        let hold = !self.dpcs_held.get();
        self.dpcs_held.set(hold);
        self.rras.filter().hold_dpcs(hold);
    }

    /// Cancels what the driver's cancel-safe queue holds; returns whether anything was cancelled.
    fn cancel(&self) -> bool {
        self.rras.filter().cancel_queued_irps() > 0
    }

    /// How a pending request completed, once it did.
    fn take_completion(&self, io: IoId) -> Option<IoCompletion> {
        self.rras.filter().control_completion(io)
    }

    /// Closes `handle` (cleanup, then close).
    fn close(&self, handle: HandleId) {
        self.rras.filter().control_close(handle);
    }

    /// Lets the DPCs held run (before time moves on, and at the teardown).
    fn run_deferred(&self) {
        if self.dpcs_held.replace(false) {
            self.rras.filter().hold_dpcs(false);
        }
    }
}

/// Vendor filters registered through the driver's provider table, each call made as another
/// driver's call into wanlayer.sys (`DriverFilter::vendor_call`): registering and deregistering at
/// `PASSIVE_LEVEL`, giving back from a timer's DPC at `DISPATCH_LEVEL`.
struct Vendors<'r, 't> {
    rras: &'r Rras<DriverFilter>,
    table: Option<ProviderTable<'t>>,
    registered: Vec<Vendor<'t>>,
}

impl Vendors<'_, '_> {
    /// Makes a vendor's call: at `PASSIVE_LEVEL`, or at `DISPATCH_LEVEL` when `at_dispatch`.
    fn call<R>(&self, at_dispatch: bool, call: impl FnOnce() -> R) -> R {
        self.rras.filter().vendor_call(at_dispatch, call)
    }

    /// Registers one.
    fn add(&mut self, kind: VendorKind, altitude: u32) {
        let Some(table) = &self.table else { return };
        let vendor = self.call(false, || match kind {
            VendorKind::Clamp => table.register(wlclamp::FILTER_NAME, altitude, ClampFilter::new(CLAMP)).map(Vendor::Clamp),
            VendorKind::Taker(ways) => {
                let direction = match ways {
                    Ways::Sends => Some(wanlayer_sdk::Direction::Send),
                    Ways::Receives => Some(wanlayer_sdk::Direction::Receive),
                    Ways::Both => None,
                };
                table.register("taker", altitude, TakingVendor::new(direction)).map(Vendor::Taker)
            }
            VendorKind::Dropper => table.register("dropper", altitude, DroppingVendor::default()).map(Vendor::Dropper),
            VendorKind::Tunnel => table.register("tunnel", altitude, TunnelVendor::new(1300, 40)).map(Vendor::Tunnel),
            VendorKind::Relay => table.register("relay", altitude, RelayVendor::default()).map(Vendor::Relay),
        });
        if let Ok(vendor) = vendor {
            self.registered.push(vendor);
        }
    }

    /// Deregisters one (modulo those registered).
    fn remove(&mut self, pick: u8) {
        if self.registered.is_empty() {
            return;
        }
        let removed = self.registered.remove(usize::from(pick) % self.registered.len());
        let _ = self.call(false, || match removed {
            Vendor::Clamp(registration) => registration.deregister(),
            Vendor::Taker(registration) => registration.deregister(),
            Vendor::Dropper(registration) => registration.deregister(),
            Vendor::Tunnel(registration) => registration.deregister(),
            Vendor::Relay(registration) => registration.deregister(),
        });
    }

    /// One that holds packets hands them back; how many it gave back.
    fn release(&mut self, pick: u8, drop: bool) -> usize {
        let holders: Vec<&Vendor<'_>> = self.registered.iter().filter(|v| matches!(v, Vendor::Clamp(_) | Vendor::Taker(_))).collect();
        let Some(holder) = holders.get(usize::from(pick) % holders.len().max(1)) else {
            return 0;
        };
        let verdict = if drop { wanlayer_sdk::ReinjectVerdict::Drop } else { wanlayer_sdk::ReinjectVerdict::Pass };
        self.call(true, || match holder {
            Vendor::Clamp(registration) => registration.filter().release(&registration.provider()),
            Vendor::Taker(registration) => {
                registration.filter().give_back(&registration.provider(), verdict).iter().filter(|result| result.is_ok()).count()
            }
            Vendor::Dropper(_) | Vendor::Tunnel(_) | Vendor::Relay(_) => 0,
        })
    }

    /// What `DriverUnload` does with registrations left: revokes every one.
    fn revoke(&self) {
        revoke_all(self.rras);
    }

    /// The teardown: revokes every registration, then lets the vendors go.
    fn finish(&mut self) {
        self.revoke();
        let registered = std::mem::take(&mut self.registered);
        self.call(false, || drop(registered));
    }
}

/// A vendor filter the schedule registered.
enum Vendor<'p> {
    Clamp(Registration<'p, ClampFilter>),
    Taker(Registration<'p, TakingVendor>),
    Dropper(Registration<'p, DroppingVendor>),
    Tunnel(Registration<'p, TunnelVendor>),
    Relay(Registration<'p, RelayVendor>),
}

/// The rule sets a schedule sets through the control device, compiled once: none, then sets that
/// drop, count, capture and pass what the schedules send, at several priorities, by protocol,
/// port, subnet, link identity and device name (that of the first IPv4 link a schedule brings up).
fn rule_sets() -> &'static [Vec<u8>] {
    static SETS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SETS.get_or_init(|| {
        let sets: [&[(u32, u32, Action, &str)]; 6] = [
            &[],
            &[(1, 10, Action::Drop, "tcp port 443"), (2, 20, Action::Count, "udp")],
            &[(3, 5, Action::Capture, "udp port 53"), (4, 5, Action::Count, "ip6"), (5, 1, Action::Pass, "tcp")],
            &[(6, 1, Action::Drop, "udp"), (7, 2, Action::Capture, "tcp"), (8, 3, Action::Count, "net 10.100.0.0/16")],
            &[(1, 100, Action::Capture, "ip or ip6")],
            &[
                (9, 1, Action::Drop, r#"device "\device\{5a1e0000-0000-4000-8000-00000003c010}" and udp"#),
                (10, 2, Action::Capture, "link 2 and tcp"),
                (11, 3, Action::Count, "link 1 or link 3"),
            ],
        ];
        sets.iter()
            .map(|rules| {
                let sources: Vec<RuleSource<'_>> =
                    rules.iter().map(|&(id, priority, action, filter)| RuleSource { id, priority, action, filter }).collect();
                if sources.is_empty() {
                    Vec::new()
                } else {
                    compile(&sources).unwrap_or_else(|error| panic!("the soak's rules compile: {error}"))
                }
            })
            .collect()
    })
}

/// Takes every packet and, inside the same callback, hands back the one it took before (so it
/// holds one at a time): a vendor that calls into wanlayer from its own callback.
#[derive(Default)]
struct RelayVendor {
    held: Mutex<Option<Ticket>>,
}

impl RelayVendor {
    fn relay(&self, provider: &Provider<'_>, packet: &Packet<'_>) -> Verdict {
        let previous = self.held.lock().unwrap_or_else(PoisonError::into_inner).replace(packet.ticket());
        if let Some(ticket) = previous {
            // A stale ticket (its packet was handed on at a pause or line down) is refused.
            let _ = provider.reinject(ticket, wanlayer_sdk::ReinjectVerdict::Pass);
        }
        Verdict::Take
    }
}

impl VendorFilter for RelayVendor {
    fn on_send(&self, provider: &Provider<'_>, packet: &mut Packet<'_>) -> Verdict {
        self.relay(provider, packet)
    }
    fn on_receive(&self, provider: &Provider<'_>, packet: &mut Packet<'_>) -> Verdict {
        self.relay(provider, packet)
    }
}

/// wlclamp as the schedule runs it: a small burst and queue, so sends queue and are released.
const CLAMP: Config = Config { mss: 1360, rate_bytes_per_second: 100_000, burst_bytes: 600, queue_packets: 4, max_links: 4 };

/// The server, its control device and its vendors, with what the schedule made.
struct State<'s, 'r, 't> {
    rras: &'r Rras<DriverFilter>,
    device: &'s DriverDevice<'r>,
    vendors: &'s mut Vendors<'r, 't>,
    handle: Option<HandleId>,
    pending: VecDeque<IoId>,
    cursor: u64,
    rules_version: u64,
    hooks: Vec<AddedHook>,
    sequence: u32,
    figures: RunFigures,
}

impl<'s, 'r, 't> State<'s, 'r, 't> {
    fn new(rras: &'r Rras<DriverFilter>, device: &'s DriverDevice<'r>, vendors: &'s mut Vendors<'r, 't>) -> Self {
        Self {
            rras,
            device,
            vendors,
            handle: device.open(),
            pending: VecDeque::new(),
            cursor: 0,
            rules_version: 0,
            hooks: Vec::new(),
            sequence: 0,
            figures: RunFigures::default(),
        }
    }

    fn link(&self, pick: u8) -> Option<SimLink> {
        let links = self.rras.links();
        if links.is_empty() {
            return None;
        }
        links.get(usize::from(pick) % links.len()).cloned()
    }

    fn next_sequence(&mut self) -> u32 {
        self.sequence = self.sequence.wrapping_add(1);
        self.sequence
    }

    /// The simulated drivers finish what they hold on every edge a pause waits on (and on
    /// `also`), and every OID request: miniports and TCPIP complete and return in bounded time,
    /// so nothing waits on them past NDIS's 10 s for a pause or 12 s for an OID request.
    fn release_for_pauses(&self, also: Option<Edge>) {
        self.device.run_deferred();
        self.rras.release_oids();
        for edge in self.rras.edges() {
            if self.rras.state(edge) == NdisState::Pausing || also == Some(edge) {
                self.rras.release_sends(edge);
                self.rras.release_receives(edge);
            }
        }
    }

    fn apply(&mut self, op: Op) {
        let rras = self.rras;
        match op {
            Op::LinkUp { edge, mtu } => {
                if edge != Adapter::Ethernet {
                    rras.link_up(edge_of(edge), LinkParams::new().mtu(u32::from(mtu)));
                }
            }
            Op::LineUpAgain { link, mtu } => {
                let Some(link) = self.link(link) else { return };
                rras.line_up_again(&link, &LinkParams::new().mtu(u32::from(mtu)).protocol_buffer(vec![0; 600]));
            }
            Op::Status { adapter, kind } => {
                let (code, bytes) = match kind {
                    StatusKind::Other => (NdisStatus::WAN_FRAGMENT, vec![0; 8]),
                    StatusKind::MalformedLineUp => (NdisStatus::WAN_LINE_UP, vec![0x5a; 3]),
                    StatusKind::MalformedLineDown => (NdisStatus::WAN_LINE_DOWN, Vec::new()),
                };
                rras.indicate_status(edge_of(adapter), StatusIndication::new(code, StatusBuffer::Raw(bytes)));
            }
            Op::Ethernet { count, receive } => {
                let frames: Vec<Vec<u8>> = (0..count).map(|index| vec![index; 60]).collect();
                match receive {
                    None => {
                        rras.send(Edge::Ethernet, frames);
                    }
                    Some(lend) => {
                        rras.receive_with(Edge::Ethernet, lend_options(lend), frames);
                    }
                }
            }
            Op::OidCompletion(timing) => rras.set_oid_completion(delivery(timing)),
            Op::ReleaseOids => rras.release_oids(),
            Op::LinkDown { link } => {
                if let Some(link) = self.link(link) {
                    rras.link_down(&link);
                }
            }
            Op::Send { link, count, payload, cancel_id, loopback } => {
                let Some(link) = self.link(link) else { return };
                let frames: Vec<Vec<u8>> = (0..count)
                    .map(|_| {
                        let seq = self.next_sequence();
                        match payload {
                            Payload::Udp => link.frame(Direction::Send, &UDP, seq),
                            Payload::Tcp => link.frame(Direction::Send, &Flow::tcp(443, 50_000), seq),
                            Payload::Syn => syn_frame(&link, Direction::Send, Some(1460)),
                        }
                    })
                    .collect();
                let options = SendOptions { cancel_id: cancel_id.map(u64::from), irql: None, check_for_loopback: loopback };
                rras.send_with(link.edge, options, frames);
            }
            Op::Receive { link, count, lend } => {
                let Some(link) = self.link(link) else { return };
                let frames: Vec<Vec<u8>> = (0..count)
                    .map(|index| match index % 2 {
                        0 => link.frame(Direction::Receive, &UDP, self.next_sequence()),
                        _ => syn_frame(&link, Direction::Receive, Some(1460)),
                    })
                    .collect();
                rras.receive_with(link.edge, lend_options(lend), frames);
            }
            Op::CancelSends { edge, cancel_id } => rras.cancel_sends(edge_of(edge), u64::from(cancel_id)),
            Op::Steps(count) => {
                for _ in 0..count {
                    rras.step();
                }
            }
            Op::Advance { ms } => {
                self.release_for_pauses(None);
                rras.advance(u64::from(ms) * MILLISECOND);
            }
            Op::SendCompletion(timing) => rras.set_send_completion(delivery(timing)),
            Op::ReceiveReturn(timing) => rras.set_receive_return(delivery(timing)),
            Op::ReleaseSends { edge, picks } => rras.release_sends_picked(edge_of(edge), &picks.map(usize::from)),
            Op::ReleaseReceives { edge, picks } => rras.release_receives_picked(edge_of(edge), &picks.map(usize::from)),
            Op::Pause(edge) => {
                if rras.pause(edge_of(edge)) == Ok(PauseOutcome::Pending) {
                    self.figures.pauses_pending += 1;
                }
            }
            Op::Restart(edge) => {
                let _ = rras.restart(edge_of(edge));
            }
            Op::Detach(edge) => {
                self.release_for_pauses(Some(edge_of(edge)));
                if rras.detach(edge_of(edge)).is_ok() {
                    self.figures.detaches += 1;
                }
            }
            Op::Attach { edge, restart } => {
                if rras.attach(edge_of(edge)).is_ok() && restart {
                    let _ = rras.restart(edge_of(edge));
                }
            }
            Op::AddHook { kind, altitude } => self.add_hook(kind, u32::from(altitude)),
            Op::RemoveHook { hook } => {
                if !self.hooks.is_empty() {
                    let added = self.hooks.remove(usize::from(hook) % self.hooks.len());
                    let _ = rras.engine().remove_hook(added.id);
                }
            }
            Op::Reinject { hook, count, drop } => {
                let queues: Vec<&Arc<QueueHook>> = self.hooks.iter().filter_map(|added| added.queue.as_ref()).collect();
                let Some(queue) = queues.get(usize::from(hook) % queues.len().max(1)).map(|queue| Arc::clone(queue)) else {
                    return;
                };
                let verdict = if drop { ReinjectVerdict::Drop } else { ReinjectVerdict::Pass };
                for ticket in queue.drain_oldest(usize::from(count)) {
                    if rras.engine().reinject(ticket, verdict, PathContext::default()).is_ok() {
                        self.figures.reinjected += 1;
                    }
                }
            }
            Op::AddVendor { kind, altitude } => self.vendors.add(kind, u32::from(altitude)),
            Op::RemoveVendor { vendor } => self.vendors.remove(vendor),
            Op::VendorRelease { vendor, drop } => self.figures.vendor_released += self.vendors.release(vendor, drop) as u64,
            Op::RevokeVendors => self.vendors.revoke(),
            Op::Control(request) => {
                self.figures.control_requests += 1;
                self.control(request);
            }
            Op::Oid { edge, set } => {
                if set {
                    rras.oid_set(edge_of(edge), OID_GEN_CURRENT_PACKET_FILTER, vec![1, 0, 0, 0]);
                } else {
                    rras.oid_query(edge_of(edge), OID_GEN_MAXIMUM_FRAME_SIZE);
                }
            }
            Op::Fault(fault) => inject(fault),
            Op::Irql(policy) => rras.set_irql_policy(match policy % 3 {
                0 => IrqlPolicy::Passive,
                1 => IrqlPolicy::Dispatch,
                _ => IrqlPolicy::Alternate,
            }),
        }
    }

    fn add_hook(&mut self, kind: HookKind, altitude: u32) {
        let engine = self.rras.engine();
        let mut queue = None;
        let added = match kind {
            HookKind::Pass => engine.add_hook("pass", altitude, CountingHook::new()),
            HookKind::Drop(ways) => engine.add_hook("drop", altitude, DropHook::all(applies(ways))),
            HookKind::ClampInPlace => engine.add_hook("clamp", altitude, MssClampHook::new(1200)),
            HookKind::Replace(ways) => engine.add_hook("ttl", altitude, TtlRewriteHook::new(33, applies(ways))),
            HookKind::Take(ways) => {
                let hook = QueueHook::new(applies(ways));
                queue = Some(Arc::clone(&hook));
                engine.add_hook("queue", altitude, hook)
            }
            HookKind::Mtu => engine.add_hook("mtu", altitude, MtuHook::new(1200)),
        };
        if let Ok(id) = added {
            self.hooks.push(AddedHook { id, queue });
        }
    }

    /// Sends a device control; a successful answer must parse with `check`, a pending one is
    /// remembered for a later cancel.
    fn ioctl(&mut self, code: u32, input: &[u8], output_len: usize, check: fn(&[u8]) -> bool) {
        let Some(outcome) = self.request(code, input, output_len) else { return };
        match outcome {
            IoOutcome::Complete(done) => {
                assert!(done.status != Status::Success || check(&done.output), "IOCTL {code:#x}: a malformed answer {:02x?}", done.output);
            }
            IoOutcome::Pending(io) => self.pending.push_back(io),
        }
    }

    /// A device control on the open handle (`None`: no handle is open, the driver refused it).
    fn request(&self, code: u32, input: &[u8], output_len: usize) -> Option<IoOutcome> {
        let handle = self.handle?;
        Some(self.device.ioctl(handle, code, input, output_len))
    }

    fn control(&mut self, request: ControlOp) {
        let header_only = {
            let mut input = [0u8; 8];
            let _ = HeaderOnly.emit(&mut input);
            input
        };
        let scope = |target: Scope| {
            let mut input = [0u8; 24];
            let _ = ScopeRequestRepr { target }.emit(&mut ScopeRequest::new_unchecked(&mut input[..]));
            input
        };
        let read = |max_records: u32, wait: bool| {
            let mut input = [0u8; 16];
            let _ = ReadRequestRepr { max_records, wait }.emit(&mut ReadRequest::new_unchecked(&mut input[..]));
            input
        };
        let link_id = |state: &Self, pick: u8| {
            let link = state.link(pick)?;
            let module = state.rras.module(link.edge)?;
            state.rras.engine().with_link(module, &link.remote, |tracked| tracked.id().0)
        };
        match request {
            ControlOp::ListModules => {
                self.ioctl(IOCTL_LIST_MODULES, &header_only, 1024, |out| ModuleListRepr::parse(&ModuleList::new_unchecked(out)).is_ok());
            }
            ControlOp::ListLinks { max } => {
                let mut input = [0u8; 32];
                let query = LinkQueryRepr { module: None, protocol_buffer: false, cursor: self.cursor, max_entries: u32::from(max) };
                let _ = query.emit(&mut LinkQuery::new_unchecked(&mut input[..]));
                match self.request(IOCTL_LIST_LINKS, &input, 4096) {
                    None => {}
                    Some(IoOutcome::Complete(done)) if done.status == Status::Success => {
                        let answer = LinkListRepr::parse(&LinkList::new_unchecked(&done.output[..]));
                        let answer = answer.unwrap_or_else(|error| panic!("LIST_LINKS: a malformed answer ({error:?})"));
                        self.cursor = if answer.end { 0 } else { answer.next_cursor };
                    }
                    Some(IoOutcome::Complete(_)) => self.cursor = 0,
                    Some(IoOutcome::Pending(io)) => panic!("LIST_LINKS pended ({io:?})"),
                }
            }
            ControlOp::ListHooks => {
                self.ioctl(IOCTL_LIST_HOOKS, &header_only, 4096, |out| HookListRepr::parse(&HookList::new_unchecked(out)).is_ok());
            }
            ControlOp::ModuleStats(edge) => {
                let Some(module) = self.rras.module(edge_of(edge)) else {
                    return;
                };
                let input = scope(Scope::Module(module.0));
                self.ioctl(IOCTL_QUERY_STATS, &input, 512, |out| ModuleStatsRepr::parse(&ModuleStats::new_unchecked(out)).is_ok());
            }
            ControlOp::LinkStats { link } => {
                let Some(id) = link_id(self, link) else {
                    return;
                };
                self.ioctl(IOCTL_QUERY_STATS, &scope(Scope::Link(id)), 80, |out| !out.is_empty());
            }
            ControlOp::ResetStats => self.ioctl(IOCTL_RESET_STATS, &scope(Scope::All), 0, |_| true),
            ControlOp::Subscribe { capacity } => {
                let mut input = [0u8; 16];
                let _ = SubscribeRepr { capacity: u32::from(capacity), mask: EventKind::ALL_MASK }
                    .emit(&mut Subscribe::new_unchecked(&mut input[..]));
                self.ioctl(IOCTL_SUBSCRIBE_EVENTS, &input, 24, |out| !out.is_empty());
            }
            ControlOp::ReadEvents { wait } => {
                self.ioctl(IOCTL_READ_EVENTS, &read(8, wait), 24 + 80 * 8, |out| {
                    EventBatchRepr::parse(&EventBatch::new_unchecked(out)).is_ok()
                });
            }
            ControlOp::Unsubscribe => {
                // The driver's wake DPC services the handles the engine woke (unless held).
                self.ioctl(IOCTL_UNSUBSCRIBE_EVENTS, &header_only, 0, |_| true);
            }
            ControlOp::Service => {
                self.device.service();
                self.take_completions();
            }
            ControlOp::CancelRead => {
                // The oldest read is given up on; every request the driver's queue holds is cancelled.
                if self.pending.pop_front().is_some() {
                    self.device.cancel();
                    self.take_completions();
                }
            }
            ControlOp::CaptureStart { link, snap_len } => {
                let target = match link {
                    Some(pick) => match link_id(self, pick) {
                        Some(id) => Scope::Link(id),
                        None => return,
                    },
                    None => Scope::All,
                };
                let mut input = [0u8; 32];
                let _ = CaptureStartRepr { target, snap_len: u32::from(snap_len), slots: 16 }
                    .emit(&mut CaptureStart::new_unchecked(&mut input[..]));
                self.ioctl(IOCTL_CAPTURE_START, &input, 40, |out| !out.is_empty());
            }
            ControlOp::CaptureRead => {
                self.ioctl(IOCTL_CAPTURE_READ, &read(64, false), 64 * 1024, |out| {
                    CaptureBatchRepr::parse(&CaptureBatch::new_unchecked(out)).is_ok()
                });
            }
            ControlOp::CaptureStop => self.ioctl(IOCTL_CAPTURE_STOP, &header_only, 0, |_| true),
            ControlOp::Inject { link, receive } => {
                let Some(id) = link_id(self, link) else {
                    return;
                };
                let Some(sim_link) = self.link(link) else {
                    return;
                };
                let (direction, wire) = if receive {
                    (wanlayer_proto::Direction::Receive, Direction::Receive)
                } else {
                    (wanlayer_proto::Direction::Send, Direction::Send)
                };
                let frame = sim_link.frame(wire, &UDP, self.next_sequence());
                let repr = InjectRepr { module: None, direction, link_id: id, frame: &frame };
                let mut input = vec![0u8; repr.buffer_len()];
                let _ = repr.emit(&mut Inject::new_unchecked(&mut input[..]));
                self.ioctl(IOCTL_INJECT, &input, 0, |_| true);
            }
            ControlOp::SetRules { set, altitude, expect_last_read } => {
                let sets = rule_sets();
                let blob = &sets[usize::from(set) % sets.len()];
                let expected = if expect_last_read { Expected::Version(self.rules_version) } else { Expected::Any };
                let request = RulesSetRepr { expected, altitude: u32::from(altitude), blob };
                let mut input = vec![0u8; request.buffer_len()];
                let _ = request.emit(&mut RulesSet::new_unchecked(&mut input[..]));
                match self.request(IOCTL_SET_RULES, &input, 16) {
                    None => {}
                    Some(IoOutcome::Complete(done)) if done.status == Status::Success => {
                        let answer = RulesVersionRepr::parse(&RulesVersion::new_unchecked(&done.output[..]));
                        self.rules_version = answer.unwrap_or_else(|error| panic!("SET_RULES: a malformed answer ({error:?})")).version;
                        self.figures.rule_sets += 1;
                    }
                    Some(IoOutcome::Complete(_)) => {}
                    Some(IoOutcome::Pending(io)) => panic!("SET_RULES pended ({io:?})"),
                }
            }
            ControlOp::GetRules => match self.request(IOCTL_GET_RULES, &header_only, 1 << 16) {
                None => {}
                Some(IoOutcome::Complete(done)) if done.status == Status::Success => {
                    let answer = RulesInfoRepr::parse(&RulesInfo::new_unchecked(&done.output[..]));
                    self.rules_version = answer.unwrap_or_else(|error| panic!("GET_RULES: a malformed answer ({error:?})")).version;
                }
                Some(IoOutcome::Complete(_)) => {}
                Some(IoOutcome::Pending(io)) => panic!("GET_RULES pended ({io:?})"),
            },
            ControlOp::RuleStats => {
                let mut input = [0u8; 16];
                let _ = RuleStatsQueryRepr { first: 0 }.emit(&mut RuleStatsQuery::new_unchecked(&mut input[..]));
                self.ioctl(IOCTL_RULE_STATS, &input, 4096, |out| RuleStatsListRepr::parse(&RuleStatsList::new_unchecked(out)).is_ok());
            }
            ControlOp::CaptureRule { id } => {
                let mut input = [0u8; 32];
                let start = CaptureStartRepr { target: Scope::Rule(u32::from(id)), snap_len: 256, slots: 16 };
                let _ = start.emit(&mut CaptureStart::new_unchecked(&mut input[..]));
                self.ioctl(IOCTL_CAPTURE_START, &input, 40, |out| !out.is_empty());
            }
            ControlOp::Reopen => {
                if let Some(handle) = self.handle.take() {
                    self.device.close(handle);
                }
                self.take_completions();
                self.handle = self.device.open();
            }
        }
    }

    /// Collects the reads that completed; each must parse as an event batch or be cancelled.
    fn take_completions(&mut self) {
        let device = self.device;
        self.pending.retain(|io| match device.take_completion(*io) {
            Some(done) => {
                let parsed = done.status != Status::Success || EventBatchRepr::parse(&EventBatch::new_unchecked(&done.output[..])).is_ok();
                assert!(parsed, "a pending READ_EVENTS completed with a malformed batch");
                false
            }
            None => true,
        });
    }

    /// The end of every schedule: the simulated drivers finish what they hold, every module
    /// detaches (with the hooks and vendors still there), the control handle closes, and what
    /// `DriverUnload` does with registrations left is done; the registrations go last.
    fn teardown(&mut self) {
        let rras = self.rras;
        rras.set_send_completion(Delivery::After(0));
        rras.set_receive_return(Delivery::After(0));
        rras.set_oid_completion(Delivery::After(0));
        for edge in rras.edges() {
            rras.release_sends(edge);
            rras.release_receives(edge);
        }
        rras.release_oids();
        self.device.run_deferred();
        rras.run_until_idle();
        let _ = rras.detach_all();
        if let Some(handle) = self.handle.take() {
            self.device.close(handle);
        }
        self.take_completions();
        assert!(self.pending.is_empty(), "reads still pending after the handle closed: {:?}", self.pending);
        self.vendors.finish();
        self.hooks.clear();
        rras.run_until_idle();
    }
}
