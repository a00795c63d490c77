//! The simulator's filter scenarios through the simulated RRAS server, with wanlayer.sys's own
//! handlers as the filter (`DriverFilter`: the driver built for the host over the kernel model):
//! every scenario must satisfy the verifier. Memory runs out where the kernel model can make it run
//! out: the driver's kernel allocations (`low_resources::plan`) and the frames of its own NBLs
//! (`refuse_pool_tag(FRAME_TAG)`). The engine's own memory — and with it everything `DriverEntry`
//! allocates — is the driver's Rust heap, on the host the test process's allocator: its failures
//! are the engine's unit tests' and the emulator's low-resources sweep's (`driver/emulator`), where
//! that heap is kernel pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use wanlayer_core::ReinjectVerdict;
use wanlayer_core::event::Event;
use wanlayer_core::hal::{PathContext, Pool};
use wanlayer_core::hook::{Direction, Hook, PacketContext, Ticket, Verdict};
use wanlayer_core::link::LinkSummary;
use wanlayer_core::module::ModuleKind;
use wanlayer_core::stats::DropReason;
use wanlayer_core::wire::{EtherType, Ipv4Address, MacAddress};
use wanlayer_core::{AttachParams, NdisStatus};
use wanlayer_kernel_model::low_resources;
use wanlayer_sim::oid::{OID_GEN_CURRENT_PACKET_FILTER, OID_GEN_MAXIMUM_FRAME_SIZE};
use wanlayer_sim::traffic::ethernet_frame;
use wanlayer_sim::world::NDIS_STATUS_NOT_SUPPORTED;
use wanlayer_sim::{
    Delivery, Edge, EngineFilter, Flow, Irql, IrqlPolicy, LinkParams, NdisState, PauseOutcome, ReceiveOptions, Rras, SendOptions, SimLink,
    StatusBuffer, StatusIndication, SECOND,
};

use wanlayer_sim_driver::{DriverFilter, ENGINE_CONFIG, FRAME_TAG};

fn started() -> Rras<DriverFilter> {
    let rras = Rras::new(DriverFilter::new());
    rras.start().expect("start");
    rras
}

fn finish(mut rras: Rras<DriverFilter>) {
    rras.run_until_idle();
    rras.unload();
    rras.verifier().assert_clean();
    let counts = rras.ledger_counts();
    assert_eq!(counts.home, counts.created, "{counts}");
    assert!(rras.pools().iter().all(|(_, usage)| usage.current == 0));
    assert!(Pool::ALL.iter().all(|pool| rras.filter().pool_charged(*pool) == 0));
}

/// Takes every packet of one direction, keeping the tickets.
#[derive(Default)]
struct Taker {
    direction: Option<Direction>,
    tickets: Mutex<Vec<Ticket>>,
}

impl Taker {
    fn new(direction: Direction) -> Arc<Self> {
        Arc::new(Self { direction: Some(direction), tickets: Mutex::new(Vec::new()) })
    }
    fn take(&self, packet: &mut PacketContext<'_>) -> Verdict {
        if Some(packet.direction()) != self.direction {
            return Verdict::Pass;
        }
        self.tickets.lock().unwrap().push(packet.ticket());
        Verdict::Take
    }
    fn tickets(&self) -> Vec<Ticket> {
        std::mem::take(&mut self.tickets.lock().unwrap())
    }
}

impl Hook for Taker {
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        self.take(packet)
    }
    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        self.take(packet)
    }
}

/// Edits: writes `value` at `offset` of receives, replaces sends with `replacement`, lowers MTUs.
#[derive(Default)]
struct Editor {
    write_at: Option<(usize, u8)>,
    replacement: Option<Vec<u8>>,
    lower_mtu: Option<u32>,
    drop_receives: bool,
    edit_errors: AtomicUsize,
}

impl Hook for Editor {
    fn on_line_up(&self, _link: &LinkSummary) -> Option<u32> {
        self.lower_mtu
    }
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        match &self.replacement {
            Some(frame) => match packet.replace(frame) {
                Ok(()) => Verdict::Modify,
                Err(_) => {
                    self.edit_errors.fetch_add(1, Ordering::Relaxed);
                    Verdict::Pass
                }
            },
            None => Verdict::Pass,
        }
    }
    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        if self.drop_receives {
            return Verdict::Drop;
        }
        match self.write_at {
            Some((offset, value)) => match packet.write(offset, &[value]) {
                Ok(()) => Verdict::Modify,
                Err(_) => {
                    self.edit_errors.fetch_add(1, Ordering::Relaxed);
                    Verdict::Pass
                }
            },
            None => Verdict::Pass,
        }
    }
}

fn send_frames(link: &SimLink, count: u32) -> Vec<Vec<u8>> {
    (0..count).map(|seq| link.frame(Direction::Send, &Flow::udp(53, 40000), seq)).collect()
}

