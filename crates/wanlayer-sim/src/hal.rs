//! [`SimHal`]: the core's platform traits over the simulated world, every call checked.
//!
//! A `SimHal` is a cheap handle (`Rc`) on the world. Each call is checked against the
//! [ledger](crate::ledger) and the [rules](crate::verifier::Rule), recorded in the trace, and then
//! done the way NDIS would do it: a packet sent down goes to the simulated miniport, which
//! completes it later; a packet indicated up goes to the simulated protocol, which returns it
//! later. Nothing here ever calls back into the filter: deferred work waits for
//! [`Rras::step`](crate::Rras::step).

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use wanlayer_core::hal::{
    Clock, FrameSource, Level, Lock, Locking, Log, Memory, OutOfMemory, PacketIo, PathContext, PauseCompletion, Pool, Processors, ReadMostly, ReadMostlyLocking,
    Quiesce, Reclaimed, RuleStore, StoreError, Timestamp, WriteError,
};
use wanlayer_core::{ModuleId, NdisStatus};

use crate::edge::{Edge, Irql, NdisState};
use crate::faults::{Allocation, FaultPlan, Faults};
use crate::ledger::{Holder, NotHeld, Origin, PacketRecord};
use crate::sim_nbl::{PacketId, SimChain, SimPacket};
use crate::trace::{TraceEvent, TraceText};
use crate::verifier::{Rule, Verifier};
use crate::world::{Deferred, Delivered, Delivery, PauseTrack, PoolUsage, SendCompletion, SimConfig, World, WorldState};

/// A handle on a simulated world, implementing every platform trait of the core.
#[derive(Clone)]
pub struct SimHal(pub(crate) Rc<World>);

impl fmt::Debug for SimHal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHal").field("now", &self.now()).field("irql", &self.irql()).field("locks_held", &self.locks_held()).finish()
    }
}

impl SimHal {
    pub(crate) fn new(config: SimConfig, faults: FaultPlan, edges: &[Edge]) -> Self {
        Self(Rc::new(World::new(config, faults, edges)))
    }

    pub(crate) fn with_state<R>(&self, read: impl FnOnce(&WorldState) -> R) -> R {
        read(&self.0.state.borrow())
    }

    pub(crate) fn with_state_mut<R>(&self, change: impl FnOnce(&mut WorldState) -> R) -> R {
        change(&mut self.0.state.borrow_mut())
    }

    /// The simulated IRQL right now.
    pub fn irql(&self) -> Irql {
        self.0.irql.get()
    }

    pub(crate) fn set_irql(&self, irql: Irql) {
        self.0.irql.set(irql);
    }

    /// How many [`SimLock`]s are held right now.
    pub fn locks_held(&self) -> u32 {
        self.0.locks_held.get()
    }

    /// The verifier of this world.
    pub fn verifier(&self) -> Verifier {
        Verifier::new(self.clone())
    }

    /// The fault plan of this world.
    pub fn faults(&self) -> Faults {
        Faults::new(self.clone())
    }

    /// The simulated registry's saved rule set (altitude, compiled bytes), if any.
    pub fn saved_rules(&self) -> Option<(u32, Vec<u8>)> {
        self.with_state(|state| state.saved_rules.clone())
    }

    /// Writes the simulated registry's saved rule set (`None`: nothing saved), as an
    /// administrator or a corrupted disk would.
    pub fn set_saved_rules(&self, saved: Option<(u32, Vec<u8>)>) {
        self.with_state_mut(|state| state.saved_rules = saved);
    }

    /// Records a broken rule found outside the simulator's own checks — by the kernel model under
    /// the driver in the loop — as the simulator records its own: once, naming the callback in
    /// progress.
    pub fn report(&self, rule: Rule, module: Option<ModuleId>, detail: impl Into<String>) {
        self.with_state_mut(|state| state.violate(rule, module, None, detail));
    }

    /// What is charged to `pool`.
    pub fn pool_usage(&self, pool: Pool) -> PoolUsage {
        self.with_state(|state| state.pools.get(&pool).copied().unwrap_or_default())
    }

