//! The simulator itself: virtual time, deferred work, the ledger, pools, faults, framing, IRQL and
//! locks, lifecycle errors, the verifier's bookkeeping — with the simulator's pass-through test
//! filter (`tests/common`), wrapped where a test needs to watch or charge (wanlayer.sys's own
//! handlers run the simulator in `wanlayer-sim-driver`'s tests).

mod common;

use std::cell::RefCell;

use common::{Broken, Fault};
use wanlayer_core::hal::{Lock, Locking, Memory, PacketIo, PathContext, Pool, Timestamp, WriteError};
use wanlayer_core::hook::Direction;
use wanlayer_core::wire::FrameSummary;
use wanlayer_core::{ModuleId, NdisStatus};
use wanlayer_sim::ndis::local_address_for;
use wanlayer_sim::oid::OID_GEN_MAXIMUM_FRAME_SIZE;
use wanlayer_sim::trace::TraceEvent;
use wanlayer_sim::{
    Allocation, Delivery, Edge, FaultPlan, FilterAttachParameters, FilterDriver, Flow, Holder, Irql, IrqlPolicy, LifecycleError,
    LinkParams, NdisState, OidDisposition, OidRequest, Origin, ReceiveOptions, Rras, Rule, SimChain, SimHal, StatusBuffer,
    StatusIndication, MILLISECOND, SECOND,
};

fn started<F: FilterDriver>(rras: Rras<F>) -> Rras<F> {
    rras.start().expect("start");
    rras
}

#[test]
fn the_miniport_completes_sends_after_the_configured_delay() {
    let rras = started(Rras::builder().send_completion(Delivery::After(5 * MILLISECOND)).build(Broken::correct()));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &Flow::udp(1, 2), 1);
    rras.advance(4 * MILLISECOND);
    assert!(rras.protocol(Edge::WanIp).completions.is_empty());
    rras.advance(MILLISECOND);
    let completions = rras.protocol(Edge::WanIp).completions;
    assert_eq!((completions.len(), completions[0].time), (1, Timestamp(5 * MILLISECOND)));
    assert_eq!(rras.now(), Timestamp(5 * MILLISECOND));
}

#[test]
fn deferred_work_is_delivered_in_time_order_then_in_order_queued() {
    let rras = started(Rras::builder().send_completion(Delivery::After(5 * MILLISECOND)).build(Broken::correct()));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let slow = rras.send_flow(&link, &Flow::udp(1, 2), 1);
    rras.set_send_completion(Delivery::After(MILLISECOND));
    let fast = rras.send_flow(&link, &Flow::udp(1, 2), 1);
    let also_fast = rras.send_flow(&link, &Flow::udp(1, 2), 1);
    rras.run_until_idle();
    let order: Vec<_> = rras.protocol(Edge::WanIp).completions.iter().map(|c| c.packet).collect();
    assert_eq!(order, [fast[0], also_fast[0], slow[0]]);
}

#[test]
fn held_sends_receives_and_oids_wait_for_release() {
    let rras = Rras::builder()
        .send_completion(Delivery::Hold)
        .receive_return(Delivery::Hold)
        .oid_completion(Delivery::Hold)
        .build(Broken::correct());
    rras.start().unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &Flow::udp(1, 2), 2);
    rras.receive_flow(&link, &Flow::udp(1, 2), 3, ReceiveOptions::default());
    rras.oid_query(Edge::WanIp, OID_GEN_MAXIMUM_FRAME_SIZE);
    assert_eq!(rras.run_until_idle(), 0);
    assert_eq!((rras.miniport(Edge::WanIp).holding(), rras.protocol(Edge::WanIp).holding()), (2, 3));
    rras.release_sends(Edge::WanIp);
    rras.release_receives(Edge::WanIp);
    rras.release_oids();
    assert_eq!(rras.run_until_idle(), 3);
    let protocol = rras.protocol(Edge::WanIp);
    assert_eq!((protocol.completions.len(), protocol.oid_completions.len(), protocol.returned), (2, 1, 3));
    assert_eq!(rras.miniport(Edge::WanIp).returned, 3);
}