#[test]
fn the_full_lifecycle_with_traffic_both_ways_on_both_edges_is_clean() {
    let rras = started();
    let v4 = rras.link_up(Edge::WanIp, LinkParams::new());
    let v6 = rras.link_up(Edge::WanIpv6, LinkParams::new().mtu(1280));
    for link in [&v4, &v6] {
        for flow in [Flow::udp(53, 40000), Flow::tcp(443, 50000).payload(1200)] {
            rras.send_flow(link, &flow, 4);
            rras.receive_flow(link, &flow, 4, ReceiveOptions::default());
        }
    }
    rras.run_until_idle();
    for (edge, link) in [(Edge::WanIp, &v4), (Edge::WanIpv6, &v6)] {
        let (protocol, miniport) = (rras.protocol(edge), rras.miniport(edge));
        let expected: Vec<Vec<u8>> = [Flow::udp(53, 40000), Flow::tcp(443, 50000).payload(1200)]
            .iter()
            .flat_map(|flow| (0..4).map(move |seq| link.frame(Direction::Send, flow, seq)))
            .collect();
        assert_eq!(miniport.sent_frames(), expected, "frames go down unchanged on {edge}");
        assert_eq!(protocol.completions.len(), 8);
        assert!(protocol.completions.iter().all(|c| c.status == NdisStatus::SUCCESS));
        assert_eq!(protocol.received.len(), 8);
        assert_eq!((protocol.returned, miniport.returned), (8, 8));
        let counts = rras.counts(edge).unwrap().counts;
        assert_eq!((counts.send.traffic.packets, counts.receive.traffic.packets, counts.line_ups), (8, 8, 1));
        assert_eq!(counts.send.unmatched + counts.receive.unmatched, 0);
    }
    rras.link_down(&v4);
    rras.link_down(&v6);
    rras.pause_and_settle(Edge::WanIp).unwrap();
    rras.detach(Edge::WanIp).unwrap();
    assert_eq!(rras.state(Edge::WanIp), NdisState::Detached);
    finish(rras);
}

#[test]
fn sends_while_paused_are_completed_with_ndis_status_paused() {
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.pause_and_settle(Edge::WanIp).unwrap();
    let ids = rras.send(Edge::WanIp, send_frames(&link, 3));
    let protocol = rras.protocol(Edge::WanIp);
    assert!(ids.iter().all(|id| protocol.completion_of(*id) == Some(NdisStatus::PAUSED)));
    assert!(rras.miniport(Edge::WanIp).sent.is_empty());
    let counts = rras.counts(Edge::WanIp).unwrap().counts;
    assert_eq!(counts.send.drops_by_reason[DropReason::Paused as usize], 3);
    finish(rras);
}

#[test]
fn a_pause_waits_for_replaced_sends_and_sends_meanwhile_are_completed_paused() {
    let rras = Rras::builder().send_completion(Delivery::Hold).build(DriverFilter::new());
    rras.start().unwrap();
    let replacement = ethernet_frame(MacAddress([0x3c, 1, 0x20, 0x52, 0x41, 0x53]), MacAddress([2; 6]), EtherType::Ipv4, 50);
    let editor = Arc::new(Editor { replacement: Some(replacement.clone()), ..Editor::default() });
    rras.engine().add_hook("replace", 10, editor).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let first = rras.send(Edge::WanIp, send_frames(&link, 2));
    assert_eq!(rras.miniport(Edge::WanIp).sent_frames(), vec![replacement.clone(), replacement]);
    assert!(rras.protocol(Edge::WanIp).completions.is_empty(), "originals wait for their copies");
    assert_eq!(rras.pause(Edge::WanIp), Ok(PauseOutcome::Pending));
    let during = rras.send(Edge::WanIp, send_frames(&link, 1));
    assert_eq!(rras.protocol(Edge::WanIp).completion_of(during[0]), Some(NdisStatus::PAUSED));
    rras.advance(5 * SECOND);
    assert_eq!(rras.state(Edge::WanIp), NdisState::Pausing);
    rras.release_sends(Edge::WanIp);
    rras.run_until_idle();
    assert_eq!(rras.state(Edge::WanIp), NdisState::Paused);
    let protocol = rras.protocol(Edge::WanIp);
    assert!(first.iter().all(|id| protocol.completion_of(*id) == Some(NdisStatus::SUCCESS)));
    finish(rras);
}

#[test]
fn the_status_of_a_replaced_send_is_the_status_its_copy_completed_with() {
    let rras = Rras::builder().send_status(NdisStatus::FAILURE).build(DriverFilter::new());
    rras.start().unwrap();
    let editor = Arc::new(Editor { replacement: Some(vec![0xab; 60]), ..Editor::default() });
    rras.engine().add_hook("replace", 10, editor).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let ids = rras.send(Edge::WanIp, send_frames(&link, 1));
    rras.run_until_idle();
    assert_eq!(rras.protocol(Edge::WanIp).completion_of(ids[0]), Some(NdisStatus::FAILURE));
    finish(rras);
}

