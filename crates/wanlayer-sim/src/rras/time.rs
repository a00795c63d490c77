//! Deferred work and virtual time: what the simulated drivers do later, delivered in order.

use wanlayer_core::hal::Timestamp;
use wanlayer_core::hook::Direction;

use super::{Rras, Scope};
use crate::edge::{Edge, IrqlPolicy};
use crate::filter_callbacks::FilterDriver;
use crate::ledger::{Holder, Origin};
use crate::sim_nbl::{SimChain, SimPacket};
use crate::trace::TraceEvent;
use crate::world::{Deferred, Delivery, OidState, SendCompletion, WorldState};

impl<F: FilterDriver> Rras<F> {
    // ----- time -----------------------------------------------------------------------------

    /// Delivers the next piece of deferred work, moving time to it. False when there is none.
    pub fn step(&self) -> bool {
        let Some(((at, _), work)) = self.hal.with_state_mut(|state| state.queue.pop_first()) else { return false };
        self.hal.with_state_mut(|state| state.now = state.now.max(at));
        self.deliver(work);
        self.hal.with_state_mut(WorldState::check_timers);
        true
    }

    /// Delivers deferred work until there is none (at most a million steps). Returns how many.
    pub fn run_until_idle(&self) -> usize {
        let mut steps = 0;
        while steps < 1_000_000 && self.step() {
            steps += 1;
        }
        steps
    }

    /// Moves virtual time `nanos` forward, delivering the work that falls due on the way.
    pub fn advance(&self, nanos: u64) {
        let target = Timestamp(self.now().0.saturating_add(nanos));
        while self.hal.with_state(|state| state.queue.keys().next().is_some_and(|(at, _)| *at <= target)) {
            self.step();
        }
        self.hal.with_state_mut(|state| {
            state.now = state.now.max(target);
            state.check_timers();
        });
    }

    /// Lets the miniport complete the sends it held.
    pub fn release_sends(&self, edge: Edge) {
        self.hal.with_state_mut(|state| {
            let packets = state.edge(edge).map(|e| std::mem::take(&mut e.miniport.holding)).unwrap_or_default();
            if !packets.is_empty() {
                state.schedule(0, Deferred::CompleteSends { edge, packets });
            }
        });
    }

    /// Lets the protocol return the receives it held.
    pub fn release_receives(&self, edge: Edge) {
        self.hal.with_state_mut(|state| {
            let packets = state.edge(edge).map(|e| std::mem::take(&mut e.protocol.holding)).unwrap_or_default();
            if !packets.is_empty() {
                state.schedule(0, Deferred::ReturnReceives { edge, packets });
            }
        });
    }

    /// Lets the miniport complete some of the sends it held, each as a chain of its own, in the
    /// order `picks` names them: each pick indexes what is still held, modulo its length. So
    /// completions come back in any order, and some may stay held.
    pub fn release_sends_picked(&self, edge: Edge, picks: &[usize]) {
        self.release_picked(edge, picks, Direction::Send);
    }

    /// Lets the protocol return some of the receives it held, as
    /// [`Rras::release_sends_picked`] does for sends.
    pub fn release_receives_picked(&self, edge: Edge, picks: &[usize]) {
        self.release_picked(edge, picks, Direction::Receive);
    }

    fn release_picked(&self, edge: Edge, picks: &[usize], direction: Direction) {
        self.hal.with_state_mut(|state| {
            for pick in picks {
                let Some(e) = state.edge(edge) else { return };
                let holding = match direction {
                    Direction::Send => &mut e.miniport.holding,
                    Direction::Receive => &mut e.protocol.holding,
                };
                if holding.is_empty() {
                    return;
                }
                let packet = holding.remove(pick % holding.len());
                let work = match direction {
                    Direction::Send => Deferred::CompleteSends { edge, packets: vec![packet] },
                    Direction::Receive => Deferred::ReturnReceives { edge, packets: vec![packet] },
                };
                state.schedule(0, work);
            }
        });
    }