#[test]
fn step_reports_when_there_is_nothing_left_to_do() {
    let rras = started(Rras::new(Broken::correct()));
    assert!(!rras.step());
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &Flow::udp(1, 2), 3);
    assert!(rras.step());
    assert!(!rras.step(), "one completion for the whole chain");
    rras.advance(SECOND);
    assert_eq!(rras.now(), Timestamp(SECOND + MILLISECOND));
}

/// Records the IRQL and locks of every callback, and what writes into received packets do.
struct Probe {
    inner: Broken,
    hal: Option<SimHal>,
    seen: RefCell<Vec<(&'static str, Irql, u32)>>,
    writes: RefCell<Vec<Result<(), WriteError>>>,
}

impl Probe {
    fn new() -> Self {
        Self { inner: Broken::correct(), hal: None, seen: RefCell::new(Vec::new()), writes: RefCell::new(Vec::new()) }
    }
    fn saw(&self, callback: &'static str) {
        let hal = self.hal.as_ref().unwrap();
        self.seen.borrow_mut().push((callback, hal.irql(), hal.locks_held()));
    }
    fn irqls(&self, callback: &str) -> Vec<Irql> {
        self.seen.borrow().iter().filter(|(c, ..)| *c == callback).map(|(_, irql, _)| *irql).collect()
    }
}

impl FilterDriver for Probe {
    fn driver_entry(&mut self, hal: &SimHal) -> Result<(), NdisStatus> {
        self.hal = Some(hal.clone());
        self.inner.driver_entry(hal)
    }
    fn unload(&mut self) {
        self.inner.unload();
    }
    fn attach(&self, params: &FilterAttachParameters) -> Result<ModuleId, NdisStatus> {
        self.saw("attach");
        self.inner.attach(params)
    }
    fn detach(&self, module: ModuleId) {
        self.saw("detach");
        self.inner.detach(module);
    }
    fn restart(&self, module: ModuleId) -> NdisStatus {
        self.saw("restart");
        self.inner.restart(module)
    }
    fn pause(&self, module: ModuleId) -> NdisStatus {
        self.saw("pause");
        self.inner.pause(module)
    }
    fn send(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        self.saw("send");
        self.inner.send(module, chain, ctx);
    }
    fn send_complete(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        self.saw("send_complete");
        self.inner.send_complete(module, chain, ctx);
    }
    fn cancel_send(&self, module: ModuleId, cancel_id: u64) {
        self.inner.cancel_send(module, cancel_id);
    }
    fn receive(&self, module: ModuleId, mut chain: SimChain, resources: bool, ctx: PathContext) -> SimChain {
        self.saw("receive");
        let hal = self.hal.as_ref().unwrap();
        let mut packets: Vec<_> = std::iter::from_fn(|| chain.pop()).collect();
        if let Some(first) = packets.first_mut() {
            self.writes.borrow_mut().push(hal.write(first, 0, &[0xaa]));
            self.writes.borrow_mut().push(hal.write(first, 10_000, &[0xaa]));
        }
        self.inner.receive(module, packets.into_iter().collect(), resources, ctx)
    }
    fn return_receives(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        self.saw("return");
        self.inner.return_receives(module, chain, ctx);
    }
    fn status(&self, module: ModuleId, indication: &mut StatusIndication) {
        self.saw("status");
        self.inner.status(module, indication);
    }
    fn oid_request(&self, module: ModuleId, request: OidRequest) -> OidDisposition {
        self.saw("oid");
        self.inner.oid_request(module, request)
    }
    fn oid_complete(&self, module: ModuleId, request: OidRequest, status: NdisStatus) {
        self.saw("oid_complete");
        self.inner.oid_complete(module, request, status);
    }
}

#[test]
fn callbacks_run_at_the_policy_irql_and_the_lifecycle_at_passive() {
    let mut rras = started(Rras::builder().irql(IrqlPolicy::Dispatch).build(Probe::new()));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &Flow::udp(1, 2), 1);
    rras.receive_flow(&link, &Flow::udp(1, 2), 1, ReceiveOptions::default());
    rras.oid_query(Edge::WanIp, OID_GEN_MAXIMUM_FRAME_SIZE);
    rras.run_until_idle();
    rras.unload();
    let probe = rras.filter();
    for callback in ["send", "send_complete", "receive", "return", "status", "oid_complete"] {
        assert_eq!(probe.irqls(callback), [Irql::Dispatch], "{callback}");
    }
    for callback in ["attach", "restart", "pause", "detach", "oid"] {
        assert!(probe.irqls(callback).iter().all(|irql| *irql == Irql::Passive), "{callback}");
    }
    assert!(probe.seen.borrow().iter().all(|(_, _, locks)| *locks == 0));
    assert_eq!(rras.hal().irql(), Irql::Passive);
    rras.verifier().assert_clean();
}