#[test]
fn resources_receives_are_indicated_one_at_a_time_and_lent_back_before_the_callback_returns() {
    let rras = started();
    let link = rras.link_up(Edge::WanIpv6, LinkParams::new());
    let ids = rras.receive_flow(&link, &Flow::tcp(80, 1234), 4, ReceiveOptions::resources());
    let miniport = rras.miniport(Edge::WanIpv6);
    assert_eq!(miniport.returned, 4, "given back before anything else ran");
    assert_eq!(rras.protocol(Edge::WanIpv6).received.iter().map(|d| d.packet).collect::<Vec<_>>(), ids);
    let lent_back = rras.trace().iter().filter(|r| r.event == wanlayer_sim::trace::TraceEvent::LentBack).count();
    assert_eq!(lent_back, 4);
    finish(rras);
}

#[test]
fn a_read_only_receive_edited_by_a_hook_is_copied_and_the_copy_goes_up() {
    let rras = started();
    rras.engine().add_hook("ttl", 10, Arc::new(Editor { write_at: Some((22, 7)), ..Editor::default() })).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let ids = rras.receive_flow(&link, &Flow::udp(53, 4000), 2, ReceiveOptions::read_only());
    let protocol = rras.protocol(Edge::WanIp);
    assert_eq!(protocol.received.len(), 2);
    assert!(protocol.received.iter().all(|d| d.frame[22] == 7 && !ids.contains(&d.packet)), "copies, edited");
    assert_eq!(rras.counts(Edge::WanIp).unwrap().counts.receive.modified, 2);
    rras.run_until_idle();
    assert_eq!(rras.miniport(Edge::WanIp).returned, 2, "the originals go back to the miniport");
    finish(rras);
}

#[test]
fn a_read_only_receive_lent_with_resources_and_edited_is_copied_and_lent_back_at_once() {
    let rras = started();
    rras.engine().add_hook("ttl", 10, Arc::new(Editor { write_at: Some((22, 9)), ..Editor::default() })).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let options = ReceiveOptions { resources: true, read_only: true, irql: None };
    rras.receive_flow(&link, &Flow::udp(53, 4000), 3, options);
    assert_eq!(rras.miniport(Edge::WanIp).returned, 3);
    assert!(rras.protocol(Edge::WanIp).received.iter().all(|d| d.frame[22] == 9));
    finish(rras);
}

#[test]
fn a_writable_receive_edited_by_a_hook_is_copied_too_and_the_copy_goes_up() {
    // wanlayer.sys writes only frames it allocated: a receive the miniport lets it write is
    // edited in a copy all the same, as a read-only one is.
    let rras = started();
    rras.engine().add_hook("ttl", 10, Arc::new(Editor { write_at: Some((22, 5)), ..Editor::default() })).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let ids = rras.receive_flow(&link, &Flow::udp(53, 4000), 1, ReceiveOptions::default());
    let received = rras.protocol(Edge::WanIp).received;
    assert_eq!(received.len(), 1);
    assert!(received[0].packet != ids[0] && received[0].frame[22] == 5, "a copy, edited");
    assert_eq!(rras.counts(Edge::WanIp).unwrap().counts.receive.modified, 1);
    rras.run_until_idle();
    assert_eq!(rras.miniport(Edge::WanIp).returned, 1, "the original goes back to the miniport");
    finish(rras);
}

#[test]
fn a_hook_lowers_the_mtu_the_protocol_is_told() {
    let rras = started();
    rras.engine().add_hook("mtu", 10, Arc::new(Editor { lower_mtu: Some(1300), ..Editor::default() })).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new().mtu(1400));
    assert_eq!(link.reported_total_size, Some(1300));
    assert_eq!(rras.protocol(Edge::WanIp).links[&link.remote].total_size, 1300);
    let module = rras.module(Edge::WanIp).unwrap();
    let sizes = rras.engine().with_link(module, &link.remote, |l| (l.summary().maximum_total_size, l.summary().reported_total_size));
    assert_eq!(sizes, Some((1400, 1300)));
    let v6 = rras.link_up(Edge::WanIpv6, LinkParams::new().mtu(1400));
    assert_eq!(v6.reported_total_size, Some(1300));
    finish(rras);
}

#[test]
fn a_hook_cannot_lower_the_mtu_below_the_minimum_of_the_ip_version() {
    let rras = started();
    rras.engine().add_hook("mtu", 10, Arc::new(Editor { lower_mtu: Some(500), ..Editor::default() })).unwrap();
    let v4 = rras.link_up(Edge::WanIp, LinkParams::new());
    let v6 = rras.link_up(Edge::WanIpv6, LinkParams::new());
    assert_eq!((v4.reported_total_size, v6.reported_total_size), (Some(500), Some(1280)));
    finish(rras);
}

