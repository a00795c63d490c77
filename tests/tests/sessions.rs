//! PPP sessions end to end: links on NdisWan's edges, traffic both ways, what the engine knows of
//! each link, the events it reports, and traffic that belongs to no link or to no WAN edge.

use wanlayer_core::event::Event;
use wanlayer_core::hook::Direction;
use wanlayer_core::link::{WanQuality, PROTOCOL_BUFFER_MAX};
use wanlayer_core::module::ModuleKind;
use wanlayer_core::wire::{EtherType, IpAddress, MacAddress};
use wanlayer_core::NdisStatus;
use wanlayer_sim::traffic::ethernet_frame;
use wanlayer_sim::{Edge, Flow, LinkParams, ReceiveOptions, Rras, MILLISECOND};
use wanlayer_tests::sample_hooks::{Applies, CallLog, Callback, CountingHook, DropHook, RecordingHook};
use wanlayer_tests::setup::{byte_count, completions, counts, drain_events, finish, frames, module, start, started, UDP};

#[test]
fn a_ppp_link_on_the_ipv4_edge_carries_traffic_both_ways_intact() {
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let (tcp, udp) = (Flow::tcp(443, 50_000).payload(1200), UDP);
    let down: Vec<Vec<u8>> = [frames(&link, Direction::Send, &tcp, 0, 4), frames(&link, Direction::Send, &udp, 0, 3)].concat();
    let up: Vec<Vec<u8>> = [frames(&link, Direction::Receive, &tcp, 0, 2), frames(&link, Direction::Receive, &udp, 0, 5)].concat();
    let sent = rras.send(Edge::WanIp, down.clone());
    rras.receive(Edge::WanIp, up[..2].to_vec());
    rras.receive_with(Edge::WanIp, ReceiveOptions::resources(), up[2..].to_vec());
    rras.run_until_idle();

    let (protocol, miniport) = (rras.protocol(Edge::WanIp), rras.miniport(Edge::WanIp));
    assert_eq!(miniport.sent_frames(), down, "every send reaches the miniport unchanged and in order");
    assert_eq!(miniport.sent.iter().map(|d| d.packet).collect::<Vec<_>>(), sent, "the protocol's own packets, not copies");
    assert_eq!(protocol.received_frames(), up, "every receive reaches the protocol unchanged and in order");
    assert_eq!(completions(&protocol, &sent), vec![Some(NdisStatus::SUCCESS); 7]);
    assert_eq!((protocol.returned, miniport.returned), (2, 7), "plain receives come back through the filter, lent ones at once");
    assert!(rras.protocol(Edge::WanIpv6).received.is_empty() && rras.miniport(Edge::WanIpv6).sent.is_empty());
    finish(rras);
}

#[test]
fn per_link_and_per_module_counts_of_packets_and_bytes_are_exact() {
    let rras = started();
    let first = rras.link_up(Edge::WanIp, LinkParams::new());
    let second = rras.link_up(Edge::WanIp, LinkParams::new());
    let flow = Flow::udp(500, 4500).payload(333);
    let first_down = frames(&first, Direction::Send, &flow, 0, 5);
    let first_up = frames(&first, Direction::Receive, &flow.payload(17), 0, 2);
    let second_down = frames(&second, Direction::Send, &Flow::tcp(22, 6000).payload(1000), 0, 3);
    rras.send(Edge::WanIp, first_down.clone());
    rras.send(Edge::WanIp, second_down.clone());
    rras.receive(Edge::WanIp, first_up.clone());
    rras.run_until_idle();

    let id = module(&rras, Edge::WanIp);
    let engine = rras.engine();
    let link_counts = |remote| engine.with_link(id, &remote, |l| (l.send_counts(), l.receive_counts())).expect("tracked");
    let (first_send, first_receive) = link_counts(first.remote);
    assert_eq!((first_send.packets, first_send.bytes, first_send.drops), (5, byte_count(&first_down), 0));
    assert_eq!((first_receive.packets, first_receive.bytes), (2, byte_count(&first_up)));
    let (second_send, second_receive) = link_counts(second.remote);
    assert_eq!((second_send.packets, second_send.bytes), (3, byte_count(&second_down)));
    assert_eq!((second_receive.packets, second_receive.bytes), (0, 0));

    let module_counts = counts(&rras, Edge::WanIp);
    assert_eq!(module_counts.send.traffic.packets, 8);
    assert_eq!(module_counts.send.traffic.bytes, byte_count(&first_down) + byte_count(&second_down));
    assert_eq!((module_counts.receive.traffic.packets, module_counts.receive.traffic.bytes), (2, byte_count(&first_up)));
    assert_eq!((module_counts.send.unmatched, module_counts.receive.unmatched, module_counts.send.traffic.drops), (0, 0, 0));
    assert_eq!((module_counts.line_ups, module_counts.line_downs), (2, 0));
    assert_eq!(counts(&rras, Edge::WanIpv6).send.traffic.packets, 0, "the other edge saw nothing");
    finish(rras);
}

