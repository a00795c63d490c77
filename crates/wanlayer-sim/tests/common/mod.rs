//! A minimal pass-through filter written directly against `SimHal`, correct unless told to make
//! one mistake ([`Fault`]): the one filter besides wanlayer.sys's own handlers (`DriverFilter`)
//! that the simulator runs, to test the simulator itself and to prove the verifier's rules the
//! driver's code path cannot break here. And the one scenario runner ([`run`]) every verifier
//! proof puts a filter through, whichever filter it is.
//!
//! Included by the simulator's tests (`crates/wanlayer-sim/tests/`) and by the verifier proofs of
//! `wanlayer-sim-driver` (`crates/wanlayer-sim/driver/tests/verifier_rules.rs`, by `#[path]`).

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use wanlayer_core::hal::{FrameSource, PacketChain, PacketIo, PathContext, PauseCompletion, Quiesce, Reclaimed};
use wanlayer_core::{ModuleId, NdisStatus};
use wanlayer_sim::{
    Edge, FilterAttachParameters, FilterDriver, Flow, Irql, LinkParams, OidDisposition, OidRequest, ReceiveOptions, Rras, SendOptions,
    SimChain, SimHal, SimPacket, StatusIndication, SECOND,
};

/// The one mistake a [`Broken`] filter makes: those the driver's code path cannot make here
/// (`driver/tests/verifier_rules.rs` says why), and two the simulator's own tests use.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// None: a correct pass-through filter.
    None,
    /// Completes every send completion twice.
    DoubleCompleteSends,
    /// Reads a packet after sending it down.
    ReadAfterSendDown,
    /// Sends a packet of its own down from `FilterPause` and completes the pause when it is back.
    OriginateDuringPause,
    /// Keeps received packets and pauses anyway.
    PauseWhileHolding,
    /// Returns pending from the pause and never completes it.
    PauseNeverCompletes,
    /// Passes the original OID request down.
    ForwardOriginalOid,
    /// Frees the clone and forgets the original.
    ForgetOid,
    /// Never passes status indications up.
    SwallowStatus,
    /// Allocates a packet at attach and never frees it.
    LeakPacketAtDetach,
    /// Waits at pause for a condition that never holds.
    WaitForever,
}

#[derive(Default)]
struct ModuleState {
    /// Paused (from attach until restart, and from pause on): sends are completed
    /// `NDIS_STATUS_PAUSED`, not passed down.
    paused: bool,
    pausing: bool,
    own_out: usize,
    kept: Vec<SimPacket>,
    leaked: Vec<SimPacket>,
}

/// A pass-through lightweight filter with one optional [`Fault`].
pub struct Broken {
    fault: Fault,
    hal: Option<SimHal>,
    next_module: Cell<u32>,
    modules: RefCell<BTreeMap<ModuleId, ModuleState>>,
}

impl Broken {
    pub fn new(fault: Fault) -> Self {
        Self { fault, hal: None, next_module: Cell::new(0), modules: RefCell::new(BTreeMap::new()) }
    }

    pub fn correct() -> Self {
        Self::new(Fault::None)
    }

    fn hal(&self) -> &SimHal {
        self.hal.as_ref().expect("driver entry ran")
    }

    fn with_module<R>(&self, module: ModuleId, f: impl FnOnce(&mut ModuleState) -> R) -> R {
        f(self.modules.borrow_mut().entry(module).or_default())
    }

    fn own_packet(&self, module: ModuleId) -> Option<SimPacket> {
        self.hal().allocate(module, FrameSource::Bytes(&[0x5a; 60])).ok()
    }

    /// The common send completion: pass the protocol's on, free our own (completing parents).
    fn finish_sends(&self, module: ModuleId, mut chain: SimChain, ctx: PathContext) {
        let hal = self.hal();
        let mut onward = SimChain::new();
        let mut own_back = 0;
        while let Some(packet) = chain.pop_front() {
            match hal.reclaim(packet) {
                Reclaimed::Foreign(packet) => onward.push(packet),
                Reclaimed::Own { parent, status } => {
                    own_back += 1;
                    if let Some(mut parent) = parent {
                        hal.set_status(&mut parent, status);
                        onward.push(parent);
                    }
                }
            }
        }
        if !onward.is_empty() {
            hal.complete_sends(module, onward, ctx);
        }
        let finished = self.with_module(module, |m| {
            m.own_out -= own_back;
            let done = m.pausing && m.own_out == 0 && own_back > 0;
            if done {
                m.pausing = false;
            }
            done
        });
        if finished {
            hal.pause_complete(module);
        }
    }
}