#[test]
fn an_attach_beyond_the_engine_module_slots_fails_cleanly() {
    let rras = Rras::new(DriverFilter::new());
    rras.attach(Edge::WanIp).unwrap();
    // The engine's other slots taken outside the driver's handlers, so that the next FilterAttach
    // finds none.
    let mut taken = Vec::new();
    while let Ok(module) = rras.engine().attach(AttachParams { kind: ModuleKind::PassThrough, mac_address: MacAddress([2; 6]), if_index: 99 }) {
        taken.push(module);
    }
    assert_eq!(taken.len() + 1, ENGINE_CONFIG.max_modules);
    assert_eq!(rras.attach(Edge::WanIpv6), Err(wanlayer_sim::LifecycleError::Failed(NdisStatus::RESOURCES)));
    assert_eq!(rras.state(Edge::WanIpv6), NdisState::Detached);
    for module in taken {
        rras.engine().detach(module).unwrap();
    }
    rras.restart_all().unwrap();
    // Nothing reads the engine's own event queue here: past its room it loses events instead of
    // growing.
    for _ in 0..=ENGINE_CONFIG.event_capacity / 2 {
        let link = rras.link_up(Edge::WanIp, LinkParams::new());
        rras.link_down(&link);
    }
    assert!(rras.engine().lost_events() > 0, "a full event queue loses events instead of growing");
    finish(rras);
}

#[test]
fn the_line_up_keeps_what_the_protocol_filled_in() {
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new().speed_bps(2_000_000));
    let module = rras.module(Edge::WanIp).unwrap();
    let seen = rras.engine().with_link(module, &link.remote, |l| {
        (l.summary().local_address, l.device_name().collect::<String>(), l.best_effort_ipv4(), l.link_speed_bps())
    });
    let Some((local, device, ipv4, speed)) = seen else { panic!("link not tracked") };
    assert_eq!((local, device.as_str(), speed), (link.local, link.device_name.as_str(), 2_000_000));
    assert_eq!(ipv4.map(wanlayer_core::wire::IpAddress::Ipv4), Some(link.client_ip));
    finish(rras);
}

#[test]
fn malformed_wan_status_is_counted_and_passed_up_untouched() {
    let rras = started();
    for code in [NdisStatus::WAN_LINE_UP, NdisStatus::WAN_LINE_DOWN] {
        let seen = rras.indicate_status(Edge::WanIp, StatusIndication::new(code, StatusBuffer::Raw(vec![1, 2, 3])));
        assert_eq!(seen.map(|record| record.indication.buffer), Some(StatusBuffer::Raw(vec![1, 2, 3])));
    }
    let other = StatusIndication::new(NdisStatus::WAN_FRAGMENT, StatusBuffer::Raw(vec![0; 8]));
    assert!(rras.indicate_status(Edge::WanIp, other).is_some());
    assert_eq!(rras.counts(Edge::WanIp).unwrap().counts.malformed_status, 2);
    finish(rras);
}

#[test]
fn a_line_down_forgets_the_link_and_an_unknown_one_is_counted() {
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let module = rras.module(Edge::WanIp).unwrap();
    assert!(rras.engine().with_link(module, &link.remote, |_| ()).is_some());
    rras.link_down(&link);
    assert!(rras.engine().with_link(module, &link.remote, |_| ()).is_none());
    assert!(rras.protocol(Edge::WanIp).links.is_empty());
    rras.link_down(&link);
    let counts = rras.counts(Edge::WanIp).unwrap().counts;
    assert_eq!((counts.line_downs, counts.line_downs_unknown), (2, 1));
    finish(rras);
}

#[test]
fn an_updated_line_up_keeps_one_link() {
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let module = rras.module(Edge::WanIp).unwrap();
    let mut update = wanlayer_sim::WanLineUp {
        link_speed_100bps: 5,
        maximum_total_size: 1200,
        quality: wanlayer_core::link::WanQuality::Raw,
        send_window: 1,
        remote_address: link.remote,
        local_address: MacAddress([0; 6]),
        protocol_type: EtherType::Ipv4,
        device_name: Vec::new(),
        protocol_buffer: vec![0; 10],
    };
    update.link_speed_100bps = 10;
    rras.indicate_status(Edge::WanIp, StatusIndication::new(NdisStatus::WAN_LINE_UP, StatusBuffer::LineUp(update)));
    assert_eq!(rras.link_report(Edge::WanIp).rows.len(), 1);
    assert_eq!(rras.engine().with_link(module, &link.remote, |l| (l.line_ups(), l.summary().maximum_total_size)), Some((2, 1200)));
    finish(rras);
}

#[test]
fn the_ethernet_adapter_is_passed_through_untouched() {
    let rras = Rras::builder().ethernet().build(DriverFilter::new());
    rras.start().unwrap();
    let module = rras.module(Edge::Ethernet).unwrap();
    assert_eq!(rras.engine().module_info(module).map(|info| info.kind), Some(ModuleKind::PassThrough));
    let frame = ethernet_frame(MacAddress::BROADCAST, Edge::Ethernet.mac_address(), EtherType::Arp, 28);
    rras.send(Edge::Ethernet, [frame.clone()]);
    rras.receive(Edge::Ethernet, [frame.clone()]);
    rras.receive_with(Edge::Ethernet, ReceiveOptions::resources(), [frame.clone()]);
    rras.run_until_idle();
    assert_eq!(rras.miniport(Edge::Ethernet).sent_frames(), vec![frame.clone()]);
    assert_eq!(rras.protocol(Edge::Ethernet).received_frames(), vec![frame.clone(), frame]);
    let status = StatusIndication::new(NdisStatus::WAN_LINE_UP, StatusBuffer::Raw(vec![]));
    assert!(rras.indicate_status(Edge::Ethernet, status).is_some());
    finish(rras);
}