#[test]
fn every_line_up_field_is_visible_through_with_link_and_visit_links() {
    let rras = started();
    rras.advance(7 * MILLISECOND);
    let params = LinkParams { quality: WanQuality::ErrorControl, send_window: 5, ..LinkParams::new().mtu(1492).speed_bps(56_000) };
    let link = rras.link_up(Edge::WanIp, params);
    let id = module(&rras, Edge::WanIp);
    let engine = rras.engine();

    let seen = engine.with_link(id, &link.remote, |l| {
        let summary = l.summary();
        assert_eq!((summary.module, summary.remote_address, summary.local_address), (id, link.remote, link.local));
        assert_eq!(summary.protocol_type, EtherType::Ipv4);
        assert_eq!((summary.link_speed_100bps, l.link_speed_bps()), (560, 56_000));
        assert_eq!((summary.maximum_total_size, summary.reported_total_size), (1492, 1492));
        assert_eq!((l.quality(), l.send_window(), l.line_ups()), (WanQuality::ErrorControl, 5, 1));
        assert_eq!(l.device_name().collect::<String>(), link.device_name, "the name the protocol filled in");
        assert_eq!(String::from_utf16_lossy(l.device_name_utf16()), link.device_name);
        assert_eq!(l.protocol_buffer().len(), 600);
        assert!(!l.protocol_buffer_truncated());
        assert_eq!(l.best_effort_ipv4().map(IpAddress::Ipv4), Some(link.client_ip), "bytes 584..588 of the protocol buffer");
        assert_eq!(l.up_since().0, 7 * MILLISECOND);
        l.id()
    });
    let link_id = seen.expect("the link is tracked");

    let mut visited = Vec::new();
    engine.visit_links(id, |l| visited.push((l.id(), l.summary().remote_address, l.protocol_buffer().to_vec())));
    assert_eq!(visited.len(), 1);
    assert_eq!((visited[0].0, visited[0].1), (link_id, link.remote));
    assert_eq!(&visited[0].2[584..588], &[10, 100, 0, 1], "the client's address where the public sample reads it");
    assert_eq!(rras.protocol(Edge::WanIp).links[&link.remote].total_size, 1492);
    finish(rras);
}

#[test]
fn best_effort_addresses_are_read_only_where_the_protocol_buffer_has_them() {
    let rras = started();
    let short = rras.link_up(Edge::WanIp, LinkParams::new().protocol_buffer(vec![0x11; 584]));
    let zero = rras.link_up(Edge::WanIp, LinkParams::new().protocol_buffer(vec![0; 600]));
    let huge = rras.link_up(Edge::WanIp, LinkParams::new().protocol_buffer(vec![0x22; PROTOCOL_BUFFER_MAX + 904]));
    let v6 = rras.link_up(Edge::WanIpv6, LinkParams::new());
    let engine = rras.engine();
    let v4_module = module(&rras, Edge::WanIp);
    let read =
        |remote| engine.with_link(v4_module, &remote, |l| (l.best_effort_ipv4(), l.protocol_buffer().len(), l.protocol_buffer_truncated()));
    assert_eq!(read(short.remote), Some((None, 584, false)), "a buffer too short has no address");
    assert_eq!(read(zero.remote), Some((None, 600, false)), "zero bytes are no address");
    let (address, kept, truncated) = read(huge.remote).expect("tracked");
    assert_eq!((address.map(|a| a.0), kept, truncated), (Some([0x22; 4]), PROTOCOL_BUFFER_MAX, true));

    let IpAddress::Ipv6(client) = v6.client_ip else { panic!("an IPv6 link has an IPv6 client") };
    let v6_module = module(&rras, Edge::WanIpv6);
    let interface_id = engine.with_link(v6_module, &v6.remote, |l| (l.best_effort_ipv6_interface_id(), l.best_effort_ipv4()));
    let expected: [u8; 8] = client.0[8..].try_into().expect("eight bytes");
    assert_eq!(interface_id, Some((Some(expected), None)));
    finish(rras);
}