#[test]
fn the_alternate_policy_exercises_both_levels() {
    let rras = started(Rras::new(Probe::new()));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    for _ in 0..4 {
        rras.send_flow(&link, &Flow::udp(1, 2), 1);
    }
    let irqls = rras.filter().irqls("send");
    assert!(irqls.contains(&Irql::Passive) && irqls.contains(&Irql::Dispatch), "{irqls:?}");
}

#[test]
fn writes_fail_on_read_only_buffers_and_outside_the_frame() {
    let rras = started(Rras::new(Probe::new()));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.receive_flow(&link, &Flow::udp(1, 2), 1, ReceiveOptions::read_only());
    rras.receive_flow(&link, &Flow::udp(1, 2), 1, ReceiveOptions::default());
    let writes = rras.filter().writes.borrow().clone();
    assert_eq!(writes, [Err(WriteError::ReadOnly), Err(WriteError::OutOfRange), Ok(()), Err(WriteError::OutOfRange)]);
    let received = rras.protocol(Edge::WanIp).received;
    assert_eq!((received[0].frame[0], received[1].frame[0]), (link.local.0[0], 0xaa));
}

#[test]
fn a_sim_lock_raises_the_irql_and_counts_itself_while_held() {
    let rras = Rras::new(Broken::correct());
    let hal = rras.hal();
    let outer = hal.new_lock(1u32);
    let inner = hal.new_lock(2u32);
    let seen = outer.with(|value| {
        *value += 1;
        let nested = inner.with(|_| (hal.irql(), hal.locks_held()));
        (hal.irql(), hal.locks_held(), nested)
    });
    assert_eq!(seen, (Irql::Dispatch, 1, (Irql::Dispatch, 2)));
    assert_eq!((hal.irql(), hal.locks_held()), (Irql::Passive, 0));
    assert_eq!(outer.with(|value| *value), 2);
}

#[test]
#[should_panic(expected = "recursively")]
fn a_sim_lock_entered_again_from_inside_deadlocks() {
    let rras = Rras::new(Broken::correct());
    let lock = rras.hal().new_lock(0u32);
    lock.with(|_| lock.with(|_| ()));
}

#[test]
fn frames_are_framed_as_ndiswan_frames_them() {
    let rras = started(Rras::new(Broken::correct()));
    let link = rras.link_up(Edge::WanIpv6, LinkParams::new());
    assert_eq!(link.local, local_address_for(link.remote));
    rras.send_flow(&link, &Flow::udp(547, 546), 1);
    rras.receive_flow(&link, &Flow::udp(547, 546), 1, ReceiveOptions::default());
    let sent = FrameSummary::parse(&rras.miniport(Edge::WanIpv6).sent[0].frame).unwrap();
    let received = FrameSummary::parse(&rras.protocol(Edge::WanIpv6).received[0].frame).unwrap();
    assert_eq!((sent.dst_mac, sent.src_mac), (link.remote, link.local));
    assert_eq!((received.dst_mac, received.src_mac), (link.local, link.remote));
    assert_eq!(sent.ip.map(|ip| (ip.src_addr, ip.dst_addr)), Some((link.server_ip, link.client_ip)));
    assert_eq!(received.ip.map(|ip| (ip.src_addr, ip.dst_addr)), Some((link.client_ip, link.server_ip)));
}