    /// The checks every call out of the filter gets: no lock held, and (for data-path calls) a
    /// truthful `DISPATCH_LEVEL` flag.
    pub(crate) fn call_checks(&self, state: &mut WorldState, api: &str, module: Option<ModuleId>, ctx: Option<PathContext>) {
        let locks = self.locks_held();
        if locks > 0 {
            state.violate(Rule::LockHeldAcrossCall, module, None, format!("{api} called while holding {locks} lock(s)"));
            return;
        }
        let irql = self.irql();
        if let Some(ctx) = ctx {
            if ctx.at_dispatch != (irql == Irql::Dispatch) {
                let flag = if ctx.at_dispatch { "set" } else { "clear" };
                state.violate(Rule::IrqlSendRcvFunction, module, None, format!("{api} with the DISPATCH_LEVEL flag {flag} at {irql}"));
            }
        }
    }

    /// Checks that the filter holds `packet` to look at or change it.
    fn access(&self, state: &mut WorldState, packet: &SimPacket, api: &str) {
        self.call_checks(state, api, None, None);
        let detail = match state.ledger.held(packet.id) {
            Ok(_) | Err(NotHeld::HeldBy(Holder::Forfeited)) => return,
            Err(NotHeld::Unknown) => format!("{api} on {}, which the simulator never made", packet.id),
            Err(NotHeld::HeldBy(holder)) => format!("{api} on {}, which is with {holder}", packet.id),
        };
        state.violate(Rule::UseAfterHandOff, None, Some(packet.id), detail);
    }
}

/// Checks that the filter may hand `packet` on. A packet the verifier forfeited goes nowhere and
/// is not reported again: its mistake was reported once already.
fn hand_off(state: &mut WorldState, module: ModuleId, packet: &SimPacket, api: &str) -> Option<PacketRecord> {
    match state.ledger.held(packet.id) {
        Ok(record) => Some(record),
        Err(NotHeld::HeldBy(Holder::Forfeited)) => None,
        Err(NotHeld::Unknown) => {
            state.violate(Rule::DoubleComplete, Some(module), Some(packet.id), format!("{api}: the simulator never made {}", packet.id));
            None
        }
        Err(NotHeld::HeldBy(holder)) => {
            let detail = format!("{api}: {} is no longer the filter's: it is with {holder}", packet.id);
            state.violate(Rule::DoubleComplete, Some(module), Some(packet.id), detail);
            None
        }
    }
}

/// Where a data-path call (send down, indicate up) goes: the edge of `module` and its NDIS state.
/// `None` (the chain discarded) when the module is unknown, or when it may not pass data now:
/// that call is reported and its packets forfeited, so the one mistake is not reported again
/// when they come back or are waited for.
fn data_path_edge(state: &mut WorldState, module: ModuleId, chain: &SimChain, api: &str) -> Option<(Edge, NdisState)> {
    let Some(edge) = state.resolve(module, api) else {
        chain.iter().for_each(|packet| discard(state, packet.id));
        return None;
    };
    let ndis = state.edges.get(&edge).map_or(NdisState::Detached, |e| e.ndis);
    if ndis.forbids_data() && !chain.is_empty() {
        let detail = format!("{api} with {} packet(s) while the module is {ndis}", chain.len());
        state.violate(Rule::DataPathWhilePaused, Some(module), chain.iter().next().map(SimPacket::id), detail);
        for packet in chain {
            if state.ledger.held(packet.id).is_ok() {
                discard(state, packet.id);
            }
        }
        return None;
    }
    Some((edge, ndis))
}