    /// Lets the miniport complete the OID requests it held.
    pub fn release_oids(&self) {
        self.hal.with_state_mut(|state| {
            for (edge, request, status) in std::mem::take(&mut state.held_oids) {
                state.schedule(0, Deferred::CompleteOid { edge, request, status });
            }
        });
    }

    /// Changes when the miniport completes sends from now on.
    pub fn set_send_completion(&self, delivery: Delivery) {
        self.hal.with_state_mut(|state| state.config.send_completion = delivery);
    }

    /// Changes when the miniport completes OID requests from now on.
    pub fn set_oid_completion(&self, delivery: Delivery) {
        self.hal.with_state_mut(|state| state.config.oid_completion = delivery);
    }

    /// Changes when the protocol returns receives from now on.
    pub fn set_receive_return(&self, delivery: Delivery) {
        self.hal.with_state_mut(|state| state.config.receive_return = delivery);
    }

    /// Changes the IRQL policy from now on.
    pub fn set_irql_policy(&self, policy: IrqlPolicy) {
        self.hal.with_state_mut(|state| state.config.irql = policy);
    }

    fn deliver(&self, work: Deferred) {
        match work {
            Deferred::CompleteSends { edge, packets } => self.deliver_packets(edge, packets, Direction::Send),
            Deferred::ReturnReceives { edge, packets } => self.deliver_packets(edge, packets, Direction::Receive),
            Deferred::CompleteOid { edge, request, status } => {
                let module = self.hal.with_state_mut(|state| {
                    if let Some(record) = state.oids.get_mut(&request.id()) {
                        record.state = OidState::AtFilter;
                    }
                    state.trace(Some(edge), TraceEvent::OidFromMiniport, None, format!("{} {status}", request.id()));
                    state.edges.get(&edge).and_then(|e| e.module)
                });
                if let Some(module) = module {
                    let irql = self.next_irql();
                    let _scope = Scope::enter(&self.hal, "FilterOidRequestComplete", Some(edge), irql);
                    self.filter.oid_complete(module, request, status);
                }
            }
        }
    }

    /// The miniport completes sends (`Send`) or the protocol returns receives (`Receive`) to the
    /// filter, or straight to their owner when no module is attached any more.
    fn deliver_packets(&self, edge: Edge, mut packets: Vec<SimPacket>, direction: Direction) {
        let module = self.hal.with_state_mut(|state| {
            let send_status = state.config.send_status;
            let module = state.edges.get(&edge).and_then(|e| e.module);
            for packet in &mut packets {
                let event = match direction {
                    Direction::Send => {
                        packet.status = send_status;
                        TraceEvent::SendCompleteFromMiniport
                    }
                    Direction::Receive => TraceEvent::ReturnFromProtocol,
                };
                state.trace(Some(edge), event, Some(packet.id), String::new());
                state.ledger.move_to(packet.id, if module.is_some() { Holder::Filter } else { Holder::Home });
            }
            if let Some(e) = state.edge(edge) {
                match direction {
                    Direction::Send => e.miniport.completed += packets.len() as u64,
                    Direction::Receive => e.protocol.returned += packets.len() as u64,
                }
            }
            if module.is_none() && direction == Direction::Send {
                let now = state.now;
                let completions: Vec<SendCompletion> = packets
                    .iter()
                    .filter(|p| state.ledger.get(p.id).is_some_and(|r| r.origin == Origin::ProtocolSend))
                    .map(|p| SendCompletion { packet: p.id, status: p.status, time: now })
                    .collect();
                if let Some(e) = state.edge(edge) {
                    e.protocol.completions.extend(completions);
                }
            }
            module
        });
        let Some(module) = module else { return };
        let chain: SimChain = packets.into_iter().collect();
        let irql = self.next_irql();
        let ctx = Self::ctx(irql);
        match direction {
            Direction::Send => {
                let _scope = Scope::enter(&self.hal, "FilterSendNetBufferListsComplete", Some(edge), irql);
                self.filter.send_complete(module, chain, ctx);
            }
            Direction::Receive => {
                let _scope = Scope::enter(&self.hal, "FilterReturnNetBufferLists", Some(edge), irql);
                self.filter.return_receives(module, chain, ctx);
            }
        }
    }

}