#[test]
fn events_run_from_attach_through_line_up_to_line_down_in_sequence() {
    let rras = started();
    let (v4, v6) = (module(&rras, Edge::WanIp), module(&rras, Edge::WanIpv6));
    rras.advance(3 * MILLISECOND);
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &UDP, 2);
    rras.advance(5 * MILLISECOND);
    rras.link_down(&link);
    let records = drain_events(rras.engine());

    let sequences: Vec<u64> = records.iter().map(|r| r.sequence).collect();
    assert_eq!(sequences, (0..records.len() as u64).collect::<Vec<_>>(), "consecutive from zero: nothing lost");
    assert!(records.windows(2).all(|w| w[0].time <= w[1].time), "time never runs backwards");
    let kinds: Vec<Event> = records.iter().map(|r| r.event).collect();
    assert_eq!(
        kinds[..4],
        [
            Event::ModuleAttached { module: v4, kind: ModuleKind::NdisWanIp },
            Event::ModuleAttached { module: v6, kind: ModuleKind::NdisWanIpv6 },
            Event::ModuleRestarted(v4),
            Event::ModuleRestarted(v6),
        ]
    );
    let (Event::LineUp(up), Event::LineDown(down)) = (kinds[4], kinds[5]) else { panic!("line up then line down: {kinds:?}") };
    assert_eq!(kinds.len(), 6, "traffic makes no events");
    assert_eq!((up.id, up.remote_address, up.module), (down.id, link.remote, v4));
    assert_eq!(down.local_address, link.local, "by line down the link knows what the protocol filled in");
    assert_eq!((records[4].time.0, records[5].time.0), (3 * MILLISECOND, 8 * MILLISECOND));
    assert!(rras.engine().next_event().is_none());
    assert_eq!(rras.engine().lost_events(), 0);
    finish(rras);
}

#[test]
fn a_second_line_up_for_a_live_link_updates_it_in_place() {
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &UDP, 2);
    let id = module(&rras, Edge::WanIp);
    let before = rras.engine().with_link(id, &link.remote, |l| l.id()).expect("tracked");
    drain_events(rras.engine());
    let mut protocol_buffer = vec![0; 600];
    protocol_buffer[584..588].copy_from_slice(&[192, 0, 2, 9]);
    let update = LinkParams { link_speed_100bps: 20, quality: WanQuality::Raw, send_window: 2, ..LinkParams::new() };
    rras.line_up_again(&link, &update.mtu(1300).protocol_buffer(protocol_buffer));

    let after = rras.engine().with_link(id, &link.remote, |l| {
        (l.id(), l.line_ups(), l.summary().maximum_total_size, l.quality(), l.send_window(), l.send_counts().packets)
    });
    assert_eq!(after, Some((before, 2, 1300, WanQuality::Raw, 2, 2)), "same identity, new parameters, counters kept");
    let address = rras.engine().with_link(id, &link.remote, |l| (l.best_effort_ipv4().map(|a| a.0), l.summary().local_address));
    assert_eq!(address, Some((Some([192, 0, 2, 9]), link.local)), "the local address survives an update that carries zero");
    let events: Vec<Event> = drain_events(rras.engine()).into_iter().map(|r| r.event).collect();
    assert!(matches!(events[..], [Event::LineUpdated(summary)] if summary.id == before && summary.maximum_total_size == 1300));
    assert_eq!(rras.engine().module_info(id).map(|info| info.links), Some(1));
    finish(rras);
}

