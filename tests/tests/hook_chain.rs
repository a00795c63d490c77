//! The hook chain: dropping, modifying in place and by replacement, taking and reinjecting, the
//! order hooks meet packets in, and the MTU hooks report upward.

use std::sync::Arc;

use wanlayer_core::hal::PathContext;
use wanlayer_core::hook::{Direction, Hook, PacketContext, Ticket, Verdict};
use wanlayer_core::stats::DropReason;
use wanlayer_core::wire::{clamp_tcp_mss, EtherType, FrameSummary};
use wanlayer_core::{ModuleId, NdisStatus, ReinjectError, ReinjectVerdict};
use wanlayer_kernel_model::low_resources;
use wanlayer_sim::{Edge, Flow, LinkParams, ReceiveOptions, Rras, SendOptions, SimLink, StatusBuffer};
use wanlayer_sim_driver::FRAME_TAG;
use wanlayer_tests::frames::{checksums_valid, ip_ttl, set_ttl, syn_frame, tcp_mss};
use wanlayer_tests::sample_hooks::{
    Applies, CallLog, Callback, CountingHook, DropHook, MssClampHook, MtuHook, QueueHook, RecordingHook, TtlRewriteHook,
};
use wanlayer_tests::setup::{completions, counts, drain_events, drops, finish, frames, hook_info, module, started, UDP};

// ----- dropping ---------------------------------------------------------------------------------

#[test]
fn a_dropping_hook_fails_sends_returns_receives_and_every_drop_is_counted_three_ways() {
    let rras = started();
    let dropper = DropHook::all(Applies::Both);
    let below = CountingHook::new();
    let drop_id = rras.engine().add_hook("drop", 50, dropper.clone()).expect("a free hook slot");
    rras.engine().add_hook("below", 10, below.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let sent = rras.send_flow(&link, &UDP, 3);
    rras.receive_flow(&link, &UDP, 2, ReceiveOptions::default());
    rras.receive_flow(&link, &UDP, 2, ReceiveOptions::resources());

    let (protocol, miniport) = (rras.protocol(Edge::WanIp), rras.miniport(Edge::WanIp));
    assert_eq!(completions(&protocol, &sent), vec![Some(NdisStatus::FAILURE); 3], "completed at once, with a failure");
    assert!(miniport.sent.is_empty() && protocol.received.is_empty());
    assert_eq!(miniport.returned, 4, "receives go back to the miniport within the callback");

    let seen = counts(&rras, Edge::WanIp);
    assert_eq!((drops(&seen.send, DropReason::Hook), seen.send.traffic.drops, seen.send.traffic.packets), (3, 3, 3));
    assert_eq!((drops(&seen.receive, DropReason::Hook), seen.receive.traffic.drops, seen.receive.traffic.packets), (4, 4, 4));
    let on_link = rras.engine().with_link(module(&rras, Edge::WanIp), &link.remote, |l| (l.send_counts().drops, l.receive_counts().drops));
    assert_eq!(on_link, Some((3, 4)));
    let info = hook_info(rras.engine(), drop_id).expect("registered");
    assert_eq!((info.send.seen, info.send.dropped, info.receive.seen, info.receive.dropped), (3, 3, 4, 4));
    assert_eq!(dropper.dropped(), 7);
    let calls = below.calls();
    assert_eq!((calls.sends, calls.receives), (0, 4), "a dropped send never reaches lower hooks; receives met the lower hook first");
    finish(rras);
}

#[test]
fn a_dropping_hook_with_a_predicate_drops_only_what_it_picks() {
    let rras = started();
    let dns = DropHook::new(|packet: &PacketContext<'_>| {
        let frame = wanlayer_tests::sample_hooks::read_frame(packet);
        let ports = FrameSummary::parse(&frame).ok().and_then(|summary| summary.ip).and_then(|ip| ip.ports);
        ports.is_some_and(|ports| ports.src == 53 || ports.dst == 53)
    });
    rras.engine().add_hook("no-dns", 10, dns.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIpv6, LinkParams::new());
    let web = Flow::tcp(443, 50_000);
    let mixed: Vec<Vec<u8>> = (0..6).map(|seq| link.frame(Direction::Send, if seq % 2 == 0 { &UDP } else { &web }, seq)).collect();
    let sent = rras.send(Edge::WanIpv6, mixed.clone());
    rras.receive(Edge::WanIpv6, [link.frame(Direction::Receive, &UDP, 0), link.frame(Direction::Receive, &web, 1)]);
    rras.run_until_idle();

    let kept: Vec<Vec<u8>> = mixed.iter().skip(1).step_by(2).cloned().collect();
    assert_eq!(rras.miniport(Edge::WanIpv6).sent_frames(), kept, "web traffic passes, in order");
    let statuses = completions(&rras.protocol(Edge::WanIpv6), &sent);
    let expected: Vec<Option<NdisStatus>> =
        (0..6).map(|seq| Some(if seq % 2 == 0 { NdisStatus::FAILURE } else { NdisStatus::SUCCESS })).collect();
    assert_eq!(statuses, expected);
    assert_eq!(rras.protocol(Edge::WanIpv6).received_frames(), vec![link.frame(Direction::Receive, &web, 1)]);
    assert_eq!(dns.dropped(), 4);
    let seen = counts(&rras, Edge::WanIpv6);
    assert_eq!((drops(&seen.send, DropReason::Hook), drops(&seen.receive, DropReason::Hook)), (3, 1));
    finish(rras);
}