/// Checks one packet of a data-path call: the filter holds it, it does not come from `wrong`
/// (the other direction's owner: `misuse` says how it was misused), and it is not the filter's
/// own while the module pauses. `None` when it may not go on (it was sent home).
fn admit(
    state: &mut WorldState,
    module: ModuleId,
    packet: &SimPacket,
    api: &str,
    ndis: NdisState,
    wrong: Origin,
    misuse: &str,
) -> Option<PacketRecord> {
    let record = hand_off(state, module, packet, api)?;
    if record.origin == wrong {
        state.violate(Rule::WrongOwner, Some(module), Some(packet.id), format!("{api}: {} is {misuse}", packet.id));
        discard(state, packet.id);
        return None;
    }
    if record.origin == Origin::FilterAllocated && ndis == NdisState::Pausing {
        let detail = format!("{api}: {} is the filter's own, handed on while pausing", packet.id);
        state.violate(Rule::OriginateWhilePausing, Some(module), Some(packet.id), detail);
    }
    Some(record)
}

/// Forfeits a packet the checks refused (with the parents it carries), so that one mistake is
/// reported once.
fn discard(state: &mut WorldState, id: PacketId) {
    state.ledger.forfeit(id);
}

impl Memory for SimHal {
    fn try_charge(&self, pool: Pool, bytes: usize) -> Result<(), OutOfMemory> {
        self.with_state_mut(|state| {
            let allowed = state.faults.attempt(Allocation::Charge(pool));
            let usage = state.pools.entry(pool).or_default();
            if !allowed {
                usage.refused += 1;
                let attempt = state.faults.attempts();
                state.trace(None, TraceEvent::Fault, None, format!("allocation #{attempt} refused: {bytes} bytes of {pool:?}"));
                return Err(OutOfMemory);
            }
            usage.current += bytes;
            usage.peak = usage.peak.max(usage.current);
            usage.charges += 1;
            Ok(())
        })
    }

    fn release(&self, pool: Pool, bytes: usize) {
        self.with_state_mut(|state| {
            let usage = state.pools.entry(pool).or_default();
            usage.releases += 1;
            if bytes > usage.current {
                let charged = usage.current;
                usage.current = 0;
                state.violate(Rule::PoolOverRelease, None, None, format!("released {bytes} bytes of {pool:?} with {charged} charged"));
            } else {
                usage.current -= bytes;
            }
        });
    }
}

/// The simulated registry: the service key's `Parameters` values `Rules` and `RulesAltitude`,
/// kept in the world so that they survive an unload and a reload.
impl RuleStore for SimHal {
    fn load_rules(&self, found: &mut dyn FnMut(u32, &[u8])) -> Result<(), StoreError> {
        // Copied out first: `found` runs the engine, which calls back into the world.
        if let Some((altitude, blob)) = self.saved_rules() {
            found(altitude, &blob);
        }
        Ok(())
    }

    fn save_rules(&self, altitude: u32, blob: &[u8]) -> Result<(), StoreError> {
        self.set_saved_rules((!blob.is_empty()).then(|| (altitude, blob.to_vec())));
        Ok(())
    }
}

impl Clock for SimHal {
    fn now(&self) -> Timestamp {
        self.with_state(|state| state.now)
    }
}

/// A lock of the simulated world: a `RefCell` that raises the simulated IRQL to `DISPATCH_LEVEL`
/// and counts itself as held while its closure runs.
pub struct SimLock<T> {
    value: RefCell<T>,
    world: Rc<World>,
}

impl<T> fmt::Debug for SimLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimLock").field("held", &self.value.try_borrow_mut().is_err()).finish()
    }
}

/// Restores the IRQL and the held-lock count when a critical section ends, even by unwinding.
struct Held<'w> {
    world: &'w World,
    previous: Irql,
}

impl<'w> Held<'w> {
    fn enter(world: &'w World) -> Self {
        let previous = world.irql.replace(Irql::Dispatch);
        world.locks_held.set(world.locks_held.get() + 1);
        Self { world, previous }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.world.locks_held.set(self.world.locks_held.get().saturating_sub(1));
        self.world.irql.set(self.previous);
    }
}

impl<T> Lock<T> for SimLock<T> {
    /// # Panics
    /// When the lock is entered again from inside its own critical section: a spin lock would
    /// deadlock there, so the simulation cannot go on.
    fn with<R>(&self, critical_section: impl FnOnce(&mut T) -> R) -> R {
        let _held = Held::enter(&self.world);
        let Ok(mut value) = self.value.try_borrow_mut() else {
            panic!("SimLock entered recursively: a spin lock deadlocks here");
        };
        critical_section(&mut value)
    }
}