#[test]
fn ipv4_and_ipv6_links_on_both_edges_each_carry_only_their_own_traffic() {
    let rras = started();
    let recording = CallLog::new();
    rras.engine().add_hook("rec", 10, RecordingHook::new("rec", &recording)).expect("a free hook slot");
    let v4a = rras.link_up(Edge::WanIp, LinkParams::new());
    let v6a = rras.link_up(Edge::WanIpv6, LinkParams::new());
    let v4b = rras.link_up(Edge::WanIp, LinkParams::new());
    let v6b = rras.link_up(Edge::WanIpv6, LinkParams::new());
    let flow = Flow::tcp(80, 1234);
    let plan = [(&v4a, 1u32, 2u32), (&v6a, 2, 1), (&v4b, 3, 0), (&v6b, 0, 4)];
    for (link, sends, receives) in plan {
        rras.send_flow(link, &flow, sends);
        rras.receive_flow(link, &flow, receives, ReceiveOptions::default());
    }
    rras.run_until_idle();

    for edge in [Edge::WanIp, Edge::WanIpv6] {
        let links: Vec<_> = plan.iter().filter(|(link, ..)| link.edge == edge).collect();
        let down: Vec<Vec<u8>> = links.iter().flat_map(|(link, n, _)| frames(link, Direction::Send, &flow, 0, *n)).collect();
        let up: Vec<Vec<u8>> = links.iter().flat_map(|(link, _, n)| frames(link, Direction::Receive, &flow, 0, *n)).collect();
        assert_eq!(rras.miniport(edge).sent_frames(), down, "{edge}");
        assert_eq!(rras.protocol(edge).received_frames(), up, "{edge}");
        let id = module(&rras, edge);
        for (link, sends, receives) in &links {
            let seen = rras.engine().with_link(id, &link.remote, |l| (l.send_counts().packets, l.receive_counts().packets));
            assert_eq!(seen, Some((u64::from(*sends), u64::from(*receives))), "{link}");
            let other_edge = if edge == Edge::WanIp { Edge::WanIpv6 } else { Edge::WanIp };
            assert!(rras.engine().with_link(module(&rras, other_edge), &link.remote, |_| ()).is_none(), "one edge per link");
        }
    }
    for (link, sends, receives) in plan {
        let calls = recording.calls();
        let of = |direction| {
            calls.iter().filter(|c| c.remote == link.remote && c.callback == Callback::Packet(direction)).count()
        };
        assert_eq!((of(Direction::Send), of(Direction::Receive)), (sends as usize, receives as usize), "the hooks saw {link} right");
    }
    finish(rras);
}

#[test]
fn frames_of_a_link_indicated_on_the_other_edge_are_unmatched_and_skip_the_hooks() {
    let rras = started();
    let counter = CountingHook::new();
    rras.engine().add_hook("count", 10, counter.clone()).expect("a free hook slot");
    let v4 = rras.link_up(Edge::WanIp, LinkParams::new());
    let v6 = rras.link_up(Edge::WanIpv6, LinkParams::new());
    let flow = UDP;
    let astray = frames(&v6, Direction::Send, &flow, 0, 2);
    rras.send(Edge::WanIp, astray.clone());
    rras.receive(Edge::WanIp, frames(&v6, Direction::Receive, &flow, 0, 3));
    rras.send(Edge::WanIpv6, frames(&v4, Direction::Send, &flow, 0, 1));
    rras.run_until_idle();

    assert_eq!(rras.miniport(Edge::WanIp).sent_frames(), astray, "unmatched traffic still passes");
    assert_eq!(rras.protocol(Edge::WanIp).received.len(), 3);
    let (on_v4, on_v6) = (counts(&rras, Edge::WanIp), counts(&rras, Edge::WanIpv6));
    assert_eq!((on_v4.send.unmatched, on_v4.receive.unmatched, on_v6.send.unmatched), (2, 3, 1));
    assert_eq!((on_v4.send.traffic.packets, on_v4.receive.traffic.packets), (2, 3), "unmatched packets still count as traffic");
    assert_eq!((counter.calls().sends, counter.calls().receives), (0, 0), "hooks only see link traffic");
    let v6_sent = rras.engine().with_link(module(&rras, Edge::WanIpv6), &v6.remote, |l| l.send_counts().packets);
    assert_eq!(v6_sent, Some(0));
    finish(rras);
}

