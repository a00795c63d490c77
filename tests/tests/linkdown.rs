//! Line down with packets in flight: what the miniport has completes normally, what hooks hold is
//! dropped with `NDIS_STATUS_MEDIA_DISCONNECTED`, and the link's address belongs to nobody after.

use wanlayer_core::event::Event;
use wanlayer_core::hal::PathContext;
use wanlayer_core::hook::Direction;
use wanlayer_core::link::{LineDown, WanQuality};
use wanlayer_core::stats::DropReason;
use wanlayer_core::wire::MacAddress;
use wanlayer_core::{NdisStatus, ReinjectError, ReinjectVerdict};
use wanlayer_sim::{Delivery, Edge, LinkParams, NdisState, PauseOutcome, ReceiveOptions, Rras, StatusBuffer, StatusIndication, WanLineUp};
use wanlayer_tests::sample_hooks::{Applies, CallLog, Callback, QueueHook, RecordingHook, TtlRewriteHook};
use wanlayer_tests::setup::{completions, counts, drain_events, drops, finish, frames, module, start, started, UDP};

#[test]
fn a_line_down_completes_held_sends_disconnected_and_leaves_the_miniport_its_own() {
    let rras = start(Rras::builder().send_completion(Delivery::Hold));
    let queue = QueueHook::new(Applies::Both);
    rras.engine().add_hook("queue", 10, queue.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    queue.set_taking(false);
    let at_miniport = rras.send_flow(&link, &UDP, 3);
    queue.set_taking(true);
    let held = rras.send_flow(&link, &UDP, 2);
    rras.receive_flow(&link, &UDP, 1, ReceiveOptions::default());
    rras.receive_flow(&link, &UDP, 1, ReceiveOptions::resources());
    let tickets = queue.drain();
    assert_eq!((rras.miniport(Edge::WanIp).holding(), tickets.len()), (3, 4));
    let returned_before = rras.miniport(Edge::WanIp).returned;

    rras.link_down(&link);
    let protocol = rras.protocol(Edge::WanIp);
    assert_eq!(completions(&protocol, &held), vec![Some(NdisStatus::MEDIA_DISCONNECTED); 2], "held sends fail at once");
    assert_eq!(completions(&protocol, &at_miniport), vec![None; 3], "sends at the miniport are not the filter's to complete");
    assert_eq!(rras.miniport(Edge::WanIp).returned, returned_before + 1, "the held plain receive goes back; the lent one was a copy");
    let seen = counts(&rras, Edge::WanIp);
    assert_eq!((drops(&seen.send, DropReason::LinkDown), drops(&seen.receive, DropReason::LinkDown)), (2, 2));
    assert_eq!(rras.engine().module_info(module(&rras, Edge::WanIp)).map(|i| (i.links, i.taken)), Some((0, 0)));
    for ticket in &tickets {
        let refused = rras.engine().reinject(*ticket, ReinjectVerdict::Pass, PathContext::default());
        assert_eq!(refused, Err(ReinjectError::StaleTicket(*ticket)), "dropped at line down");
    }

    rras.release_sends(Edge::WanIp);
    rras.run_until_idle();
    assert_eq!(completions(&rras.protocol(Edge::WanIp), &at_miniport), vec![Some(NdisStatus::SUCCESS); 3], "they complete normally");
    finish(rras);
}

#[test]
fn replaced_sends_at_the_miniport_complete_their_originals_after_the_line_down() {
    let rras = start(Rras::builder().send_completion(Delivery::Hold));
    rras.engine().add_hook("ttl", 10, TtlRewriteHook::new(5, Applies::Sends)).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIpv6, LinkParams::new());
    let sent = rras.send_flow(&link, &UDP, 2);
    let id = module(&rras, Edge::WanIpv6);
    assert_eq!(rras.engine().module_info(id).map(|i| i.in_flight), Some(2));
    rras.link_down(&link);
    assert_eq!(completions(&rras.protocol(Edge::WanIpv6), &sent), vec![None; 2]);
    rras.release_sends(Edge::WanIpv6);
    rras.run_until_idle();
    assert_eq!(completions(&rras.protocol(Edge::WanIpv6), &sent), vec![Some(NdisStatus::SUCCESS); 2]);
    assert_eq!(rras.engine().module_info(id).map(|i| i.in_flight), Some(0));
    finish(rras);
}

#[test]
fn a_line_down_while_a_pause_waits_does_not_end_the_pause_early() {
    let rras = start(Rras::builder().send_completion(Delivery::Hold));
    rras.engine().add_hook("ttl", 10, TtlRewriteHook::new(5, Applies::Sends)).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &UDP, 1);
    assert_eq!(rras.pause(Edge::WanIp), Ok(PauseOutcome::Pending));
    rras.link_down(&link);
    rras.run_until_idle();
    assert_eq!(rras.state(Edge::WanIp), NdisState::Pausing, "the replacement is still at the miniport");
    rras.release_sends(Edge::WanIp);
    rras.run_until_idle();
    assert_eq!(rras.state(Edge::WanIp), NdisState::Paused);
    finish(rras);
}