impl Locking for SimHal {
    type Lock<T> = SimLock<T>;

    fn new_lock<T>(&self, value: T) -> SimLock<T> {
        SimLock { value: RefCell::new(value), world: Rc::clone(&self.0) }
    }
}

/// The simulated machine has one processor: a read is the spin lock's critical section, held,
/// raised and checked as the kernel's per-processor lock would be.
impl<T> ReadMostly<T> for SimLock<T> {
    fn read<R>(&self, reader: impl FnOnce(&T) -> R) -> R {
        self.with(|value| reader(value))
    }
}

impl ReadMostlyLocking for SimHal {
    type ReadMostly<T: Send + Sync> = SimLock<T>;

    fn new_read_mostly<T: Send + Sync>(&self, value: T) -> Result<SimLock<T>, OutOfMemory> {
        Ok(self.new_lock(value))
    }
}

/// The simulated machine has one processor: the simulator runs every callback on one thread.
impl Processors for SimHal {
    fn current_processor(&self) -> usize {
        0
    }
    fn processor_count(&self) -> usize {
        1
    }
}

impl Quiesce for SimHal {
    fn wait_until(&self, is_done: &dyn Fn() -> bool) {
        let irql = self.irql();
        if irql != Irql::Passive {
            let locks = self.locks_held();
            self.with_state_mut(|state| {
                let detail = format!("wait_until at {irql} with {locks} lock(s) held: waiting needs PASSIVE_LEVEL");
                state.violate(Rule::IrqlFilterDriverFunction, None, None, detail);
            });
            return;
        }
        if !is_done() {
            self.with_state_mut(|state| {
                let detail = "wait_until with a condition that is false while nothing else runs: this wait never ends";
                state.violate(Rule::QuiesceNeverEnds, None, None, detail);
            });
        }
    }
}

impl Log for SimHal {
    fn log(&self, level: Level, message: fmt::Arguments<'_>) {
        self.with_state_mut(|state| {
            let edge = state.callback.and_then(|c| c.edge);
            state.trace(edge, TraceEvent::FilterLog(level), None, message.to_string());
        });
    }
}

impl PacketIo for SimHal {
    type Packet = SimPacket;
    type Chain = SimChain;

    fn frame_len(&self, packet: &SimPacket) -> usize {
        self.with_state_mut(|state| self.access(state, packet, "frame_len"));
        packet.frame.len()
    }

    fn read(&self, packet: &SimPacket, offset: usize, out: &mut [u8]) -> usize {
        self.with_state_mut(|state| self.access(state, packet, "read"));
        let available = packet.frame.get(offset..).unwrap_or_default();
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        count
    }

    fn write(&self, packet: &mut SimPacket, offset: usize, data: &[u8]) -> Result<(), WriteError> {
        self.with_state_mut(|state| self.access(state, packet, "write"));
        let end = offset.checked_add(data.len()).filter(|end| *end <= packet.frame.len()).ok_or(WriteError::OutOfRange)?;
        if packet.read_only {
            return Err(WriteError::ReadOnly);
        }
        packet.frame[offset..end].copy_from_slice(data);
        Ok(())
    }

    fn status(&self, packet: &SimPacket) -> NdisStatus {
        self.with_state_mut(|state| self.access(state, packet, "NET_BUFFER_LIST_STATUS (read)"));
        packet.status
    }

    fn set_status(&self, packet: &mut SimPacket, status: NdisStatus) {
        self.with_state_mut(|state| self.access(state, packet, "NET_BUFFER_LIST_STATUS (write)"));
        packet.status = status;
    }