#[test]
fn frames_of_unknown_addresses_and_runts_pass_both_ways_on_both_edges_counted_unmatched() {
    let rras = started();
    rras.engine().add_hook("drop", 10, DropHook::all(Applies::Both)).expect("a free hook slot");
    rras.link_up(Edge::WanIp, LinkParams::new());
    rras.link_up(Edge::WanIpv6, LinkParams::new());
    let stranger = MacAddress([0x3c, 0xee, 0x20, 0x52, 0x41, 0x53]);
    let local = MacAddress([0x2e, 0xee, 0x20, 0x52, 0x41, 0x53]);
    for (edge, ethertype) in [(Edge::WanIp, EtherType::Ipv4), (Edge::WanIpv6, EtherType::Ipv6)] {
        let out = ethernet_frame(stranger, local, ethertype, 46);
        let back = ethernet_frame(local, stranger, ethertype, 46);
        let runt = vec![0x3c; 11];
        rras.send(edge, [out.clone(), runt.clone()]);
        rras.receive(edge, [back.clone()]);
        rras.receive_with(edge, ReceiveOptions::resources(), [runt.clone()]);
        rras.run_until_idle();
        assert_eq!(rras.miniport(edge).sent_frames(), vec![out, runt.clone()], "{edge}: not dropped, no link");
        assert_eq!(rras.protocol(edge).received_frames(), vec![back, runt], "{edge}");
        let seen = counts(&rras, edge);
        assert_eq!((seen.send.unmatched, seen.receive.unmatched), (2, 2), "{edge}");
        assert_eq!((seen.send.traffic.drops, seen.receive.traffic.drops), (0, 0), "{edge}");
    }
    finish(rras);
}

#[test]
fn the_ethernet_adapter_passes_through_and_its_traffic_never_meets_a_hook() {
    let rras = start(Rras::builder().ethernet());
    let recording = CallLog::new();
    rras.engine().add_hook("rec", 10, RecordingHook::new("rec", &recording)).expect("a free hook slot");
    rras.engine().add_hook("drop", 20, DropHook::all(Applies::Both)).expect("a free hook slot");
    let bogus = rras.link_up(Edge::Ethernet, LinkParams::new());
    let ethernet = module(&rras, Edge::Ethernet);
    assert_eq!(rras.engine().module_info(ethernet).map(|i| (i.kind, i.links)), Some((ModuleKind::PassThrough, 0)), "no link on Ethernet");
    assert_eq!(bogus.reported_total_size, Some(1400), "the status still reaches the protocol");

    let out = bogus.frame(Direction::Send, &UDP, 0);
    let back = bogus.frame(Direction::Receive, &UDP, 1);
    let sent = rras.send(Edge::Ethernet, [out.clone(), out.clone()]);
    rras.receive(Edge::Ethernet, [back.clone()]);
    rras.receive_with(Edge::Ethernet, ReceiveOptions::resources(), [back.clone()]);
    rras.run_until_idle();

    assert_eq!(rras.miniport(Edge::Ethernet).sent_frames(), vec![out.clone(), out]);
    assert_eq!(rras.protocol(Edge::Ethernet).received_frames(), vec![back.clone(), back]);
    assert_eq!(completions(&rras.protocol(Edge::Ethernet), &sent), vec![Some(NdisStatus::SUCCESS); 2]);
    assert!(recording.calls().is_empty(), "no hook callback of any kind for the Ethernet adapter: {:?}", recording.calls());
    let seen = counts(&rras, Edge::Ethernet);
    assert_eq!((seen.send.traffic.packets, seen.receive.traffic.packets), (2, 2));
    assert_eq!((seen.send.unmatched, seen.receive.unmatched, seen.send.traffic.drops, seen.line_ups_untracked), (0, 0, 0, 0));
    finish(rras);
}

#[test]
fn reset_counters_zeroes_module_link_and_hook_counts_but_keeps_the_links() {
    let rras = started();
    let hook = rras.engine().add_hook("drop-receives", 10, DropHook::all(Applies::Receives)).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIpv6, LinkParams::new());
    rras.send_flow(&link, &UDP, 3);
    rras.receive_flow(&link, &UDP, 2, ReceiveOptions::default());
    let id = module(&rras, Edge::WanIpv6);
    let engine = rras.engine();
    engine.reset_counters();
    assert_eq!(counts(&rras, Edge::WanIpv6), Default::default());
    let link_counts = || engine.with_link(id, &link.remote, |l| (l.send_counts(), l.receive_counts(), l.line_ups()));
    assert_eq!(link_counts(), Some((Default::default(), Default::default(), 1)), "the link stays, its traffic counts restart");
    let info = wanlayer_tests::setup::hook_info(engine, hook).expect("registered");
    assert_eq!((info.send, info.receive, info.line_ups), (Default::default(), Default::default(), 0));

    rras.send_flow(&link, &UDP, 1);
    let after = counts(&rras, Edge::WanIpv6);
    assert_eq!((after.send.traffic.packets, after.receive.traffic.drops, after.line_ups), (1, 0, 0));
    assert_eq!(link_counts().map(|(send, ..)| send.packets), Some(1));
    finish(rras);
}