// ----- modifying in place -----------------------------------------------------------------------

#[test]
fn the_mss_of_syns_is_clamped_in_place_in_the_drivers_own_copy_both_ways_with_a_valid_checksum() {
    // wanlayer.sys writes in place only into NBLs of its own (the protocol's and the miniport's
    // buffers are theirs): a TTL rewrite below the clamp on the packet's way replaces each SYN with
    // the driver's own NBL, and the clamp then edits that copy in place, with no second copy.
    let rras = started();
    let clamp = MssClampHook::new(1360);
    rras.engine().add_hook("ttl-send", 20, TtlRewriteHook::new(9, Applies::Sends)).expect("a free hook slot");
    rras.engine().add_hook("mss", 10, clamp.clone()).expect("a free hook slot");
    rras.engine().add_hook("ttl-receive", 5, TtlRewriteHook::new(9, Applies::Receives)).expect("a free hook slot");
    for edge in [Edge::WanIp, Edge::WanIpv6] {
        let link = rras.link_up(edge, LinkParams::new());
        let out = syn_frame(&link, Direction::Send, Some(1460));
        let back = syn_frame(&link, Direction::Receive, Some(1440));
        assert!(checksums_valid(&out) && checksums_valid(&back), "the fixtures are well formed");
        let sent = rras.send(edge, [out.clone()]);
        let received = rras.receive(edge, [back.clone()]);
        rras.run_until_idle();

        let (down, up) = (rras.miniport(edge).sent[0].clone(), rras.protocol(edge).received[0].clone());
        assert!(down.packet != sent[0] && up.packet != received[0], "{edge}: the driver's replacements went on");
        for (before, after) in [(&out, &down.frame), (&back, &up.frame)] {
            let mut expected = before.clone();
            assert!(set_ttl(&mut expected, 9));
            clamp_tcp_mss(&mut expected, 1360).expect("a clampable SYN");
            assert_eq!(after, &expected, "{edge}: the TTL rewritten, then only the MSS and the checksum changed in place");
            assert_eq!((tcp_mss(after), ip_ttl(after)), (Some(1360), Some(9)), "{edge}");
            assert!(checksums_valid(after), "{edge}: the checksums still verify after the clamp");
        }
        assert_eq!(completions(&rras.protocol(edge), &sent), vec![Some(NdisStatus::SUCCESS)]);
        let seen = counts(&rras, edge);
        assert_eq!((seen.send.modified, seen.receive.modified), (1, 1), "{edge}");
    }
    assert_eq!((clamp.clamped(), clamp.edit_errors()), (4, 0));
    assert_eq!(rras.ledger_counts().created, 8, "four SYNs and the four replacements: the clamps copied nothing");
    finish(rras);
}

