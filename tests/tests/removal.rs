//! Adding and removing hooks while traffic flows: what a removed hook held continues along the
//! chain, the hook is never called again, and the registry's limits.

use std::sync::Arc;

use wanlayer_core::event::Event;
use wanlayer_core::hal::PathContext;
use wanlayer_core::hook::{AddHookError, Direction, HookId, MAX_HOOKS};
use wanlayer_core::{NdisStatus, ReinjectError, ReinjectVerdict, RemoveHookError};
use wanlayer_sim::{Edge, LinkParams, ReceiveOptions};
use wanlayer_tests::frames::{checksums_valid, ip_ttl};
use wanlayer_tests::sample_hooks::{Applies, CallLog, Callback, CountingHook, QueueHook, RecordingHook, TtlRewriteHook};
use wanlayer_tests::setup::{completions, counts, drain_events, finish, frames, hook_info, started, UDP};

#[test]
fn removing_a_holding_hook_hands_its_packets_on_along_the_rest_of_the_chain() {
    let rras = started();
    let log = CallLog::new();
    let queue = QueueHook::new(Applies::Both);
    let engine = rras.engine();
    engine.add_hook("above", 300, RecordingHook::new("above", &log)).expect("a free hook slot");
    let queue_id = engine.add_hook("queue", 200, queue.clone()).expect("a free hook slot");
    engine.add_hook("ttl", 100, TtlRewriteHook::new(3, Applies::Sends)).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let sent = rras.send_flow(&link, &UDP, 3);
    rras.receive_flow(&link, &UDP, 2, ReceiveOptions::default());
    rras.receive_flow(&link, &UDP, 1, ReceiveOptions::resources());
    let tickets = queue.drain();
    assert!(rras.miniport(Edge::WanIp).sent.is_empty() && rras.protocol(Edge::WanIp).received.is_empty());
    log.clear();

    let info = engine.remove_hook(queue_id).expect("registered");
    assert_eq!((info.send.taken, info.receive.taken), (3, 3), "the report covers what it held");
    let down = rras.miniport(Edge::WanIp).sent_frames();
    assert_eq!(down.len(), 3, "every held send went on down when remove_hook returned");
    assert!(down.iter().all(|frame| ip_ttl(frame) == Some(3) && checksums_valid(frame)), "through the hook below it");
    let mut up = rras.protocol(Edge::WanIp).received_frames();
    up.sort();
    let mut expected = frames(&link, Direction::Receive, &UDP, 0, 2);
    expected.push(link.frame(Direction::Receive, &UDP, 0));
    expected.sort();
    assert_eq!(up, expected, "every held receive went on up");
    assert_eq!(log.order(Callback::Packet(Direction::Receive)).len(), 3, "through the hook above it");
    assert!(log.order(Callback::Packet(Direction::Send)).is_empty(), "sends do not meet hooks above the one that held them");
    for ticket in tickets {
        assert_eq!(engine.reinject(ticket, ReinjectVerdict::Pass, PathContext::default()), Err(ReinjectError::StaleTicket(ticket)));
    }
    rras.run_until_idle();
    assert_eq!(completions(&rras.protocol(Edge::WanIp), &sent), vec![Some(NdisStatus::SUCCESS); 3]);
    finish(rras);
}

#[test]
fn removing_a_holding_hook_hands_its_packets_on_in_the_order_they_were_taken() {
    let rras = started();
    let queue = QueueHook::new(Applies::Sends);
    let id = rras.engine().add_hook("queue", 10, queue.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let out = frames(&link, Direction::Send, &UDP, 0, 40);
    for chunk in out.chunks(8) {
        rras.send(Edge::WanIp, chunk.to_vec());
    }
    rras.engine().remove_hook(id).expect("registered");
    let idents = |frames: &[Vec<u8>]| -> Vec<u16> { frames.iter().map(|f| u16::from_be_bytes([f[18], f[19]])).collect() };
    assert_eq!(idents(&rras.miniport(Edge::WanIp).sent_frames()), idents(&out), "a flow comes out in the order it went in");
    finish(rras);
}

#[test]
fn a_packet_handed_on_at_removal_can_be_taken_again_by_the_next_hook() {
    let rras = started();
    let (first, second) = (QueueHook::new(Applies::Sends), QueueHook::new(Applies::Sends));
    let engine = rras.engine();
    let first_id = engine.add_hook("first", 200, first.clone()).expect("a free hook slot");
    engine.add_hook("second", 100, second.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIpv6, LinkParams::new());
    let sent = rras.send_flow(&link, &UDP, 2);
    assert_eq!((first.queued(), second.queued()), (2, 0));
    engine.remove_hook(first_id).expect("registered");
    assert_eq!(second.queued(), 2, "the next hook took them");
    assert!(rras.miniport(Edge::WanIpv6).sent.is_empty());
    assert!(second.reinject_all(engine, ReinjectVerdict::Pass).iter().all(Result::is_ok));
    rras.run_until_idle();
    assert_eq!(completions(&rras.protocol(Edge::WanIpv6), &sent), vec![Some(NdisStatus::SUCCESS); 2]);
    assert_eq!(counts(&rras, Edge::WanIpv6).send.taken, 4, "taken twice each");
    finish(rras);
}

#[test]
fn a_removed_hook_is_never_called_again_and_its_counters_stop() {
    let rras = started();
    let counter = CountingHook::new();
    let id = rras.engine().add_hook("count", 10, counter.clone()).expect("a free hook slot");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &UDP, 2);
    rras.receive_flow(&link, &UDP, 3, ReceiveOptions::default());
    let removed = rras.engine().remove_hook(id).expect("registered");
    let before = counter.calls();
    assert_eq!((before.sends, before.receives, before.line_ups, before.line_downs), (2, 3, 1, 0));
    assert_eq!((removed.send.seen, removed.receive.seen, removed.line_ups), (2, 3, 1));

    rras.send_flow(&link, &UDP, 4);
    rras.receive_flow(&link, &UDP, 4, ReceiveOptions::resources());
    let other = rras.link_up(Edge::WanIpv6, LinkParams::new());
    rras.link_down(&link);
    rras.link_down(&other);
    assert_eq!(counter.calls(), before, "no callback of any kind after removal");
    assert!(hook_info(rras.engine(), id).is_none());
    let mut listed = 0;
    rras.engine().visit_hooks(|_| listed += 1);
    assert_eq!(listed, 0);
    rras.run_until_idle();
    assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 6, "traffic flows without it");
    finish(rras);
}