    fn allocate(&self, module: ModuleId, source: FrameSource<'_, SimPacket>) -> Result<SimPacket, OutOfMemory> {
        const API: &str = "NdisAllocateNetBufferList";
        self.with_state_mut(|state| {
            self.call_checks(state, API, Some(module), None);
            let frame = match source {
                FrameSource::Bytes(bytes) => bytes.to_vec(),
                FrameSource::CopyOf(original) => {
                    if let Err(not_held) = state.ledger.held(original.id) {
                        let detail = format!("{API} copying {}, which is not the filter's ({not_held:?})", original.id);
                        state.violate(Rule::UseAfterHandOff, Some(module), Some(original.id), detail);
                    }
                    original.frame.clone()
                }
            };
            let edge = state.resolve(module, API).ok_or(OutOfMemory)?;
            if !state.faults.attempt(Allocation::Packet) {
                let attempt = state.faults.attempts();
                state.trace(Some(edge), TraceEvent::Fault, None, format!("allocation #{attempt} refused: a packet"));
                return Err(OutOfMemory);
            }
            let id = state.ledger.create(Origin::FilterAllocated, edge, Holder::Filter, false, state.now);
            Ok(SimPacket::new(id, frame))
        })
    }

    fn attach_parent(&self, child: &mut SimPacket, parent: SimPacket) {
        const API: &str = "attach_parent";
        self.with_state_mut(|state| {
            self.call_checks(state, API, None, None);
            let child_record = state.ledger.get(child.id).copied();
            let problem = match child_record {
                None => Some((Rule::UseAfterHandOff, format!("{API}: the simulator never made {}", child.id))),
                Some(record) if record.origin != Origin::FilterAllocated => {
                    Some((Rule::WrongOwner, format!("{API}: {} is a {}, not a packet the filter allocated", child.id, record.origin.name())))
                }
                Some(record) if record.holder != Holder::Filter => {
                    Some((Rule::UseAfterHandOff, format!("{API}: {} is with {}", child.id, record.holder)))
                }
                Some(_) => match state.ledger.held(parent.id) {
                    Err(not_held) => Some((Rule::UseAfterHandOff, format!("{API}: parent {} is not the filter's ({not_held:?})", parent.id))),
                    Ok(_) => None,
                },
            };
            if let Some((rule, detail)) = problem {
                state.violate(rule, None, Some(child.id), detail);
                return;
            }
            if let Some(old) = child.parent.take() {
                state.violate(Rule::WrongOwner, None, Some(old.id), format!("{API}: {} already carried parent {}, now lost", child.id, old.id));
                discard(state, old.id);
            }
            state.ledger.move_to(parent.id, Holder::Parent(child.id));
            child.cancel_id = parent.cancel_id;
            child.parent = Some(Box::new(parent));
        });
    }

    fn reclaim(&self, mut packet: SimPacket) -> Reclaimed<SimPacket> {
        const API: &str = "reclaim";
        self.with_state_mut(|state| {
            self.call_checks(state, API, None, None);
            let Some(record) = state.ledger.get(packet.id).copied() else { return Reclaimed::Foreign(packet) };
            if record.origin != Origin::FilterAllocated {
                return Reclaimed::Foreign(packet);
            }
            if record.holder == Holder::Forfeited {
                return Reclaimed::Own { parent: None, status: packet.status };
            }
            if record.holder != Holder::Filter {
                let detail = format!("{API}: {} is with {}: freed twice?", packet.id, record.holder);
                state.violate(Rule::DoubleComplete, None, Some(packet.id), detail);
                return Reclaimed::Own { parent: None, status: packet.status };
            }
            state.ledger.move_to(packet.id, Holder::Home);
            let parent = packet.parent.take().map(|parent| *parent);
            if let Some(parent) = &parent {
                state.ledger.move_to(parent.id, Holder::Filter);
            }
            Reclaimed::Own { parent, status: packet.status }
        })
    }