#[test]
fn frames_of_no_link_pass_through_and_are_counted_unmatched() {
    let rras = started();
    let stranger = ethernet_frame(MacAddress([0x3c, 0x99, 0x20, 0x52, 0x41, 0x53]), MacAddress([0x2e, 0x99, 0x20, 0x52, 0x41, 0x53]), EtherType::Ipv4, 40);
    rras.send(Edge::WanIp, [stranger.clone()]);
    rras.receive(Edge::WanIp, [stranger.clone()]);
    rras.receive(Edge::WanIp, [vec![1, 2, 3]]);
    rras.run_until_idle();
    assert_eq!(rras.miniport(Edge::WanIp).sent_frames(), vec![stranger.clone()]);
    assert_eq!(rras.protocol(Edge::WanIp).received_frames(), vec![stranger, vec![1, 2, 3]]);
    let counts = rras.counts(Edge::WanIp).unwrap().counts;
    assert_eq!((counts.send.unmatched, counts.receive.unmatched), (1, 2));
    finish(rras);
}

#[test]
fn oid_requests_pass_down_as_clones_and_complete_once_with_the_results() {
    let rras = started();
    let query = rras.oid_query(Edge::WanIp, OID_GEN_MAXIMUM_FRAME_SIZE).unwrap();
    let set = rras.oid_set(Edge::WanIp, OID_GEN_CURRENT_PACKET_FILTER, vec![1, 0, 0, 0]).unwrap();
    let unknown = rras.oid_query(Edge::WanIp, 0x0F0F_0F0F).unwrap();
    let miniport = rras.miniport(Edge::WanIp);
    assert_eq!(miniport.oid_requests.len(), 3);
    assert!(![query, set, unknown].iter().any(|id| miniport.oid_requests.contains(id)), "the miniport sees clones");
    rras.run_until_idle();
    let completions = rras.protocol(Edge::WanIp).oid_completions;
    let of = |id| completions.iter().find(|c| c.request.id() == id).unwrap();
    assert_eq!((of(query).status, of(query).request.data.as_slice()), (NdisStatus::SUCCESS, &1500u32.to_le_bytes()[..]));
    assert_eq!((of(set).status, of(set).request.bytes_done), (NdisStatus::SUCCESS, 4));
    assert_eq!(of(unknown).status, NDIS_STATUS_NOT_SUPPORTED);
    assert!(completions.iter().all(|c| c.latency_ns == wanlayer_sim::MILLISECOND));
    finish(rras);
}

#[test]
fn an_oid_clone_that_cannot_be_allocated_fails_the_request_at_once() {
    let rras = started();
    rras.faults().fail_oid_clones();
    let id = rras.oid_query(Edge::WanIpv6, OID_GEN_MAXIMUM_FRAME_SIZE).unwrap();
    let completions = rras.protocol(Edge::WanIpv6).oid_completions;
    assert_eq!((completions[0].request.id(), completions[0].status), (id, NdisStatus::RESOURCES));
    finish(rras);
}

#[test]
fn oids_and_status_keep_flowing_while_paused() {
    let rras = started();
    rras.pause_and_settle(Edge::WanIp).unwrap();
    rras.oid_query(Edge::WanIp, OID_GEN_MAXIMUM_FRAME_SIZE);
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    assert_eq!(link.reported_total_size, Some(1400));
    rras.run_until_idle();
    assert_eq!(rras.protocol(Edge::WanIp).oid_completions.len(), 1);
    finish(rras);
}

#[test]
fn a_taken_send_goes_down_when_reinjected() {
    let rras = started();
    let taker = Taker::new(Direction::Send);
    rras.engine().add_hook("taker", 10, taker.clone()).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let ids = rras.send(Edge::WanIp, send_frames(&link, 2));
    assert!(rras.miniport(Edge::WanIp).sent.is_empty());
    for ticket in taker.tickets() {
        rras.engine().reinject(ticket, ReinjectVerdict::Pass, PathContext::default()).unwrap();
    }
    assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 2);
    rras.run_until_idle();
    let protocol = rras.protocol(Edge::WanIp);
    assert!(ids.iter().all(|id| protocol.completion_of(*id) == Some(NdisStatus::SUCCESS)));
    let counts = rras.counts(Edge::WanIp).unwrap().counts;
    assert_eq!((counts.send.taken, counts.send.reinjected), (2, 2));
    finish(rras);
}