#[test]
fn the_ledger_follows_each_packet_home() {
    let rras = started(Rras::builder().receive_return(Delivery::After(MILLISECOND)).build(Broken::correct()));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let send = rras.send_flow(&link, &Flow::udp(1, 2), 1)[0];
    let receive = rras.receive_flow(&link, &Flow::udp(1, 2), 1, ReceiveOptions::default())[0];
    let record = rras.packet(send).unwrap();
    assert_eq!((record.origin, record.holder, record.edge), (Origin::ProtocolSend, Holder::Miniport, Edge::WanIp));
    assert_eq!(rras.packet(receive).map(|r| (r.origin, r.holder)), Some((Origin::MiniportReceive, Holder::Protocol)));
    let counts = rras.ledger_counts();
    assert_eq!((counts.created, counts.with_miniport, counts.with_protocol), (2, 1, 1));
    rras.run_until_idle();
    assert_eq!(rras.packet(send).map(|r| r.holder), Some(Holder::Home));
    assert_eq!(rras.packet(receive).map(|r| r.holder), Some(Holder::Home));
    assert!(rras.ledger_counts().to_string().starts_with("2 packets: 2 home"));
}

/// The pass-through filter charging pools as a filter with memory of its own does: its engine and
/// event queue at driver entry, a link at each line up (a line up it cannot charge for goes up
/// untracked), all released by line down and unload.
struct Charging {
    inner: Broken,
    hal: Option<SimHal>,
    links: RefCell<Vec<wanlayer_core::wire::MacAddress>>,
    untracked: RefCell<u32>,
}

impl Charging {
    const ENGINE: usize = 4096;
    const EVENTS: usize = 1024;
    const LINK: usize = 256;

    fn new() -> Self {
        Self { inner: Broken::correct(), hal: None, links: RefCell::new(Vec::new()), untracked: RefCell::new(0) }
    }
    fn hal(&self) -> &SimHal {
        self.hal.as_ref().expect("driver entry ran")
    }
}

impl FilterDriver for Charging {
    fn driver_entry(&mut self, hal: &SimHal) -> Result<(), NdisStatus> {
        hal.try_charge(Pool::Engine, Self::ENGINE).map_err(|_| NdisStatus::RESOURCES)?;
        if hal.try_charge(Pool::Event, Self::EVENTS).is_err() {
            hal.release(Pool::Engine, Self::ENGINE);
            return Err(NdisStatus::RESOURCES);
        }
        self.hal = Some(hal.clone());
        self.inner.driver_entry(hal)
    }
    fn unload(&mut self) {
        self.inner.unload();
        let hal = self.hal();
        for _ in self.links.borrow_mut().drain(..) {
            hal.release(Pool::Link, Self::LINK);
        }
        hal.release(Pool::Event, Self::EVENTS);
        hal.release(Pool::Engine, Self::ENGINE);
    }
    fn attach(&self, params: &FilterAttachParameters) -> Result<ModuleId, NdisStatus> {
        self.inner.attach(params)
    }
    fn detach(&self, module: ModuleId) {
        self.inner.detach(module);
    }
    fn restart(&self, module: ModuleId) -> NdisStatus {
        self.inner.restart(module)
    }
    fn pause(&self, module: ModuleId) -> NdisStatus {
        self.inner.pause(module)
    }
    fn send(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        self.inner.send(module, chain, ctx);
    }
    fn send_complete(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        self.inner.send_complete(module, chain, ctx);
    }
    fn cancel_send(&self, module: ModuleId, cancel_id: u64) {
        self.inner.cancel_send(module, cancel_id);
    }
    fn receive(&self, module: ModuleId, chain: SimChain, resources: bool, ctx: PathContext) -> SimChain {
        self.inner.receive(module, chain, resources, ctx)
    }
    fn return_receives(&self, module: ModuleId, chain: SimChain, ctx: PathContext) {
        self.inner.return_receives(module, chain, ctx);
    }
    fn status(&self, module: ModuleId, indication: &mut StatusIndication) {
        let hal = self.hal();
        match &indication.buffer {
            StatusBuffer::LineUp(line_up) => match hal.try_charge(Pool::Link, Self::LINK) {
                Ok(()) => self.links.borrow_mut().push(line_up.remote_address),
                Err(_) => *self.untracked.borrow_mut() += 1,
            },
            StatusBuffer::LineDown(line_down) => {
                let mut links = self.links.borrow_mut();
                if let Some(at) = links.iter().position(|remote| *remote == line_down.remote_address) {
                    links.remove(at);
                    hal.release(Pool::Link, Self::LINK);
                }
            }
            _ => {}
        }
        self.inner.status(module, indication);
    }
    fn oid_request(&self, module: ModuleId, request: OidRequest) -> OidDisposition {
        self.inner.oid_request(module, request)
    }
    fn oid_complete(&self, module: ModuleId, request: OidRequest, status: NdisStatus) {
        self.inner.oid_complete(module, request, status);
    }
}

