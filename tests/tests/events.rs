//! The bounded event queue: a slow reader loses new events, counted, and sees the gap in the
//! sequence numbers; the queue's room is allocated once and charged to its pool.

use std::mem::size_of;

use wanlayer_core::event::{Event, EventRecord};
use wanlayer_core::hal::Pool;
use wanlayer_core::EngineConfig;
use wanlayer_sim::{Edge, LinkParams, ReceiveOptions, Rras};
use wanlayer_tests::sample_hooks::CountingHook;
use wanlayer_tests::setup::{drain_events, finish, module, start, start_with_engine, UDP};

fn small_queue(capacity: usize) -> EngineConfig {
    EngineConfig { event_capacity: capacity, ..EngineConfig::default() }
}

#[test]
fn a_full_queue_keeps_the_oldest_events_counts_the_rest_lost_and_the_sequence_shows_the_gap() {
    let rras = start_with_engine(Rras::builder(), small_queue(4));
    let links: Vec<_> = (0..3).map(|_| rras.link_up(Edge::WanIp, LinkParams::new())).collect();
    let engine = rras.engine();
    assert_eq!(engine.lost_events(), 3, "attach ×2 and restart ×2 filled the queue; the three line ups were lost");

    let kept = drain_events(engine);
    assert_eq!(kept.iter().map(|r| r.sequence).collect::<Vec<_>>(), [0, 1, 2, 3], "the oldest are kept");
    assert!(kept.iter().all(|r| matches!(r.event, Event::ModuleAttached { .. } | Event::ModuleRestarted(_))));
    rras.link_down(&links[1]);
    let next: Vec<EventRecord> = drain_events(engine);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].sequence, 7, "sequence numbers count lost events: 4, 5 and 6 are the gap");
    assert_eq!(next[0].sequence - kept[3].sequence - 1, engine.lost_events(), "the gap is exactly the lost count");
    assert!(matches!(next[0].event, Event::LineDown(summary) if summary.remote_address == links[1].remote));
    finish(rras);
}

#[test]
fn reading_makes_room_and_losses_resume_only_when_full_again() {
    let rras = start_with_engine(Rras::builder(), small_queue(2));
    let engine = rras.engine();
    assert_eq!(engine.lost_events(), 2);
    let mut sequences = Vec::new();
    let mut expected_lost = 2;
    for round in 0..5 {
        sequences.extend(drain_events(engine).into_iter().map(|r| r.sequence));
        let hook = engine.add_hook("h", round, CountingHook::new()).expect("a free hook slot");
        engine.remove_hook(hook).expect("registered");
        let link = rras.link_up(Edge::WanIpv6, LinkParams::new());
        rras.link_down(&link);
        expected_lost += 2;
        assert_eq!(engine.lost_events(), expected_lost, "round {round}: two fit, two are lost");
    }
    sequences.extend(drain_events(engine).into_iter().map(|r| r.sequence));
    assert_eq!(sequences, [0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21], "gaps of exactly the events lost");
    finish(rras);
}

#[test]
fn a_queue_with_no_room_loses_every_event_and_the_filter_still_works() {
    let rras = start_with_engine(Rras::builder(), small_queue(0));
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &UDP, 3);
    rras.receive_flow(&link, &UDP, 3, ReceiveOptions::resources());
    rras.run_until_idle();
    rras.link_down(&link);
    let engine = rras.engine();
    assert!(engine.next_event().is_none());
    assert_eq!(engine.lost_events(), 6, "attached ×2, restarted ×2, line up, line down");
    assert_eq!((rras.miniport(Edge::WanIp).sent.len(), rras.protocol(Edge::WanIp).received.len()), (3, 3));
    let pool = rras.pools().into_iter().find(|(pool, _)| *pool == Pool::Event).map(|(_, usage)| usage.current);
    assert_eq!(pool, Some(0), "no room, no charge");
    finish(rras);
}

#[test]
fn the_queue_room_is_charged_once_to_the_event_pool_by_capacity() {
    for capacity in [1, 16, 1024] {
        let rras = start_with_engine(Rras::builder(), small_queue(capacity));
        let event_pool = || rras.pools().into_iter().find(|(pool, _)| *pool == Pool::Event).map(|(_, usage)| usage);
        let before = event_pool().expect("charged");
        assert_eq!(before.current, capacity * size_of::<EventRecord>());
        for _ in 0..3 {
            let link = rras.link_up(Edge::WanIp, LinkParams::new());
            rras.link_down(&link);
        }
        assert_eq!(event_pool(), Some(before), "{capacity}: pushing never allocates");
        finish(rras);
    }
}

#[test]
fn every_state_change_of_a_module_is_an_event_in_order() {
    let rras = start(Rras::builder().ethernet());
    let ethernet = module(&rras, Edge::Ethernet);
    drain_events(rras.engine());
    rras.pause_and_settle(Edge::Ethernet).expect("pauses");
    rras.restart(Edge::Ethernet).expect("restarts");
    rras.detach(Edge::Ethernet).expect("detaches");
    let again = rras.attach(Edge::Ethernet).expect("attaches");
    let records = drain_events(rras.engine());
    let events: Vec<Event> = records.iter().map(|r| r.event).collect();
    assert_eq!(
        events,
        [
            Event::ModulePaused(ethernet),
            Event::ModuleRestarted(ethernet),
            Event::ModulePaused(ethernet),
            Event::ModuleDetached { module: ethernet, links_dropped: 0 },
            Event::ModuleAttached { module: again, kind: wanlayer_core::ModuleKind::PassThrough },
        ]
    );
    assert!(records.windows(2).all(|w| w[1].sequence == w[0].sequence + 1));
    finish(rras);
}