#[test]
fn a_line_down_spares_what_hooks_hold_for_other_links() {
    let rras = started();
    let queue = QueueHook::new(Applies::Sends);
    rras.engine().add_hook("queue", 10, queue.clone()).expect("a free hook slot");
    let (doomed, kept) = (rras.link_up(Edge::WanIp, LinkParams::new()), rras.link_up(Edge::WanIp, LinkParams::new()));
    rras.send(Edge::WanIp, [doomed.frame(Direction::Send, &UDP, 0), kept.frame(Direction::Send, &UDP, 0)]);
    rras.send(Edge::WanIp, [kept.frame(Direction::Send, &UDP, 1), doomed.frame(Direction::Send, &UDP, 1)]);
    let tickets = queue.drain();
    rras.link_down(&doomed);
    let outcomes: Vec<bool> =
        tickets.iter().map(|t| rras.engine().reinject(*t, ReinjectVerdict::Pass, PathContext::default()).is_ok()).collect();
    assert_eq!(outcomes, [false, true, true, false], "only the downed link's packets were dropped");
    assert_eq!(rras.miniport(Edge::WanIp).sent_frames(), frames(&kept, Direction::Send, &UDP, 0, 2));
    let seen = counts(&rras, Edge::WanIp);
    assert_eq!((drops(&seen.send, DropReason::LinkDown), seen.send.reinjected), (2, 2));
    finish(rras);
}

#[test]
fn traffic_for_a_downed_link_is_unmatched_and_skips_the_hooks() {
    let rras = started();
    let log = CallLog::new();
    rras.engine().add_hook("rec", 10, RecordingHook::new("rec", &log)).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &UDP, 1);
    rras.link_down(&link);
    log.clear();
    let late = frames(&link, Direction::Send, &UDP, 1, 2);
    rras.send(Edge::WanIp, late.clone());
    rras.receive_flow(&link, &UDP, 3, ReceiveOptions::resources());
    rras.run_until_idle();
    assert_eq!(rras.miniport(Edge::WanIp).sent_frames()[1..], late[..], "still passed on");
    assert_eq!(rras.protocol(Edge::WanIp).received.len(), 3);
    let seen = counts(&rras, Edge::WanIp);
    assert_eq!((seen.send.unmatched, seen.receive.unmatched), (2, 3));
    assert!(log.calls().is_empty(), "no hook sees traffic of a link that is down");
    finish(rras);
}

#[test]
fn the_hooks_hear_of_a_line_down_once_and_an_unknown_one_is_only_counted() {
    let rras = started();
    let log = CallLog::new();
    rras.engine().add_hook("rec", 10, RecordingHook::new("rec", &log)).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIpv6, LinkParams::new());
    let id = module(&rras, Edge::WanIpv6);
    let link_id = rras.engine().with_link(id, &link.remote, |l| l.id()).expect("tracked");
    drain_events(rras.engine());
    rras.link_down(&link);
    rras.link_down(&link);
    let stranger = LineDown { remote_address: MacAddress([0x3c, 0x77, 0x20, 0x52, 0x41, 0x53]), local_address: MacAddress([0; 6]) };
    let record = rras.indicate_status(Edge::WanIpv6, StatusIndication::new(NdisStatus::WAN_LINE_DOWN, StatusBuffer::LineDown(stranger)));

    assert_eq!(record.map(|r| r.indication.buffer), Some(StatusBuffer::LineDown(stranger)), "passed up untouched");
    let downs: Vec<_> = log.calls().into_iter().filter(|call| call.callback == Callback::LineDown).collect();
    assert_eq!(downs.len(), 1);
    assert_eq!((downs[0].link, downs[0].remote), (link_id, link.remote));
    let seen = counts(&rras, Edge::WanIpv6);
    assert_eq!((seen.line_downs, seen.line_downs_unknown), (3, 2));
    let events: Vec<Event> = drain_events(rras.engine()).into_iter().map(|r| r.event).collect();
    assert!(matches!(events[..], [Event::LineDown(summary)] if summary.id == link_id), "one event: {events:?}");
    assert_eq!(rras.protocol(Edge::WanIpv6).statuses.len(), 4, "a line up and three line downs reached the protocol");
    finish(rras);
}

#[test]
fn a_remote_address_brought_up_again_is_a_new_link() {
    let rras = started();
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &UDP, 4);
    let id = module(&rras, Edge::WanIp);
    let first = rras.engine().with_link(id, &link.remote, |l| l.id()).expect("tracked");
    rras.link_down(&link);
    let again = WanLineUp {
        link_speed_100bps: 100,
        maximum_total_size: 1400,
        quality: WanQuality::Reliable,
        send_window: 4,
        remote_address: link.remote,
        local_address: MacAddress([0; 6]),
        protocol_type: link.protocol_type,
        device_name: Vec::new(),
        protocol_buffer: Vec::new(),
    };
    rras.indicate_status(Edge::WanIp, StatusIndication::new(NdisStatus::WAN_LINE_UP, StatusBuffer::LineUp(again)));
    let second = rras.engine().with_link(id, &link.remote, |l| (l.id(), l.line_ups(), l.send_counts().packets, l.best_effort_ipv4()));
    let (second_id, line_ups, sent, address) = second.expect("tracked again");
    assert!(second_id > first, "link identities are never reused");
    assert_eq!((line_ups, sent, address), (1, 0, None), "fresh counters, and no address in an empty buffer");
    rras.send_flow(&link, &UDP, 1);
    assert_eq!(rras.engine().with_link(id, &link.remote, |l| l.send_counts().packets), Some(1));
    finish(rras);
}