#[test]
fn segments_that_need_no_clamp_pass_untouched() {
    let rras = started();
    let clamp = MssClampHook::new(1360);
    let id = rras.engine().add_hook("mss", 10, clamp.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let small = syn_frame(&link, Direction::Send, Some(536));
    let bare = syn_frame(&link, Direction::Send, None);
    let data = link.frame(Direction::Send, &Flow::tcp(443, 50_000), 3);
    rras.send(Edge::WanIp, [small.clone(), bare.clone(), data.clone(), link.frame(Direction::Send, &UDP, 0)]);
    rras.run_until_idle();
    assert_eq!(rras.miniport(Edge::WanIp).sent_frames(), vec![small, bare, data, link.frame(Direction::Send, &UDP, 0)]);
    assert_eq!((clamp.clamped(), counts(&rras, Edge::WanIp).send.modified), (0, 0));
    assert_eq!(hook_info(rras.engine(), id).map(|info| (info.send.passed, info.send.modified)), Some((4, 0)));
    finish(rras);
}

#[test]
fn a_read_only_receive_is_copied_before_the_clamp_and_the_original_goes_back_to_the_miniport() {
    let rras = started();
    let clamp = MssClampHook::new(1200);
    rras.engine().add_hook("mss", 10, clamp.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIpv6, LinkParams::new());
    let back = syn_frame(&link, Direction::Receive, Some(1440));
    let plain = rras.receive_with(Edge::WanIpv6, ReceiveOptions::read_only(), [back.clone(), back.clone()]);
    let lent = rras.receive_with(Edge::WanIpv6, ReceiveOptions { resources: true, read_only: true, irql: None }, [back.clone()]);
    assert_eq!(rras.miniport(Edge::WanIpv6).returned, 1, "the lent original goes back at once, the others wait for the copies");

    let protocol = rras.protocol(Edge::WanIpv6);
    assert_eq!(protocol.received.len(), 3);
    for delivered in &protocol.received {
        assert!(!plain.contains(&delivered.packet) && !lent.contains(&delivered.packet), "the protocol gets the engine's copies");
        assert_eq!(tcp_mss(&delivered.frame), Some(1200));
        assert!(checksums_valid(&delivered.frame));
    }
    rras.run_until_idle();
    assert_eq!(rras.miniport(Edge::WanIpv6).returned, 3, "the originals go back once the protocol returned the copies");
    let seen = counts(&rras, Edge::WanIpv6);
    assert_eq!((seen.receive.modified, seen.receive.copied_for_resources), (3, 0));
    assert_eq!(rras.ledger_counts().created, 6, "three receives, three copies");
    finish(rras);
}

#[test]
fn a_read_only_syn_that_cannot_be_copied_goes_up_unclamped_and_the_hook_knows() {
    // The kernel model refuses the frame of the driver's copy (its pool tag).
    let rras = started();
    let clamp = MssClampHook::new(1200);
    rras.engine().add_hook("mss", 10, clamp.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    low_resources::refuse_pool_tag(FRAME_TAG);
    let back = syn_frame(&link, Direction::Receive, Some(1460));
    let ids = rras.receive_with(Edge::WanIp, ReceiveOptions::read_only(), [back.clone()]);
    low_resources::allow_pool_tag(FRAME_TAG);
    assert_eq!(low_resources::refused_by_tag(), 1, "the copy's frame was refused");
    let received = rras.protocol(Edge::WanIp).received;
    assert_eq!((received[0].packet, &received[0].frame), (ids[0], &back), "the miniport's packet, untouched");
    assert_eq!((clamp.clamped(), clamp.edit_errors()), (0, 1));
    assert_eq!(counts(&rras, Edge::WanIp).receive.modified, 0, "a failed edit is no modification");
    finish(rras);
}

// ----- modifying by replacement -----------------------------------------------------------------

#[test]
fn a_replacing_hook_rewrites_the_ttl_with_a_fixed_checksum_both_ways_on_both_edges() {
    let rras = started();
    let ttl = TtlRewriteHook::new(9, Applies::Both);
    rras.engine().add_hook("ttl", 10, ttl.clone()).expect("a free hook slot");
    for edge in [Edge::WanIp, Edge::WanIpv6] {
        let link = rras.link_up(edge, LinkParams::new());
        let flow = Flow::tcp(22, 6000).payload(300);
        let out = frames(&link, Direction::Send, &flow, 0, 3);
        let back = frames(&link, Direction::Receive, &flow, 0, 2);
        let sent = rras.send(edge, out.clone());
        let received = rras.receive(edge, back.clone());
        let lent = rras.receive_with(edge, ReceiveOptions::resources(), back.clone());

        let rewritten = |frames: &[Vec<u8>]| -> Vec<Vec<u8>> {
            frames
                .iter()
                .map(|frame| {
                    let mut copy = frame.clone();
                    assert!(set_ttl(&mut copy, 9));
                    copy
                })
                .collect()
        };
        let (down, up) = (rras.miniport(edge), rras.protocol(edge));
        assert_eq!(down.sent_frames(), rewritten(&out), "{edge}");
        assert_eq!(up.received_frames(), [rewritten(&back), rewritten(&back)].concat(), "{edge}");
        for frame in down.sent_frames().iter().chain(up.received_frames().iter()) {
            assert_eq!(ip_ttl(frame), Some(9));
            assert!(checksums_valid(frame), "{edge}: header and transport checksums verify");
        }
        assert!(down.sent.iter().all(|d| !sent.contains(&d.packet)), "{edge}: the miniport gets replacements");
        assert!(up.received.iter().all(|d| !received.contains(&d.packet) && !lent.contains(&d.packet)), "{edge}");
        assert_eq!(rras.miniport(edge).returned, 2, "{edge}: lent originals back at once, the others wait");
        rras.run_until_idle();
        assert_eq!(completions(&rras.protocol(edge), &sent), vec![Some(NdisStatus::SUCCESS); 3], "{edge}: originals complete");
        assert_eq!(rras.miniport(edge).returned, 4, "{edge}");
        let seen = counts(&rras, edge);
        assert_eq!((seen.send.modified, seen.receive.modified), (3, 4), "{edge}");
    }
    assert_eq!((ttl.replaced(), ttl.edit_errors()), (14, 0));
    finish(rras);
}

/// Replaces the first frame of every chain it sees (the one whose IP identification is 0).
struct ReplaceFirst;

impl Hook for ReplaceFirst {
    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        let mut frame = wanlayer_tests::sample_hooks::read_frame(packet);
        if frame.get(18..20) != Some(&[0, 0]) || !set_ttl(&mut frame, 1) {
            return Verdict::Pass;
        }
        packet.replace(&frame).map_or(Verdict::Pass, |()| Verdict::Modify)
    }
}

#[test]
fn a_lent_chain_keeps_its_order_when_a_hook_replaces_part_of_it() {
    let rras = started();
    rras.engine().add_hook("first", 10, Arc::new(ReplaceFirst)).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.receive_flow(&link, &UDP, 3, ReceiveOptions::resources());
    let idents: Vec<u8> = rras.protocol(Edge::WanIp).received.iter().map(|d| d.frame[19]).collect();
    assert_eq!(idents, [0, 1, 2], "the protocol sees the chain in the order the miniport indicated it");
    finish(rras);
}

/// Replaces every send with a 60-byte frame.
struct Shrink;

impl Hook for Shrink {
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        packet.replace(&[0x5a; 60]).map_or(Verdict::Pass, |()| Verdict::Modify)
    }
}