#[test]
fn a_taken_send_dropped_on_reinjection_completes_with_failure() {
    let rras = started();
    let taker = Taker::new(Direction::Send);
    rras.engine().add_hook("taker", 10, taker.clone()).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let ids = rras.send(Edge::WanIp, send_frames(&link, 1));
    let ticket = taker.tickets()[0];
    rras.engine().reinject(ticket, ReinjectVerdict::Drop, PathContext::default()).unwrap();
    assert!(rras.engine().reinject(ticket, ReinjectVerdict::Pass, PathContext::default()).is_err(), "a stale ticket is refused");
    assert_eq!(rras.protocol(Edge::WanIp).completion_of(ids[0]), Some(NdisStatus::FAILURE));
    finish(rras);
}

#[test]
fn a_receive_taken_from_a_resources_indication_is_a_copy_and_goes_up_when_reinjected() {
    let rras = started();
    let taker = Taker::new(Direction::Receive);
    rras.engine().add_hook("taker", 10, taker.clone()).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let ids = rras.receive_flow(&link, &Flow::udp(53, 4000), 2, ReceiveOptions::resources());
    assert_eq!(rras.miniport(Edge::WanIp).returned, 2);
    assert_eq!(rras.counts(Edge::WanIp).unwrap().counts.receive.copied_for_resources, 2);
    for ticket in taker.tickets() {
        rras.engine().reinject(ticket, ReinjectVerdict::Pass, PathContext::default()).unwrap();
    }
    let received = rras.protocol(Edge::WanIp).received;
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|d| !ids.contains(&d.packet)));
    finish(rras);
}

#[test]
fn a_receive_dropped_by_a_hook_goes_back_to_the_miniport() {
    let rras = started();
    rras.engine().add_hook("drop", 10, Arc::new(Editor { drop_receives: true, ..Editor::default() })).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.receive_flow(&link, &Flow::udp(53, 4000), 2, ReceiveOptions::default());
    rras.receive_flow(&link, &Flow::udp(53, 4000), 2, ReceiveOptions::resources());
    assert!(rras.protocol(Edge::WanIp).received.is_empty());
    assert_eq!(rras.miniport(Edge::WanIp).returned, 4);
    assert_eq!(rras.counts(Edge::WanIp).unwrap().counts.receive.drops_by_reason[DropReason::Hook as usize], 4);
    finish(rras);
}

#[test]
fn removing_a_hook_hands_on_what_it_held() {
    let rras = started();
    let taker = Taker::new(Direction::Send);
    let id = rras.engine().add_hook("taker", 10, taker.clone()).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send(Edge::WanIp, send_frames(&link, 3));
    let info = rras.engine().remove_hook(id).unwrap();
    assert_eq!(info.send.taken, 3);
    assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 3);
    finish(rras);
}

#[test]
fn a_send_held_by_a_hook_is_completed_paused_when_the_module_pauses() {
    let rras = Rras::builder().irql(IrqlPolicy::Passive).build(DriverFilter::new());
    rras.start().unwrap();
    rras.engine().add_hook("taker", 10, Taker::new(Direction::Send)).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let ids = rras.send(Edge::WanIp, send_frames(&link, 2));
    rras.pause_and_settle(Edge::WanIp).unwrap();
    let protocol = rras.protocol(Edge::WanIp);
    assert!(ids.iter().all(|id| protocol.completion_of(*id) == Some(NdisStatus::PAUSED)));
    finish(rras);
}

#[test]
fn a_send_held_by_a_hook_is_completed_media_disconnected_when_its_link_goes_down() {
    let rras = Rras::builder().irql(IrqlPolicy::Dispatch).build(DriverFilter::new());
    rras.start().unwrap();
    rras.engine().add_hook("taker", 10, Taker::new(Direction::Send)).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let ids = rras.send(Edge::WanIp, send_frames(&link, 2));
    rras.link_down(&link);
    let protocol = rras.protocol(Edge::WanIp);
    assert!(ids.iter().all(|id| protocol.completion_of(*id) == Some(NdisStatus::MEDIA_DISCONNECTED)));
    finish(rras);
}

#[test]
fn a_send_held_by_a_hook_is_completed_aborted_when_cancelled() {
    let rras = Rras::builder().irql(IrqlPolicy::Dispatch).build(DriverFilter::new());
    rras.start().unwrap();
    rras.engine().add_hook("taker", 10, Taker::new(Direction::Send)).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let options = SendOptions { cancel_id: Some(7), ..SendOptions::default() };
    let ids = rras.send_with(Edge::WanIp, options, send_frames(&link, 2));
    rras.cancel_sends(Edge::WanIp, 8);
    assert!(rras.protocol(Edge::WanIp).completions.is_empty());
    rras.cancel_sends(Edge::WanIp, 7);
    let protocol = rras.protocol(Edge::WanIp);
    assert!(ids.iter().all(|id| protocol.completion_of(*id) == Some(NdisStatus::SEND_ABORTED)));
    finish(rras);
}

