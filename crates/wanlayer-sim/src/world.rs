//! The simulated world shared by [`SimHal`](crate::SimHal) handles: time, the packet ledger, the
//! protocol above and the miniport below each edge, pending work, pools, the trace and the
//! violations. Only the simulator's own modules change it; tests read it through
//! [`Rras`](crate::Rras).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

use wanlayer_core::hal::{Pool, Timestamp};
use wanlayer_core::wire::MacAddress;
use wanlayer_core::{ModuleId, NdisStatus};

use crate::edge::{Edge, Irql, IrqlPolicy, NdisState};
use crate::faults::FaultPlan;
use crate::ledger::Ledger;
use crate::oid::{OidCompletion, OidRequest, RequestId};
use crate::sim_nbl::{PacketId, SimPacket};
use crate::trace::{TraceEvent, TraceRecord, TraceText};
use crate::verifier::{Rule, Violation};
use crate::wan_indication::StatusRecord;

/// One millisecond of virtual time, in nanoseconds.
pub const MILLISECOND: u64 = 1_000_000;
/// One second of virtual time, in nanoseconds.
pub const SECOND: u64 = 1_000_000_000;

/// `NDIS_STATUS_NOT_SUPPORTED`.
pub const NDIS_STATUS_NOT_SUPPORTED: NdisStatus = NdisStatus(0xC000_00BB);

/// When a simulated driver hands back what it was given.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Delivery {
    /// After this many virtual nanoseconds (0: at the next step, never re-entrantly).
    After(u64),
    /// Not until the test releases them.
    Hold,
}

/// How the simulated drivers around the filter behave.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SimConfig {
    /// IRQL of data-path, status and OID-completion callbacks.
    pub irql: IrqlPolicy,
    /// When the miniport completes sends.
    pub send_completion: Delivery,
    /// Status the miniport completes sends with.
    pub send_status: NdisStatus,
    /// When the protocol returns received packets.
    pub receive_return: Delivery,
    /// When the miniport completes OID requests.
    pub oid_completion: Delivery,
    /// How long a pending pause may take (Driver Verifier: 10 s).
    pub pause_timeout_ns: u64,
    /// How long an OID request may take (Driver Verifier: 12 s).
    pub oid_timeout_ns: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            irql: IrqlPolicy::Alternate,
            send_completion: Delivery::After(MILLISECOND),
            send_status: NdisStatus::SUCCESS,
            receive_return: Delivery::After(0),
            oid_completion: Delivery::After(MILLISECOND),
            pause_timeout_ns: 10 * SECOND,
            oid_timeout_ns: 12 * SECOND,
        }
    }
}

/// A frame that crossed an edge, as the receiving side saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The packet that carried it.
    pub packet: PacketId,
    /// The frame bytes.
    pub frame: Vec<u8>,
    /// When it arrived.
    pub time: Timestamp,
    /// It was sent down with `NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK` (always false for receives).
    pub check_for_loopback: bool,
}

/// A send completed back to the protocol.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SendCompletion {
    /// The packet.
    pub packet: PacketId,
    /// Its completion status.
    pub status: NdisStatus,
    /// When it completed.
    pub time: Timestamp,
}

/// A WAN link as the protocol above knows it from the line ups it was indicated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolLink {
    /// `RemoteAddress`.
    pub remote: MacAddress,
    /// The `LocalAddress` the protocol filled in.
    pub local: MacAddress,
    /// The `MaximumTotalSize` the protocol was told.
    pub total_size: u32,
    /// The `DeviceName` the protocol filled in.
    pub device_name: String,
}

/// The protocol above one edge (TCPIP's binding), and what it saw.
#[derive(Clone, Debug, Default)]
pub struct Protocol {
    /// Sends it made.
    pub sent: Vec<PacketId>,
    /// Its sends completed back to it, in order.
    pub completions: Vec<SendCompletion>,
    /// Frames indicated up to it, in order.
    pub received: Vec<Delivered>,
    /// Received packets it returned.
    pub returned: u64,
    /// Status indications that reached it.
    pub statuses: Vec<StatusRecord>,
    /// Its OID requests completed back to it.
    pub oid_completions: Vec<OidCompletion>,
    /// Live WAN links it knows of, by remote address.
    pub links: BTreeMap<MacAddress, ProtocolLink>,
    pub(crate) holding: Vec<SimPacket>,
}