#[test]
fn a_hook_is_credited_with_the_bytes_it_was_shown() {
    let rras = started();
    let id = rras.engine().add_hook("shrink", 10, Arc::new(Shrink)).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let out = frames(&link, Direction::Send, &UDP.payload(500), 0, 2);
    rras.send(Edge::WanIp, out.clone());
    let shown: u64 = out.iter().map(|frame| frame.len() as u64).sum();
    assert_eq!(hook_info(rras.engine(), id).map(|info| info.send.bytes), Some(shown));
    finish(rras);
}

// ----- taking and reinjecting -------------------------------------------------------------------

#[test]
fn taken_sends_are_held_until_reinjected_and_then_go_down_in_order() {
    let rras = started();
    let queue = QueueHook::new(Applies::Sends);
    rras.engine().add_hook("queue", 10, queue.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let out = frames(&link, Direction::Send, &UDP, 0, 5);
    let sent = [rras.send(Edge::WanIp, out[..3].to_vec()), rras.send(Edge::WanIp, out[3..].to_vec())].concat();
    rras.run_until_idle();
    assert!(rras.miniport(Edge::WanIp).sent.is_empty() && rras.protocol(Edge::WanIp).completions.is_empty(), "held, not completed");
    let id = module(&rras, Edge::WanIp);
    assert_eq!(rras.engine().module_info(id).map(|info| info.taken), Some(5));
    assert_eq!(queue.queued(), 5);

    let results = queue.reinject_all(rras.engine(), ReinjectVerdict::Pass);
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(rras.miniport(Edge::WanIp).sent_frames(), out, "in the order they were taken");
    assert_eq!(rras.miniport(Edge::WanIp).sent.iter().map(|d| d.packet).collect::<Vec<_>>(), sent, "the protocol's own packets");
    rras.run_until_idle();
    assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent), vec![Some(NdisStatus::SUCCESS); 5]);
    let seen = counts(&rras, Edge::WanIp);
    assert_eq!((seen.send.taken, seen.send.reinjected, seen.send.traffic.drops), (5, 5, 0));
    assert_eq!(rras.engine().module_info(id).map(|info| info.taken), Some(0));
    finish(rras);
}

#[test]
fn a_send_asking_for_loopback_keeps_asking_when_passed_and_when_held_and_reinjected() {
    let rras = started();
    let queue = QueueHook::new(Applies::Sends);
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let out = frames(&link, Direction::Send, &UDP, 0, 4);
    let loopback = SendOptions { check_for_loopback: true, ..SendOptions::default() };
    rras.send_with(Edge::WanIp, loopback, out[..1].to_vec());
    rras.send(Edge::WanIp, out[1..2].to_vec());
    rras.engine().add_hook("queue", 10, queue.clone()).expect("a free hook slot");
    rras.send_with(Edge::WanIp, loopback, out[2..3].to_vec());
    rras.send(Edge::WanIp, out[3..].to_vec());
    assert_eq!(queue.queued(), 2);
    assert!(queue.reinject_all(rras.engine(), ReinjectVerdict::Pass).iter().all(Result::is_ok));
    let flags: Vec<bool> = rras.miniport(Edge::WanIp).sent.iter().map(|sent| sent.check_for_loopback).collect();
    assert_eq!(flags, [true, false, true, false], "passed through, then held and reinjected");
    rras.run_until_idle();
    finish(rras);
}