#[test]
fn receives_while_paused_go_back_to_the_miniport_and_while_pausing_pass_up() {
    let rras = Rras::builder().send_completion(Delivery::Hold).build(DriverFilter::new());
    rras.start().unwrap();
    rras.engine().add_hook("replace", 10, Arc::new(Editor { replacement: Some(vec![0xcd; 60]), ..Editor::default() })).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send(Edge::WanIp, send_frames(&link, 1));
    assert_eq!(rras.pause(Edge::WanIp), Ok(PauseOutcome::Pending));
    rras.receive_flow(&link, &Flow::udp(53, 4000), 1, ReceiveOptions::default());
    rras.receive_flow(&link, &Flow::udp(53, 4000), 1, ReceiveOptions::resources());
    assert_eq!(rras.protocol(Edge::WanIp).received.len(), 2, "passed up while pausing");
    rras.release_sends(Edge::WanIp);
    rras.run_until_idle();
    assert_eq!(rras.state(Edge::WanIp), NdisState::Paused);
    rras.receive_flow(&link, &Flow::udp(53, 4000), 2, ReceiveOptions::default());
    rras.receive_flow(&link, &Flow::udp(53, 4000), 1, ReceiveOptions::resources());
    assert_eq!(rras.protocol(Edge::WanIp).received.len(), 2, "nothing passed up while paused");
    rras.run_until_idle();
    assert_eq!(rras.miniport(Edge::WanIp).returned, 5);
    finish(rras);
}

#[test]
fn detach_forgets_the_links_and_the_engine_reports_it() {
    let rras = started();
    rras.link_up(Edge::WanIp, LinkParams::new());
    rras.link_up(Edge::WanIp, LinkParams::new());
    let module = rras.module(Edge::WanIp).unwrap();
    rras.detach(Edge::WanIp).unwrap();
    assert_eq!(rras.engine().modules().count(), 1);
    let mut detached = None;
    while let Some(record) = rras.engine().next_event() {
        if let Event::ModuleDetached { module: m, links_dropped } = record.event {
            detached = Some((m, links_dropped));
        }
    }
    assert_eq!(detached, Some((module, 2)));
    rras.attach(Edge::WanIp).unwrap();
    assert_ne!(rras.module(Edge::WanIp), Some(module), "a new generation");
    finish(rras);
}

#[test]
fn many_links_are_each_tracked_and_counted() {
    let rras = started();
    let links: Vec<SimLink> = (0..20).map(|_| rras.link_up(Edge::WanIp, LinkParams::new())).collect();
    for (n, link) in links.iter().enumerate() {
        rras.send_flow(link, &Flow::udp(53, 4000), n as u32 % 3 + 1);
    }
    rras.run_until_idle();
    let report = rras.link_report(Edge::WanIp);
    assert_eq!(report.rows.len(), 20);
    for (row, (n, link)) in report.rows.iter().zip(links.iter().enumerate()) {
        let columns: Vec<&str> = row.split_whitespace().collect();
        assert_eq!((columns[2], columns[9]), (link.remote.to_string().as_str(), (n as u64 % 3 + 1).to_string().as_str()), "{row}");
    }
    let text = report.to_string();
    assert!(text.starts_with("WAN links on WAN Miniport (IP) (20):"));
    assert!(text.contains(&links[19].remote.to_string()) && text.contains(&links[0].device_name));
    for link in &links {
        rras.link_down(link);
    }
    finish(rras);
}

#[test]
fn every_irql_policy_is_clean() {
    for policy in [IrqlPolicy::Passive, IrqlPolicy::Dispatch, IrqlPolicy::Alternate] {
        let rras = Rras::builder().irql(policy).build(DriverFilter::new());
        rras.start().unwrap();
        let link = rras.link_up(Edge::WanIpv6, LinkParams::new());
        rras.send_flow(&link, &Flow::tcp(22, 5000), 3);
        rras.receive_flow(&link, &Flow::tcp(22, 5000), 3, ReceiveOptions::default());
        rras.receive_flow(&link, &Flow::tcp(22, 5000), 3, ReceiveOptions::resources());
        rras.link_down(&link);
        finish(rras);
    }
}

#[test]
fn explicit_irqls_per_call_are_honoured() {
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    for irql in [Irql::Passive, Irql::Dispatch] {
        rras.send_with(Edge::WanIp, SendOptions { irql: Some(irql), ..SendOptions::default() }, send_frames(&link, 1));
        rras.receive_flow(&link, &Flow::udp(1, 2), 1, ReceiveOptions { irql: Some(irql), ..ReceiveOptions::default() });
    }
    finish(rras);
}

#[test]
fn runs_are_deterministic() {
    let run = || {
        let rras = started();
        rras.engine().add_hook("ttl", 10, Arc::new(Editor { write_at: Some((22, 1)), ..Editor::default() })).unwrap();
        let link = rras.link_up(Edge::WanIp, LinkParams::new());
        rras.send_flow(&link, &Flow::udp(53, 4000), 5);
        rras.receive_flow(&link, &Flow::udp(53, 4000), 5, ReceiveOptions::read_only());
        rras.oid_query(Edge::WanIp, OID_GEN_MAXIMUM_FRAME_SIZE);
        rras.run_until_idle();
        rras.log()
    };
    let first = run();
    assert!(first.len() > 40);
    assert_eq!(first, run());
}