    fn free(&self, mut packet: SimPacket) -> Option<SimPacket> {
        const API: &str = "NdisFreeNetBufferList";
        self.with_state_mut(|state| {
            self.call_checks(state, API, None, None);
            let record = state.ledger.get(packet.id).copied();
            match record {
                Some(record) if record.origin == Origin::FilterAllocated && record.holder == Holder::Filter => {
                    state.ledger.move_to(packet.id, Holder::Home);
                    let parent = packet.parent.take().map(|parent| *parent);
                    if let Some(parent) = &parent {
                        state.ledger.move_to(parent.id, Holder::Filter);
                    }
                    parent
                }
                Some(record) if record.holder == Holder::Forfeited => None,
                Some(record) if record.origin == Origin::FilterAllocated => {
                    state.violate(Rule::DoubleComplete, None, Some(packet.id), format!("{API}: {} is with {}", packet.id, record.holder));
                    None
                }
                Some(record) => {
                    let detail = format!("{API}: {} is a {}; only packets the filter allocated may be freed", packet.id, record.origin.name());
                    state.violate(Rule::FreeForeignPacket, None, Some(packet.id), detail);
                    if record.holder == Holder::Filter {
                        discard(state, packet.id);
                    }
                    None
                }
                None => {
                    state.violate(Rule::FreeForeignPacket, None, Some(packet.id), format!("{API}: the simulator never made {}", packet.id));
                    None
                }
            }
        })
    }

    fn send_down(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        const API: &str = "NdisFSendNetBufferLists";
        self.with_state_mut(|state| {
            self.call_checks(state, API, Some(module), Some(ctx));
            let Some((edge, ndis)) = data_path_edge(state, module, &chain, API) else { return };
            let mut accepted = Vec::new();
            for packet in chain {
                let misuse = "a receive of the miniport, sent down as a send";
                if admit(state, module, &packet, API, ndis, Origin::MiniportReceive, misuse).is_none() {
                    continue;
                }
                state.ledger.move_to(packet.id, Holder::Miniport);
                state.trace_data(Some(edge), TraceEvent::SendDown, Some(packet.id), TraceText::frame(&packet.frame));
                let now = state.now;
                if let Some(e) = state.edge(edge) {
                    e.miniport.sent.push(Delivered {
                        packet: packet.id,
                        frame: packet.frame.clone(),
                        time: now,
                        check_for_loopback: ctx.check_for_loopback,
                    });
                }
                accepted.push(packet);
            }
            if accepted.is_empty() {
                return;
            }
            match state.config.send_completion {
                Delivery::After(delay) => state.schedule(delay, Deferred::CompleteSends { edge, packets: accepted }),
                Delivery::Hold => {
                    if let Some(e) = state.edge(edge) {
                        e.miniport.holding.extend(accepted);
                    }
                }
            }
        });
    }

    fn complete_sends(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        const API: &str = "NdisFSendNetBufferListsComplete";
        self.with_state_mut(|state| {
            self.call_checks(state, API, Some(module), Some(ctx));
            let edge = state.resolve(module, API);
            for packet in chain {
                let Some(record) = hand_off(state, module, &packet, API) else { continue };
                let wrong = match record.origin {
                    Origin::ProtocolSend => None,
                    Origin::MiniportReceive => Some("a receive of the miniport, completed to the protocol as a send"),
                    Origin::FilterAllocated => Some("the filter's own packet, completed to the protocol (free it, complete its parent)"),
                };
                if let Some(what) = wrong {
                    state.violate(Rule::WrongOwner, Some(module), Some(packet.id), format!("{API}: {} is {what}", packet.id));
                    discard(state, packet.id);
                    continue;
                }
                state.ledger.move_to(packet.id, Holder::Home);
                state.trace_data(edge, TraceEvent::CompleteToProtocol, Some(packet.id), TraceText::Status(packet.status));
                let completion = SendCompletion { packet: packet.id, status: packet.status, time: state.now };
                if let Some(e) = edge.and_then(|edge| state.edge(edge)) {
                    e.protocol.completions.push(completion);
                }
            }
        });
    }