#[test]
fn a_reinjection_on_behalf_of_a_hook_is_refused_for_what_another_hook_took() {
    let rras = started();
    let taker = QueueHook::new(Applies::Sends);
    let taker_id = rras.engine().add_hook("taker", 20, taker.clone()).expect("a free hook slot");
    let bystander = rras.engine().add_hook("bystander", 10, QueueHook::new(Applies::Receives)).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send(Edge::WanIp, frames(&link, Direction::Send, &UDP, 0, 1));
    let ticket = taker.drain()[0];
    let refused = rras.engine().reinject_as(bystander, ticket, ReinjectVerdict::Drop, PathContext::default());
    assert_eq!(refused, Err(ReinjectError::NotTaker(ticket)));
    assert_eq!(rras.engine().module_info(module(&rras, Edge::WanIp)).map(|info| info.taken), Some(1), "still held");
    assert_eq!(rras.engine().reinject_as(taker_id, ticket, ReinjectVerdict::Pass, PathContext::default()), Ok(()));
    assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 1);
    rras.run_until_idle();
    finish(rras);
}

#[test]
fn taken_receives_are_indicated_in_order_when_reinjected_and_then_returned() {
    let rras = started();
    let queue = QueueHook::new(Applies::Receives);
    rras.engine().add_hook("queue", 10, queue.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIpv6, LinkParams::new());
    let back = frames(&link, Direction::Receive, &UDP, 0, 4);
    let received = rras.receive(Edge::WanIpv6, back.clone());
    rras.run_until_idle();
    assert!(rras.protocol(Edge::WanIpv6).received.is_empty());
    assert_eq!(rras.miniport(Edge::WanIpv6).returned, 0, "held by the engine, not returned");

    assert!(queue.reinject_all(rras.engine(), ReinjectVerdict::Pass).iter().all(Result::is_ok));
    let protocol = rras.protocol(Edge::WanIpv6);
    assert_eq!(protocol.received_frames(), back);
    assert_eq!(protocol.received.iter().map(|d| d.packet).collect::<Vec<_>>(), received, "the miniport's packets, not copies");
    rras.run_until_idle();
    assert_eq!(rras.miniport(Edge::WanIpv6).returned, 4);
    finish(rras);
}

#[test]
fn reinjecting_with_drop_verdicts_fails_those_sends_and_returns_those_receives() {
    let rras = started();
    let queue = QueueHook::new(Applies::Both);
    rras.engine().add_hook("queue", 10, queue.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let out = frames(&link, Direction::Send, &UDP, 0, 4);
    let back = frames(&link, Direction::Receive, &UDP, 0, 2);
    let sent = rras.send(Edge::WanIp, out.clone());
    rras.receive(Edge::WanIp, back.clone());
    let verdicts = [ReinjectVerdict::Pass, ReinjectVerdict::Drop];
    for (n, ticket) in queue.drain().into_iter().enumerate() {
        rras.engine().reinject(ticket, verdicts[n % 2], PathContext::default()).expect("a held packet");
    }
    rras.run_until_idle();

    assert_eq!(rras.miniport(Edge::WanIp).sent_frames(), vec![out[0].clone(), out[2].clone()]);
    let expected = [NdisStatus::SUCCESS, NdisStatus::FAILURE, NdisStatus::SUCCESS, NdisStatus::FAILURE].map(Some);
    assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent), expected);
    assert_eq!(rras.protocol(Edge::WanIp).received_frames(), vec![back[0].clone()]);
    assert_eq!(rras.miniport(Edge::WanIp).returned, 2, "the dropped one at once, the passed one when the protocol returned it");
    let seen = counts(&rras, Edge::WanIp);
    assert_eq!((seen.send.reinjected, drops(&seen.send, DropReason::Hook)), (4, 2));
    assert_eq!((seen.receive.reinjected, drops(&seen.receive, DropReason::Hook)), (2, 1));
    finish(rras);
}