#[test]
fn an_edit_without_frame_memory_fails_and_the_original_goes_up() {
    let rras = started();
    let editor = Arc::new(Editor { write_at: Some((22, 3)), ..Editor::default() });
    rras.engine().add_hook("ttl", 10, editor.clone()).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    low_resources::refuse_pool_tag(FRAME_TAG);
    let ids = rras.receive_flow(&link, &Flow::udp(53, 4000), 1, ReceiveOptions::read_only());
    low_resources::allow_pool_tag(FRAME_TAG);
    assert!(low_resources::refused_by_tag() > 0);
    assert_eq!(editor.edit_errors.load(Ordering::Relaxed), 1);
    assert_eq!(rras.protocol(Edge::WanIp).received[0].packet, ids[0]);
    finish(rras);
}

#[test]
fn a_replacement_without_frame_memory_leaves_the_send_as_it_was() {
    let rras = started();
    let editor = Arc::new(Editor { replacement: Some(vec![1; 60]), ..Editor::default() });
    rras.engine().add_hook("replace", 10, editor.clone()).unwrap();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    low_resources::refuse_pool_tag(FRAME_TAG);
    rras.send(Edge::WanIp, send_frames(&link, 2));
    low_resources::allow_pool_tag(FRAME_TAG);
    assert_eq!(editor.edit_errors.load(Ordering::Relaxed), 2);
    assert_eq!(rras.miniport(Edge::WanIp).sent_frames(), send_frames(&link, 2));
    finish(rras);
}

/// A busy scenario: hooks editing both ways, links, OIDs, a pause and a restart.
fn busy(rras: &Rras<DriverFilter>) {
    if rras.start().is_err() {
        return;
    }
    let editor = Arc::new(Editor { write_at: Some((22, 2)), replacement: Some(vec![0x11; 64]), lower_mtu: Some(1300), ..Editor::default() });
    let _ = rras.engine().add_hook("edit", 10, editor);
    let v4 = rras.link_up(Edge::WanIp, LinkParams::new());
    let v6 = rras.link_up(Edge::WanIpv6, LinkParams::new());
    for link in [&v4, &v6] {
        rras.send_flow(link, &Flow::udp(53, 4000), 2);
        rras.receive_flow(link, &Flow::udp(53, 4000), 2, ReceiveOptions::read_only());
        rras.receive_flow(link, &Flow::udp(53, 4000), 1, ReceiveOptions { resources: true, read_only: true, irql: None });
    }
    rras.oid_query(Edge::WanIp, OID_GEN_MAXIMUM_FRAME_SIZE);
    rras.run_until_idle();
    let _ = rras.pause_and_settle(Edge::WanIp);
    let _ = rras.restart(Edge::WanIp);
    rras.link_down(&v4);
    rras.run_until_idle();
}

#[test]
fn every_allocation_failing_in_turn_is_handled_cleanly() {
    let mut counting = Rras::new(DriverFilter::new());
    busy(&counting);
    counting.unload();
    counting.verifier().assert_clean();
    let allocations = low_resources::allocations();
    drop(counting);
    assert!(allocations > 10, "the scenario allocates ({allocations})");
    for n in 1..=allocations {
        let filter = DriverFilter::new();
        low_resources::plan(Some(n));
        let mut rras = Rras::new(filter);
        busy(&rras);
        rras.unload();
        let failed = low_resources::failed_allocation();
        assert_eq!(failed.map(|(at, _)| at), Some(n), "allocation {n} is reached in every run");
        assert!(rras.verifier().is_clean(), "failing allocation {n} ({failed:?}): {}", rras.verifier().report());
        assert!(Pool::ALL.iter().all(|pool| rras.filter().pool_charged(*pool) == 0), "failing allocation {n} ({failed:?}): the engine's pools");
        assert_eq!(rras.ledger_counts().home, rras.ledger_counts().created, "failing allocation {n} ({failed:?}): {}", rras.ledger_counts());
    }
}

#[test]
fn the_reports_print_the_state_of_the_server() {
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &Flow::udp(53, 4000), 2);
    rras.run_until_idle();
    let summary = rras.summary().to_string();
    assert!(summary.contains("wan-ip") && summary.contains("running") && summary.contains("verifier: 0 violation(s)"), "{summary}");
    let counts = rras.counts(Edge::WanIp).unwrap().to_string();
    assert!(counts.contains("line ups 1") && counts.contains("send    2 packets"), "{counts}");
    assert!(rras.log().iter().any(|line| line.contains("filter → miniport") && line.contains("UDP")));
    assert_eq!(rras.engine().modules().filter(|m| m.kind == ModuleKind::NdisWanIp).count(), 1);
    let _ = Ipv4Address::new(10, 99, 0, 1);
    finish(rras);
}