impl Protocol {
    /// Received packets it keeps until [`Rras::release_receives`](crate::Rras::release_receives).
    pub fn holding(&self) -> usize {
        self.holding.len()
    }

    /// The frames it received, without their metadata.
    pub fn received_frames(&self) -> Vec<Vec<u8>> {
        self.received.iter().map(|d| d.frame.clone()).collect()
    }

    /// The completion status of one of its sends, once completed.
    pub fn completion_of(&self, packet: PacketId) -> Option<NdisStatus> {
        self.completions.iter().find(|c| c.packet == packet).map(|c| c.status)
    }
}

/// The miniport below one edge (NdisWan's edge or an Ethernet NIC), and what it saw.
#[derive(Clone, Debug, Default)]
pub struct Miniport {
    /// Frames sent down to it, in order.
    pub sent: Vec<Delivered>,
    /// Sends it completed.
    pub completed: u64,
    /// Receives it indicated.
    pub indicated: Vec<PacketId>,
    /// Its receives given back (returned, or handed back after a resources indication).
    pub returned: u64,
    /// OID requests that reached it.
    pub oid_requests: Vec<RequestId>,
    pub(crate) holding: Vec<SimPacket>,
}

impl Miniport {
    /// Sends it keeps until [`Rras::release_sends`](crate::Rras::release_sends).
    pub fn holding(&self) -> usize {
        self.holding.len()
    }

    /// The frames it was sent, without their metadata.
    pub fn sent_frames(&self) -> Vec<Vec<u8>> {
        self.sent.iter().map(|d| d.frame.clone()).collect()
    }
}

/// Memory charged to one pool.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct PoolUsage {
    /// Bytes charged now.
    pub current: usize,
    /// Most bytes ever charged at once.
    pub peak: usize,
    /// Successful charges.
    pub charges: u64,
    /// Releases.
    pub releases: u64,
    /// Charges refused by fault injection.
    pub refused: u64,
}

/// Progress of a pause as NDIS tracks it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum PauseTrack {
    /// No pause in progress.
    Idle,
    /// `FilterPause` was called and its completion has not been seen.
    Pending { since: Timestamp, timed_out: bool },
}

/// One edge: the module on it, the protocol above, the miniport below.
#[derive(Debug)]
pub(crate) struct EdgeState {
    pub(crate) module: Option<ModuleId>,
    pub(crate) ndis: NdisState,
    pub(crate) pause: PauseTrack,
    pub(crate) protocol: Protocol,
    pub(crate) miniport: Miniport,
}

/// Whose OID request it is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum OidRole {
    /// The protocol's request.
    Original,
    /// A clone the filter allocated.
    Clone,
}

/// Where an OID request is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum OidState {
    /// With the filter (pending, for an original).
    AtFilter,
    /// Passed down, pending at the miniport.
    AtMiniport,
    /// Completed to the protocol (originals).
    Completed,
    /// Freed (clones).
    Freed,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct OidRecord {
    pub(crate) edge: Edge,
    pub(crate) role: OidRole,
    pub(crate) state: OidState,
    pub(crate) issued: Timestamp,
    pub(crate) timed_out: bool,
}

/// A status indication on its way through the filter.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StatusInFlight {
    pub(crate) serial: u64,
    pub(crate) indicated_total_size: Option<u32>,
    pub(crate) forwarded: u32,
}

/// Work the simulated drivers do later, in virtual time.
#[derive(Debug)]
pub(crate) enum Deferred {
    /// The miniport completes sends.
    CompleteSends { edge: Edge, packets: Vec<SimPacket> },
    /// The protocol returns receives.
    ReturnReceives { edge: Edge, packets: Vec<SimPacket> },
    /// The miniport completes an OID request.
    CompleteOid { edge: Edge, request: OidRequest, status: NdisStatus },
}