#[test]
fn a_ticket_is_good_for_one_reinjection_only() {
    let rras = started();
    let queue = QueueHook::new(Applies::Both);
    rras.engine().add_hook("queue", 10, queue.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &UDP, 1);
    rras.receive_flow(&link, &UDP, 1, ReceiveOptions::default());
    let tickets = queue.drain();
    let engine = rras.engine();
    engine.reinject(tickets[0], ReinjectVerdict::Pass, PathContext::default()).expect("held");
    engine.reinject(tickets[1], ReinjectVerdict::Drop, PathContext::default()).expect("held");
    for ticket in &tickets {
        for verdict in [ReinjectVerdict::Pass, ReinjectVerdict::Drop] {
            assert_eq!(engine.reinject(*ticket, verdict, PathContext::default()), Err(ReinjectError::StaleTicket(*ticket)));
        }
    }
    let invented = Ticket { module: tickets[0].module, serial: tickets[1].serial + 1000 };
    assert_eq!(engine.reinject(invented, ReinjectVerdict::Pass, PathContext::default()), Err(ReinjectError::StaleTicket(invented)));
    let nowhere = Ticket { module: ModuleId(0x7fff_ffff), serial: 1 };
    assert_eq!(engine.reinject(nowhere, ReinjectVerdict::Pass, PathContext::default()), Err(ReinjectError::UnknownModule(nowhere.module)));
    rras.run_until_idle();
    let seen = counts(&rras, Edge::WanIp);
    assert_eq!((seen.send.reinjected, seen.receive.reinjected), (1, 1), "refused reinjections change nothing");
    assert_eq!(rras.miniport(Edge::WanIp).sent.len() + rras.protocol(Edge::WanIp).received.len(), 1);
    finish(rras);
}

#[test]
fn a_reinjected_packet_meets_only_the_hooks_after_the_one_that_took_it() {
    let rras = started();
    let log = CallLog::new();
    let queue = QueueHook::new(Applies::Both);
    let engine = rras.engine();
    engine.add_hook("above", 300, RecordingHook::new("above", &log)).expect("a free hook slot");
    engine.add_hook("queue", 200, queue.clone()).expect("a free hook slot");
    engine.add_hook("below", 100, RecordingHook::new("below", &log)).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    log.clear();
    rras.send_flow(&link, &UDP, 2);
    rras.receive_flow(&link, &UDP, 2, ReceiveOptions::default());
    assert_eq!(log.order(Callback::Packet(Direction::Send)), ["above", "above"]);
    assert_eq!(log.order(Callback::Packet(Direction::Receive)), ["below", "below"]);
    queue.reinject_all(rras.engine(), ReinjectVerdict::Pass);
    assert_eq!(log.order(Callback::Packet(Direction::Send)), ["above", "above", "below", "below"], "sends go on down");
    assert_eq!(log.order(Callback::Packet(Direction::Receive)), ["below", "below", "above", "above"], "receives go on up");
    assert!(log.calls().iter().all(|call| call.remote == link.remote));
    finish(rras);
}