#[test]
fn pools_are_tracked_and_all_released_at_unload() {
    let mut rras = started(Rras::new(Charging::new()));
    let usage = |rras: &Rras<Charging>, pool| rras.pools().into_iter().find(|(p, _)| *p == pool).unwrap().1;
    assert!(usage(&rras, Pool::Engine).current > 0 && usage(&rras, Pool::Event).current > 0);
    assert_eq!(usage(&rras, Pool::Link).current, 0);
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    assert!(usage(&rras, Pool::Link).current > 0);
    rras.link_down(&link);
    assert_eq!(usage(&rras, Pool::Link).current, 0);
    rras.unload();
    for (pool, used) in rras.pools() {
        assert_eq!(used.current, 0, "{pool:?}");
    }
    assert!(usage(&rras, Pool::Link).peak > 0 && usage(&rras, Pool::Engine).releases > 0);
    assert!(!rras.is_loaded());
    rras.verifier().assert_clean();
}

#[test]
fn fault_plans_count_attempts_deterministically_and_can_heal() {
    let attempts = |plan: FaultPlan| {
        let rras = Rras::builder().faults(plan).build(Charging::new());
        let _ = rras.start();
        rras.link_up(Edge::WanIp, LinkParams::new());
        let untracked = *rras.filter().untracked.borrow();
        (rras.faults().attempt_log(), rras.faults().failures(), untracked)
    };
    let (clean, none, _) = attempts(FaultPlan::new());
    assert_eq!(clean, [Allocation::Charge(Pool::Engine), Allocation::Charge(Pool::Event), Allocation::Charge(Pool::Link)]);
    assert!(none.is_empty());
    let (again, failed, untracked) = attempts(FaultPlan::new().fail_nth(3));
    assert_eq!(again, clean[..3], "the same attempts up to the failure");
    assert_eq!((failed, untracked), (vec![(3, Allocation::Charge(Pool::Link))], 1));
    let (entry, failed, _) = attempts(FaultPlan::new().fail_nth(2));
    assert_eq!((entry, failed), (clean[..2].to_vec(), vec![(2, Allocation::Charge(Pool::Event))]), "a failed driver entry: nothing after it");
    let rras = started(Rras::new(Charging::new()));
    rras.faults().fail_pool(Pool::Link);
    rras.link_up(Edge::WanIp, LinkParams::new());
    rras.faults().heal();
    rras.link_up(Edge::WanIp, LinkParams::new());
    assert_eq!(*rras.filter().untracked.borrow(), 1);
    assert_eq!(rras.hal().pool_usage(Pool::Link).refused, 1);
}