/// The filter callback in progress, for violation details.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct InCallback {
    pub(crate) name: &'static str,
    pub(crate) edge: Option<Edge>,
}

/// Everything mutable about the world.
#[derive(Debug)]
pub(crate) struct WorldState {
    pub(crate) now: Timestamp,
    pub(crate) config: SimConfig,
    pub(crate) ledger: Ledger,
    pub(crate) violations: Vec<Violation>,
    pub(crate) faults: FaultPlan,
    pub(crate) pools: HashMap<Pool, PoolUsage>,
    pub(crate) edges: BTreeMap<Edge, EdgeState>,
    pub(crate) queue: BTreeMap<(Timestamp, u64), Deferred>,
    pub(crate) next_event: u64,
    pub(crate) trace: Vec<TraceRecord>,
    pub(crate) oids: BTreeMap<RequestId, OidRecord>,
    pub(crate) next_request: u64,
    pub(crate) next_status: u64,
    pub(crate) status: Option<StatusInFlight>,
    pub(crate) callback: Option<InCallback>,
    pub(crate) held_oids: Vec<(Edge, OidRequest, NdisStatus)>,
    /// The simulated registry's saved rule set (altitude, compiled bytes): it outlives the
    /// driver, so an unload and a reload in the same world find it.
    pub(crate) saved_rules: Option<(u32, Vec<u8>)>,
}

/// The world: IRQL and lock count (read on every lock entry), and the rest behind a `RefCell`.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) irql: Cell<Irql>,
    pub(crate) locks_held: Cell<u32>,
    pub(crate) state: RefCell<WorldState>,
}

impl World {
    pub(crate) fn new(config: SimConfig, faults: FaultPlan, edges: &[Edge]) -> Self {
        let edges = edges
            .iter()
            .map(|edge| {
                let state = EdgeState {
                    module: None,
                    ndis: NdisState::Detached,
                    pause: PauseTrack::Idle,
                    protocol: Protocol::default(),
                    miniport: Miniport::default(),
                };
                (*edge, state)
            })
            .collect();
        Self {
            irql: Cell::new(Irql::Passive),
            locks_held: Cell::new(0),
            state: RefCell::new(WorldState {
                now: Timestamp(0),
                config,
                ledger: Ledger::default(),
                violations: Vec::new(),
                faults,
                pools: HashMap::new(),
                edges,
                queue: BTreeMap::new(),
                next_event: 0,
                trace: Vec::new(),
                oids: BTreeMap::new(),
                next_request: 0,
                next_status: 0,
                status: None,
                callback: None,
                held_oids: Vec::new(),
                saved_rules: None,
            }),
        }
    }
}

impl WorldState {
    /// Records a violation, naming the callback in progress.
    pub(crate) fn violate(&mut self, rule: Rule, module: Option<ModuleId>, packet: Option<PacketId>, detail: impl Into<String>) {
        let mut detail = detail.into();
        if let Some(callback) = self.callback {
            detail.push_str(&format!(" (in {})", callback.name));
        }
        let violation = Violation { rule, module, packet, detail, time: self.now };
        self.trace.push(TraceRecord {
            time: self.now,
            edge: self.callback.and_then(|c| c.edge),
            event: TraceEvent::Violation(rule),
            packet,
            text: TraceText::Written(violation.detail.clone()),
        });
        self.violations.push(violation);
    }

    /// Appends to the trace.
    pub(crate) fn trace(&mut self, edge: Option<Edge>, event: TraceEvent, packet: Option<PacketId>, text: impl Into<String>) {
        self.trace_data(edge, event, packet, TraceText::Written(text.into()));
    }

    /// Appends to the trace what is written out only when printed (a frame, a status).
    pub(crate) fn trace_data(&mut self, edge: Option<Edge>, event: TraceEvent, packet: Option<PacketId>, text: TraceText) {
        self.trace.push(TraceRecord { time: self.now, edge, event, packet, text });
    }

    /// The state of an edge that exists.
    pub(crate) fn edge(&mut self, edge: Edge) -> Option<&mut EdgeState> {
        self.edges.get_mut(&edge)
    }