#[test]
fn adding_and_removing_hooks_are_events_naming_the_hook() {
    let rras = started();
    drain_events(rras.engine());
    let long = "a-hook-whose-name-is-longer-than-thirty-two-bytes";
    let first = rras.engine().add_hook("shaper", 150, CountingHook::new()).expect("a free hook slot");
    let second = rras.engine().add_hook(long, 7, CountingHook::new()).expect("a free hook slot");
    rras.engine().remove_hook(first).expect("registered");
    let cut = long[..wanlayer_core::hook::HOOK_NAME_MAX].to_owned();
    let seen: Vec<(&str, HookId, String, Option<u32>)> = drain_events(rras.engine())
        .into_iter()
        .map(|record| match record.event {
            Event::HookAdded { id, name, altitude } => ("added", id, name.as_str().to_owned(), Some(altitude)),
            Event::HookRemoved { id, name } => ("removed", id, name.as_str().to_owned(), None),
            other => panic!("only hook events expected: {other:?}"),
        })
        .collect();
    assert_eq!(
        seen,
        [("added", first, "shaper".to_owned(), Some(150)), ("added", second, cut, Some(7)), ("removed", first, "shaper".to_owned(), None),],
        "names are cut at 32 bytes"
    );
    finish(rras);
}

#[test]
fn removing_a_hook_twice_or_one_never_added_is_an_unknown_hook() {
    let rras = started();
    let id = rras.engine().add_hook("once", 10, CountingHook::new()).expect("a free hook slot");
    rras.engine().remove_hook(id).expect("registered");
    assert_eq!(rras.engine().remove_hook(id).err(), Some(RemoveHookError::UnknownHook(id)));
    let invented = HookId { slot: 9, generation: 77 };
    assert_eq!(rras.engine().remove_hook(invented).err(), Some(RemoveHookError::UnknownHook(invented)));
    let again = rras.engine().add_hook("again", 10, CountingHook::new()).expect("a free hook slot");
    assert_eq!(again.slot, id.slot, "the freed slot is reused");
    assert_ne!(again.generation, id.generation, "under a new generation");
    assert_eq!(rras.engine().remove_hook(id).err(), Some(RemoveHookError::UnknownHook(id)), "the old identity stays dead");
    let events = drain_events(rras.engine());
    assert_eq!(events.iter().filter(|r| matches!(r.event, Event::HookRemoved { .. })).count(), 1, "failed removals make no event");
    finish(rras);
}

#[test]
fn sixteen_hooks_fit_every_one_sees_the_traffic_and_a_seventeenth_is_refused() {
    let rras = started();
    let counters: Vec<Arc<CountingHook>> = (0..MAX_HOOKS).map(|_| CountingHook::new()).collect();
    let ids: Vec<HookId> = counters
        .iter()
        .enumerate()
        .map(|(n, hook)| rras.engine().add_hook(&format!("h{n}"), n as u32 * 10, hook.clone()).expect("a free hook slot"))
        .collect();
    drain_events(rras.engine());
    assert_eq!(rras.engine().add_hook("seventeenth", 5, CountingHook::new()).err(), Some(AddHookError::Full));
    assert!(drain_events(rras.engine()).is_empty(), "a refused hook makes no event");

    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &UDP, 2);
    rras.receive_flow(&link, &UDP, 1, ReceiveOptions::default());
    assert!(counters.iter().all(|c| (c.calls().sends, c.calls().receives, c.calls().line_ups) == (2, 1, 1)));

    rras.engine().remove_hook(ids[5]).expect("registered");
    let late = CountingHook::new();
    rras.engine().add_hook("late", 55, late.clone()).expect("room again");
    rras.send_flow(&link, &UDP, 1);
    assert_eq!((late.calls().sends, counters[5].calls().sends, counters[6].calls().sends), (1, 2, 3));
    finish(rras);
}