    fn indicate_up(&self, module: ModuleId, chain: SimChain, resources: bool, ctx: PathContext) -> SimChain {
        const API: &str = "NdisFIndicateReceiveNetBufferLists";
        self.with_state_mut(|state| {
            self.call_checks(state, API, Some(module), Some(ctx));
            let mut back = SimChain::new();
            let Some((edge, ndis)) = data_path_edge(state, module, &chain, API) else { return back };
            let mut kept = Vec::new();
            for packet in chain {
                let misuse = "a send of the protocol, indicated up as a receive";
                let Some(record) = admit(state, module, &packet, API, ndis, Origin::ProtocolSend, misuse) else { continue };
                if record.lent && !resources {
                    let detail = format!("{API}: {} was lent with the resources flag and is passed up without it", packet.id);
                    state.violate(Rule::LentPacketKept, Some(module), Some(packet.id), detail);
                }
                let text = TraceText::indicated_frame(&packet.frame, resources);
                state.trace_data(Some(edge), TraceEvent::IndicateUp, Some(packet.id), text);
                let now = state.now;
                if let Some(e) = state.edge(edge) {
                    e.protocol.received.push(Delivered {
                        packet: packet.id,
                        frame: packet.frame.clone(),
                        time: now,
                        check_for_loopback: false,
                    });
                }
                if resources {
                    back.push(packet);
                } else {
                    state.ledger.move_to(packet.id, Holder::Protocol);
                    kept.push(packet);
                }
            }
            if !kept.is_empty() {
                match state.config.receive_return {
                    Delivery::After(delay) => state.schedule(delay, Deferred::ReturnReceives { edge, packets: kept }),
                    Delivery::Hold => {
                        if let Some(e) = state.edge(edge) {
                            e.protocol.holding.extend(kept);
                        }
                    }
                }
            }
            back
        })
    }

    fn return_receives(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        const API: &str = "NdisFReturnNetBufferLists";
        self.with_state_mut(|state| {
            self.call_checks(state, API, Some(module), Some(ctx));
            let edge = state.resolve(module, API);
            for packet in chain {
                let Some(record) = hand_off(state, module, &packet, API) else { continue };
                let wrong = match record.origin {
                    Origin::MiniportReceive if record.lent => {
                        let detail = format!("{API}: {} was lent with the resources flag: give it back by returning it from the receive callback", packet.id);
                        state.violate(Rule::LentPacketKept, Some(module), Some(packet.id), detail);
                        discard(state, packet.id);
                        continue;
                    }
                    Origin::MiniportReceive => None,
                    Origin::ProtocolSend => Some("a send of the protocol, returned to the miniport"),
                    Origin::FilterAllocated => Some("the filter's own packet, returned to the miniport (free it, return its parent)"),
                };
                if let Some(what) = wrong {
                    state.violate(Rule::WrongOwner, Some(module), Some(packet.id), format!("{API}: {} is {what}", packet.id));
                    discard(state, packet.id);
                    continue;
                }
                state.ledger.move_to(packet.id, Holder::Home);
                state.trace(edge, TraceEvent::ReturnToMiniport, Some(packet.id), String::new());
                if let Some(e) = edge.and_then(|edge| state.edge(edge)) {
                    e.miniport.returned += 1;
                }
            }
        });
    }
}

impl PauseCompletion for SimHal {
    fn pause_complete(&self, module: ModuleId) {
        const API: &str = "NdisFPauseComplete";
        self.with_state_mut(|state| {
            self.call_checks(state, API, Some(module), None);
            let Some(edge) = state.resolve(module, API) else { return };
            let Some(e) = state.edge(edge) else { return };
            let (ndis, pause) = (e.ndis, e.pause);
            if ndis != NdisState::Pausing || !matches!(pause, PauseTrack::Pending { .. }) {
                let detail = format!("{API} on {edge} with no pause pending (the module is {ndis})");
                state.violate(Rule::DoublePauseComplete, Some(module), None, detail);
                return;
            }
            state.check_quiet_for_pause(edge, Some(module), API);
            if let Some(e) = state.edge(edge) {
                e.ndis = NdisState::Paused;
                e.pause = PauseTrack::Idle;
            }
            state.trace(Some(edge), TraceEvent::Lifecycle, None, "pause completed (NdisFPauseComplete)");
        });
    }
}