#[test]
fn lifecycle_steps_in_the_wrong_state_are_refused() {
    let rras = Rras::new(Broken::correct());
    assert_eq!(rras.restart(Edge::WanIp), Err(LifecycleError::WrongState { edge: Edge::WanIp, state: NdisState::Detached }));
    assert_eq!(rras.attach(Edge::Ethernet), Err(LifecycleError::NoSuchEdge(Edge::Ethernet)));
    rras.attach(Edge::WanIp).unwrap();
    assert_eq!(rras.state(Edge::WanIp), NdisState::Paused);
    assert!(matches!(rras.attach(Edge::WanIp), Err(LifecycleError::WrongState { state: NdisState::Paused, .. })));
    assert!(rras.pause(Edge::WanIp).is_err());
    rras.restart(Edge::WanIp).unwrap();
    assert_eq!(rras.state(Edge::WanIp), NdisState::Running);
    assert_eq!(LifecycleError::PauseStuck(Edge::WanIpv6).to_string(), "the pause of wan-ipv6 never completed");
    rras.verifier().assert_clean();
}

#[test]
fn nothing_is_sent_through_an_edge_without_a_module() {
    let rras = Rras::new(Broken::correct());
    assert!(rras.send(Edge::WanIp, [vec![0; 60]]).is_empty());
    assert!(rras.receive(Edge::WanIp, [vec![0; 60]]).is_empty());
    assert!(rras.oid_query(Edge::WanIp, OID_GEN_MAXIMUM_FRAME_SIZE).is_none());
    assert_eq!(rras.ledger_counts().created, 0);
    assert!(rras.log().iter().any(|line| line.contains("no filter module")));
}

#[test]
fn what_completes_after_detach_goes_straight_to_its_owner() {
    let mut rras = started(Rras::builder().send_completion(Delivery::Hold).receive_return(Delivery::Hold).build(Broken::correct()));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let sent = rras.send_flow(&link, &Flow::udp(1, 2), 2);
    rras.receive_flow(&link, &Flow::udp(1, 2), 2, ReceiveOptions::default());
    rras.detach(Edge::WanIp).unwrap();
    rras.release_sends(Edge::WanIp);
    rras.release_receives(Edge::WanIp);
    rras.run_until_idle();
    let protocol = rras.protocol(Edge::WanIp);
    assert!(sent.iter().all(|id| protocol.completion_of(*id) == Some(NdisStatus::SUCCESS)));
    assert_eq!(rras.ledger_counts().home, 4);
    rras.unload();
    rras.verifier().assert_clean();
}

#[test]
fn the_verifier_collects_reports_and_can_be_emptied() {
    let rras = started(Rras::new(Broken::new(Fault::SwallowStatus)));
    rras.link_up(Edge::WanIp, LinkParams::new());
    let verifier = rras.verifier();
    assert_eq!((verifier.count(Rule::StatusSwallowed), verifier.rules()), (1, vec![Rule::StatusSwallowed]));
    assert!(verifier.report().contains("StatusSwallowed (module 1.0)"));
    let taken = verifier.take();
    assert_eq!(taken[0].rule, Rule::StatusSwallowed);
    assert!(verifier.is_clean());
    assert_eq!(verifier.report(), "verifier: clean");
    assert!(rras.trace().iter().any(|r| r.event == TraceEvent::Violation(Rule::StatusSwallowed)));
}

#[test]
#[should_panic(expected = "StatusSwallowed")]
fn assert_clean_panics_listing_what_was_caught() {
    let rras = started(Rras::new(Broken::new(Fault::SwallowStatus)));
    rras.link_up(Edge::WanIp, LinkParams::new());
    rras.verifier().assert_clean();
}