    /// The edge `module` is attached to. During `FilterAttach` the module is not known yet: an
    /// unknown identity then means the edge being attached.
    pub(crate) fn edge_of(&self, module: ModuleId) -> Option<Edge> {
        let attached = self.edges.iter().find(|(_, state)| state.module == Some(module) && state.ndis != NdisState::Detached);
        if let Some((edge, _)) = attached {
            return Some(*edge);
        }
        self.edges.iter().find(|(_, state)| state.ndis == NdisState::Attaching && state.module.is_none()).map(|(edge, _)| *edge)
    }

    /// [`Self::edge_of`], recording [`Rule::InvalidModuleHandle`] when there is none.
    pub(crate) fn resolve(&mut self, module: ModuleId, api: &str) -> Option<Edge> {
        let edge = self.edge_of(module);
        if edge.is_none() {
            self.violate(Rule::InvalidModuleHandle, Some(module), None, format!("{api} named {module}, which is not attached"));
        }
        edge
    }

    /// Queues work `delay` nanoseconds from now.
    pub(crate) fn schedule(&mut self, delay: u64, work: Deferred) {
        self.next_event += 1;
        let at = Timestamp(self.now.0.saturating_add(delay));
        self.queue.insert((at, self.next_event), work);
    }

    /// Checks that the filter neither holds nor has outstanding anything on `edge`, as a completed
    /// pause requires.
    pub(crate) fn check_quiet_for_pause(&mut self, edge: Edge, module: Option<ModuleId>, how: &str) {
        let held = self.ledger.foreign_held(edge);
        let out = self.ledger.originated_outstanding(edge);
        if !held.is_empty() || !out.is_empty() {
            let detail = format!(
                "{how} while the filter holds {} and has {} of its own outstanding",
                list(&held),
                list(&out)
            );
            self.violate(Rule::PauseCompleteWithOutstanding, module, held.first().or(out.first()).copied(), detail);
        }
    }

    /// Reports pauses and OID requests that outlived their bounds (each once).
    pub(crate) fn check_timers(&mut self) {
        let now = self.now;
        let pause_timeout = self.config.pause_timeout_ns;
        let mut late_pauses = Vec::new();
        for (edge, state) in &mut self.edges {
            if let PauseTrack::Pending { since, timed_out: false } = state.pause {
                if now.since(since) > pause_timeout {
                    state.pause = PauseTrack::Pending { since, timed_out: true };
                    late_pauses.push((*edge, state.module, now.since(since)));
                }
            }
        }
        for (edge, module, waited) in late_pauses {
            self.violate(
                Rule::NdisFilterTimedPauseComplete,
                module,
                None,
                format!("the pause of {edge} has been pending for {} ms", waited / MILLISECOND),
            );
        }
        let oid_timeout = self.config.oid_timeout_ns;
        let mut late_oids = Vec::new();
        for (id, record) in &mut self.oids {
            let pending = record.role == OidRole::Original && record.state == OidState::AtFilter;
            if pending && !record.timed_out && now.since(record.issued) > oid_timeout {
                record.timed_out = true;
                late_oids.push((*id, record.edge, now.since(record.issued)));
            }
        }
        for (id, edge, waited) in late_oids {
            let module = self.edges.get(&edge).and_then(|state| state.module);
            self.violate(Rule::NdisTimedOidComplete, module, None, format!("{id} on {edge} pending for {} ms", waited / MILLISECOND));
        }
    }

    /// The IRQL to make the next data-path callback at.
    pub(crate) fn callback_irql(&self, turn: u64) -> Irql {
        match self.config.irql {
            IrqlPolicy::Passive => Irql::Passive,
            IrqlPolicy::Dispatch => Irql::Dispatch,
            IrqlPolicy::Alternate if turn % 2 == 1 => Irql::Dispatch,
            IrqlPolicy::Alternate => Irql::Passive,
        }
    }
}

/// `nbl#1, nbl#2` or `nothing`.
pub(crate) fn list(ids: &[PacketId]) -> String {
    if ids.is_empty() {
        return "nothing".to_owned();
    }
    ids.iter().map(PacketId::to_string).collect::<Vec<_>>().join(", ")
}