impl FilterDriver for Broken {
    fn driver_entry(&mut self, hal: &SimHal) -> Result<(), NdisStatus> {
        self.hal = Some(hal.clone());
        Ok(())
    }

    fn unload(&mut self) {}

    fn attach(&self, _params: &FilterAttachParameters) -> Result<ModuleId, NdisStatus> {
        let module = ModuleId(self.next_module.get() + 1);
        self.next_module.set(module.0);
        self.modules.borrow_mut().insert(module, ModuleState { paused: true, ..ModuleState::default() });
        if self.fault == Fault::LeakPacketAtDetach {
            if let Some(packet) = self.own_packet(module) {
                self.with_module(module, |m| m.leaked.push(packet));
            }
        }
        Ok(module)
    }

    fn detach(&self, module: ModuleId) {
        let state = self.modules.borrow_mut().remove(&module);
        if let Some(state) = state {
            if self.fault != Fault::LeakPacketAtDetach {
                for packet in state.leaked {
                    self.hal().free(packet);
                }
            }
        }
    }

    fn restart(&self, module: ModuleId) -> NdisStatus {
        self.with_module(module, |m| m.paused = false);
        NdisStatus::SUCCESS
    }

    fn pause(&self, module: ModuleId) -> NdisStatus {
        let hal = self.hal();
        self.with_module(module, |m| m.paused = true);
        match self.fault {
            Fault::PauseNeverCompletes => NdisStatus::PENDING,
            Fault::WaitForever => {
                hal.wait_until(&|| false);
                NdisStatus::SUCCESS
            }
            Fault::OriginateDuringPause => match self.own_packet(module) {
                Some(packet) => {
                    self.with_module(module, |m| {
                        m.own_out += 1;
                        m.pausing = true;
                    });
                    hal.send_down(module, [packet].into_iter().collect(), PathContext::default());
                    NdisStatus::PENDING
                }
                None => NdisStatus::SUCCESS,
            },
            _ => {
                let kept = self.with_module(module, |m| std::mem::take(&mut m.kept));
                if !kept.is_empty() && self.fault != Fault::PauseWhileHolding {
                    hal.return_receives(module, kept.into_iter().collect(), PathContext::default());
                } else if !kept.is_empty() {
                    self.with_module(module, |m| m.kept = kept);
                }
                NdisStatus::SUCCESS
            }
        }
    }

    fn send(&self, module: ModuleId, mut chain: SimChain, ctx: PathContext) {
        let hal = self.hal();
        if self.with_module(module, |m| m.paused) {
            let mut paused = SimChain::new();
            while let Some(mut packet) = chain.pop_front() {
                hal.set_status(&mut packet, NdisStatus::PAUSED);
                paused.push(packet);
            }
            hal.complete_sends(module, paused, ctx);
            return;
        }
        if self.fault == Fault::ReadAfterSendDown {
            let copy = chain.clone();
            hal.send_down(module, chain, ctx);
            for packet in &copy {
                hal.frame_len(packet);
            }
            return;
        }
        hal.send_down(module, chain, ctx);
    }

    fn send_complete(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        if self.fault == Fault::DoubleCompleteSends {
            let again = chain.clone();
            self.finish_sends(module, chain, ctx);
            self.hal().complete_sends(module, again, ctx);
            return;
        }
        self.finish_sends(module, chain, ctx);
    }

    fn cancel_send(&self, _module: ModuleId, _cancel_id: u64) {}

    fn receive(&self, module: ModuleId, chain: SimChain, resources: bool, ctx: PathContext) -> SimChain {
        if !resources && self.fault == Fault::PauseWhileHolding {
            self.with_module(module, |m| m.kept.extend(chain));
            return SimChain::new();
        }
        self.hal().indicate_up(module, chain, resources, ctx)
    }

    fn return_receives(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        self.hal().return_receives(module, chain, ctx);
    }

    fn status(&self, module: ModuleId, indication: &mut StatusIndication) {
        if self.fault != Fault::SwallowStatus {
            self.hal().indicate_status(module, indication);
        }
    }