#[test]
fn a_late_pause_is_reported_once() {
    let rras = started(Rras::new(Broken::new(Fault::PauseNeverCompletes)));
    assert_eq!(rras.pause(Edge::WanIp), Ok(wanlayer_sim::PauseOutcome::Pending));
    rras.advance(9 * SECOND);
    assert!(rras.verifier().is_clean());
    rras.advance(2 * SECOND);
    rras.advance(30 * SECOND);
    assert_eq!(rras.verifier().count(Rule::NdisFilterTimedPauseComplete), 1);
    assert_eq!(rras.detach(Edge::WanIp), Err(LifecycleError::PauseStuck(Edge::WanIp)));
    assert_eq!(rras.pause_and_settle(Edge::WanIpv6), Err(LifecycleError::PauseStuck(Edge::WanIpv6)));
}

#[test]
fn the_protocol_fills_in_line_ups_and_learns_the_link() {
    let rras = started(Rras::new(Broken::correct()));
    let link = rras.link_up(Edge::WanIp, LinkParams::new().mtu(1450));
    let protocol = rras.protocol(Edge::WanIp);
    let known = &protocol.links[&link.remote];
    assert_eq!((known.local, known.total_size, known.device_name.as_str()), (link.local, 1450, link.device_name.as_str()));
    let record = &protocol.statuses[0];
    assert_eq!(record.indicated_total_size, Some(1450));
    let wanlayer_sim::StatusBuffer::LineUp(line_up) = &record.indication.buffer else { panic!("a line up") };
    assert_eq!((line_up.local_address, line_up.device_name_string()), (link.local, link.device_name.clone()));
    assert_eq!(rras.links(), std::slice::from_ref(&link));
    rras.link_down(&link);
    assert!(rras.links().is_empty() && rras.protocol(Edge::WanIp).links.is_empty());
}

#[test]
fn the_trace_shows_each_crossing_of_a_packet_in_order() {
    let rras = started(Rras::new(Broken::correct()));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let id = rras.send_flow(&link, &Flow::tcp(80, 1000), 1)[0];
    let received = rras.receive_flow(&link, &Flow::tcp(80, 1000), 1, ReceiveOptions::resources())[0];
    rras.run_until_idle();
    let events = |packet| rras.trace().into_iter().filter(|r| r.packet == Some(packet)).map(|r| r.event).collect::<Vec<_>>();
    assert_eq!(
        events(id),
        [TraceEvent::ProtocolSend, TraceEvent::SendDown, TraceEvent::SendCompleteFromMiniport, TraceEvent::CompleteToProtocol]
    );
    assert_eq!(
        events(received),
        [TraceEvent::ReceiveFromMiniport { resources: true }, TraceEvent::IndicateUp, TraceEvent::LentBack]
    );
    let line = rras.log().into_iter().find(|line| line.contains("filter → miniport  send")).unwrap();
    assert!(line.contains("TCP") && line.contains(":80 → ") && line.contains(&id.to_string()), "{line}");
}

#[test]
fn the_summary_has_a_line_per_edge() {
    let rras = started(Rras::builder().ethernet().build(Broken::correct()));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &Flow::udp(1, 2), 2);
    let summary = rras.summary();
    assert_eq!(summary.edges.iter().map(|e| e.edge).collect::<Vec<_>>(), Edge::ALL);
    assert_eq!((summary.edges[0].protocol_sent, summary.edges[0].miniport_sent, summary.edges[0].links), (2, 2, 1));
    let text = summary.to_string();
    assert!(text.contains("ethernet") && text.contains("WLen"), "{text}");
    assert_eq!(text.lines().count(), 8);
}

#[test]
fn link_frames_differ_by_sequence_and_direction() {
    let rras = started(Rras::new(Broken::correct()));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let flow = Flow::udp(53, 4000);
    assert_ne!(link.frame(Direction::Send, &flow, 0), link.frame(Direction::Send, &flow, 1));
    assert_ne!(link.frame(Direction::Send, &flow, 0), link.frame(Direction::Receive, &flow, 0));
    let second = rras.link_up(Edge::WanIp, LinkParams::new());
    assert_ne!((link.remote, link.client_ip), (second.remote, second.client_ip));
    assert_eq!(second.index, link.index + 1);
}