#[test]
fn a_receive_taken_from_a_lent_indication_is_a_copy_and_the_lent_packet_goes_back_at_once() {
    let rras = started();
    let queue = QueueHook::new(Applies::Receives);
    rras.engine().add_hook("queue", 10, queue.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let back = frames(&link, Direction::Receive, &Flow::tcp(80, 999), 0, 3);
    let lent = rras.receive_with(Edge::WanIp, ReceiveOptions::resources(), back.clone());
    assert_eq!(rras.miniport(Edge::WanIp).returned, 3, "every lent packet is back when the callback returns");
    assert!(lent.iter().all(|id| rras.packet(*id).is_some_and(|record| record.holder == wanlayer_sim::Holder::Home)));
    let seen = counts(&rras, Edge::WanIp);
    assert_eq!((seen.receive.taken, seen.receive.copied_for_resources), (3, 3));
    assert_eq!(rras.ledger_counts().with_filter, 3, "the engine holds its three copies");

    rras.advance(wanlayer_sim::SECOND);
    queue.reinject_all(rras.engine(), ReinjectVerdict::Pass);
    let protocol = rras.protocol(Edge::WanIp);
    assert_eq!(protocol.received_frames(), back, "the copies carry the frames, in order");
    assert!(protocol.received.iter().all(|d| !lent.contains(&d.packet)));
    finish(rras);
}

// ----- order of the chain -----------------------------------------------------------------------

#[test]
fn sends_meet_hooks_from_high_to_low_altitude_and_receives_from_low_to_high() {
    let rras = started();
    let log = CallLog::new();
    for (name, altitude) in [("mid", 200), ("low", 100), ("high", 300)] {
        rras.engine().add_hook(name, altitude, RecordingHook::new(name, &log)).expect("a free hook slot");
    }
    let link = rras.link_up(Edge::WanIpv6, LinkParams::new());
    rras.send_flow(&link, &UDP, 1);
    rras.receive_flow(&link, &UDP, 1, ReceiveOptions::resources());
    rras.link_down(&link);
    assert_eq!(log.order(Callback::Packet(Direction::Send)), ["high", "mid", "low"]);
    assert_eq!(log.order(Callback::Packet(Direction::Receive)), ["low", "mid", "high"]);
    for callback in [Callback::LineUp, Callback::LineDown] {
        let mut names = log.order(callback);
        names.sort_unstable();
        assert_eq!(names, ["high", "low", "mid"], "every hook hears of {callback:?} once");
    }
    let mut listed = Vec::new();
    rras.engine().visit_hooks(|info| listed.push((info.name.as_str().to_owned(), info.altitude)));
    assert_eq!(listed, [("low".to_owned(), 100), ("mid".to_owned(), 200), ("high".to_owned(), 300)], "chain order, lowest first");
    finish(rras);
}

/// Registers `tie-1`, `tie-2`, `tie-3` at altitude 200 between a hook at 100 and one at 300.
fn tied_chain<F: wanlayer_sim::EngineFilter>(rras: &Rras<F>, log: &CallLog) {
    for (name, altitude) in [("top", 300), ("tie-1", 200), ("bottom", 100), ("tie-2", 200), ("tie-3", 200)] {
        rras.engine().add_hook(name, altitude, RecordingHook::new(name, log)).expect("a free hook slot");
    }
}

#[test]
fn hooks_of_equal_altitude_keep_one_order_mirrored_between_sends_and_receives() {
    let rras = started();
    let log = CallLog::new();
    tied_chain(&rras, &log);
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let mut send_orders = Vec::new();
    for seq in 0..4 {
        log.clear();
        rras.send(Edge::WanIp, [link.frame(Direction::Send, &UDP, seq)]);
        rras.receive(Edge::WanIp, [link.frame(Direction::Receive, &UDP, seq)]);
        let down = log.order(Callback::Packet(Direction::Send));
        let mut up = log.order(Callback::Packet(Direction::Receive));
        up.reverse();
        assert_eq!(down, up, "a receive meets the chain exactly reversed");
        assert_eq!((down[0], down[4]), ("top", "bottom"));
        send_orders.push(down);
    }
    assert!(send_orders.windows(2).all(|w| w[0] == w[1]), "ties resolve the same way every time: {send_orders:?}");
    let mut listed = Vec::new();
    rras.engine().visit_hooks(|info| listed.push(info.name.as_str().to_owned()));
    assert_eq!(listed, ["bottom", "tie-3", "tie-2", "tie-1", "top"], "listed bottom up: the earlier of equals sits above");
    finish(rras);
}

#[test]
fn hooks_of_equal_altitude_run_in_registration_order_on_the_way_down_as_documented() {
    let rras = started();
    let log = CallLog::new();
    tied_chain(&rras, &log);
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &UDP, 1);
    rras.receive_flow(&link, &UDP, 1, ReceiveOptions::default());
    assert_eq!(log.order(Callback::Packet(Direction::Send)), ["top", "tie-1", "tie-2", "tie-3", "bottom"]);
    assert_eq!(log.order(Callback::Packet(Direction::Receive)), ["bottom", "tie-3", "tie-2", "tie-1", "top"]);
    finish(rras);
}

// ----- the MTU reported upward ------------------------------------------------------------------

/// NdisWan indicates another line up for `link` with `MaximumTotalSize` `mtu`; returns what the
/// protocol was told.
fn line_up_again<F: wanlayer_sim::EngineFilter>(rras: &Rras<F>, link: &SimLink, mtu: u32) -> Option<u32> {
    let seen = rras.line_up_again(link, &LinkParams::new().mtu(mtu).protocol_buffer(vec![0; 600]))?;
    match seen.indication.buffer {
        StatusBuffer::LineUp(line_up) => Some(line_up.maximum_total_size),
        _ => None,
    }
}