    fn oid_request(&self, module: ModuleId, request: OidRequest) -> OidDisposition {
        let hal = self.hal();
        if self.fault == Fault::ForwardOriginalOid {
            return hal.oid_request(module, request);
        }
        let mut clone = match hal.allocate_clone_oid(module, &request) {
            Ok(clone) => clone,
            Err(_) => return OidDisposition::Complete(request, NdisStatus::RESOURCES),
        };
        clone.set_original(request);
        hal.oid_request(module, clone)
    }

    fn oid_complete(&self, module: ModuleId, mut request: OidRequest, status: NdisStatus) {
        let hal = self.hal();
        let original = request.take_original();
        hal.free_clone_oid(request.clone());
        let Some(mut original) = original else { return };
        request.copy_results_to(&mut original);
        if self.fault != Fault::ForgetOid {
            hal.oid_request_complete(module, original, status);
        }
    }
}

/// What a verifier proof puts a filter through.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scenario {
    /// Start, a link up, sends at both IRQLs, receives, line down, unload.
    Traffic,
    /// Start, a link up, receives with the resources flag, unload.
    Resources,
    /// Start, traffic, pause (waiting up to 11 s), restart, unload.
    PauseCycle,
    /// Start, a query and a set, 13 s (past the 12 s an OID request may take), unload.
    Oids,
    /// Start, a link up, a pause with nothing outstanding, 11 s, restart, unload.
    IdlePause,
    /// Start, a link up, pause, sends while paused, restart, unload.
    SendsWhilePaused,
    /// Start and unload.
    Lifecycle,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 7] = [
        Scenario::Traffic,
        Scenario::Resources,
        Scenario::PauseCycle,
        Scenario::Oids,
        Scenario::IdlePause,
        Scenario::SendsWhilePaused,
        Scenario::Lifecycle,
    ];
}

/// Runs `scenario` with `filter` on a fresh server, lets everything deferred happen, unloads, and
/// returns the server.
pub fn run<F: FilterDriver>(filter: F, scenario: Scenario) -> Rras<F> {
    let mut rras = Rras::new(filter);
    rras.start().expect("start");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let flow = Flow::udp(53, 40000);
    match scenario {
        Scenario::Traffic => {
            let frames = |n: u32| (0..n).map(|seq| link.frame(wanlayer_core::hook::Direction::Send, &flow, seq)).collect::<Vec<_>>();
            rras.send_with(Edge::WanIp, SendOptions { irql: Some(Irql::Passive), ..SendOptions::default() }, frames(2));
            rras.send_with(Edge::WanIp, SendOptions { irql: Some(Irql::Dispatch), ..SendOptions::default() }, frames(2));
            rras.receive_flow(&link, &flow, 3, ReceiveOptions::default());
            rras.run_until_idle();
            rras.link_down(&link);
        }
        Scenario::Resources => {
            rras.receive_flow(&link, &flow, 3, ReceiveOptions::resources());
            rras.run_until_idle();
        }
        Scenario::PauseCycle => {
            rras.send_flow(&link, &flow, 2);
            rras.receive_flow(&link, &flow, 2, ReceiveOptions::default());
            let _ = rras.pause(Edge::WanIp);
            rras.run_until_idle();
            rras.advance(11 * SECOND);
            let _ = rras.restart(Edge::WanIp);
        }
        Scenario::Oids => {
            rras.oid_query(Edge::WanIp, wanlayer_sim::oid::OID_GEN_MAXIMUM_FRAME_SIZE);
            rras.oid_set(Edge::WanIp, wanlayer_sim::oid::OID_GEN_CURRENT_PACKET_FILTER, vec![1, 0, 0, 0]);
            rras.run_until_idle();
            rras.advance(13 * SECOND);
        }
        Scenario::IdlePause => {
            let _ = rras.pause(Edge::WanIp);
            rras.run_until_idle();
            rras.advance(11 * SECOND);
            let _ = rras.restart(Edge::WanIp);
        }
        Scenario::SendsWhilePaused => {
            rras.pause_and_settle(Edge::WanIp).expect("pauses");
            rras.send_flow(&link, &flow, 2);
            rras.run_until_idle();
            rras.restart(Edge::WanIp).expect("restarts");
        }
        Scenario::Lifecycle => {}
    }
    rras.run_until_idle();
    rras.unload();
    rras
}
