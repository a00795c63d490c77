//! The bounded event queue of wanlayer.sys (its fixed room, `ENGINE_CONFIG.event_capacity`): a
//! slow reader loses new events, counted, and sees the gap in the sequence numbers; the queue's
//! room is allocated once at `DriverEntry` and charged to its pool. Every scenario runs the
//! driver's own handlers and overflows the driver's real queue.

use std::mem::size_of;

use wanlayer_core::event::{Event, EventRecord};
use wanlayer_core::hal::Pool;
use wanlayer_sim::{Edge, EngineFilter, LinkParams, ReceiveOptions, Rras};
use wanlayer_sim_driver::{DriverFilter, ENGINE_CONFIG};
use wanlayer_tests::sample_hooks::CountingHook;
use wanlayer_tests::setup::{drain_events, finish, module, start, started, UDP};

/// The room of the driver's event queue.
const CAPACITY: usize = ENGINE_CONFIG.event_capacity;
const _: () = assert!(CAPACITY % 2 == 0, "filled by pairs of events");

/// Reads what is queued, then fills the queue's whole room with hooks added and removed (two
/// events each). Returns the sequence number of the first event of the fill.
fn fill(rras: &Rras<DriverFilter>) -> u64 {
    let engine = rras.engine();
    let lost = engine.lost_events();
    let first = drain_events(engine).last().map_or(0, |record| record.sequence + 1);
    for round in 0..CAPACITY / 2 {
        let hook = engine.add_hook("filler", round as u32, CountingHook::new()).expect("a free hook slot");
        engine.remove_hook(hook).expect("registered");
    }
    assert_eq!(engine.lost_events(), lost, "exactly the room, nothing lost yet");
    first
}

/// Bytes the driver charges to its event pool.
fn event_pool(rras: &Rras<DriverFilter>) -> usize {
    rras.filter().pool_charged(Pool::Event)
}

#[test]
fn a_full_queue_keeps_the_oldest_events_counts_the_rest_lost_and_the_sequence_shows_the_gap() {
    let rras = started();
    let first = fill(&rras);
    assert_eq!(first, 4, "the fill follows attach ×2 and restart ×2");
    let links: Vec<_> = (0..3).map(|_| rras.link_up(Edge::WanIp, LinkParams::new())).collect();
    let engine = rras.engine();
    assert_eq!(engine.lost_events(), 3, "the queue was full: the three line ups were lost");

    let kept = drain_events(engine);
    let sequences: Vec<u64> = kept.iter().map(|r| r.sequence).collect();
    assert_eq!(sequences, (first..first + CAPACITY as u64).collect::<Vec<_>>(), "the oldest are kept");
    assert!(kept.iter().all(|r| matches!(r.event, Event::HookAdded { .. } | Event::HookRemoved { .. })));
    rras.link_down(&links[1]);
    let next: Vec<EventRecord> = drain_events(engine);
    assert_eq!(next.len(), 1);
    let last_kept = *sequences.last().expect("kept");
    assert_eq!(next[0].sequence, last_kept + 4, "sequence numbers count lost events: three are the gap");
    assert_eq!(next[0].sequence - last_kept - 1, engine.lost_events(), "the gap is exactly the lost count");
    assert!(matches!(next[0].event, Event::LineDown(summary) if summary.remote_address == links[1].remote));
    finish(rras);
}

#[test]
fn reading_makes_room_and_losses_resume_only_when_full_again() {
    let rras = started();
    let first = fill(&rras);
    let engine = rras.engine();
    let mut sequences = Vec::new();
    let mut expected_lost = 0;
    for round in 0..5 {
        sequences.extend((0..2).map(|_| engine.next_event().expect("a full queue").sequence));
        let hook = engine.add_hook("h", round, CountingHook::new()).expect("a free hook slot");
        engine.remove_hook(hook).expect("registered");
        let link = rras.link_up(Edge::WanIpv6, LinkParams::new());
        rras.link_down(&link);
        expected_lost += 2;
        assert_eq!(engine.lost_events(), expected_lost, "round {round}: the two read make room for two, two are lost");
    }
    sequences.extend(drain_events(engine).into_iter().map(|r| r.sequence));
    let end_of_fill = first + CAPACITY as u64;
    let mut expected: Vec<u64> = (first..end_of_fill).collect();
    expected.extend((0..5).flat_map(|round| [end_of_fill + 4 * round, end_of_fill + 4 * round + 1]));
    assert_eq!(sequences, expected, "gaps of exactly the events lost (each round's line up and line down)");
    finish(rras);
}

#[test]
fn a_full_queue_loses_every_further_event_and_the_filter_still_works() {
    let rras = started();
    fill(&rras);
    let charged = event_pool(&rras);
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    rras.send_flow(&link, &UDP, 3);
    rras.receive_flow(&link, &UDP, 3, ReceiveOptions::resources());
    rras.run_until_idle();
    rras.link_down(&link);
    let engine = rras.engine();
    assert_eq!(engine.lost_events(), 2, "line up, line down");
    assert_eq!((rras.miniport(Edge::WanIp).sent.len(), rras.protocol(Edge::WanIp).received.len()), (3, 3));
    assert_eq!(event_pool(&rras), charged, "a lost event allocates nothing");
    assert_eq!(drain_events(engine).len(), CAPACITY, "what was queued is still there");
    finish(rras);
}

#[test]
fn the_queue_room_is_charged_once_to_the_event_pool_by_capacity() {
    let rras = started();
    let before = event_pool(&rras);
    assert_eq!(before, CAPACITY * size_of::<EventRecord>(), "the whole room, charged at DriverEntry");
    for _ in 0..3 {
        let link = rras.link_up(Edge::WanIp, LinkParams::new());
        rras.link_down(&link);
    }
    assert_eq!(event_pool(&rras), before, "pushing never allocates");
    fill(&rras);
    rras.link_up(Edge::WanIpv6, LinkParams::new());
    assert_eq!((rras.engine().lost_events(), event_pool(&rras)), (1, before), "nor does losing");
    finish(rras);
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