#[test]
fn the_lowest_size_any_hook_asks_for_is_the_one_reported_upward() {
    let rras = started();
    let engine = rras.engine();
    let above = engine.add_hook("9000", 10, MtuHook::new(9000)).expect("a free hook slot");
    engine.add_hook("1380", 20, MtuHook::new(1380)).expect("a free hook slot");
    let lowest = engine.add_hook("1300", 30, MtuHook::new(1300)).expect("a free hook slot");
    drain_events(engine);
    let link = rras.link_up(Edge::WanIp, LinkParams::new().mtu(1400));
    assert_eq!(link.reported_total_size, Some(1300));
    assert_eq!(rras.protocol(Edge::WanIp).links[&link.remote].total_size, 1300);
    let id = module(&rras, Edge::WanIp);
    let sizes = engine.with_link(id, &link.remote, |l| (l.summary().maximum_total_size, l.summary().reported_total_size));
    assert_eq!(sizes, Some((1400, 1300)), "the engine keeps both");
    let lowered = |hook| hook_info(engine, hook).map(|info| (info.line_ups, info.sizes_lowered));
    assert_eq!((lowered(above), lowered(lowest)), (Some((1, 0)), Some((1, 1))), "asking for more than NdisWan's lowers nothing");
    let events = drain_events(engine);
    assert!(matches!(events[0].event, wanlayer_core::event::Event::LineUp(summary) if summary.reported_total_size == 1300));
    finish(rras);
}

#[test]
fn the_reported_size_never_goes_below_68_for_ipv4_or_1280_for_ipv6() {
    let rras = started();
    rras.engine().add_hook("tiny", 10, MtuHook::new(10)).expect("a free hook slot");
    let v4 = rras.link_up(Edge::WanIp, LinkParams::new().mtu(1400));
    let v6 = rras.link_up(Edge::WanIpv6, LinkParams::new().mtu(1500));
    assert_eq!((v4.reported_total_size, v6.reported_total_size), (Some(68), Some(1280)));
    assert_eq!(rras.protocol(Edge::WanIp).links[&v4.remote].total_size, 68);
    assert_eq!(rras.protocol(Edge::WanIpv6).links[&v6.remote].total_size, 1280);
    finish(rras);
}

#[test]
fn the_ipv6_floor_never_raises_a_link_ndiswan_gave_less_than_1280() {
    let rras = started();
    let id = rras.engine().add_hook("small", 10, MtuHook::new(500)).expect("a free hook slot");
    let v6 = rras.link_up(Edge::WanIpv6, LinkParams::new().mtu(1000));
    assert_eq!(v6.reported_total_size, Some(1000), "the floor is not a raise");
    assert_eq!(hook_info(rras.engine(), id).map(|info| info.sizes_lowered), Some(0));
    let seen = rras.engine().with_link(module(&rras, Edge::WanIpv6), &v6.remote, |l| l.summary().reported_total_size);
    assert_eq!(seen, Some(1000));
    finish(rras);
}

#[test]
fn every_line_up_of_a_link_is_lowered_afresh() {
    let rras = started();
    let id = rras.engine().add_hook("1300", 10, MtuHook::new(1300)).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new().mtu(1400));
    assert_eq!(link.reported_total_size, Some(1300));
    assert_eq!(line_up_again(&rras, &link, 1200), Some(1200), "NdisWan's own smaller size passes unchanged");
    assert_eq!(line_up_again(&rras, &link, 1500), Some(1300), "a larger one is lowered again");
    let module = module(&rras, Edge::WanIp);
    let seen =
        rras.engine().with_link(module, &link.remote, |l| (l.line_ups(), l.summary().maximum_total_size, l.summary().reported_total_size));
    assert_eq!(seen, Some((3, 1500, 1300)));
    assert_eq!(hook_info(rras.engine(), id).map(|info| (info.line_ups, info.sizes_lowered)), Some((3, 2)));
    finish(rras);
}

#[test]
fn a_hook_that_asks_for_nothing_leaves_the_size_alone() {
    let rras = started();
    let quiet = CountingHook::new();
    rras.engine().add_hook("quiet", 10, quiet.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIpv6, LinkParams::new().mtu(1480));
    assert_eq!((link.reported_total_size, quiet.calls().line_ups), (Some(1480), 1));
    let ethertype = rras.engine().with_link(module(&rras, Edge::WanIpv6), &link.remote, |l| l.summary().protocol_type);
    assert_eq!(ethertype, Some(EtherType::Ipv6));
    finish(rras);
}

#[test]
fn a_packet_a_hook_drops_on_reinjection_counts_as_a_drop_of_its_link() {
    let rras = started();
    let queue = QueueHook::new(Applies::Sends);
    rras.engine().add_hook("queue", 10, queue.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &UDP, 2);
    queue.reinject_all(rras.engine(), ReinjectVerdict::Drop);
    assert_eq!(drops(&counts(&rras, Edge::WanIp).send, DropReason::Hook), 2, "the module counts both");
    let on_link = rras.engine().with_link(module(&rras, Edge::WanIp), &link.remote, |l| l.send_counts().drops);
    assert_eq!(on_link, Some(2), "and so does the link");
    finish(rras);
}
